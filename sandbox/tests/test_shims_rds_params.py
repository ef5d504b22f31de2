"""Parameter-group, pending-change and reboot shims: each gap test fails once moto closes the gap
itself (the signal to delete that shim); each shim test shows the RDS behaviour the collection needs."""
import json
import subprocess
import sys
import textwrap

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sandbox.aws import shims_rds_params
from sandbox.db import server_parameters
from sandbox.aws.shims import apply_shims

REGION = "us-east-1"
_PRELUDE = """
rds = boto3.client("rds", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
def instance(name, engine="postgres", version="15.7", **extra):
    return rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t4g.micro", Engine=engine, EngineVersion=version,
                                  MasterUsername="u", MasterUserPassword="p4ssword!", AllocatedStorage=20, **extra)["DBInstance"]
"""


def _unpatched(snippet):
    """Run snippet under mock_aws in a fresh interpreter without the shims; it prints JSON."""
    body = textwrap.dedent(_PRELUDE) + textwrap.dedent(snippet)
    program = "import json, boto3\nfrom moto import mock_aws\nwith mock_aws():\n" + textwrap.indent(body, "    ")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@pytest.fixture
def rds(monkeypatch):
    apply_shims()
    # No sandbox state here: the server side of a reboot must be a no-op, not an error.
    monkeypatch.delenv("RDSIAM_SANDBOX_STATE_DIR", raising=False)
    with mock_aws():
        yield boto3.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name=REGION).client("rds")


def _instance(rds, name, engine="postgres", version="15.7", **extra):
    return rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t4g.micro", Engine=engine, EngineVersion=version,
                                  MasterUsername="u", MasterUserPassword="p4ssword!", AllocatedStorage=20, **extra)["DBInstance"]


def _aurora(rds, name="c1", member="c1-a", **extra):
    rds.create_db_cluster(DBClusterIdentifier=name, Engine="aurora-postgresql", EngineVersion="15.7", MasterUsername="postgres",
                          MasterUserPassword="p4ssword!", **extra)
    rds.create_db_instance(DBInstanceIdentifier=member, DBInstanceClass="db.r6g.large", Engine="aurora-postgresql",
                           DBClusterIdentifier=name)


def _params(rds, group, **extra):
    return {p["ParameterName"]: p for p in rds.describe_db_parameters(DBParameterGroupName=group, **extra)["Parameters"]}


def _status(rds, name):
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBParameterGroups"][0]["ParameterApplyStatus"]


# --- describe_db_parameters lists the family's catalogue -------------------------------------------

def test_moto_still_lists_no_parameters_for_a_default_group():
    found = _unpatched("""
        instance("a")
        print(json.dumps(rds.describe_db_parameters(DBParameterGroupName="default.postgres15")["Parameters"]))
    """)
    assert found == [], "moto now lists default parameters: delete _shim_describe_parameters"


