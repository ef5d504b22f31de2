"""Resolving grant targets to resource ids: one describe per kind and region, Aurora members, unknowns, wildcards."""
import botocore.session
import pytest
from botocore.stub import Stubber

from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_policy_resources as resolve, _rds_describe as _fleet
from tests.unit.support.rds_items import PROXY, cluster, instance

REGION = "us-east-1"


@pytest.fixture
def stubs(monkeypatch):
    session = botocore.session.get_session()
    clients = {service: session.create_client(service, region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")
               for service in ("rds", "sts")}
    stubbers = {service: Stubber(client) for service, client in clients.items()}
    monkeypatch.setattr(_fleet, "aws_client", lambda options, service: clients[service])
    monkeypatch.setattr(resolve, "aws_client", lambda options, service: clients[service])
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()  # every expected call made, and (Stubber) no other


def describe_instances_and_clusters(stubs):
    stubs["rds"].add_response("describe_db_instances", {"DBInstances": [
        instance("app-pg"), instance("app-aurora-1", "aurora-postgresql", cluster="app-aurora")]}, {})
    stubs["rds"].add_response("describe_db_clusters", {"DBClusters": [cluster("app-aurora")]}, {})


def ids(resolved, value):
    return [entry["resource_id"] for entry in resolved[value]]


def test_identifiers_resolve_to_resource_ids_with_one_describe_per_kind(stubs):
    describe_instances_and_clusters(stubs)
    resolved, warnings = resolve.resolve_targets({}, ["app-pg", "app-aurora", "APP-PG"], REGION)
    assert ids(resolved, "app-pg") == [instance("app-pg")["DbiResourceId"]]
    assert ids(resolved, "APP-PG") == ids(resolved, "app-pg")  # RDS identifiers are case-insensitive
    assert ids(resolved, "app-aurora") == [cluster("app-aurora")["DbClusterResourceId"]]
    assert warnings == []


def test_an_aurora_member_resolves_to_its_cluster_with_a_warning(stubs):
    describe_instances_and_clusters(stubs)
    resolved, warnings = resolve.resolve_targets({}, ["app-aurora-1"], REGION)
    assert ids(resolved, "app-aurora-1") == [cluster("app-aurora")["DbClusterResourceId"]]
    assert len(warnings) == 1 and "app-aurora-1" in warnings[0] and "cluster 'app-aurora'" in warnings[0]


def test_every_unknown_target_is_listed(stubs):
    describe_instances_and_clusters(stubs)
    stubs["rds"].add_response("describe_db_proxies", {"DBProxies": []}, {})  # a plain name might be a proxy
    with pytest.raises(resolve.UnknownTargetError) as error:
        resolve.resolve_targets({}, ["app-pg", "nope-1", "nope-2", "db-NOSUCHRESOURCEIDXXXXXXXXXX"], REGION)
    message = str(error.value)
    assert "'nope-1' (us-east-1)" in message and "'nope-2' (us-east-1)" in message and "db-NOSUCHRESOURCEID" in message
    assert "'app-pg'" not in message and "nothing was changed" in message


def test_proxy_names_are_described_only_when_needed(stubs):
    describe_instances_and_clusters(stubs)
    stubs["rds"].add_response("describe_db_proxies", {"DBProxies": [PROXY]}, {})
    resolved, _warnings = resolve.resolve_targets({}, ["app-pg", "app-proxy"], REGION)
    assert ids(resolved, "app-proxy") == ["prx-0123456789abcdef0"]


def test_resource_ids_and_arns_are_checked_against_the_right_kind(stubs):
    stubs["rds"].add_response("describe_db_clusters", {"DBClusters": [cluster("app-aurora")]}, {})
    stubs["rds"].add_response("describe_db_proxies", {"DBProxies": [PROXY]}, {})
    cid = cluster("app-aurora")["DbClusterResourceId"]
    resolved, _warnings = resolve.resolve_targets({}, [cid, PROXY["DBProxyArn"]], REGION)
    assert ids(resolved, cid) == [cid] and ids(resolved, PROXY["DBProxyArn"]) == ["prx-0123456789abcdef0"]


def test_an_arn_is_described_in_its_own_region(stubs):
    stubs["rds"].add_response("describe_db_clusters", {"DBClusters": []}, {})
    with pytest.raises(resolve.UnknownTargetError, match=r"'arn:aws:rds:eu-west-1:123456789012:cluster:x' \(eu-west-1\)"):
        resolve.resolve_targets({}, ["arn:aws:rds:eu-west-1:123456789012:cluster:x"], REGION)


def test_wildcard_needs_no_describe_and_takes_the_account_from_sts(stubs):
    stubs["sts"].add_response("get_caller_identity", {"Account": "210987654321", "Arn": "arn:aws-cn:iam::210987654321:user/op",
                                                      "UserId": "AIDA"}, {})
    resolved, _warnings = resolve.resolve_targets({}, ["*"], "cn-north-1")
    assert resolved["*"] == [dict(resource_id="*", region="cn-north-1", account_id="210987654321", partition="aws-cn", dialect=None,
                                  label="every target in cn-north-1")]


@pytest.mark.parametrize("value", ["bad_name", "1abc", "arn:aws:rds:eu-west-1:123456789012:snapshot:s", ""])
def test_malformed_targets_are_refused_before_any_call(stubs, value):
    with pytest.raises(resolve.UnknownTargetError, match="is not an instance or cluster identifier"):
        resolve.resolve_targets({}, [value], REGION)
