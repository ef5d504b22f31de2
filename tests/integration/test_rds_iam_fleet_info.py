"""rds_iam_fleet_info against the sandbox's moto: filters, output shape, and AWS calls that do not grow with the fleet."""
import collections

import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _aws, _rds_describe as _fleet
from tests.integration.support.harness import run_module, run_playbook


# Bulk targets live in their own region of the shared moto, so no other test sees them.
BULK_REGION = "ap-southeast-2"
SANDBOX_IDS = {"sbx-postgres", "sbx-aurora-pg", "sbx-aurora-pg-1", "sbx-mariadb", "sbx-mysql"}


def fleet(sandbox_env, **args):
    result = run_module("rds_iam_fleet_info", args)
    assert not result.get("failed"), result
    return result


def names(result):
    return [(target["kind"], target["identifier"]) for target in result["targets"] if target["identifier"] in SANDBOX_IDS]


def test_lists_the_sandbox_fleet_with_resource_ids_moto_reports(sandbox_env):
    result = fleet(sandbox_env, identifiers=["sbx-*"])
    assert result["changed"] is False
    assert sorted(names(result)) == sorted([("instance", "sbx-postgres"), ("instance", "sbx-aurora-pg-1"), ("instance", "sbx-mariadb"),
                                            ("instance", "sbx-mysql"), ("cluster", "sbx-aurora-pg")])
    by_id = {target["identifier"]: target for target in result["targets"]}
    for identifier in ("sbx-postgres", "sbx-aurora-pg", "sbx-mariadb", "sbx-mysql"):
        expected = sandbox_env.target(identifier)
        assert by_id[identifier]["resource_id"] == expected["resource_id"]
        assert by_id[identifier]["endpoint"] == expected["endpoint"]
        assert by_id[identifier]["region"] == sandbox_env.region
        assert by_id[identifier]["account_id"] == sandbox_env.state["operator"]["account_id"]
    aurora = by_id["sbx-aurora-pg"]
    assert (aurora["engine"], aurora["dialect"], aurora["reader_endpoint"] is not None) == ("aurora-postgresql", "postgres", True)
    assert aurora["master_user_secret_arn"].startswith("arn:aws:secretsmanager:")
    assert by_id["sbx-aurora-pg-1"]["cluster_identifier"] == "sbx-aurora-pg"
    assert by_id["sbx-mysql"]["tags"] == {"env": "dev", "team": "data"}


@pytest.mark.parametrize("args, expected", [
    ({"tags": {"team": "payments"}, "engines": ["postgres"], "kinds": ["cluster"]}, [("cluster", "sbx-aurora-pg")]),
    ({"tags": {"env": "prod"}}, [("instance", "sbx-aurora-pg-1"), ("instance", "sbx-mariadb"), ("cluster", "sbx-aurora-pg")]),
    ({"engines": ["mysql"]}, [("instance", "sbx-mysql")]),
    ({"engines": ["mariadb", "postgres"], "tags": {"env": "dev"}}, [("instance", "sbx-postgres")]),
    ({"identifiers": ["sbx-m*"], "kinds": ["instance"]}, [("instance", "sbx-mariadb"), ("instance", "sbx-mysql")]),
    ({"identifiers": ["sbx-aurora-pg"]}, [("cluster", "sbx-aurora-pg")]),
    ({"identifiers": ["SBX-Aurora-PG"]}, [("cluster", "sbx-aurora-pg")]),  # RDS identifiers are case-insensitive
    ({"tags": {"env": "prod", "team": "nobody"}}, []),
])
def test_filters_return_exactly_the_expected_targets(sandbox_env, args, expected):
    assert names(fleet(sandbox_env, **args)) == expected


def test_check_mode_gives_the_same_answer(sandbox_env):
    assert run_module("rds_iam_fleet_info", {"identifiers": ["sbx-*"]}, check=True)["targets"] == fleet(sandbox_env, identifiers=["sbx-*"])["targets"]


@pytest.mark.parametrize("args, message", [
    ({"regions": ["mars-1"]}, "mars-1 are not AWS region names"),
    ({"kinds": ["database"]}, "kinds"),
    ({"endpoint_url": "127.0.0.1:1"}, "endpoint_url has no http:// or https:// scheme"),
])
def test_bad_input_fails_with_the_fix(sandbox_env, args, message):
    result = run_module("rds_iam_fleet_info", args)
    assert result.get("failed") and message in result["msg"]


def test_the_secret_key_never_reaches_the_output(sandbox_env):
    result = run_module("rds_iam_fleet_info", {"identifiers": ["sbx-postgres"]})
    secret = sandbox_env.aws_env()["AWS_SECRET_ACCESS_KEY"]
    assert secret not in repr(result)


# --- AWS calls do not grow with the number of targets ---------------------------------------

