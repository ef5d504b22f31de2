"""The sandbox databases hand IAM logins to the verifier, as RDS does, and nothing else changes.

MariaDB: the RDS statement `IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL` works
and its logins go to the verifier. PostgreSQL: members of rds_iam go through PAM to the verifier,
only over TLS. Master users keep their passwords. Tokens and logins here come from the reference
client (botocore's own generate_db_auth_token, psycopg2 and PyMySQL over verify-full TLS), signed
with the sandbox operator's key (an IAM user allowed "*") or with an assumed role's temporary
credentials. Names start with wiring_ (one sandbox per session).
"""
import concurrent.futures
import ctypes
import http.server
import json
import os
import shutil
import threading
import time

import psycopg2
import pymysql
import pytest

from sandbox import fleet, lifecycle, prereqs, reference_client
from sandbox.db import mariadb_plugin, native_build, pam
from sandbox.db.mariadb import MariaDbServer
from sandbox.db.postgres import PostgresServer, pg_hba
from sandbox.iam_login import assume_role, enable_iam_auth, refusals_for
from sandbox.network import SandboxError, free_port
from sandbox.pytest_plugin import Sandbox, private_state_dir

AUTH_ERROR_LOG = "iam-db-auth-error.log"  # written by the verifier (sandbox/aws/credentials_api.py)


# --- helpers ---------------------------------------------------------------------------------

def _target(state, identifier):
    return next(target for target in state["targets"] if target["identifier"] == identifier)


def _operator(state):
    operator = state["operator"]
    return reference_client.credentials(operator["access_key_id"], operator["secret_access_key"])


def _token(state, identifier, user, keys=None):
    """A token from the reference client, signed with keys (default: the operator's, an IAM user allowed "*")."""
    target = _target(state, identifier)
    return reference_client.mint_token(keys or _operator(state), target["endpoint"], target["port"], user, region=state["region"])


def _tampered(token):
    return token[:-1] + ("0" if token[-1] != "0" else "1")


@pytest.fixture
def iam_on(request):
    """iam_on(state, identifier): IAM auth on for the test, the old flag restored afterwards."""
    def switch_on(state, identifier):
        request.addfinalizer(enable_iam_auth(Sandbox(state), identifier))
    return switch_on


def _connect(state, identifier, user, password, tls=True):
    """A login through the reference client, over verify-full TLS unless tls=False."""
    return reference_client.connect(_target(state, identifier), user, password, state["ca_cert"], tls=tls, autocommit=True,
                                    connect_timeout=5)


def _master(state, identifier):
    target = _target(state, identifier)
    return _connect(state, identifier, target["master_username"], target["master_password"])


def _pg_iam_member(request, state, identifier, user):
    """CREATE ROLE user LOGIN; GRANT rds_iam TO user (the RDS recipe), dropped after the test."""
    master = _master(state, identifier)
    request.addfinalizer(master.close)
    with master.cursor() as cur:
        cur.execute(f"CREATE ROLE {user} LOGIN")
        cur.execute(f"GRANT rds_iam TO {user}")
    request.addfinalizer(lambda: master.cursor().execute(f"DROP ROLE IF EXISTS {user}"))


def _scalar(conn, query, args=None):
    with conn.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchone()[0]


def _server_logs(state, identifier):
    """Everything the server side wrote for this target: server log and the PAM module's error log."""
    entry = next(server for server in state["servers"] if server["identifier"] == identifier)
    text = ""
    for name in ("server.log", pam.ERROR_LOG):
        path = os.path.join(entry["directory"], name)
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                text += handle.read()
    return text


def _assert_no_secret_in_logs(state, identifier, *tokens):
    logs = _server_logs(state, identifier)
    with open(os.path.join(state["state_dir"], "moto.log"), encoding="utf-8", errors="replace") as handle:
        logs += handle.read()
    if os.path.exists(os.path.join(state["state_dir"], AUTH_ERROR_LOG)):
        with open(os.path.join(state["state_dir"], AUTH_ERROR_LOG), encoding="utf-8") as handle:
            logs += handle.read()
    for token in tokens:
        assert token not in logs
        assert token.rsplit("X-Amz-Signature=", 1)[1] not in logs


