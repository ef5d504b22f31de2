"""What the sandbox's PostgreSQL and MariaDB servers have in common: where they live,
whether they run, and stopping a process for good."""
import os
import signal
import time


class LocalServer:
    """A database server in its own directory, listening on host:port, run as os_user."""

    def __init__(self, name, directory, host, port, os_user, programs):
        self.name = name
        self.directory = directory
        self.host = host
        self.port = port
        self.os_user = os_user
        self.programs = programs
        self.data = os.path.join(directory, "data")
        self.run_dir = os.path.join(directory, "run")
        self.log = os.path.join(directory, "server.log")
        self.pid_file = os.path.join(self.run_dir, "server.pid")

    def pid(self):
        try:
            with open(self.pid_file, encoding="utf-8") as handle:
                return int(handle.readline())
        except (OSError, ValueError):
            return None

    def alive(self):
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # running as another account: it exists
            return True
        return True


def terminate(pid, group=False, timeout=20.0):
    """SIGTERM pid (or its whole process group), then SIGKILL if it outlives timeout."""
    send = os.killpg if group else os.kill
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            send(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _gone(pid):
                return
            time.sleep(0.05)


def _gone(pid):
    """True once pid has exited; a zombie (exited, parent not yet reaped it) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True
