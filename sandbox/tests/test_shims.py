"""Each shim makes moto behave like AWS; each gap test fails once moto closes the gap itself,
which is the signal to delete that shim."""
import json
import re
import subprocess
import sys
import textwrap

import boto3
import pytest
from moto import mock_aws

from sandbox.aws.shims import apply_shims

REGION = "us-east-1"


def _unpatched(snippet):
    """Run snippet under mock_aws in a fresh interpreter without the shims; it prints JSON."""
    program = "import json, boto3\nfrom moto import mock_aws\nwith mock_aws():\n" + textwrap.indent(textwrap.dedent(snippet), "    ")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@pytest.fixture
def aws():
    apply_shims()
    with mock_aws():
        yield boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


def _create_instance(rds, identifier, engine="postgres", username="postgres", **extra):
    return rds.create_db_instance(DBInstanceIdentifier=identifier, DBInstanceClass="db.t4g.micro", Engine=engine,
                                  MasterUsername=username, ManageMasterUserPassword=True, AllocatedStorage=20,
                                  **extra)["DBInstance"]


def _create_aurora(rds):
    rds.create_db_cluster(DBClusterIdentifier="c1", Engine="aurora-postgresql", MasterUsername="postgres",
                          ManageMasterUserPassword=True)
    rds.create_db_instance(DBInstanceIdentifier="c1-a", DBInstanceClass="db.r6g.large", Engine="aurora-postgresql",
                           DBClusterIdentifier="c1")


# --- DbiResourceId -----------------------------------------------------------------------

def test_moto_still_gives_every_instance_one_resource_id():
    ids = _unpatched("""
        rds = boto3.client("rds", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        ids = [rds.create_db_instance(DBInstanceIdentifier=n, DBInstanceClass="db.t4g.micro", Engine="postgres",
               MasterUsername="u", MasterUserPassword="p4ssword!", AllocatedStorage=20)["DBInstance"]["DbiResourceId"]
               for n in ("a", "b")]
        print(json.dumps(ids))
    """)
    assert ids[0] == ids[1], "moto now issues distinct DbiResourceIds: delete _shim_distinct_dbi_resource_id"


def test_shim_gives_each_instance_its_own_resource_id(aws):
    rds = aws.client("rds")
    first, second = (_create_instance(rds, name)["DbiResourceId"] for name in ("a", "b"))
    assert first != second
    assert re.fullmatch(r"db-[A-Z0-9]{26}", first) and re.fullmatch(r"db-[A-Z0-9]{26}", second)
    found = rds.describe_db_instances(Filters=[{"Name": "dbi-resource-id", "Values": [second]}])["DBInstances"]
    assert [db["DBInstanceIdentifier"] for db in found] == ["b"]


# --- modify_db_cluster(EnableIAMDatabaseAuthentication) ---------------------------------

def test_moto_still_ignores_the_cluster_iam_flag():
    flag = _unpatched("""
        rds = boto3.client("rds", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        rds.create_db_cluster(DBClusterIdentifier="c1", Engine="aurora-postgresql", MasterUsername="u",
                              MasterUserPassword="p4ssword!")
        rds.modify_db_cluster(DBClusterIdentifier="c1", EnableIAMDatabaseAuthentication=True, ApplyImmediately=True)
        print(json.dumps(rds.describe_db_clusters(DBClusterIdentifier="c1")["DBClusters"][0]["IAMDatabaseAuthenticationEnabled"]))
    """)
    assert flag is False, "moto now applies EnableIAMDatabaseAuthentication on clusters: delete _shim_cluster_iam_flag"


def test_shim_flips_the_cluster_flag_and_members_follow(aws):
    rds = aws.client("rds")
    _create_aurora(rds)
    for wanted in (True, False):
        returned = rds.modify_db_cluster(DBClusterIdentifier="c1", EnableIAMDatabaseAuthentication=wanted,
                                         ApplyImmediately=True)["DBCluster"]
        cluster = rds.describe_db_clusters(DBClusterIdentifier="c1")["DBClusters"][0]
        member = rds.describe_db_instances(DBInstanceIdentifier="c1-a")["DBInstances"][0]
        assert (returned["IAMDatabaseAuthenticationEnabled"], cluster["IAMDatabaseAuthenticationEnabled"],
                member["IAMDatabaseAuthenticationEnabled"]) == (wanted, wanted, wanted)


def test_shim_keeps_the_flag_of_standalone_instances(aws):
    rds = aws.client("rds")
    _create_instance(rds, "plain", EnableIAMDatabaseAuthentication=True)
    assert rds.describe_db_instances(DBInstanceIdentifier="plain")["DBInstances"][0]["IAMDatabaseAuthenticationEnabled"]


