"""Find the database server binaries, installing Debian's packages when they are missing."""
import glob
import os
import pwd
import shutil
import subprocess

from sandbox.network import SandboxError

# Debian package that provides each program the sandbox runs.
_PACKAGES = {
    "initdb": "postgresql-15",
    "pg_ctl": "postgresql-15",
    "postgres": "postgresql-15",
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
}
_SEARCH = ["/usr/lib/postgresql/15/bin", "/usr/sbin", "/usr/bin", "/usr/local/bin"]
_apt_updated = False


def _find(program):
    for directory in _SEARCH + sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        candidate = os.path.join(directory, program)
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(program)


def _apt_install(packages):
    global _apt_updated
    if os.geteuid() != 0:
        raise SandboxError(
            "the sandbox needs " + ", ".join(packages) + " and cannot install them without root: run "
            f"'sudo apt-get update && sudo apt-get install -y {' '.join(packages)}' and retry"
        )
    print(f"sandbox: installing {' '.join(packages)} from Debian's archive (one time)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        _apt_updated = True
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def find_programs(programs=tuple(_PACKAGES)):
    """Map each program name to its path, installing the packages of any that are missing."""
    missing = sorted({_PACKAGES[name] for name in programs if _find(name) is None})
    if missing:
        _apt_install(missing)
    found = {name: _find(name) for name in programs}
    still_missing = [name for name, path in found.items() if path is None]
    if still_missing:
        raise SandboxError(f"after installing packages these programs are still missing: {', '.join(still_missing)}")
    return found


def server_os_user(preferred):
    """The OS account a database server runs as: ourselves, or a service account when we are root.

    PostgreSQL refuses to run as root; MariaDB allows it only when told, so both get the
    account their Debian package created.
    """
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(preferred)
    except KeyError:
        raise SandboxError(f"running as root, the sandbox needs the '{preferred}' account that Debian's package creates") from None
    return preferred


def run_as(user, argv):
    """argv prefixed so that it runs as user (no prefix when that is us already)."""
    if pwd.getpwuid(os.geteuid()).pw_name == user:
        return list(argv)
    return ["runuser", "-u", user, "--", *argv]


def chown_tree(path, user):
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
