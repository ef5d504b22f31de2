"""Helpers and module fixtures for the rds_iam_policy integration tests: IAM names, reads back, cleanup, the proxy target.

Every IAM name starts with PREFIX; `aws` deletes whatever is left of them after a test module. (No tests live here.)
"""
import json

import pytest

from tests.integration.support.harness import run_module


PREFIX = "fleet-t-"  # every IAM name this file creates
PROXY = "fleet-t-proxy"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                                 "Action": ["sts:AssumeRole", "sts:TagSession"]}]}


def iam(sandbox):
    return sandbox.moto().client("iam")


def create_role(sandbox, name):
    return iam(sandbox).create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]


def delete_iam_leftovers(sandbox):
    """Delete every policy, role, user and group this file created (attached or not)."""
    client = iam(sandbox)
    pages = client.get_paginator("list_policies").paginate(Scope="Local")
    for policy in [policy for page in pages for policy in page["Policies"]]:
        if not policy["PolicyName"].startswith(PREFIX):
            continue
        entities = client.list_entities_for_policy(PolicyArn=policy["Arn"])
        for role in entities["PolicyRoles"]:
            client.detach_role_policy(RoleName=role["RoleName"], PolicyArn=policy["Arn"])
        for user in entities["PolicyUsers"]:
            client.detach_user_policy(UserName=user["UserName"], PolicyArn=policy["Arn"])
        for group in entities["PolicyGroups"]:
            client.detach_group_policy(GroupName=group["GroupName"], PolicyArn=policy["Arn"])
        for version in client.list_policy_versions(PolicyArn=policy["Arn"])["Versions"]:
            if not version["IsDefaultVersion"]:
                client.delete_policy_version(PolicyArn=policy["Arn"], VersionId=version["VersionId"])
        client.delete_policy(PolicyArn=policy["Arn"])
    for role in client.list_roles()["Roles"]:
        if role["RoleName"].startswith(PREFIX):
            for name in client.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
                client.delete_role_policy(RoleName=role["RoleName"], PolicyName=name)
            client.delete_role(RoleName=role["RoleName"])
    for user in client.list_users()["Users"]:
        if user["UserName"].startswith(PREFIX):
            for name in client.list_user_policies(UserName=user["UserName"])["PolicyNames"]:
                client.delete_user_policy(UserName=user["UserName"], PolicyName=name)
            client.delete_user(UserName=user["UserName"])


@pytest.fixture(scope="module")
def proxy(sandbox):
    """An RDS proxy in moto (no database behind it): the third kind of target."""
    rds, ec2 = sandbox.moto().client("rds"), sandbox.moto().client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.8.{n}.0/24", AvailabilityZone=f"{sandbox.region}{zone}")["Subnet"]["SubnetId"]
               for n, zone in ((1, "a"), (2, "b"))]
    created = rds.create_db_proxy(DBProxyName=PROXY, EngineFamily="POSTGRESQL", RoleArn="arn:aws:iam::123456789012:role/proxy",
                                  VpcSubnetIds=subnets, Auth=[{"AuthScheme": "SECRETS", "IAMAuth": "REQUIRED",
                                                               "SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:px"}])["DBProxy"]
    yield {"name": PROXY, "resource_id": created["DBProxyArn"].rsplit(":", 1)[-1]}
    rds.delete_db_proxy(DBProxyName=PROXY)
    for subnet in subnets:
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


@pytest.fixture(scope="module")
def aws(sandbox, proxy):
    yield sandbox
    delete_iam_leftovers(sandbox)


@pytest.fixture
def env(aws, sandbox_env):
    return aws


def policy(name, grants, check=False, diff=False, **args):
    result = run_module("rds_iam_policy", dict(name=name, grants=grants, **args), check=check, diff=diff)
    return result


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def connect_arn(sandbox, resource_id, user):
    return f"arn:aws:rds-db:{sandbox.region}:{sandbox.state['operator']['account_id']}:dbuser:{resource_id}/{user}"


def versions(sandbox, arn):
    found = iam(sandbox).list_policy_versions(PolicyArn=arn)["Versions"]
    return sorted((version["VersionId"], version["IsDefaultVersion"]) for version in found)


def default_document(sandbox, arn):
    client = iam(sandbox)
    default = client.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return client.get_policy_version(PolicyArn=arn, VersionId=default)["PolicyVersion"]["Document"]


def local_policy_names(sandbox, prefix):
    pages = iam(sandbox).get_paginator("list_policies").paginate(Scope="Local")
    return sorted(p["PolicyName"] for page in pages for p in page["Policies"] if p["PolicyName"].startswith(prefix))
