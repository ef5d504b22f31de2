"""Throwaway PostgreSQL 15-18 servers with RDS's role model, as SQL-only test targets.

Why: PostgreSQL 16 changed role membership (ADMIN, INHERIT and SET per grant; a CREATEROLE
creator holds ADMIN on the roles it creates, without INHERIT or SET), and the sandbox's fleet
runs only Debian's 15. These servers let tests check the collection's SQL against every major
RDS runs, on real servers (sandbox/db/postgres_builds.py), set up the way RDS sets one up.

What they reproduce from RDS:
- the role model: rdsadmin is the only superuser (trust over the local socket only); NOLOGIN
  rds_superuser, rds_iam, rds_password, rds_replication; rds_superuser holds pg_signal_backend,
  pg_monitor, pg_read_all_settings; on 16+ it holds ADMIN, without INHERIT or SET, on rds_iam,
  rds_password and rds_replication (on 15 ADMIN on the last two only: CREATEROLE grants rds_iam);
- the master user: LOGIN CREATEROLE CREATEDB, not a superuser, a member of rds_superuser, with
  a random scram password; database `app` owned by it;
- PostgreSQL's own rules for such a master, which is the point: PG16 membership semantics
  (the master's own roles come with an ADMIN-only membership granted by rdsadmin), what
  CREATEROLE allows (15: granting any role; 16+: only roles it administers), who may
  REASSIGN OWNED / DROP OWNED (every major: only roles with the old owner's privileges, so the
  master must first grant itself the role, with INHERIT on 16+);
- TLS only (rds.force_ssl=1): a certificate from the sandbox CA for 127.0.0.1 and a DNS name
  (`endpoint`), plaintext TCP refused.

- from 17, RDS's rule that a role holding rds_iam (through memberships that convey it: WITH
  INHERIT or SET) cannot log in with a password: a login event trigger in every database
  refuses such logins (login_guard below), so a lockout by inheritance shows as a refused
  password login, as on RDS. pg_hba's `+rds_iam` cannot express that rule: from 16 it also
  counts ADMIN-only memberships, and would send the master (a member of rds_superuser, which
  holds rds_iam ADMIN-only) to IAM, which RDS does not do.

What they cannot reproduce:
- IAM logins: the 16-18 builds have no PAM, so nothing checks tokens; IAM logins are tested
  against the fleet's PostgreSQL 15 (sandbox/db/postgres.py), where no ADMIN-only membership of
  rds_iam exists and `+rds_iam` therefore matches exactly the roles that inherit it.
- on 15 and 16 the password-login rule above (no login event triggers before 17).
- anything of RDS's own (parameter groups, rds.* settings, the RDS API): see the fleet.
"""
import os
import secrets
import shutil
import tempfile

from sandbox.db import postgres_builds
from sandbox.network import SandboxError, free_port, require_loopback
from sandbox.db.postgres import PostgresServer
from sandbox.prereqs import server_os_user
from sandbox.db.tls import CertificateAuthority

MAJORS = postgres_builds.MAJORS
MASTER_USER = "postgres"
# Login event triggers exist from 17; each database has its own, and template1 passes it on to new ones.
LOGIN_GUARD_MAJOR = 17
_LOGIN_GUARD = (
    "CREATE FUNCTION public.rdsadmin_iam_login_guard() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user) "
    "AND (pg_catalog.pg_has_role(session_user, 'rds_iam', 'USAGE') OR pg_catalog.pg_has_role(session_user, 'rds_iam', 'SET')) "
    "THEN RAISE EXCEPTION 'password login refused for user \"%\": it holds rds_iam, so it logs in with IAM tokens only', "
    "session_user USING ERRCODE = '28000'; END IF; END $$",
    "CREATE EVENT TRIGGER rdsadmin_iam_login_guard ON login EXECUTE FUNCTION public.rdsadmin_iam_login_guard()",
)


def install_login_guard(server):
    """Refuse password logins of roles that hold rds_iam, in every database (PostgreSQL 17 and later)."""
    for dbname in ("template1", "postgres", "app"):
        conn = server.admin_connection(dbname)
        try:
            with conn.cursor() as cur:
                for statement in _LOGIN_GUARD:
                    cur.execute(statement)
        finally:
            conn.close()


def endpoint_name(major):
    return f"pg{major}.sql.sandbox.invalid"


