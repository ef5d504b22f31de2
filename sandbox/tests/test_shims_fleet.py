"""The fleet shims: clusters and proxies are paged as RDS pages them. Each gap test fails
once moto pages them itself, which is the signal to delete the shim."""
import json
import subprocess
import sys
import textwrap

import boto3
import pytest
from moto import mock_aws

from sandbox.aws.shims import apply_shims

REGION = "us-east-1"
COUNT = 23  # more than RDS's smallest page (MaxRecords=20)

_SETUP = """
rds = boto3.client("rds", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
           for n, z in ((1, "a"), (2, "b"))]
for n in range(COUNT):
    rds.create_db_cluster(DBClusterIdentifier=f"c{n:02d}", Engine="aurora-postgresql", MasterUsername="u",
                          MasterUserPassword="p4ssword!")
    rds.create_db_proxy(DBProxyName=f"p{n:02d}", EngineFamily="POSTGRESQL", RoleArn="arn:aws:iam::123456789012:role/r",
                        VpcSubnetIds=subnets, Auth=[{"AuthScheme": "SECRETS", "IAMAuth": "REQUIRED",
                                                     "SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s"}])
"""


def _first_pages(rds):
    clusters = rds.describe_db_clusters(MaxRecords=20)
    proxies = rds.describe_db_proxies(MaxRecords=20)
    return {"clusters": [len(clusters["DBClusters"]), bool(clusters.get("Marker"))],
            "proxies": [len(proxies["DBProxies"]), bool(proxies.get("Marker"))]}


def _unpatched_first_pages():
    program = ("import json, boto3\nfrom moto import mock_aws\nCOUNT = %d\nwith mock_aws():\n" % COUNT
               + textwrap.indent(_SETUP + textwrap.dedent("""
                   c = rds.describe_db_clusters(MaxRecords=20); p = rds.describe_db_proxies(MaxRecords=20)
                   print(json.dumps({"clusters": [len(c["DBClusters"]), bool(c.get("Marker"))],
                                     "proxies": [len(p["DBProxies"]), bool(p.get("Marker"))]}))
               """), "    "))
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_moto_still_returns_every_cluster_and_proxy_in_one_page():
    pages = _unpatched_first_pages()
    assert pages == {"clusters": [COUNT, False], "proxies": [COUNT, False]}, \
        "moto now pages clusters and proxies: delete _shim_paginate_clusters_and_proxies"


@pytest.fixture
def rds():
    apply_shims()
    with mock_aws():
        namespace = {"boto3": boto3, "COUNT": COUNT}
        exec(_SETUP, namespace)  # pylint: disable=exec-used  # the same setup as the unpatched run
        yield namespace["rds"]


def test_shim_pages_clusters_and_proxies_like_rds(rds):
    assert _first_pages(rds) == {"clusters": [20, True], "proxies": [20, True]}
    for operation, key, prefix in (("describe_db_clusters", "DBClusters", "c"), ("describe_db_proxies", "DBProxies", "p")):
        pages = list(rds.get_paginator(operation).paginate(PaginationConfig={"PageSize": 20}))
        names = [item.get("DBClusterIdentifier") or item.get("DBProxyName") for page in pages for item in page[key]]
        assert [len(page[key]) for page in pages] == [20, COUNT - 20]
        assert names == [f"{prefix}{n:02d}" for n in range(COUNT)]


def test_shim_keeps_lookups_by_name(rds):
    assert [c["DBClusterIdentifier"] for c in rds.describe_db_clusters(DBClusterIdentifier="c07")["DBClusters"]] == ["c07"]
    assert [p["DBProxyName"] for p in rds.describe_db_proxies(DBProxyName="p07")["DBProxies"]] == ["p07"]
    arn = rds.describe_db_proxies(DBProxyName="p07")["DBProxies"][0]["DBProxyArn"]
    assert arn.split(":")[-1].startswith("prx-")
