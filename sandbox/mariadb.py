"""A throwaway MariaDB server, standing in for RDS MariaDB and RDS MySQL.

RDS keeps rdsadmin@localhost for itself and gives the master user everything but SUPER,
FILE and SHUTDOWN; the sandbox does the same. require_secure_transport stays OFF, the RDS
default, so only accounts created with REQUIRE SSL refuse plaintext.
"""
import os
import secrets
import subprocess

from sandbox.localserver import LocalServer, terminate
from sandbox.network import SandboxError, wait_for_port
from sandbox.prereqs import chown_tree

_SERVER_OPTIONS = (
    "--skip-name-resolve",
    "--skip-log-bin",
    "--performance-schema=OFF",
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=8M",
    "--innodb-flush-log-at-trx-commit=0",  # throwaway data: speed over durability
    "--require-secure-transport=OFF",
    "--tls-version=TLSv1.2,TLSv1.3",
)


class MariaDbServer(LocalServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.socket = os.path.join(self.run_dir, "mysqld.sock")
        self.tmp_dir = os.path.join(self.directory, "tmp")  # not /tmp: parallel servers collide there
        self.cert_path = self.key_path = self.ca_path = None
        self.admin_password = None

    def initialise(self, cert_path, key_path, ca_path):
        """Create the data directory; the TLS files are read at start, so they may come later."""
        self.cert_path, self.key_path, self.ca_path = cert_path, key_path, ca_path
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(self.tmp_dir, exist_ok=True)
        chown_tree(self.directory, self.os_user)
        argv = [self.programs["mariadb-install-db"], "--no-defaults", f"--datadir={self.data}", f"--tmpdir={self.tmp_dir}",
                "--auth-root-authentication-method=normal", "--skip-test-db"]
        if os.geteuid() == 0:
            argv.append(f"--user={self.os_user}")
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SandboxError(f"{self.name}: mariadb-install-db failed: {(result.stderr or result.stdout).strip()[-2000:]}")

    def server_argv(self):
        """The mariadbd command line; options go here, not in a my.cnf install-db also reads."""
        argv = [self.programs["mariadbd"], "--no-defaults", f"--datadir={self.data}", f"--tmpdir={self.tmp_dir}", f"--port={self.port}",
                f"--bind-address={self.host}", f"--socket={self.socket}", f"--pid-file={self.pid_file}",
                f"--log-error={self.log}", f"--ssl-ca={self.ca_path}", f"--ssl-cert={self.cert_path}",
                f"--ssl-key={self.key_path}", *_SERVER_OPTIONS]
        if os.geteuid() == 0:
            argv.append(f"--user={self.os_user}")
        return argv

    def start(self):
        with open(os.devnull, "wb") as devnull:
            process = subprocess.Popen(self.server_argv(), stdin=devnull, stdout=devnull, stderr=devnull,
                                       start_new_session=True)
        wait_for_port(self.host, self.port, f"MariaDB {self.name}", alive=lambda: process.poll() is None)

    def admin_connection(self):
        """rdsadmin@localhost over the local socket, for the sandbox's own set-up."""
        import pymysql

        user, password = ("rdsadmin", self.admin_password) if self.admin_password else ("root", "")
        return pymysql.connect(unix_socket=self.socket, user=user, password=password, autocommit=True)

    def bootstrap(self, master_user, master_password):
        admin_password = secrets.token_urlsafe(24)
        conn = self.admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute("RENAME USER 'root'@'localhost' TO 'rdsadmin'@'localhost'")
                cur.execute("ALTER USER 'rdsadmin'@'localhost' IDENTIFIED BY %s", (admin_password,))
                cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (master_user, master_password))
                cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (master_user,))
                cur.execute("REVOKE SUPER, FILE, SHUTDOWN ON *.* FROM %s@'%%'", (master_user,))
                cur.execute("CREATE DATABASE app")
        finally:
            conn.close()
        self.admin_password = admin_password

    def stop(self):
        pid = self.pid()
        if pid is None or not self.alive():
            return
        terminate(pid)
