"""Cross-account monitoring as docs/cross-account.md sets it up, run from the document's own files.

The management account's `monitoring` role assumes the database account's `pg-monitor-role` through the lookup,
whose tokens log in as `pgmonitor` (a member of pg_monitor) on both PostgreSQL targets of the sandbox; the same
session is refused as any other user, a token of the management account itself is refused, and a management role
the trust policy does not name cannot assume the role at all. Logins are checked with the reference client and
the sandbox's verifier (sandbox/iam_login.py), which share no code with the collection.
"""
import json
import os
import pathlib
import re

import pytest
import yaml

from sandbox import fleet, reference_client
from sandbox.iam_login import create_db_user, delete_role, drop_db_user, enable_iam_auth, login_error, refusals_for
from tests.integration.support import accounts
from tests.integration.support.harness import run_playbook

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "cross-account.md"
LOOKUP = "rdsiam.auth.rds_iam_token"
PG_TARGETS = ("sbx-postgres", "sbx-aurora-pg")
MONITOR_ROLE, MONITORING, OTHER_TEAM = "pg-monitor-role", "monitoring", "xa-other-team"
POLICY = "rdsiam-pgmonitor"
OTHER_USER = "xa_other"  # an IAM database user pg-monitor-role has no grant for
MARKER = "xa-visible-to-pg-monitor"