@pytest.fixture(scope="module")
def bulk_region(sandbox):
    """Creates instances, clusters and proxies in BULK_REGION on demand; deletes them all afterwards."""
    session = sandbox.moto()._session  # pylint: disable=protected-access
    rds = session.client("rds", region_name=BULK_REGION, endpoint_url=sandbox.moto_url)
    ec2 = session.client("ec2", region_name=BULK_REGION, endpoint_url=sandbox.moto_url)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{n}.0/24", AvailabilityZone=f"{BULK_REGION}{zone}")["Subnet"]["SubnetId"]
               for n, zone in ((1, "a"), (2, "b"))]
    created = collections.Counter()

    def grow(instances, clusters, proxies):
        for number in range(created["instance"], instances):
            rds.create_db_instance(DBInstanceIdentifier=f"bulk-db-{number:03d}", DBInstanceClass="db.t4g.micro", Engine="postgres",
                                   MasterUsername="u", MasterUserPassword="p4ssword!", AllocatedStorage=20,
                                   Tags=[{"Key": "bulk", "Value": "yes"}])
        for number in range(created["cluster"], clusters):
            rds.create_db_cluster(DBClusterIdentifier=f"bulk-cl-{number:03d}", Engine="aurora-mysql", MasterUsername="u",
                                  MasterUserPassword="p4ssword!")
        for number in range(created["proxy"], proxies):
            rds.create_db_proxy(DBProxyName=f"bulk-px-{number:03d}", EngineFamily="MYSQL", RoleArn="arn:aws:iam::123456789012:role/r",
                                VpcSubnetIds=subnets, Tags=[{"Key": "bulk", "Value": "yes"}],
                                Auth=[{"AuthScheme": "SECRETS", "IAMAuth": "REQUIRED",
                                       "SecretArn": f"arn:aws:secretsmanager:{BULK_REGION}:123456789012:secret:s"}])
        created.update({"instance": max(0, instances - created["instance"]), "cluster": max(0, clusters - created["cluster"]),
                        "proxy": max(0, proxies - created["proxy"])})

    yield grow
    for number in range(created["instance"]):
        rds.delete_db_instance(DBInstanceIdentifier=f"bulk-db-{number:03d}", SkipFinalSnapshot=True)
    for number in range(created["cluster"]):
        rds.delete_db_cluster(DBClusterIdentifier=f"bulk-cl-{number:03d}", SkipFinalSnapshot=True)
    for number in range(created["proxy"]):
        rds.delete_db_proxy(DBProxyName=f"bulk-px-{number:03d}")
    for subnet in subnets:
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


def counted_discovery(sandbox, **filters):
    """Run discovery in this process and count the AWS operations it calls, with botocore's before-call event."""
    env = sandbox.aws_env()
    options = dict.fromkeys(_aws.AWS_ARGUMENT_SPEC)
    options.update(validate_certs=True, region=BULK_REGION, endpoint_url=env["AWS_ENDPOINT_URL"],
                   access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"])
    _aws.clear_session_cache()
    calls = collections.Counter()
    _aws.aws_session(options).register("before-call", lambda model, **_: calls.update([model.name]))
    targets = _fleet.discover(options, [BULK_REGION], **filters)
    return targets, calls


def test_api_calls_depend_on_kinds_and_pages_not_on_targets(sandbox, bulk_region):
    bulk_region(instances=3, clusters=3, proxies=2)
    few, few_calls = counted_discovery(sandbox)
    bulk_region(instances=40, clusters=30, proxies=25)
    many, many_calls = counted_discovery(sandbox)
    assert (len(few), len(many)) == (8, 95)
    expected = {"DescribeDBInstances": 1, "DescribeDBClusters": 1, "DescribeDBProxies": 1, "GetResources": 1}
    assert few_calls == many_calls == expected
    proxies = [target for target in many if target["kind"] == "proxy"]
    assert all(target["tags"] == {"bulk": "yes"} and target["resource_id"].startswith("prx-") for target in proxies)


def test_more_than_one_page_is_followed(sandbox, bulk_region):
    bulk_region(instances=105, clusters=30, proxies=25)
    targets, calls = counted_discovery(sandbox, kinds=["instance"], tags={"bulk": "yes"})
    assert len(targets) == 105 and len({target["resource_id"] for target in targets}) == 105
    assert calls == {"DescribeDBInstances": 2}


def test_targets_become_inventory_hosts_with_add_host(sandbox_env, tmp_path):
    """The EXAMPLES pattern, run by ansible-playbook: one host per target, with the target's facts as host vars."""
    plays = [
        {"name": "discover", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
            {"name": "fleet", "rdsiam.auth.rds_iam_fleet_info": {"identifiers": ["sbx-*"], "tags": {"team": "data"}}, "register": "fleet"},
            {"name": "hosts", "ansible.builtin.add_host": {"name": "{{ item.identifier }}", "groups": ["rds_targets", "rds_{{ item.dialect }}"],
                                                           "rds_target": "{{ item }}", "login_port": "{{ item.port }}"},
             "loop": "{{ fleet.targets }}"},
        ]},
        {"name": "per target", "hosts": "rds_targets", "connection": "local", "gather_facts": False, "tasks": [
            {"name": "show", "ansible.builtin.debug": {"msg": "{{ inventory_hostname }} {{ rds_target.resource_id }} {{ group_names | sort }}"}},
        ]},
    ]
    run = run_playbook(plays, tmp_path)
    assert run.rc == 0, run.stdout + run.stderr
    for identifier, engine in (("sbx-mariadb", "mariadb"), ("sbx-mysql", "mysql")):
        shown = run.task("show", host=identifier)["result"]["msg"]
        assert shown == f"{identifier} {sandbox_env.target(identifier)['resource_id']} {sorted(['rds_targets', 'rds_' + engine])}"
    assert sorted(entry["host"] for entry in run.results if entry["task"] == "show") == ["sbx-mariadb", "sbx-mysql"]
