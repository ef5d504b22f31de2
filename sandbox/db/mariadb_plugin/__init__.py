"""Build the sandbox's AWSAuthenticationPlugin for the MariaDB server installed here.

A server plugin must be compiled against that server's own headers, which Debian ships only
in libmariadbd-dev (95 MB, mostly an embedded server we do not need). So the package of the
exact installed version is downloaded with `apt-get download` and only its
usr/include/mariadb/server tree is unpacked, without installing anything; headers and plugin
are cached (native_build.cache_dir()) keyed by server version and source digest.
"""
import os

from sandbox.db import native_build, server_headers
from sandbox.network import SandboxError

PLUGIN_NAME = "AWSAuthenticationPlugin"
PLUGIN_FILE = "aws_authentication_plugin.so"
HEADERS_PACKAGE = "libmariadbd-dev"
_HERE = os.path.dirname(os.path.abspath(__file__))
_SOURCES = (os.path.join(_HERE, "aws_authentication_plugin.c"), native_build.VERIFY_HTTP_SOURCE)
_FLAGS = ("-shared", "-fPIC", "-DMYSQL_DYNAMIC_PLUGIN")


def server_package_version(mariadbd):
    """The Debian version of the package that installed mariadbd, e.g. 1:10.11.19-0+deb12u1."""
    owner = server_headers.debian_package_of(mariadbd)
    if owner is None:
        raise SandboxError(f"{mariadbd} does not come from a Debian package, so the matching {HEADERS_PACKAGE} cannot be "
                           "found; install mariadb-server from Debian's archive")
    return owner[1]


def plugin_headers(version):
    """Path of the include directory for this server version, fetching it the first time."""
    return server_headers.debian_headers(HEADERS_PACKAGE, version, "usr/include/mariadb/server", os.path.join("mysql", "plugin_auth.h"),
                                         f"the sandbox's {PLUGIN_NAME}")


def build_plugin(mariadbd, gcc):
    """The plugin for the server at mariadbd: (path in the cache, whether it was built now)."""
    version = server_package_version(mariadbd)
    key = native_build.build_key(f"{server_headers.safe_version(version)}-", _SOURCES, _FLAGS)
    cached = os.path.join(native_build.cache_dir(), "mariadb-plugin", key, PLUGIN_FILE)
    if os.path.exists(cached):
        return cached, False
    return native_build.compile_cached("mariadb-plugin", key, PLUGIN_FILE, gcc, _SOURCES, _FLAGS,
                                       include_dirs=(plugin_headers(version),))
