"""Find what the sandbox needs on this machine, installing Debian's packages when it is missing:
the database servers, libpam-wrapper for PostgreSQL IAM logins, and a C compiler with the libc
and PAM headers for the sandbox's small C parts (its PAM module and MariaDB's AWSAuthenticationPlugin)."""
import glob
import os
import pwd
import shutil
import subprocess

from sandbox.network import SandboxError

# Debian package that provides each file the sandbox uses; names ending in .so are libraries,
# in .h C headers, everything else a program.
_PACKAGES = {
    "initdb": "postgresql-15",
    "pg_ctl": "postgresql-15",
    "postgres": "postgresql-15",
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "libpam_wrapper.so": "libpam-wrapper",
    "gcc": "gcc",
    "stdio.h": "libc6-dev",
    "security/pam_modules.h": "libpam0g-dev",
}
_SEARCH = ["/usr/lib/postgresql/15/bin", "/usr/sbin", "/usr/bin", "/usr/local/bin"]
_apt_updated = False


def _library_dirs():
    dirs = []
    for base in ("/usr/lib", "/lib"):
        arch_dirs = sorted(glob.glob(os.path.join(base, "*-linux-gnu")))
        dirs += [d for arch in arch_dirs for d in (arch, os.path.join(arch, "security"))] + [base, os.path.join(base, "security")]
    return dirs


def _find(name):
    if name.endswith(".so"):
        return next((os.path.join(d, name) for d in _library_dirs() if os.path.exists(os.path.join(d, name))), None)
    if name.endswith(".h"):
        return os.path.join("/usr/include", name) if os.path.exists(os.path.join("/usr/include", name)) else None
    for directory in _SEARCH + sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(name)


def apt_update_once():
    """Refresh Debian's package lists, once per process; returns True if it ran now."""
    global _apt_updated
    if _apt_updated:
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    _apt_updated = True
    return True


def _apt_install(packages):
    if os.geteuid() != 0:
        raise SandboxError(
            "the sandbox needs " + ", ".join(packages) + " and cannot install them without root: run "
            f"'sudo apt-get update && sudo apt-get install -y {' '.join(packages)}' and retry"
        )
    print(f"sandbox: installing {' '.join(packages)} from Debian's archive (one time)", flush=True)
    apt_update_once()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def find_programs(programs=tuple(_PACKAGES)):
    """Map each program (library, header) name to its path, installing the packages of any that are missing."""
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
