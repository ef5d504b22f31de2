"""rds_iam_parameter_group against the sandbox's moto, and its effect on the sandbox's real servers.

API behaviour is shown on instances and clusters the tests create (unique names). The effect on
logins needs the fleet's own servers (sbx-postgres, sbx-mariadb); those tests put the target
back on its original group and "reboot" it in a finalizer, which restores the RDS defaults
(rds.force_ssl=1, require_secure_transport=OFF) for the other test files sharing the sandbox.
"""
import secrets

import psycopg2
import pymysql
import pytest
from botocore.exceptions import ClientError

from tests.integration.support.harness import run_module
from sandbox import lifecycle

HARDENING = dict(force_ssl=True, log_connections=True, restrict_password_commands=True)


def _name(prefix):
    return f"enable-{prefix}-{secrets.token_hex(3)}"


def _run(sandbox, check=False, diff=False, **args):
    return run_module("rds_iam_parameter_group", args, check=check, diff=diff, env=sandbox.aws_env())


def _instance(rds, name):
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


def _group_status(rds, name):
    group = _instance(rds, name)["DBParameterGroups"][0]
    return group["DBParameterGroupName"], group["ParameterApplyStatus"]


def _user_values(rds, group):
    found = rds.describe_db_parameters(DBParameterGroupName=group, Source="user")["Parameters"]
    return {entry["ParameterName"]: entry["ParameterValue"] for entry in found}


def _group_exists(rds, group):
    try:
        rds.describe_db_parameters(DBParameterGroupName=group)
        return True
    except ClientError:
        return False


# --- default group -> custom group ----------------------------------------------------------------

def test_postgres_on_a_default_group_gets_its_own_hardened_group(sandbox, rds, make_instance):
    name = make_instance()
    expected_group = f"rdsiam-postgres15-{name}"
    make_instance.groups.append(expected_group)

    checked = _run(sandbox, check=True, diff=True, db_instance_identifier=name, **HARDENING)
    assert checked["changed"] is True and checked["parameter_group"]["name"] == expected_group, checked
    assert not _group_exists(rds, expected_group) and _group_status(rds, name) == ("default.postgres15", "in-sync")

    first = _run(sandbox, diff=True, db_instance_identifier=name, **HARDENING)
    assert first["changed"] is True, first
    assert first["parameter_group"] == dict(name=expected_group, family="postgres15", level="instance", previous="default.postgres15",
                                            created=True, attached=True, shared_with=[])
    # Only what was asked for differs from the engine defaults: rds.force_ssl is already 1 on PostgreSQL 15.
    assert _user_values(rds, expected_group) == {"log_connections": "1", "rds.restrict_password_commands": "1"}
    assert _group_status(rds, name) == (expected_group, "pending-reboot")
    assert first["pending_reboot"] is True
    assert sorted(first["pending_reboot_parameters"]) == ["log_connections", "rds.restrict_password_commands"]
    assert first["diff"] == {
        "before": {"parameter_group": "default.postgres15",
                   "parameters": {"rds.force_ssl": "1", "log_connections": None, "rds.restrict_password_commands": None}},
        "after": {"parameter_group": expected_group,
                  "parameters": {"rds.force_ssl": "1", "log_connections": "1", "rds.restrict_password_commands": "1"}}}
    assert checked["diff"] == first["diff"] and checked["changes"] == first["changes"]
    assert first["target"]["parameter_group"] == {"name": expected_group, "apply_status": "pending-reboot"}

    rerun = _run(sandbox, db_instance_identifier=name, **HARDENING)
    assert rerun["changed"] is False and rerun["changes"] == [] and rerun["pending_reboot"] is True, rerun

    would_reboot = _run(sandbox, check=True, db_instance_identifier=name, reboot=True, **HARDENING)
    assert would_reboot["changed"] is True and would_reboot["rebooted"] == [name] and "would reboot" in would_reboot["msg"], would_reboot
    assert _group_status(rds, name) == (expected_group, "pending-reboot"), "check mode rebooted"

    rebooted = _run(sandbox, db_instance_identifier=name, reboot=True, **HARDENING)
    assert rebooted["changed"] is True and rebooted["rebooted"] == [name] and rebooted["pending_reboot"] is False, rebooted
    assert _group_status(rds, name) == (expected_group, "in-sync")
    assert _run(sandbox, db_instance_identifier=name, reboot=True, **HARDENING)["changed"] is False


