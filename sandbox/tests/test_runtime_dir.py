"""The servers' runtime directory: a state directory closed to the server accounts (a clone in root's 0700
home) still gives a working sandbox, and `down` removes the runtime directory, also after a failed `up`."""
import os
import pwd
import shutil
import stat
import subprocess

import pytest

from sandbox import __main__ as cli
from sandbox import fleet, iam_login, lifecycle, runtime_dir
from sandbox.network import SandboxError, port_open
from sandbox.prereqs import server_os_user
from sandbox.pytest_plugin import Sandbox, private_state_dir
from sandbox.tests import leftovers

SPECS = (fleet.DEFAULT_FLEET[0], fleet.DEFAULT_FLEET[2])  # sbx-postgres, sbx-mariadb: one server of each kind
DB_USER = "runtime_dir_ada"


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _can_enter(user, path):
    return subprocess.run(["runuser", "-u", user, "--", "test", "-x", path], capture_output=True, check=False).returncode == 0


def _other_server_accounts():
    """The accounts the servers run as that are not us (postgres and mysql when we are root)."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    return sorted({server_os_user(account) for account in ("postgres", "mysql")} - {me})


def _iam_login(sandbox, identifier):
    """The whole chain through the server's runtime files: PAM module or plugin, TLS, the verifier."""
    iam_login.enable_iam_auth(sandbox, identifier)
    creds = iam_login.iam_user_with_policy(sandbox, f"rt-{identifier}", [
        iam_login.allow_connect(iam_login.connect_arn(sandbox, identifier, DB_USER))])
    iam_login.create_db_user(sandbox, identifier, DB_USER)
    token = iam_login.mint_token(creds, sandbox.target(identifier), DB_USER)
    return iam_login.assert_login(sandbox, identifier, DB_USER, token)


def test_a_state_dir_in_a_0700_directory_serves_logins_and_down_leaves_nothing(tmp_path, monkeypatch, capsys):
    closed = tmp_path / "home"
    closed.mkdir()
    os.chmod(closed, 0o700)
    for user in _other_server_accounts():  # as root: what a clone in /root looks like to the servers
        assert not _can_enter(user, str(closed))
    clone = closed / "clone"
    clone.mkdir()
    monkeypatch.chdir(clone)  # as `make demo` there: the servers start from a directory their accounts cannot enter
    state_dir = str(clone / "sandbox" / ".state")
    private_tmp = leftovers.private_tmpdir(monkeypatch)
    tmp_before = set(os.listdir("/tmp"))
    state = lifecycle.up(state_dir, specs=SPECS)
    runtime = state["runtime_dir"]
    ports = [state["moto"]["port"]] + [entry["port"] for entry in state["servers"]]
    try:
        assert lifecycle.load_state(state_dir)["runtime_dir"] == runtime
        assert os.path.dirname(runtime) == private_tmp
        assert f"are in {runtime} until down" in capsys.readouterr().out
        assert _mode(state_dir) == 0o700 and _mode(closed) == 0o700
        assert _mode(runtime) == _mode(os.path.join(runtime, "servers")) == (0o711 if _other_server_accounts() else 0o700)
        # Only the user's files stay in the state directory: nothing a server opens.
        assert set(os.listdir(state_dir)) <= {"env", "iam-db-auth-error.log", "inventory.yml", "moto.log", "sandbox.json",
                                              "tls", "vars.yml"}
        assert os.listdir(os.path.join(state_dir, "tls")) == ["ca.pem"]
        for entry in state["servers"]:
            assert os.path.dirname(entry["directory"]) == os.path.join(runtime, "servers")
            assert os.stat(entry["directory"]).st_uid == pwd.getpwnam(entry["os_user"]).pw_uid
            assert _mode(entry["directory"]) == 0o700
            assert [user for user in _other_server_accounts() if user != entry["os_user"] and _can_enter(user, entry["directory"])] == []
        assert cli.main(["status", "--state-dir", state_dir]) == 0
        assert f"servers    {runtime} " in capsys.readouterr().out
        sandbox = Sandbox(state)
        assert [_iam_login(sandbox, identifier) for identifier in ("sbx-postgres", "sbx-mariadb")] == [DB_USER, DB_USER]
        assert leftovers.processes_mentioning(runtime)
    finally:
        lifecycle.down(state_dir)
    assert f"{state_dir} and {runtime} removed" in capsys.readouterr().out
    assert not any(port_open("127.0.0.1", port) for port in ports)
    assert leftovers.processes_mentioning(state_dir) == leftovers.processes_mentioning(runtime) == []
    assert not os.path.exists(state_dir) and not os.path.exists(runtime)
    assert os.listdir(clone / "sandbox") == []
    assert os.listdir(private_tmp) == []
    os.rmdir(private_tmp)
    assert leftovers.left_in_tmp(tmp_before, runtime) == []


