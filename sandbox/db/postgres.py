"""A throwaway PostgreSQL server set up the way RDS sets one up for its master user.

RDS keeps the real superuser (rdsadmin) to itself; the master user is an ordinary role with
CREATEROLE/CREATEDB and membership in rds_superuser. The sandbox does the same, so code that
works here does not rely on superuser powers it will not have on RDS.
"""
import os
import random
import shutil
import subprocess
import time

from sandbox.db import pam, password_commands
from sandbox.db.localserver import LocalServer
from sandbox.network import SandboxError, wait_for_port
from sandbox.prereqs import chown_tree, run_as

_BOOTSTRAP_ROLES = (
    "CREATE ROLE rds_superuser NOLOGIN",
    "CREATE ROLE rds_iam NOLOGIN",
    "CREATE ROLE rds_password NOLOGIN",
    "CREATE ROLE rds_replication NOLOGIN",
    "GRANT pg_signal_backend, pg_monitor, pg_read_all_settings TO rds_superuser",
    # Not rds_iam: on PostgreSQL 15 that would make the master an indirect member, and pg_hba
    # would send it to PAM. CREATEROLE already lets the master grant rds_iam, as on RDS.
    "GRANT rds_password, rds_replication TO rds_superuser WITH ADMIN OPTION",
)
# From PostgreSQL 16 CREATEROLE no longer lets a role grant roles it does not administer, and a
# grant carries ADMIN, INHERIT and SET separately: RDS gives rds_superuser ADMIN only on its
# rds_* roles, so the master may grant them without holding their privileges.
_ADMIN_GRANT_16 = "GRANT rds_iam, rds_password, rds_replication TO rds_superuser WITH ADMIN OPTION, INHERIT FALSE, SET FALSE"


def bootstrap_roles(major):
    """The statements that make RDS's roles on a server of that major (as rdsadmin)."""
    if major < 16:
        return _BOOTSTRAP_ROLES
    return _BOOTSTRAP_ROLES[:-1] + (_ADMIN_GRANT_16,)


_SERVER_SETTINGS = {
    "shared_buffers": "16MB",
    "max_connections": "100",
    "fsync": "off",  # throwaway data: speed over durability
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "password_encryption": "scram-sha-256",
    "log_connections": "on",
    "ssl": "on",
    "ssl_min_protocol_version": "TLSv1.2",
}


def pg_hba(force_ssl, iam_auth=True):
    """pg_hba.conf lines: rdsadmin over the local socket only, everyone else over TCP.

    Members of rds_iam log in only over TLS and only with an IAM token, checked through PAM
    (sandbox/db/pam.py), whatever force_ssl says; as on RDS, they have no password login.
    With force_ssl (rds.force_ssl=1, the RDS default from PostgreSQL 15) any other plaintext
    TCP login is refused too; other roles log in with scram passwords. Without iam_auth (a
    server built without PAM) there is no rds_iam line at all.
    """
    lines = ["local all rdsadmin trust"]
    if iam_auth:
        lines += [f"hostssl all +rds_iam 127.0.0.1/32 pam pamservice={pam.SERVICE}",
                  "hostnossl all +rds_iam 0.0.0.0/0 reject"]
    lines.append("hostssl all all 127.0.0.1/32 scram-sha-256")
    lines.append("hostnossl all all 0.0.0.0/0 reject" if force_ssl else "hostnossl all all 127.0.0.1/32 scram-sha-256")
    return "\n".join(lines) + "\n"