# --- MariaDB: the RDS statement and the plugin ------------------------------------------------

@pytest.mark.parametrize("identifier", ["sbx-mariadb", "sbx-mysql"])
def test_mariadb_rds_statement_creates_a_user_whose_logins_go_to_the_verifier(sandbox, iam_on, identifier):
    state, user = sandbox.state, f"wiring_{identifier.split('-')[1]}"
    iam_on(state, identifier)
    master = _master(state, identifier)
    try:
        with master.cursor() as cur:
            cur.execute(f"CREATE USER {user} IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL")
            cur.execute(f"SHOW CREATE USER {user}")
            assert cur.fetchone()[0] == f"CREATE USER `{user}`@`%` IDENTIFIED VIA AWSAuthenticationPlugin USING 'RDS' REQUIRE SSL"

        token = _token(state, identifier, user)
        conn = _connect(state, identifier, user, token)
        try:
            assert _scalar(conn, "SELECT CURRENT_USER()") == f"{user}@%"
            assert _scalar(conn, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
                                 "WHERE VARIABLE_NAME = 'Ssl_version'").startswith("TLSv1.")
        finally:
            conn.close()

        before = len(refusals_for(sandbox, identifier, user))
        with pytest.raises(pymysql.err.OperationalError) as tampered:
            _connect(state, identifier, user, _tampered(token))
        assert tampered.value.args[0] == 1045
        refusals = refusals_for(sandbox, identifier, user)
        assert len(refusals) == before + 1 and refusals[-1]["reason"]  # the verifier decided, and said why

        with pytest.raises(pymysql.err.OperationalError) as plaintext:
            _connect(state, identifier, user, _token(state, identifier, user), tls=False)
        assert plaintext.value.args[0] == 1045  # REQUIRE SSL, as on RDS
        _assert_no_secret_in_logs(state, identifier, token)
    finally:
        with master.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS {user}")
        master.close()


def test_mariadb_user_names_reach_the_verifier_exactly_as_typed(sandbox, iam_on):
    state, identifier, user = sandbox.state, "sbx-mariadb", "Wiring.O'Neil"
    iam_on(state, identifier)
    master = _master(state, identifier)
    try:
        with master.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL", (user,))
        conn = _connect(state, identifier, user, _token(state, identifier, user))
        try:
            assert _scalar(conn, "SELECT CURRENT_USER()") == f"{user}@%"
        finally:
            conn.close()
        with pytest.raises(pymysql.err.OperationalError):
            _connect(state, identifier, user, _token(state, identifier, user.lower()))  # DBUser is case-sensitive
        assert "does not match" in refusals_for(sandbox, identifier, user)[-1]["reason"]
    finally:
        with master.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
        master.close()


@pytest.mark.parametrize("identifier", ["sbx-mariadb", "sbx-mysql"])
def test_mariadb_loads_the_plugin_for_its_own_target(sandbox, identifier):
    conn = _master(sandbox.state, identifier)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT PLUGIN_STATUS, PLUGIN_TYPE, PLUGIN_MATURITY, PLUGIN_LIBRARY FROM information_schema.PLUGINS "
                        "WHERE PLUGIN_NAME = 'AWSAuthenticationPlugin'")
            assert cur.fetchone() == ("ACTIVE", "AUTHENTICATION", "Stable", mariadb_plugin.PLUGIN_FILE)
            cur.execute("SELECT @@awsauthenticationplugin_target, @@awsauthenticationplugin_verify_url")
            assert cur.fetchone() == (identifier, sandbox.moto_url + lifecycle.VERIFY_PATH)
    finally:
        conn.close()