def test_a_default_group_that_already_holds_the_values_is_left_alone(sandbox, rds, make_instance):
    """rds.force_ssl is already 1 on PostgreSQL 15: no custom group, no swap, no reboot pending."""
    name = make_instance()
    for check in (True, False):
        result = _run(sandbox, check=check, diff=True, db_instance_identifier=name, force_ssl=True)
        assert result["changed"] is False and result["pending_reboot"] is False, result
        assert result["parameter_group"] == dict(name="default.postgres15", family="postgres15", level="instance",
                                                 previous="default.postgres15", created=False, attached=False, shared_with=[])
        assert result["diff"]["before"] == result["diff"]["after"]
    assert not _group_exists(rds, f"rdsiam-postgres15-{name}")
    assert _group_status(rds, name) == ("default.postgres15", "in-sync")


def test_mariadb_gets_require_secure_transport_and_audit_logging(sandbox, rds, make_instance):
    name = make_instance(engine="mariadb", version="10.11.9")
    group = "enable-mariadb-hardened-" + secrets.token_hex(3)
    make_instance.groups.append(group)
    result = _run(sandbox, db_instance_identifier=name, force_ssl=True, audit_logging=True, parameter_group_name=group)
    assert result["changed"] is True and result["parameter_group"]["name"] == group, result
    assert _user_values(rds, group) == {"require_secure_transport": "1", "server_audit_logging": "1",
                                        "server_audit_events": "CONNECT,QUERY_DCL"}
    assert _run(sandbox, db_instance_identifier=name, force_ssl=True, audit_logging=True, parameter_group_name=group)["changed"] is False
    # The default name is only for targets on a default group: the attached custom group stays.
    assert _run(sandbox, db_instance_identifier=name, force_ssl=True)["parameter_group"]["name"] == group


def test_mysql_gets_require_secure_transport(sandbox, rds, make_instance):
    name = make_instance(engine="mysql", version="8.0.39")
    make_instance.groups.append(f"rdsiam-mysql8-0-{name}")
    result = _run(sandbox, db_instance_identifier=name, force_ssl=True)
    assert result["parameters"] == {"require_secure_transport": "1"} and result["parameter_group"]["family"] == "mysql8.0", result
    assert _user_values(rds, f"rdsiam-mysql8-0-{name}") == {"require_secure_transport": "1"}


def test_targets_harden_a_mixed_fleet_in_one_run(sandbox, rds, make_instance):
    pg, maria = make_instance(), make_instance(engine="mariadb", version="10.11.9")
    targets = [{"kind": "instance", "identifier": pg}, {"kind": "instance", "identifier": maria}]
    first = _run(sandbox, targets=targets, force_ssl=True, log_connections=True)
    make_instance.groups.extend(entry["parameter_group"]["name"] for entry in first.get("results", ()) if "parameter_group" in entry)
    assert first["changed"] is True and first["msg"] == "2 of 2 targets changed", first
    on_pg, on_maria = first["results"]
    assert (on_pg["identifier"], on_pg["parameters"]) == (pg, {"rds.force_ssl": "1", "log_connections": "1"}), on_pg
    # log_connections is PostgreSQL's: left out for MariaDB rather than failing it.
    assert (on_maria["identifier"], on_maria["parameters"]) == (maria, {"require_secure_transport": "1"}), on_maria
    assert _user_values(rds, on_maria["parameter_group"]["name"]) == {"require_secure_transport": "1"}
    single = _run(sandbox, db_instance_identifier=maria, force_ssl=True, log_connections=True)
    assert single.get("failed") is True and "log_connections does not apply to engine mariadb" in single["msg"], single
    rerun = _run(sandbox, targets=targets, force_ssl=True, log_connections=True)
    assert rerun["changed"] is False and rerun["msg"] == "0 of 2 targets changed", rerun
    # One fleet target behaves the same: its engine's options only.
    one = _run(sandbox, target=targets[1], force_ssl=True, log_connections=True)
    assert (one["changed"], one["parameters"]) == (False, {"require_secure_transport": "1"}), one