def test_up_failing_half_way_removes_the_runtime_directory(monkeypatch):
    private_tmp = leftovers.private_tmpdir(monkeypatch)
    seen = {}

    def moto_refuses(state, specs):  # moto is up and the servers' directories are being initialised
        seen["runtime_dir"] = state["runtime_dir"]
        seen["existed"] = os.path.isdir(os.path.join(state["runtime_dir"], "servers", specs[0].identifier))
        raise SandboxError("moto refused the fleet")

    monkeypatch.setattr(lifecycle, "_register_fleet", moto_refuses)
    state_dir = private_state_dir()
    with pytest.raises(SandboxError, match="moto refused the fleet"):
        lifecycle.up(state_dir, specs=SPECS[:1])
    assert seen["existed"]
    assert not os.path.exists(seen["runtime_dir"]) and not os.path.exists(state_dir)
    assert leftovers.processes_mentioning(state_dir) == leftovers.processes_mentioning(seen["runtime_dir"]) == []
    assert os.listdir(private_tmp) == []
    os.rmdir(private_tmp)


def test_the_runtime_directory_lets_other_accounts_pass_through_and_nothing_more(monkeypatch):
    private_tmp = leftovers.private_tmpdir(monkeypatch)  # short enough for a socket path, unlike tmp_path
    me = pwd.getpwuid(os.geteuid()).pw_name
    previous = os.umask(0o077)  # a strict umask must not lock the server accounts out
    try:
        shared, own = runtime_dir.create({me, "postgres"}), runtime_dir.create({me})
    finally:
        os.umask(previous)
    try:
        assert (_mode(shared), _mode(os.path.join(shared, "servers"))) == (0o711, 0o711)
        assert (_mode(own), _mode(os.path.join(own, "servers"))) == (0o700, 0o700)
        assert _mode(runtime_dir.server_directory(shared, "sbx-postgres", me)) == 0o700
        assert sorted(os.listdir(private_tmp)) == sorted(os.path.basename(path) for path in (shared, own))
        assert all(os.path.basename(path).startswith(runtime_dir.PREFIX) for path in (shared, own))
        assert runtime_dir.remove(shared) and runtime_dir.remove(own)
        assert os.listdir(private_tmp) == []
    finally:
        shutil.rmtree(private_tmp)


def test_a_temp_dir_too_deep_for_a_unix_socket_is_refused_with_the_fix(monkeypatch, tmp_path):
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr("tempfile.tempdir", None)
    with pytest.raises(SandboxError, match="too deep for a Unix socket path; set TMPDIR"):
        runtime_dir.server_directory(runtime_dir.create({"postgres"}), "sbx-aurora-pg", "postgres")


def test_down_deletes_only_a_runtime_directory_named_like_the_sandboxs(tmp_path):
    state_dir, precious = tmp_path / "state", tmp_path / "precious"
    state_dir.mkdir()
    precious.mkdir()
    (precious / "keep").write_text("not the sandbox's", encoding="utf-8")
    (state_dir / lifecycle.STATE_FILE).write_text(f'{{"runtime_dir": "{precious}"}}', encoding="utf-8")
    assert lifecycle.down(str(state_dir), quiet=True) == []
    assert not state_dir.exists()
    assert (precious / "keep").read_text(encoding="utf-8") == "not the sandbox's"