class SqlServer:
    """A running server of one major and what a client needs to reach it."""

    def __init__(self, server, major, version, endpoint, master_password, ca_cert):
        self._server = server
        self.major = major
        self.version = version  # server_version, e.g. "16.14"
        self.host = server.host
        self.port = server.port
        self.endpoint = endpoint
        self.master_user = MASTER_USER
        self.master_password = master_password
        self.ca_cert = ca_cert
        # Whether a password login of a role that holds rds_iam is refused, as on RDS (see login_guard).
        self.refuses_iam_password_logins = major >= LOGIN_GUARD_MAJOR

    def superuser_connection(self, dbname="postgres"):
        """rdsadmin over the Unix socket, autocommit: for set-up and for reading what RDS would hide."""
        return self._server.admin_connection(dbname)

    def master_connection(self, dbname="postgres"):
        """The master user over TLS, verifying the certificate against `endpoint` (hostaddr says where to connect)."""
        import psycopg2

        conn = psycopg2.connect(host=self.endpoint, hostaddr=self.host, port=self.port, user=self.master_user,
                                password=self.master_password, dbname=dbname, sslmode="verify-full",
                                sslrootcert=self.ca_cert)
        conn.autocommit = True
        return conn

    def db_login_args(self):
        """The collection's DB connection options for the master login (as tests/integration/support/db_user.login_args)."""
        return {"login_host": self.host, "login_port": self.port, "endpoint": self.endpoint,
                "login_user": self.master_user, "login_password": self.master_password, "ca_cert": self.ca_cert}

    def stop(self):
        """Stop the server and delete its directory."""
        try:
            self._server.stop()
        finally:
            shutil.rmtree(self._server.directory, ignore_errors=True)


def start(major, state_dir, authority, ca_cert, host="127.0.0.1"):
    """Initialise, start and bootstrap a server of that major in state_dir/pg<major>.

    state_dir must be enterable by the server account (see make_state_dir); authority issues
    the server certificate, ca_cert is the path of its certificate for clients.
    """
    host = require_loopback(host)
    programs = postgres_builds.programs_for_major(major)
    name = f"pg{major}"
    directory = os.path.join(state_dir, name)
    tls_dir = os.path.join(directory, "tls")
    os.makedirs(tls_dir)
    server = PostgresServer(name, directory, host, free_port(host), server_os_user("postgres"), programs, iam_auth=False)
    try:
        cert, key = authority.issue_server_cert(tls_dir, [endpoint_name(major), "localhost"], ip_addresses=(host,))
        server.initialise(cert, key)  # also hands the directory (TLS files included) to the server account
        server.start()
        password = secrets.token_urlsafe(24)
        server.bootstrap(MASTER_USER, password)
        conn = server.admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_setting('server_version'), current_setting('server_version_num')::int")
                version, version_num = cur.fetchone()
        finally:
            conn.close()
        if version_num // 10000 != major:
            raise SandboxError(f"{programs['postgres']} is PostgreSQL {version}, not {major}")
        if major >= LOGIN_GUARD_MAJOR:
            install_login_guard(server)
        return SqlServer(server, major, version, endpoint_name(major), password, ca_cert)
    except BaseException:
        SqlServer(server, major, None, None, None, None).stop()
        raise


def make_state_dir(prefix="rdsiam-sql-"):
    """A fresh directory under the system temp dir that the server account can enter (0755)."""
    path = tempfile.mkdtemp(prefix=prefix)
    os.chmod(path, 0o755)
    return path


class SqlServerPool:
    """One server per major, started on first get(), all stopped and deleted by close()."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.state_dir = make_state_dir()
        self.ca_cert = os.path.join(self.state_dir, "ca.pem")
        self._authority = CertificateAuthority.create(self.state_dir)
        self._servers = {}

    def get(self, major):
        if major not in self._servers:
            if major not in MAJORS:
                raise SandboxError(f"no PostgreSQL {major} for the sandbox; majors: {', '.join(map(str, MAJORS))}")
            self._servers[major] = start(major, self.state_dir, self._authority, self.ca_cert, self.host)
        return self._servers[major]

    def close(self):
        try:
            for server in self._servers.values():
                server.stop()
        finally:
            self._servers.clear()
            shutil.rmtree(self.state_dir, ignore_errors=True)