# --- shared groups ---------------------------------------------------------------------------------

def test_a_shared_group_is_refused_without_the_flag(sandbox, rds, make_instance):
    group = "enable-shared-" + secrets.token_hex(3)
    rds.create_db_parameter_group(DBParameterGroupName=group, DBParameterGroupFamily="postgres15", Description="shared by two")
    make_instance.groups.append(group)
    first, second = make_instance(DBParameterGroupName=group), make_instance(DBParameterGroupName=group)

    refused = _run(sandbox, db_instance_identifier=first, log_connections=True)
    assert refused.get("failed") is True, refused
    assert f"'{group}'" in refused["msg"] and f"also used by {second}" in refused["msg"] and "allow_shared_group: true" in refused["msg"]
    assert _user_values(rds, group) == {}

    # Values that already hold change nothing, so nothing is refused.
    assert _run(sandbox, db_instance_identifier=first, force_ssl=True)["changed"] is False

    allowed = _run(sandbox, db_instance_identifier=first, log_connections=True, allow_shared_group=True)
    assert allowed["changed"] is True and allowed["parameter_group"]["shared_with"] == [second], allowed
    assert _user_values(rds, group) == {"log_connections": "1"}
    assert _run(sandbox, db_instance_identifier=first, log_connections=True)["changed"] is False


def test_an_identifier_in_another_case_does_not_share_the_group_with_itself(sandbox, rds, make_instance):
    group = "enable-own-" + secrets.token_hex(3)
    rds.create_db_parameter_group(DBParameterGroupName=group, DBParameterGroupFamily="postgres15", Description="one user")
    make_instance.groups.append(group)
    name = make_instance(DBParameterGroupName=group)
    result = _run(sandbox, db_instance_identifier=name.upper(), log_connections=True)
    assert result.get("failed") is not True and result["changed"] is True, result
    assert result["parameter_group"]["name"] == group and result["parameter_group"]["shared_with"] == []
    assert _user_values(rds, group) == {"log_connections": "1"}


def test_an_arn_is_looked_up_in_its_own_region(sandbox, make_instance):
    west = lifecycle.MotoSession(sandbox.moto_url, region="us-west-2").client("rds")
    name = make_instance(region="us-west-2")
    arn = west.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBInstanceArn"]
    result = _run(sandbox, check=True, db_instance_identifier=arn, log_connections=True)
    assert result.get("failed") is not True and result["changed"] is True, result
    assert result["target"]["region"] == "us-west-2" and result["parameter_group"]["name"] == f"rdsiam-postgres15-{name}"


def test_a_reboot_that_outlasts_wait_timeout_fails_saying_so(sandbox, rds, make_instance):
    name = make_instance(tags={"sandbox:apply-delay-seconds": "300"})
    make_instance.groups.append(f"rdsiam-postgres15-{name}")
    result = _run(sandbox, db_instance_identifier=name, restrict_password_commands=True, reboot=True, wait_timeout=1)
    assert result.get("failed") is True and result["changed"] is True, result
    assert f"rebooted instance {name}, but gave up after wait_timeout=1 s: status rebooting" in result["msg"]
    assert result["target"]["status"] == "rebooting"


# --- Aurora -----------------------------------------------------------------------------------------

