"""onboard_user.yml and offboard_user.yml against the whole sandbox fleet: real servers, real IAM, real token logins.

Each test onboards its own database users and its own IAM role, and the module fixture puts the fleet's IAM flags
back as they were, so the other test files see the sandbox they expect.
"""
import json
import os
import sys

import ansible_runner
import pytest

from sandbox.iam_login import admin_connection, assume_role, login_error, mint_token
from sandbox.iam_login import assert_login
from tests.integration.support.harness import ansible_env
from tests.integration.support.onboard import FLEET, GRANTS, onboarding_person, playbook_vars


@pytest.fixture
def person(sandbox, fleet_flags):  # pylint: disable=unused-argument
    with onboarding_person(sandbox, "pb") as fresh:
        yield fresh


def _run(sandbox, playbook_runner, name, values):
    return playbook_runner(f"rdsiam.auth.{name}", extra_vars=values, env=sandbox.aws_env())


def _rows(report):
    return {(row["target"], row["user"]): row for row in json.loads(report.read_text())["rows"]}


def _token_as(sandbox, person, identifier, user):
    credentials = assume_role(sandbox, person["role_arn"], "pb-check")
    return mint_token(credentials, sandbox.target(identifier), user)


def _pg_can_login(sandbox, identifier, user):
    conn = admin_connection(sandbox, identifier)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (user,))
            row = cur.fetchone()
    finally:
        conn.close()
    return None if row is None else row[0]


def test_onboard_proves_every_login_and_a_second_run_changes_nothing(sandbox, person, playbook_runner, tmp_path):
    values, report = playbook_vars(sandbox, person, tmp_path)
    first = _run(sandbox, playbook_runner, "onboard_user", values)
    assert first.rc == 0, first.stdout[-4000:]
    rows = _rows(report)
    assert sorted(rows) == sorted((target, user) for target in FLEET for user in person["users"])
    for row in rows.values():
        assert row["iam_auth"] == "on" and row["login"].startswith("yes (TLS") and not row["failed"], row
        assert "created" in row["changed"] and row["policy"].startswith("rdsiam-pb_")
    # The proof is real: a token minted now as the person's role logs in everywhere.
    for identifier in FLEET:
        assert_login(sandbox, identifier, person["users"][0], _token_as(sandbox, person, identifier, person["users"][0]))
    # The IAM side: one policy per database user, attached to the role, naming exactly the four targets.
    iam = sandbox.moto().client("iam")
    attached = {p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=person["role"])["AttachedPolicies"]}
    assert attached == {f"rdsiam-{user}" for user in person["users"]}

    second = _run(sandbox, playbook_runner, "onboard_user", values)
    assert second.rc == 0, second.stdout[-4000:]
    changed = [(entry["host"], entry["task"]) for entry in second.results if entry["status"] == "changed"]
    assert changed == []
    assert {row["changed"] for row in _rows(report).values()} == {"nothing"}


def test_offboard_removes_iam_first_then_the_user_and_onboarding_restores_it(sandbox, person, playbook_runner, tmp_path):
    values, report = playbook_vars(sandbox, person, tmp_path)
    assert _run(sandbox, playbook_runner, "onboard_user", values).rc == 0
    user = person["users"][0]
    offboard = _run(sandbox, playbook_runner, "offboard_user", values)
    assert offboard.rc == 0, offboard.stdout[-4000:]
    for (target, row_user), row in _rows(report).items():
        assert row["login"] == "refused, as expected" and row["policy"].startswith("removed "), row
        assert "dropped" in row["changed"]
    iam = sandbox.moto().client("iam")
    assert iam.list_attached_role_policies(RoleName=person["role"])["AttachedPolicies"] == []
    assert _pg_can_login(sandbox, "sbx-postgres", user) is None
    assert login_error(sandbox, "sbx-mariadb", user, _token_as(sandbox, person, "sbx-mariadb", user))

    again = _run(sandbox, playbook_runner, "onboard_user", values)
    assert again.rc == 0, again.stdout[-4000:]
    assert all(row["login"].startswith("yes") for row in _rows(report).values())
    assert_login(sandbox, "sbx-aurora-pg", user, _token_as(sandbox, person, "sbx-aurora-pg", user))


def test_offboard_lock_keeps_the_user_and_onboarding_unlocks_it(sandbox, person, playbook_runner, tmp_path):
    values, report = playbook_vars(sandbox, person, tmp_path)
    assert _run(sandbox, playbook_runner, "onboard_user", values).rc == 0
    user = person["users"][1]
    locked = _run(sandbox, playbook_runner, "offboard_user", dict(values, rdsiam_offboard_mode="lock"))
    assert locked.rc == 0, locked.stdout[-4000:]
    assert all("locked" in row["changed"] for row in _rows(report).values())
    assert _pg_can_login(sandbox, "sbx-postgres", user) is False
    # IAM alone would refuse now; the operator (allowed everything) shows the database refuses too.
    operator = {"access_key_id": sandbox.state["operator"]["access_key_id"],
                "secret_access_key": sandbox.state["operator"]["secret_access_key"]}
    assert login_error(sandbox, "sbx-mysql", user, mint_token(operator, sandbox.target("sbx-mysql"), user))

    assert _run(sandbox, playbook_runner, "onboard_user", values).rc == 0
    assert _pg_can_login(sandbox, "sbx-postgres", user) is True
    assert_login(sandbox, "sbx-mysql", user, _token_as(sandbox, person, "sbx-mysql", user))


