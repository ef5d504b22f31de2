"""PAM for the sandbox's PostgreSQL IAM logins, without touching /etc/pam.d.

pg_hba sends members of rds_iam to PAM service SERVICE. libpam-wrapper, preloaded into the
postmaster, makes libpam read that service from the server's own directory. The service has
one module, pam_rdsiam_verify.so (sandbox/db/verify_client), which hands the password (the IAM
token) and the login name to the sandbox verifier and appends what the verifier cannot log
(it was unreachable) to ERROR_LOG in the server's directory, never the token. Not pam_exec:
it cuts passwords at 512 bytes, shorter than a token signed with temporary credentials.

libpam-wrapper copies the service directory to /tmp/pam.X in every process that loads it and
removes the copy at exit; processes that exec or are killed leave theirs behind, so stopping
a server removes the copies that name its directory, and `down` those of sandboxes whose runtime
directory (the `<dir>` of `<dir>/servers/<target>`, sandbox/runtime_dir.py) no longer exists
(copies of running sandboxes are left alone). It picks X with a check, then a mkdir, so two
backends setting up at once can share a copy and read each other's service: pam_start_lock.so,
preloaded first, runs those set-ups one at a time under START_LOCK.
"""
import glob
import os
import shutil

from sandbox.network import SandboxError

SERVICE = "rdsiam-iam"
ERROR_LOG = "verify_errors.log"
_RUNTIME_COPIES = "/tmp/pam.?"  # fixed in libpam-wrapper
# One lock for every sandbox on the machine, as /tmp/pam.X is one namespace for all of them.
START_LOCK = "/tmp/rdsiam-pam-start.lock"
START_LOCK_LIBRARY = "pam_start_lock.so"


def service_dir(server_directory):
    return os.path.join(server_directory, "pam")


def write_service(server_directory, module_path, verify_url, target):
    """Write the PAM service file for one server; returns its path."""
    log_path = os.path.join(server_directory, ERROR_LOG)
    words = [module_path, verify_url, target, log_path]
    unsafe = [word for word in words if not word or any(char.isspace() or char in "[]" for char in word)]
    if unsafe:
        raise SandboxError(f"PAM arguments cannot contain spaces or brackets: {unsafe}; use a state directory without them")
    lines = [
        f"auth required {module_path} url={verify_url} target={target} error_log={log_path}",
        f"account required {module_path}",
    ]
    directory = service_dir(server_directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, SERVICE)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def wrapper_env(server_directory, programs):
    """Variables that make a process use the server's own PAM services ({} if it has none)."""
    directory = service_dir(server_directory)
    if not os.path.exists(os.path.join(directory, SERVICE)):
        return {}
    preload = [programs["libpam_wrapper.so"]]
    start_lock = os.path.join(server_directory, "lib", START_LOCK_LIBRARY)
    env = {"PAM_WRAPPER": "1", "PAM_WRAPPER_SERVICE_DIR": directory}
    if os.path.exists(start_lock):
        preload.insert(0, start_lock)
        env["RDSIAM_PAM_START_LOCK"] = _start_lock_file()
    env["LD_PRELOAD"] = " ".join(preload)
    return env


def _start_lock_file():
    """START_LOCK, created readable by every server account (a read-only descriptor can hold an flock)."""
    try:
        descriptor = os.open(START_LOCK, os.O_CREAT | os.O_RDONLY, 0o644)
    except OSError as exc:
        raise SandboxError(f"cannot create {START_LOCK}: {exc}") from None
    try:
        if os.fstat(descriptor).st_uid == os.geteuid():
            os.fchmod(descriptor, 0o644)
    finally:
        os.close(descriptor)
    return START_LOCK


def _runtime_copies():
    """(path, service file text) of every libpam-wrapper copy of a sandbox PAM service."""
    for path in glob.glob(_RUNTIME_COPIES):
        try:
            with open(os.path.join(path, SERVICE), encoding="utf-8") as handle:
                yield path, handle.read()
        except OSError:
            continue


def remove_runtime_copies(server_directory):
    """Delete libpam-wrapper's /tmp/pam.X copies of this server's services; returns how many."""
    marker = os.path.join(server_directory, "")
    removed = 0
    for path, text in _runtime_copies():
        if marker in text:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def remove_orphaned_copies():
    """Delete copies made for servers whose sandbox is gone (it crashed, or was taken down by older code)."""
    removed = 0
    for path, text in _runtime_copies():
        runtime_dirs = {word.split("=", 1)[-1].split("/servers/", 1)[0] for word in text.split() if "/servers/" in word}
        if runtime_dirs and not all(os.path.isdir(runtime_dir) for runtime_dir in runtime_dirs):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
