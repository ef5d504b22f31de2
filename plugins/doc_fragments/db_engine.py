# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The engine option of the modules that log in to a database: how they tell PostgreSQL, MySQL and MariaDB apart.

    DOCUMENTATION = r"""
options:
  engine:
    description:
      - The database engine. V(auto) tells PostgreSQL from MySQL/MariaDB by the server's first reply (one extra TCP handshake,
        no credentials sent), and MySQL from MariaDB by the server's version string.
      - With V(mysql) or V(mariadb) the SQL still follows what the server's version string says.
    type: str
    choices: [auto, postgres, mysql, mariadb]
    default: auto
"""
