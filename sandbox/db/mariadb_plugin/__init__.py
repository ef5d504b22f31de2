"""Build the sandbox's AWSAuthenticationPlugin for the MariaDB server installed here.

A server plugin must be compiled against that server's own headers, which Debian ships only
in libmariadbd-dev (95 MB, mostly an embedded server we do not need). So the package of the
exact installed version is downloaded with `apt-get download` and only its
usr/include/mariadb/server tree is unpacked, without installing anything; headers and plugin
are cached (native_build.cache_dir()) keyed by server version and source digest.
"""
import os
import re
import shutil
import subprocess
import tarfile
import tempfile

from sandbox.db import native_build
from sandbox.network import SandboxError
from sandbox.prereqs import apt_update_once

PLUGIN_NAME = "AWSAuthenticationPlugin"
PLUGIN_FILE = "aws_authentication_plugin.so"
HEADERS_PACKAGE = "libmariadbd-dev"
_HERE = os.path.dirname(os.path.abspath(__file__))
_SOURCES = (os.path.join(_HERE, "aws_authentication_plugin.c"), native_build.VERIFY_HTTP_SOURCE)
_FLAGS = ("-shared", "-fPIC", "-DMYSQL_DYNAMIC_PLUGIN")
_HEADER_PREFIX = "./usr/include/mariadb/server/"


def server_package_version(mariadbd):
    """The Debian version of the package that installed mariadbd, e.g. 1:10.11.19-0+deb12u1."""
    owner = subprocess.run(["dpkg", "-S", os.path.realpath(mariadbd)], capture_output=True, text=True, check=False)
    if owner.returncode != 0:
        raise SandboxError(f"{mariadbd} does not come from a Debian package, so the matching {HEADERS_PACKAGE} cannot be "
                           "found; install mariadb-server from Debian's archive")
    package = owner.stdout.split(":", 1)[0].strip()
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False)
    if version.returncode != 0 or not version.stdout.strip():
        raise SandboxError(f"cannot read the installed version of {package}: {version.stderr.strip()}")
    return version.stdout.strip()


def _download(spec, directory):
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


def _unpack_headers(deb, destination):
    """Extract usr/include/mariadb/server from the .deb into destination/server."""
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as dpkg:
        with tarfile.open(fileobj=dpkg.stdout, mode="r|") as archive:
            for member in archive:
                if member.name.startswith(_HEADER_PREFIX):
                    member.name = "server/" + member.name[len(_HEADER_PREFIX):]
                    archive.extract(member, destination, filter="data")
        error = dpkg.stderr.read().decode(errors="replace").strip()
    if dpkg.returncode != 0 or not os.path.exists(os.path.join(destination, "server", "mysql", "plugin_auth.h")):
        raise SandboxError(f"unpacking the MariaDB server headers from {deb} failed: {error or 'mysql/plugin_auth.h missing'}")


def server_headers(version):
    """Path of the include directory for this server version, fetching it the first time."""
    headers = os.path.join(native_build.cache_dir(), "mariadb-headers", _safe(version))
    include = os.path.join(headers, "server")
    if os.path.exists(os.path.join(include, "mysql", "plugin_auth.h")):
        return include
    downloads = os.path.join(native_build.cache_dir(), "downloads")
    with native_build.cache_lock(f"headers-{_safe(version)}"):
        if os.path.exists(os.path.join(include, "mysql", "plugin_auth.h")):
            return include
        os.makedirs(downloads, exist_ok=True)
        spec = f"{HEADERS_PACKAGE}={version}"
        debs = _debs(downloads, version)
        if not debs:
            print(f"sandbox: fetching MariaDB server headers ({spec}, 95 MB download, one time)", flush=True)
            result = _download(spec, downloads)
            debs = _debs(downloads, version)
            if result.returncode != 0 or not debs:
                raise SandboxError(
                    f"cannot download {spec} from Debian's archive, needed to build the sandbox's {PLUGIN_NAME}: "
                    f"{(result.stderr or result.stdout).strip()[-800:]}\nFix: on a machine that reaches the archive, run "
                    f"'cd {downloads} && apt-get download {spec}' (or copy that .deb into {downloads}), then run up again.")
        shutil.rmtree(headers, ignore_errors=True)
        work = tempfile.mkdtemp(prefix=".unpack-", dir=downloads)
        try:
            _unpack_headers(debs[0], work)
            os.makedirs(os.path.dirname(headers), exist_ok=True)
            os.replace(work, headers)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for deb in debs:
            os.unlink(deb)  # 95 MB we no longer need
    return include


def _safe(version):
    return re.sub(r"[^A-Za-z0-9.+-]", "_", version)


def _debs(directory, version):
    """The downloaded .deb files of HEADERS_PACKAGE at version (apt writes ':' in the epoch as %3a)."""
    wanted = f"{HEADERS_PACKAGE}_{version.replace(':', '%3a')}_"
    return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                  if name.endswith(".deb") and (name.startswith(wanted) or name.startswith(wanted.replace("%3a", ":"))))


def build_plugin(mariadbd, gcc):
    """The plugin for the server at mariadbd: (path in the cache, whether it was built now)."""
    version = server_package_version(mariadbd)
    key = native_build.build_key(f"{_safe(version)}-", _SOURCES, _FLAGS)
    cached = os.path.join(native_build.cache_dir(), "mariadb-plugin", key, PLUGIN_FILE)
    if os.path.exists(cached):
        return cached, False
    return native_build.compile_cached("mariadb-plugin", key, PLUGIN_FILE, gcc, _SOURCES, _FLAGS,
                                       include_dirs=(server_headers(version),))
