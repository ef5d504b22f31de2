"""Fleet discovery with botocore's Stubber: pagination, proxy tags, filters, and exactly the expected calls."""
import botocore.session
import pytest
from botocore.stub import Stubber

from ansible_collections.rdsiam.auth.plugins.module_utils import _rds_describe as _fleet
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError
from tests.unit.support.rds_items import PROXY, PROXY_ARN, cluster, instance


@pytest.fixture
def stubs(monkeypatch):
    session = botocore.session.get_session()
    clients = {service: session.create_client(service, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
               for service in ("rds", "resourcegroupstaggingapi")}
    stubbers = {service: Stubber(client) for service, client in clients.items()}
    monkeypatch.setattr(_fleet, "aws_client", lambda options, service: clients[service])
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()


def add_default_responses(stubs):
    rds = stubs["rds"]
    rds.add_response("describe_db_instances", {"DBInstances": [instance("a-pg", tags={"env": "prod"}), instance("b-maria", "mariadb")],
                                               "Marker": "page2"}, {})
    rds.add_response("describe_db_instances", {"DBInstances": [instance("c-aurora-1", "aurora-postgresql", cluster="c-aurora")]},
                     {"Marker": "page2"})
    rds.add_response("describe_db_clusters", {"DBClusters": [cluster("c-aurora", tags={"env": "prod"})]}, {})
    rds.add_response("describe_db_proxies", {"DBProxies": [PROXY], "Marker": "p2"}, {})
    rds.add_response("describe_db_proxies", {"DBProxies": []}, {"Marker": "p2"})
    stubs["resourcegroupstaggingapi"].add_response(
        "get_resources", {"ResourceTagMappingList": [{"ResourceARN": PROXY_ARN, "Tags": [{"Key": "env", "Value": "prod"}]}]},
        {"ResourceTypeFilters": ["rds:db-proxy"]})


def test_every_page_of_every_kind_is_read_once(stubs):
    add_default_responses(stubs)
    found = _fleet.discover({}, ["us-east-1"])
    assert [(t["kind"], t["identifier"]) for t in found] == [
        ("instance", "a-pg"), ("instance", "b-maria"), ("instance", "c-aurora-1"), ("cluster", "c-aurora"), ("proxy", "app-proxy")]
    proxy = found[-1]
    assert (proxy["tags"], proxy["engine"], proxy["dialect"], proxy["resource_id"]) == ({"env": "prod"}, "MYSQL", "mysql", "prx-0123456789abcdef0")


def test_filters_combine(stubs):
    add_default_responses(stubs)
    found = _fleet.discover({}, ["us-east-1"], tags={"env": "prod"}, engines=["postgres"])
    assert [t["identifier"] for t in found] == ["a-pg", "c-aurora"]


def test_no_proxy_means_no_tagging_call(stubs):
    rds = stubs["rds"]
    rds.add_response("describe_db_proxies", {"DBProxies": []}, {})
    assert _fleet.discover({}, ["us-east-1"], kinds=["proxy"]) == []


def test_kinds_limit_the_calls(stubs):
    stubs["rds"].add_response("describe_db_clusters", {"DBClusters": [cluster("c-aurora")]}, {})
    assert [t["kind"] for t in _fleet.discover({}, ["us-east-1"], kinds=["cluster"])] == ["cluster"]


def test_aws_errors_name_the_operation_and_region(stubs):
    stubs["rds"].add_client_error("describe_db_instances", "AccessDenied", "not allowed")
    with pytest.raises(AwsCallError, match="rds:DescribeDBInstances on region us-east-1 failed: AccessDenied: not allowed: grant the calling "
                       "identity rds:DescribeDBInstances"):
        _fleet.discover({}, ["us-east-1"], kinds=["instance"])


TARGETS = [
    {"identifier": "app-pg", "arn": "arn:a", "resource_id": "db-1", "engine": "postgres", "dialect": "postgres",
     "tags": {"env": "prod", "team": "pay"}, "iam_auth_enabled": True},
    {"identifier": "app-aurora", "arn": "arn:b", "resource_id": "cluster-1", "engine": "aurora-postgresql", "dialect": "postgres",
     "tags": {"env": "dev"}, "iam_auth_enabled": False},
    {"identifier": "billing", "arn": "arn:c", "resource_id": "db-2", "engine": "mariadb", "dialect": "mariadb",
     "tags": {}, "iam_auth_enabled": False},
]


@pytest.mark.parametrize("filters, expected", [
    ({"identifiers": ["app-*"]}, ["app-pg", "app-aurora"]),
    ({"identifiers": ["billing", "db-1"]}, ["app-pg", "billing"]),
    ({"identifiers": ["app"]}, []),
    # RDS keeps identifiers in lower case and matches them case-insensitively
    ({"identifiers": ["App-*", "BILLING"]}, ["app-pg", "app-aurora", "billing"]),
    ({"engines": ["postgres"]}, ["app-pg", "app-aurora"]),
    ({"engines": ["aurora-postgresql"]}, ["app-aurora"]),
    ({"engines": ["MariaDB"]}, ["billing"]),
    ({"tags": {"env": "prod"}}, ["app-pg"]),
    ({"tags": {"env": "prod", "team": "ops"}}, []),
    ({"iam_auth_enabled": False}, ["app-aurora", "billing"]),
    ({"identifiers": ["app-*"], "iam_auth_enabled": True}, ["app-pg"]),
])
def test_filter_targets(filters, expected):
    assert [t["identifier"] for t in _fleet.filter_targets(TARGETS, **filters)] == expected


def test_each_region_is_described_once_per_kind(stubs, monkeypatch):
    seen = []
    stubbed = _fleet.aws_client

    def client_for(options, service):
        seen.append((options["region"], service))
        return stubbed(options, service)

    monkeypatch.setattr(_fleet, "aws_client", client_for)
    for region in ("us-east-1", "eu-west-1"):
        stubs["rds"].add_response("describe_db_clusters", {"DBClusters": [cluster(f"c-{region}")]}, {})
    found = _fleet.discover({}, ["us-east-1", "eu-west-1"], kinds=["cluster"])
    assert seen == [("us-east-1", "rds"), ("eu-west-1", "rds")]
    assert [(t["region"], t["identifier"]) for t in found] == [("eu-west-1", "c-eu-west-1"), ("us-east-1", "c-us-east-1")]


def test_a_tagging_error_names_the_permission(stubs):
    stubs["rds"].add_response("describe_db_proxies", {"DBProxies": [PROXY]}, {})
    stubs["resourcegroupstaggingapi"].add_client_error("get_resources", "AccessDeniedException", "no")
    with pytest.raises(AwsCallError, match=r"^tagging:GetResources on the RDS proxies of region us-east-1 failed: AccessDeniedException: no: "
                                           r"proxy tags need the tag:GetResources permission$"):
        _fleet.discover({}, ["us-east-1"], kinds=["proxy"])
