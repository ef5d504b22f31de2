"""rds_iam_auth against the sandbox's moto: instances and Aurora clusters, check mode, diff,
idempotence, the maintenance window, waiting and its timeout, refused engines, no leaked secrets.

Every test works on instances and clusters it creates itself (unique names), so the shared
sandbox fleet other test files rely on is never touched.
"""
import secrets

import pytest

from tests.integration.support.harness import run_module
from sandbox import lifecycle

DELAY_TAG = "sandbox:apply-delay-seconds"


def _name(prefix):
    return f"enable-{prefix}-{secrets.token_hex(3)}"


@pytest.fixture
def aurora(rds):
    cluster, member = _name("aurora"), None
    rds.create_db_cluster(DBClusterIdentifier=cluster, Engine="aurora-postgresql", EngineVersion="15.7", MasterUsername="postgres",
                          MasterUserPassword="p4ssword-only-for-moto")
    member = cluster + "-1"
    rds.create_db_instance(DBInstanceIdentifier=member, DBInstanceClass="db.r6g.large", Engine="aurora-postgresql",
                           DBClusterIdentifier=cluster)
    yield cluster, member
    rds.delete_db_instance(DBInstanceIdentifier=member, SkipFinalSnapshot=True)
    rds.delete_db_cluster(DBClusterIdentifier=cluster, SkipFinalSnapshot=True)


def _env(sandbox):
    return sandbox.aws_env()


def _auth(sandbox, check=False, diff=False, **args):
    return run_module("rds_iam_auth", args, check=check, diff=diff, env=_env(sandbox))


def _instance_flag(rds, name):
    db = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
    return db["IAMDatabaseAuthenticationEnabled"], (db.get("PendingModifiedValues") or {}).get("IAMDatabaseAuthenticationEnabled")


def _cluster_flag(rds, name):
    cluster = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
    return cluster["IAMDatabaseAuthenticationEnabled"], (cluster.get("PendingModifiedValues") or {}).get("IAMDatabaseAuthenticationEnabled")


def test_instance_on_rerun_check_mode_off(sandbox, rds, make_instance):
    name = make_instance()
    first = _auth(sandbox, diff=True, db_instance_identifier=name)
    assert first["changed"] is True and first["iam_auth_enabled"] is True, first
    assert first["diff"] == {"before": {"iam_auth_enabled": False, "pending_iam_auth_enabled": None},
                             "after": {"iam_auth_enabled": True, "pending_iam_auth_enabled": None}}
    assert _instance_flag(rds, name) == (True, None)
    target = first["target"]
    assert (target["kind"], target["identifier"], target["engine"], target["iam_auth_enabled"]) == ("instance", name, "postgres", True)
    assert target["resource_id"].startswith("db-") and target["region"] == sandbox.region

    again = _auth(sandbox, db_instance_identifier=name)
    assert again["changed"] is False and again["iam_auth_enabled"] is True, again

    checked = _auth(sandbox, check=True, db_instance_identifier=name, enabled=False)
    assert checked["changed"] is True and "would be turned off" in checked["msg"], checked
    assert _instance_flag(rds, name) == (True, None), "check mode changed the instance"

    off = _auth(sandbox, db_instance_identifier=name, enabled=False)
    assert off["changed"] is True and off["iam_auth_enabled"] is False, off
    assert _instance_flag(rds, name) == (False, None)
    assert _auth(sandbox, db_instance_identifier=name, enabled=False)["changed"] is False


def test_aurora_cluster_and_its_member(sandbox, rds, aurora):
    cluster, member = aurora
    on = _auth(sandbox, db_cluster_identifier=cluster)
    assert on["changed"] is True and on["acted_on"] == {"kind": "cluster", "identifier": cluster}, on
    assert on["target"]["kind"] == "cluster" and on["target"]["resource_id"].startswith("cluster-")
    assert _cluster_flag(rds, cluster) == (True, None)
    assert _instance_flag(rds, member)[0] is True  # members report their cluster's flag
    assert _auth(sandbox, db_cluster_identifier=cluster)["changed"] is False

    refused = _auth(sandbox, db_instance_identifier=member, enabled=False)
    assert refused.get("failed") is True, refused
    assert f"member of cluster '{cluster}'" in refused["msg"] and f"db_cluster_identifier: {cluster}" in refused["msg"]
    assert _cluster_flag(rds, cluster) == (True, None)

    followed = _auth(sandbox, db_instance_identifier=member, follow_cluster=True, enabled=False)
    assert followed["changed"] is True and followed["acted_on"] == {"kind": "cluster", "identifier": cluster}, followed
    assert _cluster_flag(rds, cluster) == (False, None)