# --- STS session tags --------------------------------------------------------------------

def test_moto_still_drops_session_tags():
    kept = _unpatched("""
        sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        creds = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/r", RoleSessionName="sess",
                                Tags=[{"Key": "userName", "Value": "alice"}])["Credentials"]
        from moto.backends import get_backend
        role = next(r for r in get_backend("sts")["123456789012"]["aws"].assumed_roles
                    if r.access_key_id == creds["AccessKeyId"])
        print(json.dumps(getattr(role, "session_tags", None)))
    """)
    assert kept is None, "moto now keeps session tags: delete _shim_session_tags"


def _trusted_sts(aws, role):
    """An STS client of an administrator, and a role whose trust policy lets the account's principals in."""
    iam = aws.client("iam")
    iam.create_user(UserName="admin")
    iam.put_user_policy(UserName="admin", PolicyName="admin", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    return boto3.client("sts", region_name=REGION, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])


def test_shim_keeps_session_tags_per_credential(aws):
    from moto.backends import get_backend

    sts = _trusted_sts(aws, "analyst")
    role_arn = "arn:aws:iam::123456789012:role/analyst"
    alice = sts.assume_role(RoleArn=role_arn, RoleSessionName="alice", Tags=[{"Key": "userName", "Value": "alice"}],
                            TransitiveTagKeys=["userName"])["Credentials"]
    untagged = sts.assume_role(RoleArn=role_arn, RoleSessionName="anon")["Credentials"]
    roles = {role.access_key_id: role for role in get_backend("sts")["123456789012"]["aws"].assumed_roles}
    assert roles[alice["AccessKeyId"]].session_tags == {"userName": "alice"}
    assert roles[alice["AccessKeyId"]].transitive_tag_keys == ["userName"]
    assert roles[untagged["AccessKeyId"]].session_tags == {}


# --- STS trust policies (the decisions themselves: sandbox/tests/test_sts_trust.py) --------

def test_moto_still_lets_any_key_assume_any_role():
    issued = _unpatched("""
        sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        print(json.dumps(sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/none", RoleSessionName="ses")["AssumedRoleUser"]["Arn"]))
    """)
    assert issued == "arn:aws:sts::123456789012:assumed-role/none/ses", "moto now checks AssumeRole: delete _shim_trust_policy"


def test_shim_refuses_a_role_that_does_not_exist_and_an_unknown_key(aws):
    sts = _trusted_sts(aws, "analyst")
    with pytest.raises(sts.exceptions.ClientError, match="AccessDenied"):
        sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/none", RoleSessionName="ses")
    unknown = aws.client("sts")
    with pytest.raises(unknown.exceptions.ClientError, match="InvalidClientTokenId"):
        unknown.assume_role(RoleArn="arn:aws:iam::123456789012:role/analyst", RoleSessionName="ses")
    assert sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/analyst", RoleSessionName="ses")["AssumedRoleUser"]["Arn"] == (
        "arn:aws:sts::123456789012:assumed-role/analyst/ses")


# --- RDS-managed master secret -----------------------------------------------------------

def test_moto_still_writes_one_fixed_master_secret():
    secrets = _unpatched("""
        rds = boto3.client("rds", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        sm = boto3.client("secretsmanager", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        out = []
        for name, user in (("a", "postgres"), ("b", "admin2")):
            db = rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t4g.micro", Engine="postgres",
                                        MasterUsername=user, ManageMasterUserPassword=True, AllocatedStorage=20)["DBInstance"]
            out.append(json.loads(sm.get_secret_value(SecretId=db["MasterUserSecret"]["SecretArn"])["SecretString"]))
        print(json.dumps(out))
    """)
    assert secrets[0] == secrets[1], "moto now writes per-instance master secrets: delete _shim_master_secret"


def test_shim_writes_the_master_username_and_a_fresh_password(aws):
    rds, secretsmanager = aws.client("rds"), aws.client("secretsmanager")
    values = []
    for name, user in (("a", "postgres"), ("b", "admin2")):
        arn = _create_instance(rds, name, username=user)["MasterUserSecret"]["SecretArn"]
        values.append(json.loads(secretsmanager.get_secret_value(SecretId=arn)["SecretString"]))
    assert [value["username"] for value in values] == ["postgres", "admin2"]
    assert values[0]["password"] != values[1]["password"]
    assert all(len(value["password"]) >= 20 for value in values)