@pytest.fixture
def aurora(rds):
    cluster = _name("aurora")
    member = cluster + "-1"
    rds.create_db_cluster(DBClusterIdentifier=cluster, Engine="aurora-postgresql", EngineVersion="15.7", MasterUsername="postgres",
                          MasterUserPassword="p4ssword-only-for-moto")
    rds.create_db_instance(DBInstanceIdentifier=member, DBInstanceClass="db.r6g.large", Engine="aurora-postgresql",
                           DBClusterIdentifier=cluster)
    yield cluster, member
    rds.delete_db_instance(DBInstanceIdentifier=member, SkipFinalSnapshot=True)
    rds.delete_db_cluster(DBClusterIdentifier=cluster, SkipFinalSnapshot=True)
    rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=f"rdsiam-aurora-postgresql15-{cluster}")


def test_aurora_cluster_level_parameters_go_to_the_cluster_group(sandbox, rds, aurora):
    cluster, member = aurora
    group = f"rdsiam-aurora-postgresql15-{cluster}"
    result = _run(sandbox, db_cluster_identifier=cluster, **HARDENING)
    assert result["changed"] is True and result["parameter_group"]["level"] == "cluster", result
    assert result["parameter_group"]["previous"] == "default.aurora-postgresql15"
    found = rds.describe_db_cluster_parameters(DBClusterParameterGroupName=group, Source="user")["Parameters"]
    values = {entry["ParameterName"]: entry["ParameterValue"] for entry in found}
    assert values == {"log_connections": "1", "rds.restrict_password_commands": "1"}
    described = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
    assert described["DBClusterParameterGroup"] == group
    assert described["DBClusterMembers"][0]["DBClusterParameterGroupStatus"] == "pending-reboot"
    assert result["pending_reboot"] is True and result["target"]["parameter_group"]["apply_status"] == "pending-reboot"

    rebooted = _run(sandbox, db_cluster_identifier=cluster, reboot=True, **HARDENING)
    assert rebooted["rebooted"] == [member] and rebooted["pending_reboot"] is False, rebooted
    assert rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["DBClusterMembers"][0][
        "DBClusterParameterGroupStatus"] == "in-sync"
    assert _run(sandbox, db_cluster_identifier=cluster, reboot=True, **HARDENING)["changed"] is False

    # The member's own (instance-level) group does not hold cluster-level parameters.
    refused = _run(sandbox, db_instance_identifier=member, force_ssl=True)
    assert refused.get("failed") is True, refused
    assert "rds.force_ssl: no such parameter" in refused["msg"] and f"member of cluster '{cluster}'" in refused["msg"]
    assert "cluster-level parameter" in refused["msg"]


# --- bad input fails before any write ---------------------------------------------------------------

def test_unknown_parameters_fail_before_any_write(sandbox, rds, make_instance):
    name = make_instance()
    result = _run(sandbox, db_instance_identifier=name, force_ssl=True, parameters={"no_such_parameter": 1, "log_connections": 1})
    assert result.get("failed") is True, result
    assert "no_such_parameter: no such parameter in the DB parameter group family postgres15 (engine postgres)" in result["msg"]
    assert not _group_exists(rds, f"rdsiam-postgres15-{name}")
    assert _group_status(rds, name) == ("default.postgres15", "in-sync")


@pytest.mark.parametrize("args, message", [
    (dict(log_connections=True), "log_connections does not apply to engine mariadb"),
    (dict(parameters={"require_secure_transport": "2"}), "require_secure_transport cannot be '2': allowed values are 0, 1"),
    (dict(force_ssl=True, parameters={"require_secure_transport": 0}), "parameters sets require_secure_transport to '0'"),
    (dict(force_ssl=True, parameter_group_name="default.mariadb10.11"), "is not a name RDS accepts for a custom group"),
    (dict(force_ssl=True, parameter_group_name="Bad_Name"), "is not a name RDS accepts for a custom group"),
    (dict(force_ssl=True, wait_timeout=-1), "wait_timeout is -1"),
])
def test_bad_input_is_refused_before_any_write(sandbox, rds, make_instance, args, message):
    name = make_instance(engine="mariadb", version="10.11.9")
    result = _run(sandbox, db_instance_identifier=name, **args)
    assert result.get("failed") is True and message in result["msg"], result
    assert _group_status(rds, name) == ("default.mariadb10.11", "in-sync")
    assert not _group_exists(rds, f"rdsiam-mariadb10-11-{name}")