def test_arns_are_accepted_and_a_wrong_kind_of_arn_is_named(sandbox, rds, make_instance, aurora):
    name = make_instance(engine="mariadb", version="10.11.9")
    arn = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBInstanceArn"]
    result = _auth(sandbox, db_instance_identifier=arn)
    assert result["changed"] is True and result["acted_on"]["identifier"] == name, result
    cluster_arn = rds.describe_db_clusters(DBClusterIdentifier=aurora[0])["DBClusters"][0]["DBClusterArn"]
    wrong = _auth(sandbox, db_instance_identifier=cluster_arn)
    assert wrong.get("failed") is True and "pass it as db_cluster_identifier" in wrong["msg"], wrong


def test_an_arn_is_looked_up_in_its_own_region(sandbox, make_instance):
    """AWS_REGION says us-east-1 (as the sandbox env does); the ARN names another region, and wins."""
    west = lifecycle.MotoSession(sandbox.moto_url, region="us-west-2").client("rds")
    name = make_instance(region="us-west-2")
    arn = west.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBInstanceArn"]
    result = _auth(sandbox, db_instance_identifier=arn)
    assert result.get("failed") is not True and result["changed"] is True, result
    assert result["target"]["region"] == "us-west-2" and result["target"]["iam_auth_enabled"] is True
    assert west.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["IAMDatabaseAuthenticationEnabled"] is True


def test_an_identifier_in_another_case_is_the_same_target(sandbox, rds, make_instance):
    name = make_instance()
    result = _auth(sandbox, db_instance_identifier=name.upper())
    assert result["changed"] is True and result["acted_on"] == {"kind": "instance", "identifier": name}, result
    assert name in result["msg"] and _instance_flag(rds, name) == (True, None)


def test_apply_immediately_false_waits_for_the_maintenance_window(sandbox, rds, make_instance, aurora):
    name = make_instance(engine="mysql", version="8.0.39")
    scheduled = _auth(sandbox, diff=True, db_instance_identifier=name, apply_immediately=False)
    assert scheduled["changed"] is True and scheduled["pending_maintenance"] is True, scheduled
    assert "next maintenance window" in scheduled["msg"] and scheduled["iam_auth_enabled"] is False
    assert scheduled["diff"]["after"] == {"iam_auth_enabled": False, "pending_iam_auth_enabled": True}
    assert _instance_flag(rds, name) == (False, True)
    rerun = _auth(sandbox, db_instance_identifier=name, apply_immediately=False)
    assert rerun["changed"] is False and rerun["pending_maintenance"] is True, rerun

    cluster = aurora[0]
    assert _auth(sandbox, db_cluster_identifier=cluster, apply_immediately=False)["pending_maintenance"] is True
    assert _cluster_flag(rds, cluster) == (False, True)
    # Wanting it now after all applies it now.
    now = _auth(sandbox, db_cluster_identifier=cluster)
    assert now["changed"] is True and now["pending_maintenance"] is False and _cluster_flag(rds, cluster) == (True, None), now


def test_wait_until_the_change_shows(sandbox, rds, make_instance):
    name = make_instance(tags={DELAY_TAG: "2"})
    result = _auth(sandbox, db_instance_identifier=name)
    assert result["changed"] is True and result["iam_auth_enabled"] is True, result
    assert result["target"]["status"] == "available"


def test_without_wait_the_change_is_left_in_flight(sandbox, rds, make_instance):
    name = make_instance(tags={DELAY_TAG: "300"})
    result = _auth(sandbox, db_instance_identifier=name, wait=False)
    assert result["changed"] is True and result["iam_auth_enabled"] is False and result["target"]["status"] == "modifying", result
    # A rerun sees the change in flight and does not ask again.
    rerun = _auth(sandbox, db_instance_identifier=name, wait=False)
    assert rerun["changed"] is False, rerun


def test_wait_timeout_fails_naming_what_is_pending(sandbox, rds, make_instance):
    name = make_instance(tags={DELAY_TAG: "300"})
    result = _auth(sandbox, db_instance_identifier=name, wait_timeout=1)
    assert result.get("failed") is True, result
    assert "wait_timeout=1 s" in result["msg"] and "status modifying" in result["msg"] and "raise wait_timeout" in result["msg"]
    assert result["changed"] is True and result["target"]["status"] == "modifying"  # the change was asked for


