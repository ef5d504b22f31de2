"""Compile the sandbox's small C parts once and keep them in the user's cache directory.

A build is keyed by a digest of its sources, compiler flags and whatever else it depends on
(the MariaDB server version for the plugin), so an unchanged part is never rebuilt and a
changed one never reused. A file lock makes parallel sandboxes (threads or processes) build
each part once; results appear atomically.
"""
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile

from sandbox.network import SandboxError

SANDBOX_DIR = os.path.dirname(os.path.abspath(__file__))
VERIFY_CLIENT_DIR = os.path.join(SANDBOX_DIR, "verify_client")
VERIFY_HTTP_SOURCE = os.path.join(VERIFY_CLIENT_DIR, "verify_http.c")
VERIFY_HTTP_HEADER = os.path.join(VERIFY_CLIENT_DIR, "verify_http.h")
PAM_MODULE_FILE = "pam_rdsiam_verify.so"
PAM_START_LOCK_FILE = "pam_start_lock.so"
_CFLAGS = ("-O2", "-Wall", "-Wextra", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-I", VERIFY_CLIENT_DIR)


def cache_dir():
    """$RDSIAM_SANDBOX_CACHE, else $XDG_CACHE_HOME/rdsiam-sandbox, else ~/.cache/rdsiam-sandbox."""
    explicit = os.environ.get("RDSIAM_SANDBOX_CACHE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rdsiam-sandbox")


@contextlib.contextmanager
def cache_lock(name):
    """An exclusive lock on one cache entry, across threads and processes."""
    os.makedirs(cache_dir(), exist_ok=True)
    with open(os.path.join(cache_dir(), f".{name}.lock"), "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def digest(files, *extra):
    """Short hex digest of the files' contents and any extra strings."""
    hasher = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            hasher.update(os.path.basename(path).encode() + b"\0" + handle.read() + b"\0")
    for value in extra:
        hasher.update(str(value).encode() + b"\0")
    return hasher.hexdigest()[:16]


def build_key(prefix, sources, flags=(), libraries=()):
    """The cache key of a build: prefix (what else it depends on) and a digest of everything it is made from."""
    return prefix + digest((*sources, VERIFY_HTTP_HEADER), *_CFLAGS, *flags, *libraries)


def compile_cached(kind, key, output_name, gcc, sources, flags=(), libraries=(), include_dirs=()):
    """Build output_name from C sources into cache_dir()/kind/key unless it is there already.

    key comes from build_key(); include_dirs (where headers were unpacked) are not part of it.
    Returns (path, built) where built says whether the compiler ran this time.
    """
    final_dir = os.path.join(cache_dir(), kind, key)
    output = os.path.join(final_dir, output_name)
    if os.path.exists(output):
        return output, False
    with cache_lock(f"{kind}-{key}"):
        if os.path.exists(output):  # another sandbox built it while we waited
            return output, False
        shutil.rmtree(final_dir, ignore_errors=True)  # an interrupted copy, if any
        os.makedirs(os.path.dirname(final_dir), exist_ok=True)
        work = tempfile.mkdtemp(prefix=".build-", dir=os.path.dirname(final_dir))
        try:
            includes = [arg for directory in include_dirs for arg in ("-I", directory)]
            argv = [gcc, *_CFLAGS, *includes, *flags, "-o", os.path.join(work, output_name), *sources, *libraries]
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise SandboxError(f"building {output_name} failed ({' '.join(argv)}):\n{(result.stderr or result.stdout).strip()[-3000:]}")
            os.chmod(work, 0o755)
            os.replace(work, final_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return output, True


def build_pam_module(gcc):
    """The PAM module PostgreSQL uses for IAM logins; returns (path, built)."""
    sources = (os.path.join(VERIFY_CLIENT_DIR, "pam_rdsiam_verify.c"), VERIFY_HTTP_SOURCE)
    flags, libraries = ("-shared", "-fPIC"), ("-lpam",)
    key = build_key("", sources, flags, libraries)
    return compile_cached("pam-module", key, PAM_MODULE_FILE, gcc, sources, flags, libraries)


def build_pam_start_lock(gcc):
    """The preload that makes libpam-wrapper's per-process set-up run one process at a time; returns (path, built)."""
    sources = (os.path.join(VERIFY_CLIENT_DIR, "pam_start_lock.c"),)
    flags, libraries = ("-shared", "-fPIC"), ("-ldl",)
    key = build_key("", sources, flags, libraries)
    return compile_cached("pam-start-lock", key, PAM_START_LOCK_FILE, gcc, sources, flags, libraries)