class PostgresServer(LocalServer):
    def __init__(self, *args, iam_auth=True, **kwargs):
        """iam_auth=False: a server without PAM (sandbox/db/sql_servers.py), no IAM logins, no libpam-wrapper."""
        super().__init__(*args, **kwargs)
        self.pid_file = os.path.join(self.data, "postmaster.pid")
        self.iam_auth = iam_auth

    def _run(self, argv, env=None):
        """argv as the server account; env goes through env(1) so runuser's own PAM never sees it."""
        prefix = ["env", *(f"{key}={value}" for key, value in sorted(env.items()))] if env else []
        result = subprocess.run(run_as(self.os_user, prefix + argv), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SandboxError(f"{self.name}: {os.path.basename(argv[0])} failed: {(result.stderr or result.stdout).strip()}")

    def initialise(self, cert_path, key_path, force_ssl=True):
        """Create the data directory; the TLS files are read at start, so they may come later."""
        os.makedirs(self.run_dir, exist_ok=True)
        chown_tree(self.directory, self.os_user)
        self._run([self.programs["initdb"], "-D", self.data, "-U", "rdsadmin", "--auth=trust", "-E", "UTF8",
                   "--locale=C", "--no-sync"])
        settings = dict(_SERVER_SETTINGS, listen_addresses=f"'{self.host}'", port=str(self.port),
                        unix_socket_directories=f"'{self.run_dir}'", ssl_cert_file=f"'{cert_path}'",
                        ssl_key_file=f"'{key_path}'")
        password_commands.install(self.directory, self.programs)
        with open(os.path.join(self.data, "postgresql.conf"), "a", encoding="utf-8") as conf:
            conf.write("\n# rdsiam.auth sandbox\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
            conf.writelines(line + "\n" for line in password_commands.server_settings(self.directory, self.data))
        self.write_hba(force_ssl)
        chown_tree(self.directory, self.os_user)

    def write_hba(self, force_ssl):
        with open(os.path.join(self.data, "pg_hba.conf"), "w", encoding="utf-8") as hba:
            hba.write(pg_hba(force_ssl, self.iam_auth))

    def install_iam_auth(self, pam_module_path, verify_url, start_lock_path=None):
        """Let rds_iam members in through PAM and the verifier (private copies of the module, and of the preload that
        serialises libpam-wrapper's set-up, that the server account can read)."""
        lib_dir = os.path.join(self.directory, "lib")
        os.makedirs(lib_dir, exist_ok=True)
        module = shutil.copy2(pam_module_path, os.path.join(lib_dir, os.path.basename(pam_module_path)))
        if start_lock_path:
            shutil.copy2(start_lock_path, os.path.join(lib_dir, pam.START_LOCK_LIBRARY))
        pam.write_service(self.directory, module, verify_url, self.name)
        chown_tree(self.directory, self.os_user)

    def start(self, attempts=3):
        for attempt in range(1, attempts + 1):
            try:
                self._run([self.programs["pg_ctl"], "-D", self.data, "-l", self.log, "-w", "-t", "30", "start"],
                          env=pam.wrapper_env(self.directory, self.programs) if self.iam_auth else None)
                break
            except SandboxError as exc:
                # libpam-wrapper picks its /tmp/pam.X directory with a check, then a mkdir: two servers started in the
                # same instant can pick the same one, and one of them fails at once. A moment later there is another.
                if "pwrap_init" not in str(exc) or attempt == attempts:
                    raise
                time.sleep(0.2 + random.random() / 2)
        wait_for_port(self.host, self.port, f"PostgreSQL {self.name}", alive=self.alive)

    def set_restrict_password_commands(self, enabled):
        """Start again with rds.restrict_password_commands on or off, as an RDS reboot does; returns whether it changed.

        Unchanged, the running server is left alone. On a server without the library, turning it on raises
        password_commands.Unavailable rather than leave a server that would accept every password change.
        """
        if enabled == password_commands.current_setting(self.data):
            return False
        if enabled:
            password_commands.check_available(self.directory, self.name)
        password_commands.write_setting(self.data, enabled)  # the file the server account was given at initialise()
        self.restart()
        return True

    def restart(self):
        """Stop (ending sessions cleanly) and start again; a static setting takes effect only so."""
        self._run([self.programs["pg_ctl"], "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop"])
        if self.iam_auth:
            pam.remove_runtime_copies(self.directory)
        self.start()

    def reload(self):
        """Make the running server re-read pg_hba.conf and postgresql.conf (takes effect a moment later)."""
        self._run([self.programs["pg_ctl"], "-D", self.data, "reload"])

    def admin_connection(self, dbname="postgres"):
        """A superuser connection over the local socket, for the sandbox's own set-up."""
        import psycopg2

        conn = psycopg2.connect(host=self.run_dir, port=self.port, user="rdsadmin", dbname=dbname)
        conn.autocommit = True
        return conn

    def bootstrap(self, master_user, master_password):
        from psycopg2 import sql

        conn = self.admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version_num")
                for statement in bootstrap_roles(int(cur.fetchone()[0]) // 10000):
                    cur.execute(statement)
                master = sql.Identifier(master_user)
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD %s").format(master), (master_password,))
                cur.execute(sql.SQL("GRANT rds_superuser TO {}").format(master))
                cur.execute(sql.SQL("CREATE DATABASE app OWNER {}").format(master))
        finally:
            conn.close()

    def stop(self):
        if self.alive():
            subprocess.run(run_as(self.os_user, [self.programs["pg_ctl"], "-D", self.data, "-m", "immediate", "-w", "stop"]),
                           capture_output=True, check=False)
        if self.iam_auth:
            pam.remove_runtime_copies(self.directory)