def test_shim_lists_the_catalogue_with_sources_and_apply_types(rds):
    _instance(rds, "a")
    defaults = _params(rds, "default.postgres15")
    assert defaults["rds.force_ssl"]["ParameterValue"] == "1"  # the RDS default from PostgreSQL 15
    assert defaults["rds.restrict_password_commands"]["ApplyType"] == "static"
    assert defaults["log_connections"]["ApplyType"] == "dynamic"
    rds.create_db_parameter_group(DBParameterGroupName="custom", DBParameterGroupFamily="postgres15", Description="d")
    rds.modify_db_parameter_group(DBParameterGroupName="custom", Parameters=[
        {"ParameterName": "log_connections", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    assert _params(rds, "custom")["log_connections"]["Source"] == "user"
    assert list(_params(rds, "custom", Source="user")) == ["log_connections"]


def test_catalogue_differs_per_family():
    names = {family: {entry["ParameterName"] for entry in shims_rds_params.catalogue(family, "instance")}
             for family in ("postgres15", "mariadb10.11", "mysql8.0")}
    assert "rds.force_ssl" in names["postgres15"] and "require_secure_transport" not in names["postgres15"]
    assert {"require_secure_transport", "server_audit_logging"} <= names["mariadb10.11"]
    assert "server_audit_logging" not in names["mysql8.0"]
    cluster = {entry["ParameterName"] for entry in shims_rds_params.catalogue("aurora-postgresql15", "cluster")}
    assert "rds.force_ssl" in cluster
    assert "rds.force_ssl" not in {entry["ParameterName"] for entry in shims_rds_params.catalogue("aurora-postgresql15", "instance")}


# --- modify_db_parameter_group refuses what RDS refuses --------------------------------------------

def test_moto_still_accepts_unknown_parameters_on_default_groups():
    accepted = _unpatched("""
        instance("a")
        rds.modify_db_parameter_group(DBParameterGroupName="default.postgres15",
                                      Parameters=[{"ParameterName": "no_such_thing", "ParameterValue": "1", "ApplyMethod": "immediate"}])
        print(json.dumps(True))
    """)
    assert accepted is True, "moto now refuses these: delete the checks in _shim_modify_parameter_groups"


@pytest.mark.parametrize("group, parameter, code, message", [
    ("default.postgres15", {"ParameterName": "log_connections", "ParameterValue": "1", "ApplyMethod": "immediate"},
     "InvalidParameterValue", "Cannot modify a default parameter group"),
    ("custom", {"ParameterName": "no_such_thing", "ParameterValue": "1", "ApplyMethod": "immediate"},
     "InvalidParameterValue", "Could not find parameter with name: no_such_thing"),
    ("custom", {"ParameterName": "rds.force_ssl", "ParameterValue": "2", "ApplyMethod": "immediate"},
     "InvalidParameterValue", "outside of range"),
    ("custom", {"ParameterName": "rds.restrict_password_commands", "ParameterValue": "1", "ApplyMethod": "immediate"},
     "InvalidParameterCombination", "static parameter"),
])
def test_shim_refuses_what_rds_refuses(rds, group, parameter, code, message):
    _instance(rds, "a")
    rds.create_db_parameter_group(DBParameterGroupName="custom", DBParameterGroupFamily="postgres15", Description="d")
    with pytest.raises(ClientError) as refused:
        rds.modify_db_parameter_group(DBParameterGroupName=group, Parameters=[parameter])
    assert refused.value.response["Error"]["Code"] == code
    assert message in refused.value.response["Error"]["Message"]


# --- pending-reboot and reboots ------------------------------------------------------------------

def test_moto_still_reports_in_sync_after_a_static_change():
    status = _unpatched("""
        rds.create_db_parameter_group(DBParameterGroupName="custom", DBParameterGroupFamily="postgres15", Description="d")
        instance("a", DBParameterGroupName="custom")
        rds.modify_db_parameter_group(DBParameterGroupName="custom", Parameters=[
            {"ParameterName": "rds.restrict_password_commands", "ParameterValue": "1", "ApplyMethod": "pending-reboot"}])
        print(json.dumps(rds.describe_db_instances(DBInstanceIdentifier="a")["DBInstances"][0]["DBParameterGroups"][0]["ParameterApplyStatus"]))
    """)
    assert status == "in-sync", "moto now tracks pending-reboot: delete _shim_parameter_apply_status"


def test_shim_marks_static_changes_and_group_swaps_pending_until_reboot(rds):
    rds.create_db_parameter_group(DBParameterGroupName="custom", DBParameterGroupFamily="postgres15", Description="d")
    _instance(rds, "a")
    _instance(rds, "b", DBParameterGroupName="custom")
    rds.modify_db_instance(DBInstanceIdentifier="a", DBParameterGroupName="custom", ApplyImmediately=True)
    assert (_status(rds, "a"), _status(rds, "b")) == ("pending-reboot", "in-sync")
    rds.modify_db_parameter_group(DBParameterGroupName="custom", Parameters=[
        {"ParameterName": "log_connections", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    assert _status(rds, "b") == "in-sync"  # dynamic: no reboot needed
    rds.modify_db_parameter_group(DBParameterGroupName="custom", Parameters=[
        {"ParameterName": "rds.restrict_password_commands", "ParameterValue": "1", "ApplyMethod": "pending-reboot"}])
    assert _status(rds, "b") == "pending-reboot"
    assert rds.reboot_db_instance(DBInstanceIdentifier="b")["DBInstance"]["DBInstanceStatus"] == "rebooting"
    described = rds.describe_db_instances(DBInstanceIdentifier="b")["DBInstances"][0]
    assert (described["DBInstanceStatus"], _status(rds, "b"), _status(rds, "a")) == ("available", "in-sync", "pending-reboot")


def test_moto_still_gives_aurora_clusters_a_missing_default_group():
    found = _unpatched("""
        rds.create_db_cluster(DBClusterIdentifier="c1", Engine="aurora-postgresql", EngineVersion="15.7", MasterUsername="u",
                              MasterUserPassword="p4ssword!")
        print(json.dumps(rds.describe_db_clusters(DBClusterIdentifier="c1")["DBClusters"][0]["DBClusterParameterGroup"]))
    """)
    assert found == "default.aurora8.0", "moto now names the family's default cluster group: delete _shim_default_cluster_parameter_group"


def test_shim_gives_aurora_its_family_default_and_tracks_members(rds):
    _aurora(rds)
    cluster = rds.describe_db_clusters(DBClusterIdentifier="c1")["DBClusters"][0]
    assert cluster["DBClusterParameterGroup"] == "default.aurora-postgresql15"
    cluster_params = {p["ParameterName"]: p for p in rds.describe_db_cluster_parameters(
        DBClusterParameterGroupName="default.aurora-postgresql15")["Parameters"]}
    assert cluster_params["rds.force_ssl"]["ApplyType"] == "dynamic"
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName="cpg", DBParameterGroupFamily="aurora-postgresql15", Description="d")
    with pytest.raises(ClientError, match="not found"):
        rds.modify_db_cluster(DBClusterIdentifier="c1", DBClusterParameterGroupName="missing", ApplyImmediately=True)
    rds.modify_db_cluster(DBClusterIdentifier="c1", DBClusterParameterGroupName="cpg", ApplyImmediately=True)

    def member_status():
        return rds.describe_db_clusters(DBClusterIdentifier="c1")["DBClusters"][0]["DBClusterMembers"][0]["DBClusterParameterGroupStatus"]

    assert member_status() == "pending-reboot"
    rds.reboot_db_instance(DBInstanceIdentifier="c1-a")
    assert member_status() == "in-sync"


# --- ApplyImmediately=False and slow changes -------------------------------------------------------

def test_moto_still_applies_iam_auth_at_once_without_apply_immediately():
    found = _unpatched("""
        instance("a")
        db = rds.modify_db_instance(DBInstanceIdentifier="a", EnableIAMDatabaseAuthentication=True, ApplyImmediately=False)["DBInstance"]
        print(json.dumps([db["IAMDatabaseAuthenticationEnabled"], db.get("PendingModifiedValues")]))
    """)
    assert found == [True, None], "moto now defers the change: delete _shim_pending_modifications"


def test_shim_leaves_the_flag_pending_for_the_maintenance_window(rds):
    _instance(rds, "a")
    _aurora(rds)
    db = rds.modify_db_instance(DBInstanceIdentifier="a", EnableIAMDatabaseAuthentication=True, ApplyImmediately=False)["DBInstance"]
    assert (db["IAMDatabaseAuthenticationEnabled"], db["PendingModifiedValues"]) == (False, {"IAMDatabaseAuthenticationEnabled": True})
    cluster = rds.modify_db_cluster(DBClusterIdentifier="c1", EnableIAMDatabaseAuthentication=True, ApplyImmediately=False)["DBCluster"]
    assert (cluster["IAMDatabaseAuthenticationEnabled"], cluster["PendingModifiedValues"]) == (False, {"IAMDatabaseAuthenticationEnabled": True})
    db = rds.modify_db_instance(DBInstanceIdentifier="a", EnableIAMDatabaseAuthentication=True, ApplyImmediately=True)["DBInstance"]
    assert db["IAMDatabaseAuthenticationEnabled"] is True and not db.get("PendingModifiedValues")


def test_shim_delays_an_immediate_change_when_the_target_is_tagged(rds, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(shims_rds_params.time, "monotonic", lambda: clock[0])
    _instance(rds, "slow", Tags=[{"Key": shims_rds_params.APPLY_DELAY_TAG, "Value": "30"}])
    db = rds.modify_db_instance(DBInstanceIdentifier="slow", EnableIAMDatabaseAuthentication=True, ApplyImmediately=True)["DBInstance"]
    assert (db["DBInstanceStatus"], db["IAMDatabaseAuthenticationEnabled"]) == ("modifying", False)
    clock[0] += 31
    db = rds.describe_db_instances(DBInstanceIdentifier="slow")["DBInstances"][0]
    assert (db["DBInstanceStatus"], db["IAMDatabaseAuthenticationEnabled"], db.get("PendingModifiedValues")) == ("available", True, None)
    rds.reboot_db_instance(DBInstanceIdentifier="slow")
    assert rds.describe_db_instances(DBInstanceIdentifier="slow")["DBInstances"][0]["DBInstanceStatus"] == "rebooting"
    clock[0] += 31
    assert rds.describe_db_instances(DBInstanceIdentifier="slow")["DBInstances"][0]["DBInstanceStatus"] == "available"


def test_moto_still_refuses_db2():
    found = _unpatched("""
        try:
            instance("d", engine="db2-se", version="11.5.9.0.sb00000000.r1", LicenseModel="bring-your-own-license")
            print(json.dumps("created"))
        except Exception as exc:
            print(json.dumps(str(exc)))
    """)
    assert "not supported" in found, "moto now creates Db2 instances: delete _shim_db2_engines"


def test_shim_creates_db2_instances(rds):
    db = _instance(rds, "d", engine="db2-se", version="11.5.9.0.sb00000000.r1", LicenseModel="bring-your-own-license")
    assert db["Engine"] == "db2-se"


# --- which sandbox server stands behind a target ----------------------------------------------------

def test_server_entry_maps_instances_clusters_and_members():
    state = {"targets": [{"identifier": "pg", "members": []}, {"identifier": "aur", "members": ["aur-1"]}],
             "servers": [{"identifier": "pg"}, {"identifier": "aur"}]}
    assert server_parameters.server_entry(state, "pg") == {"identifier": "pg"}
    assert server_parameters.server_entry(state, "aur-1") == {"identifier": "aur"}
    assert server_parameters.server_entry(state, "aur") == {"identifier": "aur"}
    assert server_parameters.server_entry(state, "someone-else") is None
    assert server_parameters.apply("someone-else", {"rds.force_ssl": "0"}, state=state) is False