def doc_files():
    """{file name: content} of the blocks docs/cross-account.md marks with <!-- file: NAME -->."""
    found = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)\n```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    return dict(found)


def lookup_env(sandbox, keys, tmp_path):
    """Only these credentials and the sandbox's endpoint reach ansible-playbook (no profile, no instance metadata)."""
    env = dict(sandbox.aws_env(), AWS_ACCESS_KEY_ID=keys["access_key_id"], AWS_SECRET_ACCESS_KEY=keys["secret_access_key"],
               XDG_CACHE_HOME=str(tmp_path / "xdg-cache"), AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    if keys.get("session_token"):
        env["AWS_SESSION_TOKEN"] = keys["session_token"]
    return env


@pytest.fixture(scope="module")
def setup(sandbox, tmp_path_factory):
    """The set-up of docs/cross-account.md, from its files, in both accounts; undone afterwards."""
    files = doc_files()
    assert sorted(files) == ["monitoring-assume.json", "pg-monitor-trust.json", "pgmonitor-policy.yml", "pgmonitor.yml"]
    workdir = tmp_path_factory.mktemp("cross-account")
    restores = [enable_iam_auth(sandbox, identifier, False) for identifier in PG_TARGETS]
    iam = sandbox.moto().client("iam")
    try:
        # 1. the management account: the monitoring role, allowed to assume the role over there; a role that is not named
        monitoring = accounts.management_role(sandbox, MONITORING, json.loads(files["monitoring-assume.json"])["Statement"])
        other_team = accounts.management_role(sandbox, OTHER_TEAM, [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}])
        # 2. the database account: pg-monitor-role and its trust policy
        role_arn = iam.create_role(RoleName=MONITOR_ROLE, AssumeRolePolicyDocument=files["pg-monitor-trust.json"])["Role"]["Arn"]
        # 3. the onboarding playbook with the document's vars file, the sandbox's own vars on top (as -e @vars.yml)
        values = dict(yaml.safe_load(files["pgmonitor.yml"]), **sandbox_vars(sandbox))
        onboard = run_playbook("rdsiam.auth.onboard_user", workdir, extra_vars=values, env=sandbox.aws_env())
        assert onboard.rc == 0, onboard.stdout + onboard.stderr
        # 4. the account-wide policy, the document's playbook as it is
        (workdir / "pgmonitor-policy.yml").write_text(files["pgmonitor-policy.yml"])
        policy = run_playbook(workdir / "pgmonitor-policy.yml", workdir, env=sandbox.aws_env())
        assert policy.rc == 0, policy.stdout + policy.stderr
        for identifier in PG_TARGETS:
            create_db_user(sandbox, identifier, OTHER_USER)
        yield {"role_arn": role_arn, "monitoring": monitoring, "other_team": other_team}
    finally:
        for identifier in PG_TARGETS:
            drop_db_user(sandbox, identifier, OTHER_USER)
            drop_db_user(sandbox, identifier, "pgmonitor")
        delete_role(sandbox, MONITOR_ROLE)
        for found in iam.list_policies(Scope="Local")["Policies"]:
            if found["PolicyName"] == POLICY:
                iam.delete_policy(PolicyArn=found["Arn"])
        accounts.delete_management_role(sandbox, MONITORING)
        accounts.delete_management_role(sandbox, OTHER_TEAM)
        for restore in restores:
            restore()


def sandbox_vars(sandbox):
    """What the sandbox's vars.yml gives every playbook: where AWS and each target really are, and the CA."""
    return {"rdsiam_aws": {"region": sandbox.region, "endpoint_url": sandbox.moto_url}, "rdsiam_ca_cert": sandbox.ca_cert,
            "rdsiam_login_overrides": {target["identifier"]: {"login_host": target["login_host"], "login_port": target["login_port"]}
                                       for target in sandbox.state["targets"]}}


@pytest.fixture(scope="module")
def monitoring_keys(sandbox, setup):
    """Credentials of a session of the management account's monitoring role, as its monitoring host holds them."""
    return accounts.assume_role_as(sandbox, accounts.management(sandbox), setup["monitoring"], "collector")


def lookup_expression(sandbox, identifier, db_user, **options):
    target = sandbox.target(identifier)
    extra = "".join(f", {name}='{value}'" for name, value in options.items())
    return "lookup('%s', endpoint='%s', port=%s, db_user='%s', output='dict', ca_cert='%s'%s)" % (
        LOOKUP, target["endpoint"], target["port"], db_user, sandbox.ca_cert, extra)


def mint(sandbox, playbook_runner, tmp_path, keys, identifier, db_user, **options):
    """The lookup's output=dict for db_user on a target, run by ansible-playbook with keys; (run, dict or None)."""
    out = tmp_path / f"{identifier}-{db_user}.json"
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"name": "mint", "ansible.builtin.copy": {"content": "{{ %s | to_json }}" % lookup_expression(sandbox, identifier, db_user, **options),
                                                  "dest": str(out), "mode": "0600"}, "no_log": True}]}]
    run = playbook_runner(play, env=lookup_env(sandbox, keys, tmp_path))
    return run, (json.loads(out.read_text()) if run.rc == 0 else None)


def test_the_document_writes_one_grant_for_every_target_of_the_account(sandbox, setup):  # pylint: disable=unused-argument
    iam = sandbox.moto().client("iam")
    attached = iam.list_attached_role_policies(RoleName=MONITOR_ROLE)["AttachedPolicies"]
    assert [policy["PolicyName"] for policy in attached] == [POLICY]
    found = iam.get_policy(PolicyArn=attached[0]["PolicyArn"])["Policy"]
    document = iam.get_policy_version(PolicyArn=found["Arn"], VersionId=found["DefaultVersionId"])["PolicyVersion"]["Document"]
    account = sandbox.state["operator"]["account_id"]
    resources = [resource for statement in document["Statement"] for resource in
                 ([statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"])]
    assert resources == [f"arn:aws:rds-db:{sandbox.region}:{account}:dbuser:*/pgmonitor"]


@pytest.mark.parametrize("identifier", PG_TARGETS)
def test_the_monitoring_role_logs_in_as_pgmonitor_through_the_role_and_sees_every_session(
        sandbox, setup, monitoring_keys, playbook_runner, tmp_path, identifier):
    run, db = mint(sandbox, playbook_runner, tmp_path, monitoring_keys, identifier, "pgmonitor",
                   assume_role_arn=setup["role_arn"], role_session_name="pg-monitor")
    assert run.rc == 0, run.stdout + run.stderr
    assert db["password"] not in run.stdout + run.stderr
    # The token is signed by a session of the database account's role, not by the management account's keys.
    signer = accounts.credentials_of(sandbox, db["password"])
    assert (signer["type"], signer["account_id"], signer["role_arn"]) == ("assumed-role", fleet_account(sandbox), setup["role_arn"])
    target = sandbox.target(identifier)
    master = reference_client.connect(target, target["master_username"], target["master_password"], sandbox.ca_cert, autocommit=True)
    try:
        with master.cursor() as cur:
            cur.execute("SELECT %s", (MARKER,))  # another role's session, its last query the marker
        conn = reference_client.connect(target, db["user"], db["password"], sandbox.ca_cert, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_user, pg_has_role('pg_monitor', 'USAGE')")
                assert cur.fetchone() == ("pgmonitor", True)
                cur.execute("SELECT count(*) FROM pg_stat_activity")
                total = cur.fetchone()[0]
                # pg_monitor shows other roles' sessions in full: their query text, not "<insufficient privilege>".
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND query = %s",
                            (target["master_username"], f"SELECT '{MARKER}'"))
                visible = cur.fetchone()[0]
        finally:
            conn.close()
    finally:
        master.close()
    assert total >= 2 and visible == 1


@pytest.mark.parametrize("identifier", PG_TARGETS)
def test_the_same_session_is_refused_as_any_other_user(sandbox, setup, monitoring_keys, playbook_runner, tmp_path, identifier):
    run, db = mint(sandbox, playbook_runner, tmp_path, monitoring_keys, identifier, OTHER_USER,
                   assume_role_arn=setup["role_arn"], role_session_name="pg-monitor")
    assert run.rc == 0, run.stdout + run.stderr  # the lookup signs anything; the database decides
    since = len(refusals_for(sandbox, identifier, OTHER_USER))
    login_error(sandbox, identifier, OTHER_USER, db["password"])
    reasons = [entry["reason"] for entry in refusals_for(sandbox, identifier, OTHER_USER)[since:]]
    resource = f"arn:aws:rds-db:{sandbox.region}:{fleet_account(sandbox)}:dbuser:{sandbox.target(identifier)['resource_id']}/{OTHER_USER}"
    assert reasons and all(f"no policy allows rds-db:connect on {resource}" in reason for reason in reasons), reasons


def test_a_token_signed_by_the_management_account_itself_is_refused(
        sandbox, setup, monitoring_keys, playbook_runner, tmp_path):  # pylint: disable=unused-argument
    identifier = "sbx-postgres"
    run, db = mint(sandbox, playbook_runner, tmp_path, monitoring_keys, identifier, "pgmonitor")
    assert run.rc == 0, run.stdout + run.stderr
    assert accounts.credentials_of(sandbox, db["password"])["account_id"] == fleet.MANAGEMENT_ACCOUNT
    since = len(refusals_for(sandbox, identifier, "pgmonitor"))
    login_error(sandbox, identifier, "pgmonitor", db["password"])
    reasons = [entry["reason"] for entry in refusals_for(sandbox, identifier, "pgmonitor")[since:]]
    assert reasons and all(f"is in account {fleet.MANAGEMENT_ACCOUNT}, not the account of {identifier}" in reason
                           for reason in reasons), reasons


def test_a_management_role_the_trust_policy_does_not_name_cannot_assume_the_role(sandbox, setup, playbook_runner, tmp_path):
    keys = accounts.assume_role_as(sandbox, accounts.management(sandbox), setup["other_team"], "intruder")
    expression = lookup_expression(sandbox, "sbx-postgres", "pgmonitor", assume_role_arn=setup["role_arn"], role_session_name="pg-monitor")
    # Not no_log, so that the error shows; were a token minted after all, only its length would be shown.
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"name": "mint", "ansible.builtin.debug": {"msg": "{{ (%s).password | length }}" % expression}}]}]
    run = playbook_runner(play, env=lookup_env(sandbox, keys, tmp_path))
    assert run.rc != 0
    message = run.task("mint")["result"]["msg"]
    assert (f"User: arn:aws:sts::{fleet.MANAGEMENT_ACCOUNT}:assumed-role/{OTHER_TEAM}/intruder is not authorized to perform: "
            f"sts:AssumeRole on resource: {setup['role_arn']}") in message, message


def fleet_account(sandbox):
    return sandbox.state["operator"]["account_id"]