def test_a_target_that_is_down_fails_alone_and_is_named(sandbox, person, playbook_runner, tmp_path):
    values, report = playbook_vars(sandbox, person, tmp_path)
    with sandbox.stopped("sbx-mysql"):
        run = _run(sandbox, playbook_runner, "onboard_user", values)
    assert run.rc != 0
    failure = run.task("Fail if any target failed", "localhost")["result"]["msg"]
    assert failure.startswith("1 target(s) failed: sbx-mysql: Manage the IAM database users: could not connect to mysql")
    rows = _rows(report)
    for (target, _user), row in rows.items():
        if target == "sbx-mysql":
            assert row["failed"] and row["login"] == "not checked" and row["error"]
        else:
            assert not row["failed"] and row["login"].startswith("yes"), row
    assert "| FAILED at Manage the IAM database users" in run.stdout
    # Back up, a rerun converges the one that failed and leaves the others alone.
    rerun = _run(sandbox, playbook_runner, "onboard_user", values)
    assert rerun.rc == 0, rerun.stdout[-4000:]
    # The users and IAM flag steps are each one run for every target of the batch, reported on the batch's first host:
    # their entries say which target changed. The users changed, and nothing else did.
    changed = [entry for entry in rerun.results if entry["status"] == "changed"]
    assert "rdsiam.auth.onboard : Manage the IAM database users" in [entry["task"] for entry in changed]
    for entry in changed:
        assert entry["task"] in ("rdsiam.auth.onboard : Manage the IAM database users",
                                 "rdsiam.auth.onboard : Turn on IAM database authentication"), entry["task"]
        assert [target["identifier"] for target in entry["result"]["results"] if target["changed"]] == ["sbx-mysql"], entry


def test_offboard_a_target_that_is_down_fails_alone_and_the_others_are_proven_refused(sandbox, person, playbook_runner, tmp_path):
    values, report = playbook_vars(sandbox, person, tmp_path)
    assert _run(sandbox, playbook_runner, "onboard_user", values).rc == 0
    with sandbox.stopped("sbx-mariadb"):
        run = _run(sandbox, playbook_runner, "offboard_user", values)
    assert run.rc != 0
    failure = run.task("Fail if any target failed", "localhost")["result"]["msg"]
    assert failure.startswith("1 target(s) failed: sbx-mariadb: Drop or lock the database users: could not connect to mysql")
    for (target, _user), row in _rows(report).items():
        if target == "sbx-mariadb":
            assert row["failed"] and row["login"] == "not checked" and row["error"], row
        else:
            assert not row["failed"] and row["login"] == "refused, as expected" and "dropped" in row["changed"], row
    # Only the targets whose users were dropped had their refusal proven, in one run.
    proof = run.task("rdsiam.auth.offboard : Check that a fresh token no longer logs in")["result"]
    assert sorted(entry["identifier"] for entry in proof["results"]) == sorted(set(FLEET) - {"sbx-mariadb"})
    # The policies went first, for every target: the user left on the stopped target cannot get in either.
    assert login_error(sandbox, "sbx-mariadb", person["users"][0], _token_as(sandbox, person, "sbx-mariadb", person["users"][0]))


def test_bad_input_fails_before_any_target_is_touched(sandbox, person, playbook_runner, tmp_path):
    values, _report = playbook_vars(sandbox, person, tmp_path, rdsiam_grants={"postgres": {"role": ["x"]}})
    run = _run(sandbox, playbook_runner, "onboard_user", values)
    assert run.rc != 0
    assert "grants of the playbook for postgres have unknown keys role" in run.stdout
    assert not any(entry["host"] in FLEET for entry in run.results)
    missing = _run(sandbox, playbook_runner, "onboard_user", dict(values, rdsiam_grants=GRANTS,
                                                                  rdsiam_targets={"identifiers": ["sbx-postgres", "nope"]}))
    assert missing.rc != 0 and "nope not found" in missing.stdout
    assert not any(entry["host"] in FLEET for entry in missing.results)