def test_mariadb_plugin_refuses_an_account_not_created_as_rds(sandbox, iam_on):
    state, user = sandbox.state, "wiring_not_rds"
    iam_on(state, "sbx-mariadb")
    master = _master(state, "sbx-mariadb")
    try:
        with master.cursor() as cur:
            cur.execute(f"CREATE USER {user} IDENTIFIED WITH AWSAuthenticationPlugin AS 'other' REQUIRE SSL")
        with pytest.raises(pymysql.err.OperationalError) as refused:
            _connect(state, "sbx-mariadb", user, _token(state, "sbx-mariadb", user))
        assert refused.value.args[0] == 1045
        assert "must be created AS 'RDS'" in _server_logs(state, "sbx-mariadb")
    finally:
        with master.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS {user}")
        master.close()


# --- PostgreSQL: rds_iam members through PAM ---------------------------------------------------

@pytest.mark.parametrize("identifier", ["sbx-postgres", "sbx-aurora-pg"])
def test_postgres_rds_iam_members_log_in_through_pam_only_over_tls(sandbox, iam_on, identifier):
    state, user = sandbox.state, "Wiring.Pg-User"  # quoted, mixed case: the name reaches the verifier as typed
    iam_on(state, identifier)
    master = _master(state, identifier)
    try:
        with master.cursor() as cur:
            cur.execute('CREATE ROLE "Wiring.Pg-User" LOGIN PASSWORD %s', ("wiring-password-1",))
            cur.execute('GRANT rds_iam TO "Wiring.Pg-User"')  # the master can, without admin option on rds_iam

        token = _token(state, identifier, user)
        conn = _connect(state, identifier, user, token)
        try:
            assert _scalar(conn, "SELECT current_user") == user
            assert _scalar(conn, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
        finally:
            conn.close()

        before = len(refusals_for(sandbox, identifier, user))
        for wrong in (_tampered(token), _token(state, identifier, user.lower()), "wiring-password-1"):
            with pytest.raises(psycopg2.OperationalError, match="PAM authentication failed"):
                _connect(state, identifier, user, wrong)  # a password no longer works either, as on RDS
        assert len(refusals_for(sandbox, identifier, user)) == before + 3

        with pytest.raises(psycopg2.OperationalError, match="no encryption"):
            _connect(state, identifier, user, _token(state, identifier, user), tls=False)
        assert len(refusals_for(sandbox, identifier, user)) == before + 3  # refused before any token was read
        _assert_no_secret_in_logs(state, identifier, token)
    finally:
        with master.cursor() as cur:
            cur.execute('DROP ROLE IF EXISTS "Wiring.Pg-User"')
        master.close()


def test_postgres_servers_preload_the_pam_start_lock_before_libpam_wrapper(sandbox):
    for identifier in ("sbx-postgres", "sbx-aurora-pg"):
        directory = next(server for server in sandbox.state["servers"] if server["identifier"] == identifier)["directory"]
        env = pam.wrapper_env(directory, prereqs.find_programs(("libpam_wrapper.so",)))
        preload = env["LD_PRELOAD"].split()
        assert preload[0] == os.path.join(directory, "lib", pam.START_LOCK_LIBRARY) and preload[1].endswith("/libpam_wrapper.so")
        assert env["RDSIAM_PAM_START_LOCK"] == pam.START_LOCK and os.access(pam.START_LOCK, os.R_OK)
    assert ctypes.CDLL(native_build.build_pam_start_lock(prereqs.find_programs(("gcc",))["gcc"])[0]).pam_start


def test_concurrent_logins_on_two_postgres_servers_are_each_checked_against_their_own_target(sandbox, iam_on, request):
    """libpam-wrapper's per-backend set-up, run by two servers' backends at once, could share one /tmp/pam.X copy: a
    login was then checked against the other target (2 to 10 of 800 logins here before the start lock)."""
    state, user, targets = sandbox.state, "wiring_pg_many", ("sbx-postgres", "sbx-aurora-pg")
    for identifier in targets:
        iam_on(state, identifier)
        _pg_iam_member(request, state, identifier, user)
    tokens = {identifier: _token(state, identifier, user) for identifier in targets}
    before = len(refusals_for(sandbox, targets[0], user)) + len(refusals_for(sandbox, targets[1], user))

    def login(number):
        identifier = targets[number % 2]
        try:
            conn = _connect(state, identifier, user, tokens[identifier])
        except psycopg2.OperationalError as exc:
            return "%s: %s" % (identifier, str(exc).strip().splitlines()[-1])
        conn.close()
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        failures = [failure for failure in pool.map(login, range(800)) if failure]
    assert failures == []
    assert len(refusals_for(sandbox, targets[0], user)) + len(refusals_for(sandbox, targets[1], user)) == before


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _plaintext_login_works(state, identifier, user, password):
    try:
        _connect(state, identifier, user, password, tls=False).close()
        return True
    except psycopg2.OperationalError:
        return False


def test_postgres_rds_iam_members_need_tls_even_when_force_ssl_is_off(sandbox, iam_on, request):
    state, identifier, user = sandbox.state, "sbx-postgres", "wiring_nossl"
    entry = sandbox.server(identifier)
    server = PostgresServer(entry["identifier"], entry["directory"], entry["host"], entry["port"], entry["os_user"], state["programs"])
    target = _target(state, identifier)
    iam_on(state, identifier)
    _pg_iam_member(request, state, identifier, user)

    def force_ssl_back_on():
        server.write_hba(True)
        server.reload()
        _wait_for(lambda: not _plaintext_login_works(state, identifier, target["master_username"], target["master_password"]))
    server.write_hba(False)
    request.addfinalizer(force_ssl_back_on)
    server.reload()
    _wait_for(lambda: _plaintext_login_works(state, identifier, target["master_username"], target["master_password"]))

    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        _connect(state, identifier, user, _token(state, identifier, user), tls=False)
    _connect(state, identifier, user, _token(state, identifier, user)).close()


def test_pg_hba_routes_rds_iam_to_pam_before_any_password_line():
    for force_ssl in (True, False):
        lines = pg_hba(force_ssl).splitlines()
        assert lines[1:3] == [f"hostssl all +rds_iam 127.0.0.1/32 pam pamservice={pam.SERVICE}",
                              "hostnossl all +rds_iam 0.0.0.0/0 reject"]
        assert all("+rds_iam" not in line for line in lines[3:])


# --- master users keep their passwords ---------------------------------------------------------

@pytest.mark.parametrize("identifier", ["sbx-postgres", "sbx-aurora-pg"])
def test_postgres_master_logs_in_with_its_password_and_is_not_an_iam_member(sandbox, identifier):
    conn = _master(sandbox.state, identifier)
    try:
        assert _scalar(conn, "SELECT pg_has_role(current_user, 'rds_iam', 'MEMBER')") is False
        assert _scalar(conn, "SELECT pg_has_role(current_user, 'rds_superuser', 'MEMBER')") is True
    finally:
        conn.close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        _connect(sandbox.state, identifier, _target(sandbox.state, identifier)["master_username"], "not-the-password")


@pytest.mark.parametrize("identifier", ["sbx-mariadb", "sbx-mysql"])
def test_mariadb_master_logs_in_with_its_password(sandbox, identifier):
    conn = _master(sandbox.state, identifier)
    try:
        master = _target(sandbox.state, identifier)["master_username"]
        assert _scalar(conn, "SELECT plugin FROM mysql.user WHERE User = %s AND Host = '%%'", (master,)) == "mysql_native_password"
    finally:
        conn.close()


# --- the verify call itself, against a stand-in verifier ----------------------------------------

class _StandIn(http.server.BaseHTTPRequestHandler):
    """Records each request and answers with the class's (status, body)."""

    answer = (200, {"allow": True})
    received = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        status, answer = type(self).answer
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    _StandIn.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/_sandbox/verify"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def rdsiam_verify():
    """rdsiam_verify() from the PAM module PostgreSQL loads (the MariaDB plugin compiles the same file)."""
    programs = prereqs.find_programs(("gcc", "stdio.h", "security/pam_modules.h"))
    function = ctypes.CDLL(native_build.build_pam_module(programs["gcc"])[0]).rdsiam_verify
    function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                         ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    function.restype = ctypes.c_int

    def verify(url, user, token):
        error = ctypes.create_string_buffer(256)
        user_bytes, token_bytes = user.encode(), token.encode()
        result = function(url.encode(), b"sbx-postgres", user_bytes, len(user_bytes), token_bytes, len(token_bytes), error, 256)
        return result, error.value.decode()
    return verify


ODD_USER = 'o"brien\\x\tÆ'
ODD_TOKEN = "host:5432/?Action=connect&DBUser=o%22brien&X-Amz-Signature=ab+/=%\"\\"


@pytest.mark.parametrize("status, answer, verdict", [
    (200, {"allow": True, "principal": "arn:aws:iam::123456789012:user/x"}, (1, "")),
    (403, {"allow": False, "reason": "signature does not match"}, (0, "")),
    (200, {"allow": False}, (0, "")),
    (400, {"allow": False, "error": "unknown target"}, (-1, "the verifier answered HTTP 400")),
])
def test_verify_call_passes_exactly_what_it_got_and_obeys_the_answer(rdsiam_verify, stand_in, status, answer, verdict):
    _StandIn.answer = (status, answer)
    assert rdsiam_verify(stand_in, ODD_USER, ODD_TOKEN) == verdict
    assert _StandIn.received == [("/_sandbox/verify", "application/json",
                                  {"target": "sbx-postgres", "user": ODD_USER, "token": ODD_TOKEN})]


def test_verify_call_reports_an_unreachable_verifier_or_a_bad_url(rdsiam_verify):
    closed = f"http://127.0.0.1:{free_port('127.0.0.1')}/_sandbox/verify"
    assert rdsiam_verify(closed, "u", ODD_TOKEN) == (-1, "cannot reach the verifier: Connection refused")
    for url in ("https://127.0.0.1:1/x", "http://localhost:1/x", "http://127.0.0.1/x", "http://127.0.0.1:1"):
        assert rdsiam_verify(url, "u", ODD_TOKEN)[0] == -1


def test_verify_call_sends_nothing_for_an_empty_or_oversized_password(rdsiam_verify, stand_in):
    assert rdsiam_verify(stand_in, "u", "")[0] == 0
    assert rdsiam_verify(stand_in, "u", "x" * 20000)[0] == 0
    assert _StandIn.received == []


def test_pam_logs_an_unreachable_verifier_without_the_token(sandbox, iam_on, request):
    """The PAM service is read at each login, so pointing it at a closed port takes effect at once."""
    state, identifier, user = sandbox.state, "sbx-postgres", "wiring_unreachable"
    entry = sandbox.server(identifier)
    module = os.path.join(entry["directory"], "lib", native_build.PAM_MODULE_FILE)
    iam_on(state, identifier)
    _pg_iam_member(request, state, identifier, user)
    request.addfinalizer(lambda: pam.write_service(entry["directory"], module, sandbox.moto_url + lifecycle.VERIFY_PATH, identifier))
    pam.write_service(entry["directory"], module, f"http://127.0.0.1:{free_port('127.0.0.1')}/_sandbox/verify", identifier)

    token = _token(state, identifier, user)
    with pytest.raises(psycopg2.OperationalError, match="PAM authentication failed"):
        _connect(state, identifier, user, token)
    logs = _server_logs(state, identifier)
    assert f"{user} on {identifier}: cannot reach the verifier: Connection refused" in logs
    assert token not in logs


# --- long tokens: temporary credentials carry their session token -----------------------------

@pytest.fixture
def temporary_credentials(sandbox, request):
    """Credentials of an assumed role allowed rds-db:connect everywhere (tokens ~1 KB and more)."""
    iam, role = sandbox.moto().client("iam"), "wiring-long-token"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": f"arn:aws:iam::{sandbox.state['operator']['account_id']}:root"}}]}
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    request.addfinalizer(lambda: iam.delete_role(RoleName=role))
    iam.put_role_policy(RoleName=role, PolicyName="connect", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds-db:connect", "Resource": "*"}]}))
    request.addfinalizer(lambda: iam.delete_role_policy(RoleName=role, PolicyName="connect"))
    return assume_role(sandbox, arn, "wiring-session")  # as the operator: the trust policy names its account


@pytest.mark.parametrize("identifier", ["sbx-postgres", "sbx-mariadb"])
def test_a_token_from_temporary_credentials_logs_in_whatever_its_length(sandbox, iam_on, temporary_credentials, identifier):
    state, user = sandbox.state, "wiring_long"
    iam_on(state, identifier)
    token = _token(state, identifier, user, temporary_credentials)
    assert len(token) > 512  # longer than pam_exec would pass on
    master = _master(state, identifier)
    if identifier == "sbx-postgres":
        create, drop = [f"CREATE ROLE {user} LOGIN", f"GRANT rds_iam TO {user}"], f"DROP ROLE IF EXISTS {user}"
    else:
        create, drop = [f"CREATE USER {user} IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL"], f"DROP USER IF EXISTS {user}"
    try:
        with master.cursor() as cur:
            for statement in create:
                cur.execute(statement)
        conn = _connect(state, identifier, user, token)
        try:
            assert _scalar(conn, "SELECT current_user" if identifier == "sbx-postgres" else "SELECT USER()").startswith(user)
        finally:
            conn.close()
    finally:
        with master.cursor() as cur:
            cur.execute(drop)
        master.close()


# --- building and caching the C parts ---------------------------------------------------------

def test_a_failed_build_is_a_sandbox_error_with_the_compiler_message(tmp_path, monkeypatch):
    monkeypatch.setenv("RDSIAM_SANDBOX_CACHE", str(tmp_path / "cache"))
    broken = tmp_path / "broken.c"
    broken.write_text("int main(void) { return missing_symbol; }\n", encoding="utf-8")
    gcc = prereqs.find_programs(("gcc",))["gcc"]
    with pytest.raises(SandboxError, match=r"(?s)building broken failed.*missing_symbol"):
        native_build.compile_cached("test", "k1", "broken", gcc, [str(broken)], ())
    assert os.listdir(tmp_path / "cache" / "test") == []  # no half-built entry is left to be reused


def test_no_access_to_debians_archive_names_the_command_to_run(tmp_path, monkeypatch):
    """A machine that cannot reach the archive (here: apt behind a dead proxy) is told exactly what to run."""
    monkeypatch.setenv("RDSIAM_SANDBOX_CACHE", str(tmp_path / "cache"))
    apt_config = tmp_path / "apt.conf"
    apt_config.write_text('Acquire::http::Proxy "http://127.0.0.1:9";\nAcquire::https::Proxy "http://127.0.0.1:9";\n'
                          'Acquire::Retries "0";\n', encoding="utf-8")
    monkeypatch.setenv("APT_CONFIG", str(apt_config))
    monkeypatch.setattr("sandbox.prereqs._apt_updated", True)  # never refresh the real package lists here
    programs = prereqs.find_programs(("mariadbd", "gcc"))
    version = mariadb_plugin.server_package_version(programs["mariadbd"])
    downloads = tmp_path / "cache" / "downloads"
    with pytest.raises(SandboxError) as failed:
        mariadb_plugin.build_plugin(programs["mariadbd"], programs["gcc"])
    assert f"cd {downloads} && apt-get download libmariadbd-dev={version}" in str(failed.value)


def _stat(path):
    info = os.stat(path)
    return info.st_ino, info.st_mtime_ns


def _runtime_copies_of(runtime_dir):
    """libpam-wrapper's /tmp/pam.X copies of the services of servers under runtime_dir."""
    copies = []
    for name in os.listdir("/tmp"):
        if name.startswith("pam.") and len(name) == 5:
            try:
                with open(os.path.join("/tmp", name, pam.SERVICE), encoding="utf-8") as handle:
                    if runtime_dir + "/" in handle.read():
                        copies.append(name)
            except OSError:
                continue
    return copies


def test_second_up_reuses_the_cached_builds_and_down_leaves_no_pam_copies(sandbox, capsys):
    """The session sandbox built (or found) both C parts; another up must not rebuild them."""
    programs = sandbox.state["programs"]
    module, built_module = native_build.build_pam_module(programs["gcc"])
    plugin, built_plugin = mariadb_plugin.build_plugin(programs["mariadbd"], programs["gcc"])
    assert (built_module, built_plugin) == (False, False)
    before = {path: _stat(path) for path in (module, plugin)}
    capsys.readouterr()

    state_dir = private_state_dir()
    state = lifecycle.up(state_dir, specs=(fleet.DEFAULT_FLEET[0], fleet.DEFAULT_FLEET[2]))
    try:
        assert "built" not in capsys.readouterr().out
        assert {path: _stat(path) for path in (module, plugin)} == before
        enable_iam_auth(Sandbox(state), "sbx-postgres")
        conn = _master(state, "sbx-postgres")
        with conn.cursor() as cur:
            cur.execute("CREATE ROLE wiring_private LOGIN")
            cur.execute("GRANT rds_iam TO wiring_private")
        conn.close()
        _connect(state, "sbx-postgres", "wiring_private", _token(state, "sbx-postgres", "wiring_private")).close()
        assert _runtime_copies_of(state["runtime_dir"])  # libpam-wrapper's copies exist while the server runs
    finally:
        lifecycle.down(state_dir, quiet=True)
    assert _runtime_copies_of(state["runtime_dir"]) == []
    assert not os.path.exists(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)


def test_down_removes_pam_copies_of_sandboxes_that_are_gone_and_only_those(tmp_path, monkeypatch):
    live, gone = tmp_path / "live-sandbox", tmp_path / "gone-sandbox"
    (live / "servers" / "sbx-postgres").mkdir(parents=True)
    monkeypatch.setattr(pam, "_RUNTIME_COPIES", str(tmp_path / "pam.?"))
    for name, state_dir in (("pam.a", live), ("pam.b", gone), ("pam.c", None)):
        (tmp_path / name).mkdir()
        server = f"{state_dir}/servers/sbx-postgres"
        text = (f"auth required {server}/lib/{native_build.PAM_MODULE_FILE} url=http://127.0.0.1:1/_sandbox/verify "
                f"target=sbx-postgres error_log={server}/{pam.ERROR_LOG}\n") if state_dir else "auth required pam_deny.so\n"
        (tmp_path / name / pam.SERVICE).write_text(text, encoding="utf-8")
    assert pam.remove_orphaned_copies() == 1
    assert sorted(os.listdir(tmp_path)) == ["live-sandbox", "pam.a", "pam.c"]  # not a sandbox's: not ours to judge


def test_a_plugin_mariadbd_cannot_load_fails_up_with_mariadbds_reason(monkeypatch):
    install = MariaDbServer.install_iam_plugin

    def install_a_broken_copy(server, plugin_path, verify_url):
        install(server, plugin_path, verify_url)
        with open(os.path.join(server.plugin_dir, mariadb_plugin.PLUGIN_FILE), "wb") as handle:
            handle.write(b"not a shared library")
    monkeypatch.setattr(MariaDbServer, "install_iam_plugin", install_a_broken_copy)
    state_dir = private_state_dir()
    with pytest.raises(SandboxError, match=r"(?s)exited before listening.*Can't open shared library .*aws_authentication_plugin\.so"):
        lifecycle.up(state_dir, specs=(fleet.DEFAULT_FLEET[2],))
    assert not os.path.exists(state_dir)  # up took down what it had started
