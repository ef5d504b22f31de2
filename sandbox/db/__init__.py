"""The database side of the sandbox: PostgreSQL and MariaDB servers set up as RDS sets them up, and the parts that
send their IAM logins to the verifier (PAM module, MariaDB plugin), TLS and server parameters."""
