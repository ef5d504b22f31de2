"""What a sandbox could leave behind after `down`: processes, and files in the temp directories.

Shared by the tests that bring a private sandbox up and down and check it left nothing.
"""
import os
import pwd
import tempfile

from sandbox.db import pam


def private_tmpdir(monkeypatch):
    """A fresh TMPDIR for the rest of the test, so other programs writing /tmp meanwhile cannot fail it.

    The servers' accounts pass through it to the runtime directory and write there too, hence 1777.
    """
    path = tempfile.mkdtemp(prefix="rdsiam-tmp-")
    os.chmod(path, 0o1777)
    monkeypatch.setenv("TMPDIR", path)
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile caches the directory it chose first
    return path


def processes_mentioning(text):
    """Pids of the processes whose command line contains text."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if text.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def _another_sandboxs_pam_copy(name, runtime_dir):
    """libpam-wrapper's /tmp/pam.X copy made by some other sandbox running on this machine right now."""
    if not (name.startswith("pam.") and len(name) == 5):
        return False
    try:
        with open(os.path.join("/tmp", name, pam.SERVICE), encoding="utf-8") as handle:
            return runtime_dir + "/" not in handle.read()
    except FileNotFoundError:
        return not os.path.exists(os.path.join("/tmp", name))  # gone already: its owner cleaned up


def _server_uids():
    """The accounts the servers run as: postgres and mysql as root, else this user."""
    if os.geteuid() != 0:
        return {os.geteuid()}
    return {pwd.getpwnam(name).pw_uid for name in ("postgres", "mysql") if _account_exists(name)}


def _account_exists(name):
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _could_be_a_sandboxs(name):
    """A /tmp entry a sandbox could leave despite TMPDIR: libpam-wrapper's pam.X copies, the servers' files."""
    if name.startswith("pam."):
        return True
    try:
        return os.lstat(os.path.join("/tmp", name)).st_uid in _server_uids()
    except FileNotFoundError:
        return False


def left_in_tmp(tmp_before, runtime_dir):
    """New /tmp entries since tmp_before that this sandbox (servers under runtime_dir) could have left."""
    leftovers = sorted(set(os.listdir("/tmp")) - tmp_before)
    return [name for name in leftovers if _could_be_a_sandboxs(name) and not _another_sandboxs_pam_copy(name, runtime_dir)]
