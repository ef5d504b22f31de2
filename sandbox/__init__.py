"""Local stand-in for AWS (moto) and RDS (PostgreSQL, MariaDB) used by the demo and the tests.

Not part of the collection: nothing under plugins/ may import it, and galaxy.yml leaves it out.
"""
