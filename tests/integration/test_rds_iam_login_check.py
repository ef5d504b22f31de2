"""rds_iam_login_check against the sandbox: real tokens checked by the sandbox's verifier on PostgreSQL and MariaDB,
IAM users and roles in moto, assume-role with session tags, many users per call, check mode and -vvvv output.

The IAM principals, policies and database users are set up with sandbox/iam_login.py (boto3 and the master login), which
shares no code with the module; the verifier's refusal log says independently why a login was refused.
"""
import os

import pytest

from sandbox.iam_login import (
    allow_connect,
    auth_error_log,
    connect_arn,
    create_db_user,
    delete_iam_user,
    delete_role,
    drop_db_user,
    enable_iam_auth,
    iam_user_with_policy,
    refusals_for,
    role_with_policy,
)

MODULE = "rds_iam_login_check"
TARGETS = ["sbx-postgres", "sbx-mariadb"]
MANY = [f"lc_many_{number:02d}" for number in range(50)]


@pytest.fixture(autouse=True)
def no_ambient_aws_profile(monkeypatch):
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def iam_targets(sandbox):
    """IAM auth on for both targets, users lc_ok and lc_noperm on each, and an IAM user allowed only lc_ok."""
    restores = [enable_iam_auth(sandbox, identifier) for identifier in TARGETS]
    for identifier in TARGETS:
        for user in ("lc_ok", "lc_noperm"):
            create_db_user(sandbox, identifier, user)
    # It may also assume this file's roles: their trust policies name the account, so its own policy must allow it.
    assume = {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"],
              "Resource": f"arn:aws:iam::{sandbox.state['operator']['account_id']}:role/lc-*"}
    keys = iam_user_with_policy(sandbox, "lc-checker", [allow_connect(*(connect_arn(sandbox, identifier, "lc_ok")
                                                                        for identifier in TARGETS)), assume])
    yield keys
    delete_iam_user(sandbox, "lc-checker")
    for identifier in TARGETS:
        for user in ("lc_ok", "lc_noperm"):
            drop_db_user(sandbox, identifier, user)
    for restore in restores:
        restore()


def aws_env(sandbox, keys):
    """Only the sandbox's AWS settings, with these access keys (no profile, no instance metadata)."""
    return dict(sandbox.aws_env(), AWS_ACCESS_KEY_ID=keys["access_key_id"], AWS_SECRET_ACCESS_KEY=keys["secret_access_key"],
                AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)


def target_args(sandbox, identifier, **extra):
    target = sandbox.target(identifier)
    args = {"endpoint": target["endpoint"], "login_host": target["login_host"], "login_port": target["login_port"],
            "ca_cert": sandbox.ca_cert}
    args.update(extra)
    return args


def check(sandbox, module_runner, keys, identifier, db_users, _check=False, **extra):
    """Run the module on one target with these keys; the result, failed or not."""
    return module_runner(MODULE, target_args(sandbox, identifier, db_users=db_users, **extra), env=aws_env(sandbox, keys),
                         check=_check)


def by_user(result):
    return {entry["db_user"]: entry for entry in result["logins"]}


