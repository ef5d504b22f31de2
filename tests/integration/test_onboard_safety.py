"""onboard_user.yml and offboard_user.yml do no harm: bad input changes nothing, odd names work both ways, check mode
completes and changes nothing, and a failure after changes began still ends with the table.

What changed is read back without the collection: the catalogs with psycopg2 / PyMySQL, IAM with boto3 against moto,
the IAM flags with RDS describe calls.
"""
import hashlib
import json
import secrets
import threading
import time

import pytest

from tests.integration.support.db_user import my_all_accounts, pg_all_roles
from sandbox.iam_login import assert_login, assume_role, delete_role, drop_db_user, enable_iam_auth, engine_of, mint_token
from sandbox.iam_login import role_with_policy
from tests.integration.support.onboard import FLEET, GRANTS, playbook_vars

PREFIX = "rdsiam-"


@pytest.fixture
def person(sandbox, fleet_flags):  # pylint: disable=unused-argument
    """A fresh IAM role (the person) and two database users of their own, on a fleet with IAM auth off (so that turning it
    on is a change a test can see); whatever a test leaves is removed."""
    for identifier in FLEET:
        enable_iam_auth(sandbox, identifier, False)
    suffix = secrets.token_hex(3)
    role = f"pb-safe-{suffix}"
    arn = role_with_policy(sandbox, role, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rds:DescribeDBInstances", "Resource": "*"}]})
    person = {"role": role, "role_arn": arn, "users": [f"pb_ann_{suffix}", f"pb_ben_{suffix}"], "suffix": suffix}
    yield person
    iam = sandbox.moto().client("iam")
    delete_role(sandbox, role)
    for user in person["users"]:
        policy_arn = f"arn:aws:iam::{sandbox.state['operator']['account_id']}:policy/{expected_policy_name(user)}"
        try:
            for version in iam.list_policy_versions(PolicyArn=policy_arn)["Versions"]:
                if not version["IsDefaultVersion"]:
                    iam.delete_policy_version(PolicyArn=policy_arn, VersionId=version["VersionId"])
            iam.delete_policy(PolicyArn=policy_arn)
        except iam.exceptions.NoSuchEntityException:
            pass
    for identifier in FLEET:
        for user in person["users"]:
            try:
                drop_db_user(sandbox, identifier, user)
            except Exception:  # pylint: disable=broad-except
                pass  # too long for this engine: never created there


def expected_policy_name(user):
    """The derivation the docs promise, written out independently: the name as it is when IAM takes it, else its valid
    characters and the first 8 hex digits of the SHA-256 of the exact name."""
    name = PREFIX + user
    if all(char.isascii() and (char.isalnum() or char in "_+=,.@-") for char in name) and len(name) <= 128:
        return name
    kept = "".join(char if char.isascii() and (char.isalnum() or char in "_+=,.@-") else "'" for char in user)
    kept = "-".join(part for part in kept.split("'") if part)
    return f"{PREFIX}{kept}--{hashlib.sha256(user.encode()).hexdigest()[:8]}"


def _run(sandbox, playbook_runner, name, values, check=False):
    return playbook_runner(f"rdsiam.auth.{name}", extra_vars=values, env=sandbox.aws_env(), check=check)


def _rows(report):
    return {(row["target"], row["user"]): row for row in json.loads(report.read_text())["rows"]}


def _flags(sandbox):
    rds = sandbox.moto().client("rds")
    flags = {}
    for identifier in FLEET:
        if sandbox.target(identifier)["kind"] == "cluster":
            item = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
        else:
            item = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        flags[identifier] = item["IAMDatabaseAuthenticationEnabled"]
    return flags


def _iam(sandbox, role):
    iam = sandbox.moto().client("iam")
    policies = {policy["PolicyName"]: policy["DefaultVersionId"]
                for page in iam.get_paginator("list_policies").paginate(Scope="Local") for policy in page["Policies"]}
    attached = sorted(policy["PolicyName"] for policy in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"])
    return policies, attached


def _catalogs(sandbox):
    return {identifier: pg_all_roles(sandbox, identifier) if engine_of(sandbox.target(identifier)) == "postgres"
            else my_all_accounts(sandbox, identifier) for identifier in FLEET}


def _state(sandbox, person):
    """Everything a run could change: the catalogs, IAM's customer managed policies and the role's attachments, the flags."""
    return {"catalogs": _catalogs(sandbox), "iam": _iam(sandbox, person["role"]), "flags": _flags(sandbox)}


def _token_as(sandbox, person, identifier, user):
    return mint_token(assume_role(sandbox, person["role_arn"], "pb-safe"), sandbox.target(identifier), user)


@pytest.mark.parametrize("case", ["long name on a fleet with mysql", "missing principal", "name with a space"])
def test_bad_input_stops_the_run_before_anything_changes(sandbox, person, playbook_runner, tmp_path, case):
    long_name = "l" * 60 + person["suffix"] + "0000"  # 70 bytes: fits MariaDB (80), not MySQL (32) nor PostgreSQL (63)
    extra, expected = {
        "long name on a fleet with mysql": (
            {"rdsiam_users": [long_name, person["users"][0]]},
            [f"on mysql (sbx-mysql): user '{long_name}' is 70 characters long, more than the 32 characters a user name "
             "can have on mysql",
             f"on postgres (sbx-aurora-pg, sbx-postgres): user '{long_name}' is 70 bytes long"]),
        "missing principal": (
            {"rdsiam_principals": {"roles": [person["role"], f"pb-nobody-{person['suffix']}"]}},
            [f"role 'pb-nobody-{person['suffix']}' do not exist in IAM; nothing was changed"]),
        "name with a space": (
            {"rdsiam_users": [f"pb ann {person['suffix']}"]},
            ["contains whitespace or a control character, which no IAM token can name"]),
    }[case]
    values, report = playbook_vars(sandbox, person, tmp_path, **extra)
    before = _state(sandbox, person)
    run = _run(sandbox, playbook_runner, "onboard_user", values)
    assert run.rc != 0
    for text in expected:
        assert text in run.stdout, run.stdout[-4000:]
    assert [entry for entry in run.results if entry["status"] == "changed"] == []
    assert _state(sandbox, person) == before
    assert not report.exists()


@pytest.mark.parametrize("names", [("o'b", 'a"c')])
def test_names_iam_cannot_hold_are_onboarded_proven_and_offboarded(sandbox, person, playbook_runner, tmp_path, names):
    users = [f"{names[0]}_{person['suffix']}", f"{names[1]}_{person['suffix']}"]
    person["users"] = users
    values, report = playbook_vars(sandbox, person, tmp_path)
    run = _run(sandbox, playbook_runner, "onboard_user", values)
    assert run.rc == 0, run.stdout[-4000:]
    policies = {user: expected_policy_name(user) for user in users}
    assert all(name.endswith(hashlib.sha256(user.encode()).hexdigest()[:8]) for user, name in policies.items())
    for (target, user), row in _rows(report).items():
        assert row["login"].startswith("yes (TLS") and "created" in row["changed"], row
        assert row["policy"] == f"{policies[user]} (changed)", row
    # IAM holds the policies under the derived names, attached to the role, saying whose they are.
    iam = sandbox.moto().client("iam")
    account = sandbox.state["operator"]["account_id"]
    assert _iam(sandbox, person["role"])[1] == sorted(policies.values())
    for user, name in policies.items():
        policy = iam.get_policy(PolicyArn=f"arn:aws:iam::{account}:policy/{name}")["Policy"]
        assert policy["Description"] == f"rds-db:connect as database user {json.dumps(user)} (rdsiam.auth)"
    # A token minted now as the person's role logs in as each odd name.
    for identifier in ("sbx-postgres", "sbx-mariadb"):
        for user in users:
            assert_login(sandbox, identifier, user, _token_as(sandbox, person, identifier, user))

    offboard = _run(sandbox, playbook_runner, "offboard_user", values)
    assert offboard.rc == 0, offboard.stdout[-4000:]
    for row in _rows(report).values():
        assert row["login"] == "refused, as expected" and row["policy"].startswith("removed "), row
    assert not set(policies.values()) & set(_iam(sandbox, person["role"])[0])
    catalogs = _catalogs(sandbox)
    for identifier, accounts in catalogs.items():
        names_there = {key[0] if isinstance(key, tuple) else key for key in accounts}
        assert not set(users) & names_there, identifier


def test_check_mode_completes_with_the_table_and_changes_nothing(sandbox, person, playbook_runner, tmp_path):
    values, report = playbook_vars(sandbox, person, tmp_path)
    before = _state(sandbox, person)
    check = _run(sandbox, playbook_runner, "onboard_user", values, check=True)
    assert check.rc == 0, check.stdout[-4000:]
    assert _state(sandbox, person) == before
    assert "would change: IAM auth turned on, created" in check.stdout
    rows = _rows(report)
    assert sorted(rows) == sorted((target, user) for target in FLEET for user in person["users"])
    for (_target, user), row in rows.items():
        assert row["iam_auth"] == "would be on" and row["policy"] == f"rdsiam-{user} (would change)", row
        assert row["login"] == "not checked (check mode)" and row["changed"].startswith("would change: IAM auth turned on, created")
        assert not row["failed"]
    # No module was asked to log in: check mode created nobody.
    assert not any(entry["task"] == "Log in with a fresh IAM token as each user" and entry["status"] != "skipped"
                   for entry in check.results)

    assert _run(sandbox, playbook_runner, "onboard_user", values).rc == 0
    onboarded = _state(sandbox, person)
    check_off = _run(sandbox, playbook_runner, "offboard_user", values, check=True)
    assert check_off.rc == 0, check_off.stdout[-4000:]
    assert _state(sandbox, person) == onboarded
    for (_target, user), row in _rows(report).items():
        assert row["policy"] == f"would remove rdsiam-{user}" and row["changed"] == "would change: dropped", row
        assert row["login"] == "not checked (check mode)" and not row["failed"]
    # The users are still there and can still log in.
    assert_login(sandbox, "sbx-mysql", person["users"][0], _token_as(sandbox, person, "sbx-mysql", person["users"][0]))


def test_a_failure_after_changes_began_still_ends_with_the_table(sandbox, person, playbook_runner, tmp_path):
    """The person's role exists when the run checks its input and is deleted once the users exist: the policies cannot
    be attached, after every target changed."""
    values, report = playbook_vars(sandbox, person, tmp_path)
    user = person["users"][0]
    stop = threading.Event()

    def delete_the_role_once_the_user_exists():
        while not stop.is_set():
            if user in pg_all_roles(sandbox, "sbx-postgres"):
                delete_role(sandbox, person["role"])
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=delete_the_role_once_the_user_exists, daemon=True)
    watcher.start()
    try:
        run = _run(sandbox, playbook_runner, "onboard_user", values)
    finally:
        stop.set()
        watcher.join()
    assert run.rc != 0
    assert "Show the summary" in [entry["task"] for entry in run.results], run.stdout[-4000:]
    failure = run.task("Fail if any target failed", "localhost")["result"]["msg"]
    assert failure.startswith("4 target(s) failed: "), failure
    rows = _rows(report)
    assert sorted(rows) == sorted((target, name) for target in FLEET for name in person["users"])
    for (_target, name), row in rows.items():
        assert row["failed"] and row["step"] == "Write the rds-db:connect policies", row
        assert row["changed"].startswith("FAILED at Write the rds-db:connect policies (done: IAM auth turned on, created"), row
        assert f"role '{person['role']}' do not exist in IAM" in row["error"]
        assert row["policy"] == f"rdsiam-{name} (not written)" and row["login"] == "not checked", row
    assert "| FAILED at Write the rds-db:connect policies (done: IAM auth turned on, created" in run.stdout


def test_a_target_whose_server_refuses_the_grants_is_left_as_it_was(sandbox, person, playbook_runner, tmp_path):
    """A role only the server can say is missing: the PostgreSQL targets refuse before writing, flag included, while
    the others are onboarded; the table says which is which."""
    missing = f"pb_no_such_role_{person['suffix']}"
    values, report = playbook_vars(sandbox, person, tmp_path, rdsiam_grants=dict(GRANTS, postgres={"roles": [missing]}))
    before = _state(sandbox, person)
    run = _run(sandbox, playbook_runner, "onboard_user", values)
    assert run.rc != 0
    after = _state(sandbox, person)
    for identifier in ("sbx-postgres", "sbx-aurora-pg"):
        assert after["catalogs"][identifier] == before["catalogs"][identifier]
        assert after["flags"][identifier] is False
    assert after["flags"]["sbx-mariadb"] is True and after["flags"]["sbx-mysql"] is True
    for (target, _user), row in _rows(report).items():
        if target in ("sbx-postgres", "sbx-aurora-pg"):
            assert row["failed"] and row["changed"] == "FAILED at Manage the IAM database users", row
            assert missing in row["error"] and row["iam_auth"] == "off", row
        else:
            assert not row["failed"] and row["login"].startswith("yes (TLS"), row