def test_a_group_of_another_family_is_refused(sandbox, rds, make_instance):
    group = "enable-pg14-" + secrets.token_hex(3)
    rds.create_db_parameter_group(DBParameterGroupName=group, DBParameterGroupFamily="postgres14", Description="older family")
    make_instance.groups.append(group)
    name = make_instance()
    result = _run(sandbox, db_instance_identifier=name, force_ssl=True, parameter_group_name=group)
    assert result.get("failed") is True and "exists with family postgres14" in result["msg"] and "needs family postgres15" in result["msg"]


@pytest.mark.parametrize("engine, version, extra", [
    ("sqlserver-se", "15.00.4322.2.v1", {"LicenseModel": "license-included"}),
    ("oracle-se2", "19.0.0.0.ru-2024-01.rur-2024-01.r1", {"LicenseModel": "bring-your-own-license"}),
    ("db2-ae", "11.5.9.0.sb00000000.r1", {"LicenseModel": "bring-your-own-license"}),
])
def test_engines_without_iam_auth_fail_naming_the_engine(sandbox, rds, make_instance, engine, version, extra):
    name = make_instance(engine=engine, version=version, **extra)
    result = _run(sandbox, db_instance_identifier=name, force_ssl=True)
    assert result.get("failed") is True and f"runs engine {engine}, which has no IAM database authentication" in result["msg"], result


# --- the effect on the sandbox's real servers ---------------------------------------------------------

def _restore(rds, identifier, original_group, custom_group):
    """Back on the original group and "rebooted": the server runs with the RDS defaults again."""
    rds.modify_db_instance(DBInstanceIdentifier=identifier, DBParameterGroupName=original_group, ApplyImmediately=True)
    rds.reboot_db_instance(DBInstanceIdentifier=identifier)
    rds.describe_db_instances(DBInstanceIdentifier=identifier)
    if custom_group and custom_group != original_group:
        rds.delete_db_parameter_group(DBParameterGroupName=custom_group)


@pytest.fixture
def fleet_target(sandbox, rds):
    """A fleet instance whose group and server settings are put back afterwards, whatever the test did (and checked)."""
    touched = []

    def take(identifier):
        touched.append((identifier, _group_status(rds, identifier)[0]))
        return identifier

    yield take
    for identifier, original in touched:
        _restore(rds, identifier, original, _group_status(rds, identifier)[0])
        if sandbox.target(identifier)["engine"] == "postgres":
            with pytest.raises(psycopg2.OperationalError, match="no encryption"):
                _pg_plaintext_login(sandbox, identifier)
        else:
            _mariadb_plaintext_login(sandbox, identifier)


def _pg_plaintext_login(sandbox, identifier):
    target = sandbox.target(identifier)
    psycopg2.connect(host=target["login_host"], port=target["login_port"], user=target["master_username"],
                     password=target["master_password"], dbname="postgres", sslmode="disable", connect_timeout=5).close()


def _mariadb_plaintext_login(sandbox, identifier):
    target = sandbox.target(identifier)
    pymysql.connect(host=target["login_host"], port=target["login_port"], user=target["master_username"],
                    password=target["master_password"], ssl_disabled=True, connect_timeout=5).close()


def test_force_ssl_decides_whether_postgres_takes_plaintext_logins(sandbox, rds, fleet_target):
    identifier = fleet_target("sbx-postgres")
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        _pg_plaintext_login(sandbox, identifier)  # the RDS default for PostgreSQL 15: rds.force_ssl=1

    relaxed = _run(sandbox, db_instance_identifier=identifier, force_ssl=False, reboot=True)
    assert relaxed["changed"] is True and relaxed["rebooted"] == [identifier], relaxed
    _pg_plaintext_login(sandbox, identifier)

    # rds.force_ssl is dynamic: turning it back on needs no reboot.
    strict = _run(sandbox, db_instance_identifier=identifier, force_ssl=True)
    assert strict["changed"] is True and strict["pending_reboot"] is False and strict["rebooted"] == [], strict
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        _pg_plaintext_login(sandbox, identifier)


