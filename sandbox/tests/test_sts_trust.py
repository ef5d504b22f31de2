"""The sandbox's STS lets a caller assume a role only as AWS would: the trust policy names it (and
allows sts:TagSession when it passes tags), and its own policies allow it unless the trust policy names
it directly in its own account. In-process moto with the shims, two accounts."""
import json

import boto3
import pytest
from moto import mock_aws

from sandbox import fleet
from sandbox.aws import trust_policy
from sandbox.aws.iam_policy_eval import Policy
from sandbox.aws.shims import apply_shims

REGION = "us-east-1"
DB_ACCOUNT = "123456789012"
MGMT = fleet.MANAGEMENT_ACCOUNT
ADMIN = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def document(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def trust(principal, actions=("sts:AssumeRole",), **extra):
    return dict({"Effect": "Allow", "Principal": principal, "Action": list(actions)}, **extra)


class Accounts:
    """IAM clients per account, principals made to order, and AssumeRole as each of them."""

    def __init__(self):
        session = boto3.Session(aws_access_key_id="setup", aws_secret_access_key="setup", region_name=REGION)
        self.iam = {DB_ACCOUNT: fleet.in_account(session.client("iam"), DB_ACCOUNT),
                    MGMT: fleet.in_account(session.client("iam"), MGMT)}

    def role(self, account, name, *trust_statements, policy=None):
        arn = self.iam[account].create_role(RoleName=name, AssumeRolePolicyDocument=document(*trust_statements))["Role"]["Arn"]
        if policy:
            self.iam[account].put_role_policy(RoleName=name, PolicyName="own", PolicyDocument=document(*policy))
        return arn

    def user(self, account, name, *statements):
        """An STS client with the keys of a new IAM user in account."""
        self.iam[account].create_user(UserName=name)
        if statements:
            self.iam[account].put_user_policy(UserName=name, PolicyName="own", PolicyDocument=document(*statements))
        key = self.iam[account].create_access_key(UserName=name)["AccessKey"]
        return sts_client(key["AccessKeyId"], key["SecretAccessKey"])


def sts_client(access_key, secret_key, token=None):
    return boto3.client("sts", region_name=REGION, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                        aws_session_token=token)


def session_of(sts, role_arn, name="sess", **extra):
    """An STS client with the credentials of a new session of role_arn."""
    issued = sts.assume_role(RoleArn=role_arn, RoleSessionName=name, **extra)["Credentials"]
    return sts_client(issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"])


def refused(sts, role_arn, **extra):
    """The AccessDenied message (and HTTP status) for an AssumeRole that must fail."""
    with pytest.raises(sts.exceptions.ClientError) as caught:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="refused", **extra)
    error = caught.value.response
    assert error["Error"]["Code"] == "AccessDenied", error
    return error["Error"]["Message"], error["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def accounts():
    apply_shims()
    with mock_aws():
        yield Accounts()


def test_account_root_in_the_trust_policy_needs_the_callers_own_permission(accounts):
    role = accounts.role(DB_ACCOUNT, "target", trust({"AWS": f"arn:aws:iam::{DB_ACCOUNT}:root"}))
    plain = accounts.user(DB_ACCOUNT, "plain")
    assert refused(plain, role) == (f"User: arn:aws:iam::{DB_ACCOUNT}:user/plain is not authorized to perform: sts:AssumeRole "
                                    f"on resource: {role}", 403)
    allowed = accounts.user(DB_ACCOUNT, "allowed", {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role})
    assert allowed.assume_role(RoleArn=role, RoleSessionName="ok")["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{DB_ACCOUNT}:assumed-role/target/ok")


def test_a_trust_policy_naming_the_user_itself_needs_no_identity_policy_but_a_deny_still_wins(accounts):
    named = [f"arn:aws:iam::{DB_ACCOUNT}:user/named", f"arn:aws:iam::{DB_ACCOUNT}:user/denied"]
    role = accounts.role(DB_ACCOUNT, "target", trust({"AWS": named}))
    assert accounts.user(DB_ACCOUNT, "named").assume_role(RoleArn=role, RoleSessionName="ok")["Credentials"]["AccessKeyId"]
    denied = accounts.user(DB_ACCOUNT, "denied", {"Effect": "Deny", "Action": "sts:*", "Resource": "*"})
    assert refused(denied, role)[0].startswith(f"User: arn:aws:iam::{DB_ACCOUNT}:user/denied is not authorized")
    stranger = accounts.user(DB_ACCOUNT, "stranger", ADMIN)  # full access, but the trust policy does not name it
    assert refused(stranger, role)[0] == (f"User: arn:aws:iam::{DB_ACCOUNT}:user/stranger is not authorized to perform: "
                                          f"sts:AssumeRole on resource: {role}")


def test_a_role_session_is_named_by_its_role_and_the_trust_may_require_conditions(accounts):
    admin = accounts.user(DB_ACCOUNT, "admin", ADMIN)
    root = {"AWS": f"arn:aws:iam::{DB_ACCOUNT}:root"}
    first = accounts.role(DB_ACCOUNT, "first", trust(root))
    other = accounts.role(DB_ACCOUNT, "other", trust(root))
    target = accounts.role(DB_ACCOUNT, "target", trust({"AWS": first}),
                           trust("*", Condition={"StringEquals": {"sts:ExternalId": "shared-secret",
                                                                  "aws:PrincipalAccount": DB_ACCOUNT}}))
    assert session_of(session_of(admin, first), target).get_caller_identity()["Arn"].endswith(":assumed-role/target/sess")
    other_session = session_of(admin, other)
    assert refused(other_session, target)[0].startswith(f"User: arn:aws:sts::{DB_ACCOUNT}:assumed-role/other/sess is not authorized")
    assert refused(admin, target, ExternalId="wrong")[0].startswith(f"User: arn:aws:iam::{DB_ACCOUNT}:user/admin")
    assert admin.assume_role(RoleArn=target, RoleSessionName="ext", ExternalId="shared-secret")["AssumedRoleUser"]


def test_session_tags_need_sts_tag_session_in_the_trust_policy(accounts):
    admin = accounts.user(DB_ACCOUNT, "admin", ADMIN)
    untaggable = accounts.role(DB_ACCOUNT, "untaggable", trust({"AWS": f"arn:aws:iam::{DB_ACCOUNT}:root"}))
    tags = [{"Key": "db_user", "Value": "alice"}]
    assert refused(admin, untaggable, Tags=tags)[0] == (f"User: arn:aws:iam::{DB_ACCOUNT}:user/admin is not authorized to "
                                                        f"perform: sts:TagSession on resource: {untaggable}")
    assert admin.assume_role(RoleArn=untaggable, RoleSessionName="untagged")["AssumedRoleUser"]
    only_alice = accounts.role(DB_ACCOUNT, "only-alice", trust({"AWS": f"arn:aws:iam::{DB_ACCOUNT}:root"}, ["sts:AssumeRole"]),
                               trust({"AWS": f"arn:aws:iam::{DB_ACCOUNT}:root"}, ["sts:TagSession"],
                                     Condition={"StringEquals": {"aws:RequestTag/db_user": "alice"}}))
    assert admin.assume_role(RoleArn=only_alice, RoleSessionName="alice", Tags=tags)["AssumedRoleUser"]
    assert "sts:TagSession" in refused(admin, only_alice, Tags=[{"Key": "db_user", "Value": "bob"}])[0]


def test_cross_account_needs_the_trust_policy_and_the_callers_own_policy(accounts):
    operator = accounts.user(MGMT, "operator", ADMIN)
    root = {"AWS": f"arn:aws:iam::{MGMT}:root"}
    monitoring = accounts.role(MGMT, "monitoring", trust(root),
                               policy=[{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/pg-monitor-role"}])
    unnamed = accounts.role(MGMT, "unnamed", trust(root), policy=[ADMIN])
    forgetful = accounts.role(MGMT, "forgetful", trust(root))  # named by the trust policy, but allowed nothing itself
    target = accounts.role(DB_ACCOUNT, "pg-monitor-role", trust({"AWS": [monitoring, forgetful]}))
    crossed = session_of(session_of(operator, monitoring), target)
    assert crossed.get_caller_identity()["Arn"] == f"arn:aws:sts::{DB_ACCOUNT}:assumed-role/pg-monitor-role/sess"
    assert refused(session_of(operator, unnamed), target)[0].startswith(f"User: arn:aws:sts::{MGMT}:assumed-role/unnamed/sess")
    assert refused(session_of(operator, forgetful), target)[0].startswith(f"User: arn:aws:sts::{MGMT}:assumed-role/forgetful/sess")
    # The account root of the management account does not reach into the database account's roles either.
    assert refused(operator, accounts.role(DB_ACCOUNT, "local-only", trust({"AWS": f"arn:aws:iam::{DB_ACCOUNT}:root"})))


def test_unknown_keys_and_missing_roles_are_refused_as_aws_refuses_them(accounts):
    admin = accounts.user(DB_ACCOUNT, "admin", ADMIN)
    assert refused(admin, f"arn:aws:iam::{DB_ACCOUNT}:role/missing")[0] == (
        f"User: arn:aws:iam::{DB_ACCOUNT}:user/admin is not authorized to perform: sts:AssumeRole on resource: "
        f"arn:aws:iam::{DB_ACCOUNT}:role/missing")
    role = accounts.role(DB_ACCOUNT, "target", trust("*"))
    with pytest.raises(admin.exceptions.ClientError, match="InvalidClientTokenId"):
        sts_client("AKIAUNKNOWNKEY000000", "x").assume_role(RoleArn=role, RoleSessionName="who")


# --- the pure decision ----------------------------------------------------------------------

def _caller(account, arn, *own, policies=()):
    return trust_policy.Caller(arn=arn, account_id=account, own_arns=own or (arn,), policies=tuple(policies),
                               context={"aws:PrincipalArn": own[0] if own else arn, "aws:PrincipalAccount": account})


def test_decide_explicit_deny_in_the_trust_policy_wins_over_an_allow():
    role = f"arn:aws:iam::{DB_ACCOUNT}:role/r"
    user = f"arn:aws:iam::{DB_ACCOUNT}:user/u"
    document_ = {"Statement": [trust({"AWS": user}), dict(trust("*"), Effect="Deny")]}
    decision = trust_policy.decide(document_, role, _caller(DB_ACCOUNT, user), {}, trust_policy.ASSUME_ROLE)
    assert (decision.allowed, decision.reason) == (False, f"explicitly denied by the trust policy of {role}")


def test_decide_a_not_principal_deny_spares_the_principals_it_lists():
    role = f"arn:aws:iam::{DB_ACCOUNT}:role/r"
    kept, other = f"arn:aws:iam::{DB_ACCOUNT}:user/kept", f"arn:aws:iam::{DB_ACCOUNT}:user/other"
    document_ = {"Statement": [trust({"AWS": [kept, other]}),
                               {"Effect": "Deny", "NotPrincipal": {"AWS": kept}, "Action": "sts:AssumeRole"}]}
    assert trust_policy.decide(document_, role, _caller(DB_ACCOUNT, kept), {}, trust_policy.ASSUME_ROLE).allowed
    assert not trust_policy.decide(document_, role, _caller(DB_ACCOUNT, other), {}, trust_policy.ASSUME_ROLE).allowed


def test_decide_cross_account_reasons_name_the_missing_identity_permission():
    role = f"arn:aws:iam::{DB_ACCOUNT}:role/r"
    role_in_mgmt, session = f"arn:aws:iam::{MGMT}:role/m", f"arn:aws:sts::{MGMT}:assumed-role/m/s"
    document_ = {"Statement": [trust({"AWS": role_in_mgmt})]}
    bare = trust_policy.decide(document_, role, _caller(MGMT, session, role_in_mgmt, session), {}, trust_policy.ASSUME_ROLE)
    assert (bare.allowed, bare.reason) == (False, f"the trust policy of {role} allows {session} but its own policies do not: "
                                                  f"no policy allows sts:AssumeRole on {role}")
    granted = _caller(MGMT, session, role_in_mgmt, session,
                      policies=[Policy("own", {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role}]})])
    assert trust_policy.decide(document_, role, granted, {}, trust_policy.ASSUME_ROLE).allowed
