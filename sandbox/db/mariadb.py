"""A throwaway MariaDB server, standing in for RDS MariaDB and RDS MySQL.

RDS keeps rdsadmin@localhost for itself and gives the master user everything but SUPER,
FILE and SHUTDOWN; the sandbox does the same. require_secure_transport stays OFF, the RDS
default, so only accounts created with REQUIRE SSL refuse plaintext. The server loads the
sandbox's AWSAuthenticationPlugin (sandbox/db/mariadb_plugin), so IAM users are created with the
RDS statement and their tokens go to the sandbox verifier.
"""
import os
import secrets
import shutil
import subprocess

from sandbox.db.localserver import LocalServer, terminate
from sandbox.db.mariadb_plugin import PLUGIN_FILE
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
_STOCK_PLUGIN_DIR = "/usr/lib/mysql/plugin"  # Debian's; --plugin-dir replaces it, so its plugins are linked in


class MariaDbServer(LocalServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.socket = os.path.join(self.run_dir, "mysqld.sock")
        self.tmp_dir = os.path.join(self.directory, "tmp")  # not /tmp: parallel servers collide there
        self.plugin_dir = os.path.join(self.directory, "plugin")
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

    def install_iam_plugin(self, plugin_path, verify_url):
        """Give this server a plugin directory of its own: a copy of the AWSAuthenticationPlugin it
        can read as its own account, the stock plugins linked in, and where the verifier listens."""
        os.makedirs(self.plugin_dir, exist_ok=True)
        if os.path.isdir(_STOCK_PLUGIN_DIR):
            for name in os.listdir(_STOCK_PLUGIN_DIR):
                link = os.path.join(self.plugin_dir, name)
                if name != PLUGIN_FILE and not os.path.lexists(link):
                    os.symlink(os.path.join(_STOCK_PLUGIN_DIR, name), link)
        shutil.copy2(plugin_path, os.path.join(self.plugin_dir, PLUGIN_FILE))
        with open(os.path.join(self.plugin_dir, "verify_url"), "w", encoding="utf-8") as handle:
            handle.write(verify_url + "\n")
        chown_tree(self.plugin_dir, self.os_user)

    def _plugin_options(self):
        try:
            with open(os.path.join(self.plugin_dir, "verify_url"), encoding="utf-8") as handle:
                verify_url = handle.read().strip()
        except FileNotFoundError:
            return []
        return [f"--plugin-dir={self.plugin_dir}", f"--plugin-load-add={PLUGIN_FILE}", "--awsauthenticationplugin=FORCE",
                f"--awsauthenticationplugin-verify-url={verify_url}", f"--awsauthenticationplugin-target={self.name}"]

    def server_argv(self):
        """The mariadbd command line; options go here, not in a my.cnf install-db also reads."""
        argv = [self.programs["mariadbd"], "--no-defaults", f"--datadir={self.data}", f"--tmpdir={self.tmp_dir}", f"--port={self.port}",
                f"--bind-address={self.host}", f"--socket={self.socket}", f"--pid-file={self.pid_file}",
                f"--log-error={self.log}", f"--ssl-ca={self.ca_path}", f"--ssl-cert={self.cert_path}",
                f"--ssl-key={self.key_path}", *_SERVER_OPTIONS, *self._plugin_options()]
        if os.geteuid() == 0:
            argv.append(f"--user={self.os_user}")
        return argv

    def start(self):
        with open(os.devnull, "wb") as devnull:
            process = subprocess.Popen(self.server_argv(), stdin=devnull, stdout=devnull, stderr=devnull,
                                       start_new_session=True)
        try:
            wait_for_port(self.host, self.port, f"MariaDB {self.name}", alive=lambda: process.poll() is None)
        except SandboxError as exc:
            raise SandboxError(f"{exc}:\n{self._log_tail()}") from None

    def _log_tail(self, lines=8):
        """The errors at the end of the log, where mariadbd says why it stopped (a plugin it could not load, say)."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as handle:
                logged = handle.readlines()
        except OSError:
            return f"(no log at {self.log})"
        errors = [line for line in logged if "[ERROR]" in line]
        return "".join((errors or logged)[-lines:]).rstrip()

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
