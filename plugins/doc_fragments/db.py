# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How the modules that change a database log in as its admin (PostgreSQL, MySQL, MariaDB).

    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - The host to open the TCP connection to, for example V(127.0.0.1) for an SSH tunnel, an RDS Proxy or a local test server.
      - Defaults to O(endpoint). At least one of O(login_host) and O(endpoint) is required.
      - The TLS certificate is checked against O(endpoint), not against this host.
    type: str
  login_port:
    description:
      - The TCP port to connect to.
      - Defaults to V(5432) for PostgreSQL and V(3306) for MySQL and MariaDB.
    type: int
  login_db:
    description:
      - The database to connect to.
      - Defaults to V(postgres) for PostgreSQL; MySQL and MariaDB connect without selecting a database.
    type: str
  login_user:
    description:
      - The database user the admin connection logs in as.
      - Required with O(login_password) and O(login_iam). With O(login_secret) it overrides the user name stored in the secret.
    type: str
  login_password:
    description:
      - The password of O(login_user).
      - Prefer O(login_iam) or O(login_secret), which keep long-lived passwords out of playbooks.
      - Mutually exclusive with O(login_secret) and O(login_iam).
    type: str
  login_secret:
    description:
      - The ARN or name of an AWS Secrets Manager secret whose value is a JSON object with C(username) and C(password),
        like the master user secret RDS manages.
      - The secret is read at run time with the AWS options; its region is taken from the ARN when O(region) is not set.
      - Mutually exclusive with O(login_password) and O(login_iam).
    type: str
  login_iam:
    description:
      - Log in as O(login_user) with an IAM database auth token instead of a password.
      - The token is signed for O(endpoint) and O(endpoint_port) with the AWS options. It is valid for 15 minutes and never returned or logged.
      - Requires TLS, so O(ssl_mode) cannot be V(disable). On MySQL and MariaDB the token is sent with the C(mysql_clear_password) client plugin.
      - Mutually exclusive with O(login_password) and O(login_secret).
    type: bool
    default: false
  endpoint:
    description:
      - The real host name of the RDS instance, Aurora cluster or RDS Proxy endpoint, for example
        V(mydb.abcdefghijkl.eu-central-1.rds.amazonaws.com).
      - IAM auth tokens are signed for it, and the TLS certificate host name is checked against it, even when
        O(login_host) points the TCP connection elsewhere.
      - Defaults to O(login_host).
    type: str
  endpoint_port:
    description:
      - The port of O(endpoint), which IAM auth tokens are signed for.
      - Set it when O(login_port) is a local tunnel or proxy port that differs from the database's own port.
      - Defaults to O(login_port), then to the engine's default port.
    type: int
  ca_cert:
    description:
      - The path to the CA bundle (PEM) that signs the database server certificate, usually the RDS bundle from
        U(https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem).
      - If not set, the system trust store is used; it works for RDS Proxy but not for RDS instance or cluster certificates,
        and PostgreSQL needs libpq 16 or later for it (psycopg2-binary ships one).
      - Ignored when O(ssl_mode) is V(disable) or V(require).
    type: path
    aliases: [ssl_rootcert, ca_file]
  ssl_mode:
    description:
      - How the connection uses TLS.
      - V(verify-full) encrypts and checks both the certificate chain and that the certificate names O(endpoint).
      - V(verify-ca) checks the certificate chain only; V(require) encrypts without any check; V(disable) does not encrypt.
        These weaker modes are an explicit choice and produce a warning.
      - The libpq modes V(allow) and V(prefer) are not offered, because they fall back to plain text without telling.
    type: str
    choices: [disable, require, verify-ca, verify-full]
    default: verify-full
  connect_timeout:
    description:
      - Seconds to wait for the database connection to open.
    type: int
    default: 10
requirements:
  - psycopg2 (or psycopg2-binary) >= 2.9 for PostgreSQL
  - PyMySQL >= 1.1 for MySQL and MariaDB
"""
