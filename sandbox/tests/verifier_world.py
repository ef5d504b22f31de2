"""In-process moto for the verifier's tests: two targets, principals made to order, tokens and verdicts.

(No tests live here; sandbox/tests/conftest.py turns World into the `aws` fixture.)
"""
import datetime
import functools
import json
import urllib.parse

import boto3
from botocore.credentials import Credentials

from sandbox import reference_client
from sandbox.aws import credentials_api, iam_verifier

REGION = "us-east-1"
ACCOUNT = "123456789012"
NOW = datetime.datetime.now(datetime.timezone.utc)
# Every principal of the account whose own policies allow sts:AssumeRole on the role may assume it.
TRUST_ACCOUNT = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}


@functools.lru_cache(maxsize=None)
def moto_session():
    """One session for every test: building boto3 clients from a fresh one costs 0.25 s each time."""
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


class World:
    """Two targets (an RDS PostgreSQL instance, an Aurora cluster with a member) and helpers."""

    def __init__(self, session):
        self.session = session
        self.iam, self.rds = session.client("iam"), session.client("rds")
        self._sts = None
        db = self.rds.create_db_instance(DBInstanceIdentifier="pg", DBInstanceClass="db.t4g.micro", Engine="postgres",
                                         MasterUsername="postgres", MasterUserPassword="p4ssword!", AllocatedStorage=20,
                                         Port=15432, EnableIAMDatabaseAuthentication=True)["DBInstance"]
        self.pg = {"id": "pg", "host": db["Endpoint"]["Address"], "port": 15432, "resource": db["DbiResourceId"]}
        cluster = self.rds.create_db_cluster(DBClusterIdentifier="aurora", Engine="aurora-postgresql", MasterUsername="postgres",
                                             MasterUserPassword="p4ssword!", Port=15433,
                                             EnableIAMDatabaseAuthentication=True)["DBCluster"]
        member = self.rds.create_db_instance(DBInstanceIdentifier="aurora-1", DBInstanceClass="db.r6g.large",
                                             Engine="aurora-postgresql", DBClusterIdentifier="aurora")["DBInstance"]
        self.aurora = {"id": "aurora", "host": cluster["Endpoint"], "port": 15433, "resource": cluster["DbClusterResourceId"],
                       "reader": cluster["ReaderEndpoint"], "member": member["Endpoint"]["Address"]}

    def arn(self, target, user):
        return f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{target['resource']}/{user}"

    def user(self, name, *statements, tags=None):
        self.iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
        if statements:
            self.iam.put_user_policy(UserName=name, PolicyName="connect", PolicyDocument=document(*statements))
        key = self.iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def sts(self):
        """An STS client of an administrator of the account: the sandbox's STS lets only a trusted caller assume a role."""
        if self._sts is None:
            self.iam.create_user(UserName="world-admin")
            self.iam.put_user_policy(UserName="world-admin", PolicyName="admin",
                                     PolicyDocument=document({"Effect": "Allow", "Action": "*", "Resource": "*"}))
            key = self.iam.create_access_key(UserName="world-admin")["AccessKey"]
            self._sts = boto3.client("sts", region_name=REGION, aws_access_key_id=key["AccessKeyId"],
                                     aws_secret_access_key=key["SecretAccessKey"])
        return self._sts

    def role_session(self, role, *statements, session_tags=None, role_tags=None, policy=None):
        self.iam.create_role(RoleName=role, AssumeRolePolicyDocument=document(TRUST_ACCOUNT),
                             Tags=[{"Key": k, "Value": v} for k, v in (role_tags or {}).items()])
        self.iam.put_role_policy(RoleName=role, PolicyName="connect", PolicyDocument=document(*statements))
        extra = {"Tags": [{"Key": k, "Value": v} for k, v in session_tags.items()]} if session_tags else {}
        if policy:
            extra["Policy"] = policy
        issued = self.sts().assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName="sess",
                                        DurationSeconds=900, **extra)["Credentials"]
        return Credentials(issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"])


def document(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(*resources):
    return {"Effect": "Allow", "Action": "rds-db:connect", "Resource": list(resources)}


def mint(credentials, target, user, *, host=None, port=None, region=REGION, signed_at=None):
    """The reference client's token (botocore's generate_db_auth_token) for botocore Credentials; clock at signed_at when given."""
    keys = reference_client.credentials(credentials.access_key, credentials.secret_key, credentials.token)
    return reference_client.mint_token(keys, host or target["host"], port or target["port"], user, region=region, signed_at=signed_at)


def verify(target, user, token, now=None):
    return iam_verifier.verify(credentials_api.DIRECTORY, target["id"], user, token, now=now)


def refusal(target, user, token, now=None):
    """The reason the verifier refuses token (which must not show in it); fails the test if it is accepted."""
    verdict = verify(target, user, token, now=now)
    assert not verdict.allow, f"accepted: {verdict}"
    assert urllib.parse.unquote(token.rsplit("X-Amz-Signature=", 1)[1]) not in verdict.reason
    return verdict.reason