def test_no_token_or_password_in_verbose_output(sandbox, person, playbook_runner, tmp_path):
    values, _report = playbook_vars(sandbox, person, tmp_path, rdsiam_targets={"identifiers": ["sbx-postgres", "sbx-mariadb"]})
    run = playbook_runner("rdsiam.auth.onboard_user", extra_vars=values, env=sandbox.aws_env(), verbosity=4)
    assert run.rc == 0, run.stdout[-4000:]
    output = run.stdout + run.stderr
    assert "X-Amz-Signature=" not in output and "X-Amz-Credential" not in output
    for identifier in ("sbx-postgres", "sbx-mariadb"):
        assert sandbox.target(identifier)["master_password"] not in output


def test_abac_policy_lets_the_session_tagged_with_the_user_in(sandbox, person, playbook_runner, tmp_path):
    user = person["users"][0]
    prefix = f"rdsiam-{person['role']}-"
    values, report = playbook_vars(sandbox, person, tmp_path, rdsiam_users=[user], rdsiam_policy_mode="abac",
                                   rdsiam_policy_prefix=prefix, rdsiam_verify_session_tags={"db_user": user},
                                   rdsiam_targets={"identifiers": ["sbx-postgres", "sbx-mariadb"]})
    iam = sandbox.moto().client("iam")
    policy_arn = f"arn:aws:iam::{sandbox.state['operator']['account_id']}:policy/{prefix}abac"
    try:
        run = _run(sandbox, playbook_runner, "onboard_user", values)
        assert run.rc == 0, run.stdout[-4000:]
        for row in _rows(report).values():
            assert row["policy"] == f"{prefix}abac (changed)" and row["login"].startswith("yes"), row
        document = iam.get_policy_version(PolicyArn=policy_arn, VersionId=iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"])
        assert "${aws:PrincipalTag/db_user}" in json.dumps(document["PolicyVersion"]["Document"])
        # A session tagged with another user gets nothing from the same policy.
        other = assume_role(sandbox, person["role_arn"], "pb-other", session_tags={"db_user": person["users"][1]})
        assert login_error(sandbox, "sbx-postgres", user, mint_token(other, sandbox.target("sbx-postgres"), user))
    finally:
        for attached in iam.list_attached_role_policies(RoleName=person["role"])["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=person["role"], PolicyArn=attached["PolicyArn"])
        try:
            iam.delete_policy(PolicyArn=policy_arn)
        except iam.exceptions.NoSuchEntityException:
            pass


def test_onboarding_under_ansible_runner_reports_each_target_in_its_job_events(sandbox, person, tmp_path):
    """AWX and Automation Platform run playbooks through ansible-runner and show what its job events say: each target's
    outcome, the summary, and a target that is down failing alone, all read here from the events, not from stdout."""
    values, _report = playbook_vars(sandbox, person, tmp_path)
    private = tmp_path / "runner"
    private.mkdir()
    env = ansible_env(dict(sandbox.aws_env(), PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]))
    with sandbox.stopped("sbx-mysql"):
        run = ansible_runner.run(private_data_dir=str(private), playbook="rdsiam.auth.onboard_user",
                                 inventory={"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}},
                                 extravars=values, envvars=env, quiet=True)
    events = list(run.events)
    assert (run.status, run.rc) == ("failed", 2)
    recorded = [(event["event_data"]["host"], event["event_data"]["res"]["ansible_facts"]["onboard_report"]) for event in events
                if event["event"] == "runner_on_ok" and event["event_data"]["task"] == "Record the outcome for the summary"]
    assert sorted(host for host, _rows in recorded) == sorted(FLEET)
    for host, rows in recorded:
        assert [(row["target"], row["user"]) for row in rows] == [(host, user) for user in person["users"]]
        if host == "sbx-mysql":
            assert all(row["failed"] and row["login"] == "not checked" and row["error"] for row in rows), rows
        else:
            assert all(not row["failed"] and row["login"].startswith("yes (TLS") for row in rows), rows
    failed = [(event["event_data"]["host"], event["event_data"]["task"], event["event_data"]["res"].get("msg", "")) for event in events
              if event["event"] == "runner_on_failed" and not event["event_data"].get("ignore_errors")]
    assert [(host, task) for host, task, _msg in failed] == [("localhost", "Fail if any target failed")]
    assert failed[0][2].startswith("1 target(s) failed: sbx-mysql: Manage the IAM database users: could not connect to mysql")
    summary = next(event["event_data"]["res"]["msg"] for event in events
                   if event["event"] == "runner_on_ok" and event["event_data"]["task"] == "Show the summary")
    assert sorted(line.split("|")[0].strip() for line in summary[2:]) == sorted(identifier for identifier in FLEET for _user in person["users"])
    stats = next(event["event_data"] for event in events if event["event"] == "playbook_on_stats")
    assert set(stats["processed"]) == {"localhost", *FLEET} and stats["failures"] == {"localhost": 1} and stats["dark"] == {}
    text = json.dumps(events) + run.stdout.read()
    assert "X-Amz-Signature=" not in text and "X-Amz-Credential" not in text
    for identifier in FLEET:
        assert sandbox.target(identifier)["master_password"] not in text