def test_targets_are_each_set_in_one_run_past_a_failed_one(sandbox, rds, make_instance, aurora):
    pg, maria = make_instance(tags={DELAY_TAG: "2"}), make_instance(engine="mariadb", version="10.11.9", tags={DELAY_TAG: "2"})
    cluster, _member = aurora
    targets = [{"kind": "instance", "identifier": pg, "region": sandbox.region}, {"kind": "cluster", "identifier": cluster},
               {"kind": "instance", "identifier": "enable-no-such-db"}, {"kind": "instance", "identifier": maria}]
    checked = _auth(sandbox, check=True, diff=True, targets=targets)
    assert [entry.get("changed") for entry in checked["results"]] == [True, True, None, True], checked
    assert (_instance_flag(rds, pg), _cluster_flag(rds, cluster)) == ((False, None), (False, None)), "check mode changed a target"

    first = _auth(sandbox, targets=targets)
    assert first.get("failed") is True and first["changed"] is True, first
    assert first["msg"].startswith("3 of 4 targets changed; 1 failed: instance enable-no-such-db: DB instance DBInstanceIdentifier "
                                   "'enable-no-such-db' does not exist in region us-east-1")
    assert [(entry["kind"], entry["identifier"]) for entry in first["results"]] == [(target["kind"], target["identifier"]) for target in targets]
    on_pg, on_cluster, missing, on_maria = first["results"]
    assert (on_pg["changed"], on_pg["iam_auth_enabled"], on_pg["target"]["status"]) == (True, True, "available"), on_pg
    assert on_cluster["acted_on"] == {"kind": "cluster", "identifier": cluster} and on_cluster["iam_auth_enabled"] is True
    assert missing["failed"] is True and "does not exist" in missing["msg"] and "iam_auth_enabled" not in missing
    assert on_maria["iam_auth_enabled"] is True and on_maria["target"]["status"] == "available"
    assert (_instance_flag(rds, pg), _instance_flag(rds, maria), _cluster_flag(rds, cluster)) == ((True, None),) * 3

    rerun = _auth(sandbox, targets=[target for target in targets if target["identifier"] != "enable-no-such-db"])
    assert rerun.get("failed") is not True and rerun["changed"] is False and rerun["msg"] == "0 of 3 targets changed", rerun


@pytest.mark.parametrize("engine, version, extra", [
    ("sqlserver-ee", "15.00.4322.2.v1", {"LicenseModel": "license-included"}),
    ("oracle-ee", "19.0.0.0.ru-2024-01.rur-2024-01.r1", {"LicenseModel": "bring-your-own-license"}),
    ("db2-se", "11.5.9.0.sb00000000.r1", {"LicenseModel": "bring-your-own-license"}),
])
def test_engines_without_iam_auth_fail_naming_the_engine(sandbox, rds, make_instance, engine, version, extra):
    name = make_instance(engine=engine, version=version, **extra)
    result = _auth(sandbox, db_instance_identifier=name)
    assert result.get("failed") is True, result
    assert f"'{name}' runs engine {engine}, which has no IAM database authentication" in result["msg"]
    assert _instance_flag(rds, name) == (False, None)


def test_missing_target_and_bad_input(sandbox):
    missing = _auth(sandbox, db_instance_identifier="enable-no-such-db")
    assert missing.get("failed") is True and "'enable-no-such-db' does not exist in region us-east-1" in missing["msg"], missing
    both = _auth(sandbox, db_instance_identifier="a", db_cluster_identifier="b")
    assert both.get("failed") is True and "mutually exclusive" in both["msg"]
    neither = _auth(sandbox)
    assert neither.get("failed") is True and "one of the following is required" in neither["msg"]
    bad = _auth(sandbox, db_instance_identifier="no_underscores_allowed")
    assert bad.get("failed") is True and "is not an RDS identifier" in bad["msg"]


def test_credentials_never_reach_the_result(sandbox, make_instance):
    name = make_instance()
    operator = sandbox.state["operator"]
    env = _env(sandbox)
    env.pop("AWS_SECRET_ACCESS_KEY")
    env.pop("AWS_ACCESS_KEY_ID")
    args = dict(db_instance_identifier=name, access_key=operator["access_key_id"], secret_key=operator["secret_access_key"],
                _ansible_verbosity=4)
    for result in (run_module("rds_iam_auth", args, diff=True, env=env),
                   run_module("rds_iam_auth", dict(args, db_instance_identifier="enable-no-such-db"), env=env)):
        text = repr(result)
        assert operator["secret_access_key"] not in text
        assert "changed" in result or result.get("failed")


def test_playbook_check_diff_and_vvvv_never_show_the_secret_key(sandbox, make_instance, playbook_runner):
    """Ansible itself: check mode and --diff through the controller, and -vvvv output, with the secret as a module option."""
    name = make_instance()
    operator = sandbox.state["operator"]
    aws = dict(access_key=operator["access_key_id"], secret_key=operator["secret_access_key"], region=sandbox.region,
               endpoint_url=sandbox.moto_url)
    hardening = dict(aws, db_instance_identifier=name, force_ssl=True, log_connections=True)
    plays = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"name": "iam auth", "rdsiam.auth.rds_iam_auth": dict(aws, db_instance_identifier=name)},
        {"name": "parameter group", "rdsiam.auth.rds_iam_parameter_group": hardening},
    ]}]
    run = playbook_runner(plays, check=True, diff=True, verbosity=4)
    assert run.rc == 0, run.stdout + run.stderr
    assert run.task("iam auth")["result"]["changed"] is True
    group = run.task("parameter group")["result"]
    assert group["changed"] is True and group["parameter_group"]["created"] is True
    assert f"rdsiam-postgres15-{name}" in run.stdout  # the diff is printed
    for text in (run.stdout, run.stderr, repr(run.results)):
        assert operator["secret_access_key"] not in text
