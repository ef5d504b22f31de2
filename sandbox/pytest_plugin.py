"""pytest fixtures that run tests against a private sandbox (own state directory, own ports).

Loaded with `-p sandbox.pytest_plugin` (see pytest.ini); tests that do not ask for a sandbox
fixture start nothing.
"""
import contextlib
import json
import os
import shutil
import sys
import tempfile
import urllib.request

import pytest

from sandbox import fleet, lifecycle
from sandbox.db import sql_servers

# The PostgreSQL majors pg_majors serves, (15, 16, 17, 18): parametrize over these.
PG_MAJORS = sql_servers.MAJORS


class Sandbox:
    """A running sandbox as the tests see it: its state plus a few handy views."""

    def __init__(self, state):
        self.state = state
        self.state_dir = state["state_dir"]
        self.ca_cert = state["ca_cert"]
        self.region = state["region"]
        self.moto_url = state["moto"]["endpoint_url"]

    def target(self, identifier):
        return next(target for target in self.state["targets"] if target["identifier"] == identifier)

    def server(self, identifier):
        return next(entry for entry in self.state["servers"] if entry["identifier"] == identifier)

    @contextlib.contextmanager
    def stopped(self, identifier):
        """The server behind a target is down inside the block and up again after it."""
        server = lifecycle.server(self.state, identifier)
        server.stop()
        try:
            yield
        finally:
            server.start()

    def moto(self):
        return lifecycle.MotoSession(self.moto_url)

    def throttling(self, method, settings=None):
        """The moto server's throttling switch (sandbox/aws/throttling.py): PUT settings, GET or DELETE; its JSON answer."""
        data = json.dumps(settings).encode() if settings is not None else None
        request = urllib.request.Request(self.moto_url + "/_sandbox/throttle", data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def aws_env(self):
        """The variables the sandbox's env file exports, as a dict."""
        operator = self.state["operator"]
        return {"AWS_ENDPOINT_URL": self.moto_url, "AWS_ACCESS_KEY_ID": operator["access_key_id"],
                "AWS_SECRET_ACCESS_KEY": operator["secret_access_key"], "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region}


def private_state_dir(prefix="rdsiam-sbx-"):
    """A fresh path for a sandbox's state directory, which up() creates (the servers' own files go to its runtime directory)."""
    path = tempfile.mkdtemp(prefix=prefix)
    os.rmdir(path)  # up() creates it with the right mode
    return path


@pytest.fixture(scope="session")
def sandbox():
    """The default fleet, up for the whole test session, down afterwards."""
    state_dir = private_state_dir()
    state = lifecycle.up(state_dir, specs=fleet.DEFAULT_FLEET)
    try:
        yield Sandbox(state)
    finally:
        lifecycle.down(state_dir, quiet=True)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_majors():
    """SQL-only PostgreSQL servers with RDS's role model (sandbox/db/sql_servers.py), one per major.

    `pg_majors.get(major)` starts that major's server on first use and returns the same handle
    afterwards (its tests share it: use unique role names); every server stops at session end.
    """
    pool = sql_servers.SqlServerPool()
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(autouse=True, scope="session")
def private_cache_home(tmp_path_factory):
    """The collection caches assumed-role credentials under $XDG_CACHE_HOME: never the user's own."""
    from sandbox.db import native_build

    saved = {name: os.environ.get(name) for name in ("XDG_CACHE_HOME", "RDSIAM_SANDBOX_CACHE")}
    # The sandbox's own build cache (plugin headers, compiled parts) stays where it is, shared across runs.
    os.environ["RDSIAM_SANDBOX_CACHE"] = native_build.cache_dir()
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def sandbox_env(sandbox, monkeypatch):
    """Point AWS SDKs in this process at the sandbox, as `source sandbox/.state/env` would."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in sandbox.aws_env().items():
        monkeypatch.setenv(name, value)
    return sandbox


def pytest_load_initial_conftests(early_config, parser, args):  # pylint: disable=unused-argument
    """RDSIAM_BUILD=/tmp/x (as with `make install RDSIAM_BUILD=/tmp/x`): test that private build.

    Runs after pytest's `pythonpath` setting is applied (tryfirst there) and before any conftest
    imports the collection, so the private copy wins over .build/collections.
    """
    build = os.environ.get("RDSIAM_BUILD")
    if build:
        sys.path.insert(0, os.path.join(build, "collections"))