@pytest.mark.parametrize("identifier", TARGETS)
def test_allowed_user_logs_in_as_itself_and_one_without_permission_fails_with_the_reason(
        sandbox, iam_targets, module_runner, identifier):
    before = len(auth_error_log(sandbox))
    result = check(sandbox, module_runner, iam_targets, identifier, ["lc_ok", "lc_noperm"])

    assert result["failed"] is True and result["changed"] is False and result["failed_users"] == ["lc_noperm"]
    ok, noperm = by_user(result)["lc_ok"], by_user(result)["lc_noperm"]
    expected_user = "lc_ok" if identifier == "sbx-postgres" else "lc_ok@%"
    assert (ok["logged_in"], ok["current_user"], ok["error"], ok["refused"]) == (True, expected_user, None, False)
    assert ok["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert (noperm["logged_in"], noperm["refused"], noperm["current_user"]) == (False, True, None)
    assert ("PAM authentication failed" if identifier == "sbx-postgres" else "Access denied for user 'lc_noperm'") in noperm["error"]
    endpoint = sandbox.target(identifier)["endpoint"]
    assert result["msg"].startswith(f"1 of 2 IAM logins to {endpoint}:{sandbox.target(identifier)['port']} failed.")
    principal = f"dbuser:RESOURCE_ID/lc_noperm for the IAM principal of access key {iam_targets['access_key_id']}"
    assert "'lc_noperm'" in result["msg"] and principal in result["msg"]
    # The verifier refused lc_noperm for the reason the message points at, and lc_ok not at all.
    reasons = [entry["reason"] for entry in refusals_for(sandbox, identifier, "lc_noperm", since=before)]
    assert reasons and all("no policy allows rds-db:connect" in reason for reason in reasons)
    assert not refusals_for(sandbox, identifier, "lc_ok", since=before)


@pytest.mark.parametrize("identifier", TARGETS)
def test_only_allowed_users_pass_and_check_mode_logs_in_too(sandbox, iam_targets, module_runner, identifier):
    result = check(sandbox, module_runner, iam_targets, identifier, ["lc_ok"], _check=True)
    assert "failed" not in result, result
    assert result["changed"] is False and result["failed_users"] == [] and by_user(result)["lc_ok"]["logged_in"] is True


@pytest.mark.parametrize("identifier", TARGETS)
def test_expect_failure_passes_when_refused_and_fails_when_the_login_works(sandbox, iam_targets, module_runner, identifier):
    gone = check(sandbox, module_runner, iam_targets, identifier, ["lc_noperm", "lc_never_created"], expect="failure")
    assert "failed" not in gone, gone
    assert gone["failed_users"] == [] and all(entry["refused"] and not entry["logged_in"] for entry in gone["logins"])

    still = check(sandbox, module_runner, iam_targets, identifier, ["lc_noperm", "lc_ok"], expect="failure")
    assert still["failed"] is True and still["failed_users"] == ["lc_ok"]
    assert "is not proven gone for 1 of 2 users" in still["msg"] and "'lc_ok': logged in as lc_ok" in still["msg"]
    assert "These logins still work" in still["msg"]


def test_expect_failure_is_not_fooled_by_a_target_that_does_not_answer(sandbox, iam_targets, module_runner):
    result = check(sandbox, module_runner, iam_targets, "sbx-postgres", ["lc_noperm", "lc_ok"], expect="failure",
                   engine="postgres", login_port=1, endpoint_port=sandbox.target("sbx-postgres")["port"], connect_timeout=3)
    assert result["failed"] is True and result["failed_users"] == ["lc_noperm", "lc_ok"]
    assert "Connection refused" in by_user(result)["lc_noperm"]["error"]
    assert by_user(result)["lc_ok"]["error"].startswith("not tried: the login of lc_noperm already failed")
    assert "Only a refusal by the server proves that access is gone" in result["msg"]


def test_iam_auth_off_on_the_target_refuses_even_an_allowed_user(sandbox, iam_targets, module_runner):
    restore = enable_iam_auth(sandbox, "sbx-postgres", enabled=False)
    try:
        result = check(sandbox, module_runner, iam_targets, "sbx-postgres", ["lc_ok"])
    finally:
        restore()
    assert result["failed"] is True and result["failed_users"] == ["lc_ok"]
    assert "PAM authentication failed" in by_user(result)["lc_ok"]["error"]
    assert "turn IAM database authentication on for the target (rds_iam_auth)" in result["msg"]


@pytest.mark.parametrize("identifier", TARGETS)
def test_assume_role_with_session_tags_logs_in_as_the_tagged_principal(sandbox, iam_targets, module_runner, identifier):
    role = "lc-abac-" + identifier
    role_arn = role_with_policy(sandbox, role, [allow_connect(connect_arn(sandbox, identifier, "${aws:PrincipalTag/userName}"))])
    try:
        # The base credentials alone may log in as lc_ok only; as the tagged role session, lc_noperm logs in.
        direct = check(sandbox, module_runner, iam_targets, identifier, ["lc_noperm"])
        assert direct["failed_users"] == ["lc_noperm"]
        tagged = dict(assume_role_arn=role_arn, role_session_name="lc-check", session_tags={"userName": "lc_noperm"},
                      credential_cache=False)
        result = check(sandbox, module_runner, iam_targets, identifier, ["lc_noperm", "lc_ok"], **tagged)
        assert result["failed_users"] == ["lc_ok"], result
        assert by_user(result)["lc_noperm"]["logged_in"] is True
        assert f"for the role {role_arn}" in result["msg"]
    finally:
        delete_role(sandbox, role)


def test_fifty_users_in_one_call(sandbox, iam_targets, module_runner):
    role = "lc-many"
    role_arn = role_with_policy(sandbox, role, [allow_connect(connect_arn(sandbox, "sbx-postgres", "lc_many_*"))])
    for user in MANY:
        create_db_user(sandbox, "sbx-postgres", user)
    try:
        result = check(sandbox, module_runner, iam_targets, "sbx-postgres", MANY + ["lc_ok"], assume_role_arn=role_arn)
    finally:
        for user in MANY:
            drop_db_user(sandbox, "sbx-postgres", user)
        delete_role(sandbox, role)
    assert result["failed_users"] == ["lc_ok"], result.get("msg")
    assert [entry["db_user"] for entry in result["logins"]] == MANY + ["lc_ok"]
    assert all(entry["logged_in"] and entry["current_user"] == entry["db_user"] for entry in result["logins"][:50])


def fleet_targets(sandbox, module_runner):
    """Both targets as rds_iam_fleet_info returns them, and the login_overrides that reach their servers."""
    targets = module_runner("rds_iam_fleet_info", {"identifiers": TARGETS}, env=sandbox.aws_env())["targets"]
    overrides = {identifier: {"login_host": sandbox.target(identifier)["login_host"], "login_port": sandbox.target(identifier)["login_port"]}
                 for identifier in TARGETS}
    return sorted(targets, key=lambda target: TARGETS.index(target["identifier"])), overrides


def test_one_run_proves_the_users_on_many_targets_and_fails_only_the_targets_whose_logins_fail(sandbox, iam_targets, module_runner):
    targets, overrides = fleet_targets(sandbox, module_runner)
    env = aws_env(sandbox, iam_targets)
    passed = module_runner(MODULE, {"targets": targets, "login_overrides": overrides, "db_users": ["lc_ok"], "ca_cert": sandbox.ca_cert},
                           env=env)
    assert passed.get("failed") is not True and passed["changed"] is False, passed.get("msg")
    assert [(entry["identifier"], entry["failed_users"]) for entry in passed["results"]] == [(identifier, []) for identifier in TARGETS]
    assert [by_user(entry)["lc_ok"]["current_user"] for entry in passed["results"]] == ["lc_ok", "lc_ok@%"]
    assert [entry["endpoint"] for entry in passed["results"]] == [sandbox.target(identifier)["endpoint"] for identifier in TARGETS]

    # A target that does not answer fails alone, and is not tried again; the other is still proven.
    closed = dict(overrides, **{"sbx-postgres": {"login_host": "127.0.0.1", "login_port": 1}})
    mixed = module_runner(MODULE, {"targets": targets, "login_overrides": closed, "db_users": ["lc_ok", "lc_noperm"],
                                   "ca_cert": sandbox.ca_cert, "retries": 2, "retry_delay": 0}, env=env)
    assert mixed["failed"] is True
    pg, maria = mixed["results"]
    assert (pg["failed"], pg["failed_users"]) == (True, ["lc_ok", "lc_noperm"])
    assert "Connection refused" in by_user(pg)["lc_ok"]["error"] and by_user(pg)["lc_noperm"]["error"].startswith("not tried:")
    assert (maria["failed"], maria["failed_users"], by_user(maria)["lc_ok"]["logged_in"]) == (True, ["lc_noperm"], True)
    assert "Access denied for user 'lc_noperm'" in by_user(maria)["lc_noperm"]["error"]
    assert mixed["msg"].startswith("0 of 2 targets changed; 2 failed: instance sbx-postgres: 2 of 2 IAM logins to ")
    assert "instance sbx-mariadb: 1 of 2 IAM logins to " in mixed["msg"]


@pytest.mark.parametrize("extra, message", [
    ({"endpoint": "db.example.com"}, "parameters are mutually exclusive: targets|endpoint"),
    ({"login_overrides": {"sbx-postgres": {"host": "127.0.0.1"}}}, "login_overrides['sbx-postgres'] is"),
])
def test_many_targets_refuse_what_each_target_brings_itself_and_overrides_that_are_not_host_and_port(
        sandbox, iam_targets, module_runner, extra, message):
    targets, _overrides = fleet_targets(sandbox, module_runner)
    result = module_runner(MODULE, dict({"targets": targets, "db_users": ["lc_ok"]}, **extra), env=aws_env(sandbox, iam_targets))
    assert result["failed"] is True and message in result["msg"], result["msg"]


def test_vvvv_output_never_contains_a_token(sandbox, iam_targets, playbook_runner, module_runner):
    tasks = [{"name": f"check {identifier}", "rdsiam.auth.rds_iam_login_check": target_args(sandbox, identifier,
                                                                                            db_users=["lc_ok", "lc_noperm"]),
              "ignore_errors": True, "register": "checked"} for identifier in TARGETS]
    targets, overrides = fleet_targets(sandbox, module_runner)
    tasks.append({"name": "check both", "ignore_errors": True, "rdsiam.auth.rds_iam_login_check": {
        "targets": targets, "login_overrides": overrides, "db_users": ["lc_ok", "lc_noperm"], "ca_cert": sandbox.ca_cert}})
    run = playbook_runner([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}],
                          env=aws_env(sandbox, iam_targets), verbosity=4)
    assert run.rc == 0, run.stdout + run.stderr
    for identifier in TARGETS:
        result = run.task(f"check {identifier}")["result"]
        assert result["failed_users"] == ["lc_noperm"] and by_user(result)["lc_ok"]["logged_in"] is True
    both = run.task("check both")["result"]["results"]
    assert [entry["failed_users"] for entry in both] == [["lc_noperm"], ["lc_noperm"]]
    shown = run.stdout + run.stderr
    assert "lc_noperm" in shown and "PAM authentication failed" in shown  # the output is there ...
    for secret in ("X-Amz-Signature", "X-Amz-Credential", "Action=connect", iam_targets["secret_access_key"]):
        assert secret not in shown  # ... and no token or key in it
