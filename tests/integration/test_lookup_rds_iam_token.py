"""The rds_iam_token lookup run by ansible-playbook against the sandbox: real moto credentials, assume-role with
session tags through the on-disk cache, -vvvv output, and logins with the minted token on both engines.

Logins are checked with the helpers in sandbox/iam_login.py (botocore, psycopg2, PyMySQL and the sandbox's verifier), which
share no code with the lookup.
"""
import json
import os
import stat
import urllib.request
from urllib.parse import parse_qs

import pytest

from sandbox.iam_login import (
    allow_connect,
    connect_arn,
    create_db_user,
    delete_iam_user,
    delete_role,
    drop_db_user,
    enable_iam_auth,
    iam_user_with_policy,
    login,
    role_with_policy,
)

LOOKUP = 'rdsiam.auth.rds_iam_token'


def sandbox_aws_env(sandbox, cache_home, **credentials):
    """Only the sandbox's AWS settings reach ansible-playbook (no profile, no instance metadata)."""
    env = dict(sandbox.aws_env(), XDG_CACHE_HOME=str(cache_home), AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    env.update(credentials)
    return env


def play(*tasks):
    return [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": list(tasks)}]


def save_lookup(name, expression, path):
    """A task that writes the lookup's result to a file, never displaying it."""
    return {"name": name, "ansible.builtin.copy": {"content": "{{ %s | to_json }}" % expression, "dest": str(path), "mode": "0600"},
            "no_log": True}


def token_access_key(token):
    params = parse_qs(token.partition('/?')[2])
    return params["X-Amz-Credential"][0].split("/")[0]


def issued(sandbox, access_key):
    with urllib.request.urlopen(f"{sandbox.moto_url}/_sandbox/credentials/{access_key}", timeout=10) as response:
        return json.load(response)


@pytest.fixture(autouse=True)
def no_ambient_aws_profile(monkeypatch):
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def operator_env(sandbox, tmp_path):
    return sandbox_aws_env(sandbox, tmp_path / "xdg-cache")


# ---- assume role, session tags and the credential cache ----

def test_assumed_role_credentials_are_cached_0600_and_reused_between_tasks_and_runs(sandbox, tmp_path, operator_env,
                                                                                    playbook_runner):
    role = "lk-cache-role"
    role_arn = role_with_policy(sandbox, role, [allow_connect(connect_arn(sandbox, "sbx-postgres", "${aws:PrincipalTag/userName}"))])
    try:
        target = sandbox.target("sbx-postgres")
        expression = ("lookup('%s', 'lk_tagged@%s:%s', assume_role_arn='%s', role_session_name='lk-cache', "
                      "session_tags={'userName': 'lk_tagged'})" % (LOOKUP, target["endpoint"], target["port"], role_arn))
        first, second = tmp_path / "first.json", tmp_path / "second.json"
        run = playbook_runner(play(save_lookup("first", expression, first), save_lookup("second", expression, second)),
                              env=operator_env)
        assert run.rc == 0, run.stdout + run.stderr
        tokens = [json.loads(path.read_text()) for path in (first, second)]
        keys = [token_access_key(token) for token in tokens]
        # Each task runs in its own worker process: the same temporary key twice means the file cache served the second.
        assert keys[0] == keys[1] and keys[0].startswith("ASIA")
        credentials = issued(sandbox, keys[0])
        assert (credentials["type"], credentials["session_tags"]) == ("assumed-role", {"userName": "lk_tagged"})
        assert credentials["arn"].endswith(":assumed-role/%s/lk-cache" % role)

        cache_dir = tmp_path / "xdg-cache" / "rdsiam.auth"
        files = list(cache_dir.iterdir())
        assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
        assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
        cached = files[0].read_text()
        assert keys[0] in cached and "X-Amz-Signature" not in cached and tokens[0] not in cached

        # A second run reuses the cached credentials; opting out calls STS again and writes nothing.
        again = playbook_runner(play(save_lookup("again", expression, first)), env=operator_env)
        assert again.rc == 0 and token_access_key(json.loads(first.read_text())) == keys[0]
        no_cache = expression.replace("session_tags=", "credential_cache=false, session_tags=")
        fresh = playbook_runner(play(save_lookup("uncached", no_cache, second)), env=operator_env)
        assert fresh.rc == 0, fresh.stdout + fresh.stderr
        assert token_access_key(json.loads(second.read_text())) != keys[0]
        assert len(list(cache_dir.iterdir())) == 1
    finally:
        delete_role(sandbox, role)


# ---- what -vvvv shows ----

def test_vvvv_output_never_contains_the_token(sandbox, tmp_path, operator_env, playbook_runner):
    target = sandbox.target("sbx-mariadb")
    out = tmp_path / "token.json"
    expression = "lookup('%s', 'lk_verbose@%s:%s', output='dict')" % (LOOKUP, target["endpoint"], target["port"])
    run = playbook_runner(play(
        {"name": "mint", "ansible.builtin.set_fact": {"lk_db": "{{ %s }}" % expression}, "no_log": True},
        save_lookup("save", "lk_db.password", out),
        {"name": "check", "ansible.builtin.assert": {"that": ["lk_db.password is match('.*X-Amz-Signature=[0-9a-f]{64}$')",
                                                              "lk_db.user == 'lk_verbose'"], "quiet": True}},
        {"name": "bad region", "ignore_errors": True,
         "ansible.builtin.debug": {"msg": "{{ lookup('%s', 'lk_verbose@%s', region='eu-west-3') }}" % (LOOKUP, target["endpoint"])}},
    ), env=operator_env, verbosity=4)
    assert run.rc == 0, run.stdout + run.stderr
    token = json.loads(out.read_text())
    shown = run.stdout + run.stderr
    assert "rds_iam_token: signed for lk_verbose@%s:%s in us-east-1 with options credentials" % (target["endpoint"], target["port"]) in shown
    assert "region 'eu-west-3' contradicts endpoint" in run.task("bad region")["result"]["msg"]
    assert token not in shown and "X-Amz-Signature=" not in shown
    assert sandbox.state["operator"]["secret_access_key"] not in shown


def test_no_credentials_fails_the_task_naming_the_sources(sandbox, tmp_path, playbook_runner):
    env = sandbox_aws_env(sandbox, tmp_path / "xdg-cache", AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
    target = sandbox.target("sbx-postgres")
    run = playbook_runner(play({"name": "mint", "ansible.builtin.debug": {
        "msg": "{{ lookup('%s', 'lk_nobody@%s') }}" % (LOOKUP, target["endpoint"])}}), env=env)
    assert run.rc != 0
    message = run.task("mint")["result"]["msg"]
    assert "no AWS credentials found: tried the access_key/secret_key options" in message and "iam-role" in message


# ---- a token from the lookup logs in with verify-full TLS ----

@pytest.mark.parametrize("identifier", ["sbx-postgres", "sbx-mariadb"])
def test_token_from_the_lookup_logs_in_with_verify_full(sandbox, tmp_path, playbook_runner, identifier):
    db_user = "lk_login_" + identifier.split("-")[1]
    iam_name = "lk-login-" + identifier
    restore = enable_iam_auth(sandbox, identifier)
    try:
        keys = iam_user_with_policy(sandbox, iam_name, [allow_connect(connect_arn(sandbox, identifier, db_user))])
        create_db_user(sandbox, identifier, db_user)
        env = sandbox_aws_env(sandbox, tmp_path / "xdg-cache", AWS_ACCESS_KEY_ID=keys["access_key_id"],
                              AWS_SECRET_ACCESS_KEY=keys["secret_access_key"])
        target = sandbox.target(identifier)
        out = tmp_path / "db.json"
        expression = "lookup('%s', endpoint='%s', port=%s, db_user='%s', output='dict', ca_cert='%s')" % (
            LOOKUP, target["endpoint"], target["port"], db_user, sandbox.ca_cert)
        run = playbook_runner(play(save_lookup("mint", expression, out)), env=env)
        assert run.rc == 0, run.stdout + run.stderr
        db = json.loads(out.read_text())
        assert (db["host"], db["port"], db["user"], db["ssl_mode"], db["ca_cert"]) == (
            target["endpoint"], target["port"], db_user, "verify-full", sandbox.ca_cert)
        assert login(sandbox, identifier, db["user"], db["password"]) == db_user
    finally:
        drop_db_user(sandbox, identifier, db_user)
        delete_iam_user(sandbox, iam_name)
        restore()