def test_require_secure_transport_refuses_plaintext_mariadb_logins(sandbox, rds, fleet_target):
    identifier = fleet_target("sbx-mariadb")
    _mariadb_plaintext_login(sandbox, identifier)  # the RDS default: require_secure_transport=OFF

    hardened = _run(sandbox, db_instance_identifier=identifier, force_ssl=True, reboot=True)
    assert hardened["changed"] is True and hardened["rebooted"] == [identifier], hardened
    with pytest.raises(pymysql.err.OperationalError):
        _mariadb_plaintext_login(sandbox, identifier)


@pytest.fixture
def fleet_cluster(sandbox, rds):
    """sbx-aurora-pg, put back on its cluster group and its member "rebooted" afterwards (checked: TLS is required again)."""
    cluster = "sbx-aurora-pg"
    original = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["DBClusterParameterGroup"]
    yield cluster
    current = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["DBClusterParameterGroup"]
    rds.modify_db_cluster(DBClusterIdentifier=cluster, DBClusterParameterGroupName=original, ApplyImmediately=True)
    for member in sandbox_members(rds, cluster):
        rds.reboot_db_instance(DBInstanceIdentifier=member)
    rds.describe_db_clusters(DBClusterIdentifier=cluster)
    if current != original:
        rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=current)
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        _pg_plaintext_login(sandbox, cluster)


def sandbox_members(rds, cluster):
    return [member["DBInstanceIdentifier"] for member in rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["DBClusterMembers"]]


def test_aurora_force_ssl_lives_in_the_cluster_group_and_reaches_the_server(sandbox, rds, fleet_cluster):
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        _pg_plaintext_login(sandbox, fleet_cluster)
    relaxed = _run(sandbox, db_cluster_identifier=fleet_cluster, force_ssl=False, reboot=True)
    assert relaxed["parameter_group"]["level"] == "cluster" and relaxed["rebooted"] == sandbox_members(rds, fleet_cluster), relaxed
    _pg_plaintext_login(sandbox, fleet_cluster)
    strict = _run(sandbox, db_cluster_identifier=fleet_cluster, force_ssl=True)
    assert strict["changed"] is True and strict["pending_reboot"] is False, strict  # dynamic: applied at once
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        _pg_plaintext_login(sandbox, fleet_cluster)


def test_restoring_the_default_group_restores_the_rds_defaults(sandbox, rds, fleet_target):
    """What the finalizers rely on: after a reboot on the default group the servers behave as when the sandbox came up."""
    fleet_target("sbx-postgres")
    fleet_target("sbx-mariadb")  # restored again afterwards, in case an assertion below fails half-way
    relaxed = _run(sandbox, db_instance_identifier="sbx-postgres", force_ssl=False, reboot=True)
    strict = _run(sandbox, db_instance_identifier="sbx-mariadb", force_ssl=True, reboot=True)
    assert relaxed["rebooted"] == ["sbx-postgres"] and strict["rebooted"] == ["sbx-mariadb"], (relaxed, strict)
    _pg_plaintext_login(sandbox, "sbx-postgres")
    with pytest.raises(pymysql.err.OperationalError):
        _mariadb_plaintext_login(sandbox, "sbx-mariadb")

    _restore(rds, "sbx-postgres", "default.postgres15", relaxed["parameter_group"]["name"])
    _restore(rds, "sbx-mariadb", "default.mariadb10.11", strict["parameter_group"]["name"])
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        _pg_plaintext_login(sandbox, "sbx-postgres")
    _mariadb_plaintext_login(sandbox, "sbx-mariadb")
    assert _group_status(rds, "sbx-postgres") == ("default.postgres15", "in-sync")
    assert _group_status(rds, "sbx-mariadb") == ("default.mariadb10.11", "in-sync")
