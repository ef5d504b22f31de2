"""The target shape shared by rds_iam_fleet_info, rds_iam_policy and rds_iam_auth."""
import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _target_dict as targets

ACCOUNT = "123456789012"

INSTANCE = {
    "DBInstanceIdentifier": "app-pg", "DBInstanceArn": f"arn:aws:rds:eu-west-1:{ACCOUNT}:db:app-pg", "Engine": "postgres",
    "EngineVersion": "15.7", "DBInstanceStatus": "available", "MasterUsername": "postgres",
    "Endpoint": {"Address": "app-pg.abc.eu-west-1.rds.amazonaws.com", "Port": 5432}, "DbiResourceId": "db-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "IAMDatabaseAuthenticationEnabled": True, "MasterUserSecret": {"SecretArn": "arn:aws:secretsmanager:eu-west-1:1:secret:x"},
    "DBParameterGroups": [{"DBParameterGroupName": "app-pg15", "ParameterApplyStatus": "pending-reboot"}],
    "TagList": [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "pay"}],
    "EnabledCloudwatchLogsExports": ["postgresql", "iam-db-auth-error"],
}
CLUSTER = {
    "DBClusterIdentifier": "app-aurora", "DBClusterArn": f"arn:aws:rds:eu-west-1:{ACCOUNT}:cluster:app-aurora",
    "Engine": "aurora-mysql", "EngineVersion": "8.0.mysql_aurora.3.05.2", "Status": "available", "MasterUsername": "admin",
    "Endpoint": "app-aurora.cluster-abc.eu-west-1.rds.amazonaws.com", "ReaderEndpoint": "app-aurora.cluster-ro-abc.eu-west-1.rds.amazonaws.com",
    "Port": 3306, "DbClusterResourceId": "cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ", "IAMDatabaseAuthenticationEnabled": False,
    "DBClusterParameterGroup": "app-aurora-params",
    "DBClusterMembers": [{"DBInstanceIdentifier": "app-aurora-1", "DBClusterParameterGroupStatus": "in-sync"},
                         {"DBInstanceIdentifier": "app-aurora-2", "DBClusterParameterGroupStatus": "pending-reboot"}],
    "TagList": [],
}
PROXY = {
    "DBProxyName": "app-proxy", "DBProxyArn": f"arn:aws:rds:eu-west-1:{ACCOUNT}:db-proxy:prx-0123456789abcdef0",
    "EngineFamily": "POSTGRESQL", "Status": "available", "Endpoint": "app-proxy.proxy-abc.eu-west-1.rds.amazonaws.com",
    "Auth": [{"AuthScheme": "SECRETS", "IAMAuth": "REQUIRED"}],
}


def test_instance_target_has_every_key_from_the_describe_item():
    target = targets.target_from_instance(INSTANCE)
    assert set(target) == set(targets.TARGET_KEYS)
    assert target == dict(
        kind="instance", identifier="app-pg", arn=INSTANCE["DBInstanceArn"], engine="postgres", dialect="postgres",
        engine_version="15.7", endpoint="app-pg.abc.eu-west-1.rds.amazonaws.com", port=5432, reader_endpoint=None,
        resource_id="db-ABCDEFGHIJKLMNOPQRSTUVWXYZ", iam_auth_enabled=True, master_username="postgres",
        master_user_secret_arn="arn:aws:secretsmanager:eu-west-1:1:secret:x",
        parameter_group={"name": "app-pg15", "apply_status": "pending-reboot"}, cluster_identifier=None, region="eu-west-1",
        account_id=ACCOUNT, tags={"env": "prod", "team": "pay"}, status="available",
        log_exports=["iam-db-auth-error", "postgresql"])


def test_cluster_target_reports_a_pending_member_and_the_reader_endpoint():
    target = targets.target_from_cluster(CLUSTER, region="eu-west-1")
    assert (target["kind"], target["engine"], target["dialect"]) == ("cluster", "aurora-mysql", "mysql")
    assert target["parameter_group"] == {"name": "app-aurora-params", "apply_status": "pending-reboot"}
    assert target["reader_endpoint"].startswith("app-aurora.cluster-ro-")
    assert (target["resource_id"], target["port"], target["tags"], target["iam_auth_enabled"]) == (
        "cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ", 3306, {}, False)


def test_proxy_target_takes_its_resource_id_from_the_arn_and_its_port_from_the_family():
    target = targets.target_from_proxy(PROXY, tags={"env": "prod"})
    assert (target["kind"], target["resource_id"], target["engine"], target["port"]) == ("proxy", "prx-0123456789abcdef0", "POSTGRESQL", 5432)
    assert target["dialect"] == "postgres"
    assert (target["iam_auth_enabled"], target["tags"], target["region"], target["account_id"]) == (True, {"env": "prod"}, "eu-west-1", ACCOUNT)
    assert target["parameter_group"] is None and target["master_username"] is None
    disabled = dict(PROXY, Auth=[{"AuthScheme": "SECRETS", "IAMAuth": "DISABLED"}])
    assert targets.target_from_proxy(disabled)["iam_auth_enabled"] is False


def test_aurora_member_instance_keeps_its_cluster():
    member = dict(INSTANCE, DBInstanceIdentifier="app-aurora-1", Engine="aurora-postgresql", DBClusterIdentifier="app-aurora")
    target = targets.target_from_instance(member)
    assert (target["cluster_identifier"], target["engine"], target["dialect"]) == ("app-aurora", "aurora-postgresql", "postgres")


@pytest.mark.parametrize("engine, dialect", [
    ("postgres", "postgres"), ("aurora-postgresql", "postgres"), ("POSTGRESQL", "postgres"), ("mysql", "mysql"),
    ("aurora-mysql", "mysql"), ("aurora", "mysql"), ("MYSQL", "mysql"), ("mariadb", "mariadb"), ("oracle-ee", None), (None, None),
])
def test_dialect_of_every_engine_name(engine, dialect):
    assert targets.dialect(engine) == dialect


@pytest.mark.parametrize("value, parsed", [
    ("arn:aws:rds:eu-west-1:123456789012:db:app-pg", ("instance", "app-pg", "eu-west-1")),
    ("arn:aws:rds:us-east-2:123456789012:cluster:app-aurora", ("cluster", "app-aurora", "us-east-2")),
    ("arn:aws-cn:rds:cn-north-1:123456789012:db-proxy:prx-0123456789abcdef0", ("proxy", "prx-0123456789abcdef0", "cn-north-1")),
    ("app-pg", (None, "app-pg", None)),
    ("arn:aws:rds:eu-west-1:123456789012:snapshot:s1", (None, "arn:aws:rds:eu-west-1:123456789012:snapshot:s1", None)),
])
def test_parse_target_ref(value, parsed):
    assert targets.parse_target_ref(value) == parsed


@pytest.mark.parametrize("value, kind", [
    ("db-ABCDEFGHIJKLMNOPQRSTUVWXYZ", "instance"), ("cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ", "cluster"),
    ("prx-0123456789abcdef0", "proxy"), ("db-app", None), ("cluster-app", None), ("app", None),
])
def test_resource_id_kind(value, kind):
    assert targets.resource_id_kind(value) == kind


@pytest.mark.parametrize("value, valid", [
    ("app-pg", True), ("a", True), ("a" * 63, True), ("a" * 64, False), ("1app", False), ("app-", False), ("app--pg", False),
    ("app_pg", False), ("app pg", False), ("", False),
])
def test_identifier_rules(value, valid):
    assert targets.is_valid_identifier(value) is valid
