"""Where the sandbox's database servers keep their files: a private directory under the system temp dir.

As root the servers run as the `postgres` and `mysql` accounts, which must reach their data
directories, sockets, configuration, TLS files and logs. The state directory is the user's
choice (`sandbox/.state` in a clone, which may sit in root's 0700 home) and holds what is meant
for the user (env file, inventory, vars, the CA, the state file with passwords), so it stays
closed to other accounts; what the servers open lives here instead:

    <tempdir>/rdsiam-sbx-run-XXXXXXXX/            0711 when a server runs as another account, else 0700
        servers/                                   same mode
            <identifier>/                          0700, owned by the server's account

Other accounts may pass through the two upper levels, never list them; each server's own
directory is its account's alone. `up` records the path in the state and `down` removes it.
"""
import os
import pwd
import shutil
import subprocess
import tempfile

from sandbox.network import SandboxError
from sandbox.prereqs import chown_tree

PREFIX = "rdsiam-sbx-run-"
# The longest Unix socket path the servers make (PostgreSQL's, on the highest port) must stay
# under the kernel's 107 bytes.
_SOCKET_NAME = os.path.join("run", ".s.PGSQL.65535")
_MAX_SOCKET_PATH = 100


def create(os_users):
    """A fresh directory for servers running as os_users (account names); returns its path."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    # Execute without read: the server accounts can pass through on the way to their own
    # directories but cannot see what else is there.
    mode = 0o711 if set(os_users) - {me} else 0o700
    path = tempfile.mkdtemp(prefix=PREFIX)
    try:
        os.chmod(path, mode)
        os.mkdir(os.path.join(path, "servers"))
        os.chmod(os.path.join(path, "servers"), mode)  # mkdir's mode is cut by the umask
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path


def server_directory(runtime_dir, identifier, os_user):
    """Make the (empty) directory of one server, 0700 and owned by the account it runs as, and return it."""
    directory = os.path.join(runtime_dir, "servers", identifier)
    if len(os.path.join(directory, _SOCKET_NAME)) > _MAX_SOCKET_PATH:
        raise SandboxError(f"the temporary directory {os.path.dirname(runtime_dir)} is too deep for a Unix socket path; "
                           "set TMPDIR to a shorter directory")
    os.mkdir(directory, 0o700)
    chown_tree(directory, os_user)
    return directory


def check_enterable(path, user):
    """As root the servers run as other accounts, which must be able to reach their directories."""
    if os.geteuid() != 0:
        return
    probe = subprocess.run(["runuser", "-u", user, "--", "test", "-x", path], capture_output=True, check=False)
    if probe.returncode != 0:
        raise SandboxError(f"the '{user}' account cannot enter {path}; the servers' files live under the temporary "
                           f"directory ({tempfile.gettempdir()}), which every account must be able to traverse: set TMPDIR "
                           "to one that is (for example /tmp)")


def remove(path):
    """Delete a runtime directory made by create(); returns whether there was one.

    The path comes from a state file, so only a directory named like ours is ever deleted.
    """
    if not path or not os.path.basename(os.path.normpath(path)).startswith(PREFIX) or not os.path.isdir(path):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True
