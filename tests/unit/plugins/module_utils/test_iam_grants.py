"""Grant and access rows from the account's principals, and how the account reader builds those principals."""
import json
from urllib.parse import quote

import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_account as account_reader
from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_grants as grants
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError

ACCOUNT = "123456789012"
OTHER = "210987654321"
RID = "db-AAAAAAAAAAAAAAAAAAAA"
CID = "cluster-BBBBBBBBBBBBBBBBBBBB"
TARGETS = [dict(identifier="app-pg", resource_id=RID, region="us-east-1", kind="instance"),
           dict(identifier="app-aurora", resource_id=CID, region="us-east-1", kind="cluster")]


def arn(resource_id, db_user, region="us-east-1"):
    return f"arn:aws:rds-db:{region}:{ACCOUNT}:dbuser:{resource_id}/{db_user}"


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def connect(*resources, effect="Allow", action="rds-db:connect", **extra):
    return dict({"Effect": effect, "Action": action, "Resource": list(resources)}, **extra)


class FakeCounter:
    """Answers GetPolicy / GetPolicyVersion for AWS managed policies from a dict; a missing one is NoSuchEntity."""

    def __init__(self, managed=None, denied=()):
        self.managed = managed or {}
        self.denied = denied
        self.calls = []

    def call(self, _client, operation, subject, **params):
        self.calls.append(operation)
        policy_arn = params["PolicyArn"]
        if policy_arn in self.denied:
            raise AwsCallError(f"iam:GetPolicy on {subject} failed: AccessDenied: no", code="AccessDenied", operation="iam:GetPolicy")
        if operation == "get_policy":
            if policy_arn not in self.managed:
                return None
            return {"Policy": {"Arn": policy_arn, "PolicyName": policy_arn.rsplit("/", 1)[1], "DefaultVersionId": "v3"}}
        return {"PolicyVersion": {"Document": quote(json.dumps(self.managed[policy_arn]))}}


def managed(name, document):
    return {"Arn": f"arn:aws:iam::{ACCOUNT}:policy/{name}", "PolicyName": name,
            "PolicyVersionList": [{"Document": {"Statement": []}, "IsDefaultVersion": False},
                                  {"Document": document, "IsDefaultVersion": True}]}


def user(name, inline=None, attached=(), groups=(), tags=None, boundary=None):
    entity = {"UserName": name, "UserId": f"AIDA{name.upper()}", "Arn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "Path": "/",
              "UserPolicyList": [{"PolicyName": key, "PolicyDocument": value} for key, value in (inline or {}).items()],
              "AttachedManagedPolicies": [{"PolicyArn": policy_arn} for policy_arn in attached], "GroupList": list(groups),
              "Tags": [{"Key": key, "Value": value} for key, value in (tags or {}).items()]}
    if boundary:
        entity["PermissionsBoundary"] = {"PermissionsBoundaryArn": boundary}
    return entity


def role(name, inline=None, attached=(), trust=None, tags=None, boundary=None, path="/"):
    entity = {"RoleName": name, "RoleId": f"AROA{name.upper()}", "Arn": f"arn:aws:iam::{ACCOUNT}:role{path}{name}", "Path": path,
              "RolePolicyList": [{"PolicyName": key, "PolicyDocument": value} for key, value in (inline or {}).items()],
              "AttachedManagedPolicies": [{"PolicyArn": policy_arn} for policy_arn in attached],
              "AssumeRolePolicyDocument": trust or doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                        "Action": "sts:AssumeRole"}),
              "Tags": [{"Key": key, "Value": value} for key, value in (tags or {}).items()]}
    if boundary:
        entity["PermissionsBoundary"] = {"PermissionsBoundaryArn": boundary}
    return entity


def group(name, inline=None, attached=()):
    return {"GroupName": name, "GroupId": f"AGPA{name.upper()}", "Arn": f"arn:aws:iam::{ACCOUNT}:group/{name}", "Path": "/",
            "GroupPolicyList": [{"PolicyName": key, "PolicyDocument": value} for key, value in (inline or {}).items()],
            "AttachedManagedPolicies": [{"PolicyArn": policy_arn} for policy_arn in attached]}


def principals_of(users=(), groups=(), roles=(), policies=(), counter=None):
    details = {"UserDetailList": list(users), "GroupDetailList": list(groups), "RoleDetailList": list(roles), "Policies": list(policies)}
    documents = account_reader._Documents(None, counter or FakeCounter(), details["Policies"])
    return account_reader.principals_from_details(details, ACCOUNT, documents)


def by_arn(principals, name):
    return next(principal for principal in principals if principal["arn"].endswith(name))


# ---- the account reader ----

def test_user_statements_come_from_inline_attached_and_each_group():
    ops = managed("ops-connect", doc(connect(arn(RID, "ops"))))
    principals = principals_of(
        users=[user("alice", inline={"own": doc(connect(arn(RID, "alice")))}, attached=[ops["Arn"]], groups=["dba"])],
        groups=[group("dba", inline={"dba-inline": doc(connect(arn(CID, "dba")))}, attached=[ops["Arn"]])],
        policies=[ops])
    alice = by_arn(principals, "user/alice")
    assert [(s.source["policy"], s.source["kind"], s.source["holder"].rsplit(":", 1)[1]) for s in alice["statements"]] == [
        ("own", "inline", "user/alice"), ("ops-connect", "managed", "user/alice"),
        ("dba-inline", "group_inline", "group/dba"), ("ops-connect", "group_managed", "group/dba")]
    assert alice["groups"] == ["dba"] and alice["readable"] is True
    assert by_arn(principals, "group/dba")["members"] == ["alice"]
    assert [p["arn"] for p in principals] == sorted(p["arn"] for p in principals)


def test_aws_managed_policies_are_read_once_each_and_decoded():
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    counter = FakeCounter(managed={admin: doc({"Effect": "Allow", "Action": "*", "Resource": "*"})})
    principals = principals_of(users=[user("a", attached=[admin]), user("b", attached=[admin])], roles=[role("r", attached=[admin])],
                               counter=counter)
    assert counter.calls == ["get_policy", "get_policy_version"]
    assert all(p["readable"] and p["statements"][0].source["policy"] == "AdministratorAccess" for p in principals)


def test_unreadable_policy_makes_the_principal_unreadable():
    missing = "arn:aws:iam::aws:policy/Gone"
    denied = "arn:aws:iam::aws:policy/Secret"
    principals = principals_of(users=[user("a", attached=[missing])], roles=[role("r", boundary=denied)],
                               counter=FakeCounter(denied=[denied]))
    a, r = by_arn(principals, "user/a"), by_arn(principals, "role/r")
    assert a["readable"] is False and a["problems"] == [f"managed policy '{missing}' cannot be read: the policy does not exist"]
    assert r["readable"] is False and "AccessDenied" in r["problems"][0] and r["boundary"] == []


def test_documents_may_come_url_encoded_or_as_json_text():
    text = json.dumps(doc(connect(arn(RID, "a b"))))
    assert account_reader.decode_document(quote(text)) == json.loads(text)
    assert account_reader.decode_document(text) == json.loads(text)
    assert account_reader.decode_document(json.loads(text)) == json.loads(text)
    with pytest.raises(ValueError):
        account_reader.decode_document("%5B1%5D")


def test_boundary_and_tags_are_kept():
    boundary = managed("limit", doc(connect("*")))
    principals = principals_of(roles=[role("r", boundary=boundary["Arn"], tags={"team": "db"})], policies=[boundary])
    r = principals[0]
    assert r["boundary_arn"] == boundary["Arn"] and r["boundary"][0].source["kind"] == "boundary"
    assert r["tags"] == {"team": "db"} and r["labels"] == ["permissions_boundary"]


@pytest.mark.parametrize("principal, expected", [
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "account"),
    ({"AWS": ACCOUNT}, "account"),
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/ci"}, "role"),
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"}, "user"),
    ({"AWS": f"arn:aws:iam::{OTHER}:root"}, "cross_account"),
    ({"AWS": f"arn:aws:iam::{OTHER}:role/x"}, "cross_account"),
    ({"AWS": "*"}, "any"),
    ("*", "any"),
    ({"Service": "ec2.amazonaws.com"}, "service"),
    ({"Federated": f"arn:aws:iam::{ACCOUNT}:saml-provider/AWSSSO_0123456789abcdef_DO_NOT_DELETE"}, "identity_center"),
    ({"Federated": f"arn:aws:iam::{ACCOUNT}:saml-provider/Okta"}, "federated"),
    ({"Federated": "cognito-identity.amazonaws.com"}, "federated"),
])
def test_trust_principal_types(principal, expected):
    [entry] = account_reader.assumable_by(doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}), ACCOUNT)
    assert entry["type"] == expected and entry["conditions"] == {} and entry["tag_session"] is False


def test_trust_keeps_conditions_skips_denies_and_other_actions():
    condition = {"StringEquals": {"sts:ExternalId": "x"}}
    trust = doc({"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{OTHER}:root"]}, "Action": "sts:AssumeRole", "Condition": condition},
                {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:GetCallerIdentity"})
    assert account_reader.assumable_by(trust, ACCOUNT) == [dict(principal=f"arn:aws:iam::{OTHER}:root", type="cross_account", conditions=condition,
                                                                tag_session=False)]


@pytest.mark.parametrize("actions, expected", [(["sts:AssumeRole", "sts:TagSession"], True), (["sts:*"], True), ("sts:AssumeRole", False)])
def test_trust_says_whether_sessions_may_be_tagged(actions, expected):
    trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": actions})
    assert [entry["tag_session"] for entry in account_reader.assumable_by(trust, ACCOUNT)] == [expected]


def test_role_labels_identity_center_service_linked_cross_account():
    sso_trust = doc({"Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:saml-provider/AWSSSO_1_DO_NOT_DELETE"},
                     "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"]})
    principals = principals_of(roles=[
        role("AWSReservedSSO_dba_1234", trust=sso_trust, path="/aws-reserved/sso.amazonaws.com/"),
        role("AWSServiceRoleForRDS", path="/aws-service-role/rds.amazonaws.com/",
             trust=doc({"Effect": "Allow", "Principal": {"Service": "rds.amazonaws.com"}, "Action": "sts:AssumeRole"})),
        role("partner", trust=doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}, "Action": "sts:AssumeRole"}))])
    assert by_arn(principals, "AWSReservedSSO_dba_1234")["labels"] == ["identity_center"]
    assert by_arn(principals, "AWSServiceRoleForRDS")["labels"] == ["service_linked", "service_trust"]
    assert by_arn(principals, "role/partner")["labels"] == ["cross_account_trust"]


# ---- grant rows ----

def test_grant_rows_name_targets_and_resource_id_kinds():
    written = doc(connect(arn(RID, "alice"), arn("app-pg", "alice"), arn("db-*", "*"), arn("db-ZZZZ", "x"), "arn:aws:s3:::bucket/*"))
    principals = principals_of(users=[user("alice", inline={"p": written})])
    rows = grants.grant_rows(principals, TARGETS, ACCOUNT)
    summary = sorted((row["resource_id"], row["db_user"], row["resource_id_kind"], row["target"], row["how"]) for row in rows)
    assert summary == [("app-pg", "alice", "identifier", None, "explicit"), ("db-*", "*", "pattern", None, "wildcard"),
                       (RID, "alice", "resource_id", "app-pg", "explicit"), ("db-ZZZZ", "x", "unknown", None, "explicit")]
    explicit = next(row for row in rows if row["target"] == "app-pg")
    assert explicit == dict(principal=f"arn:aws:iam::{ACCOUNT}:user/alice", principal_kind="user", db_user="alice", db_user_resolved=None,
                            resource=arn(RID, "alice"), resource_id=RID, resource_id_kind="resource_id", region="us-east-1",
                            account=ACCOUNT, target="app-pg", effect="allow", how="explicit", conditional=False, conditions=[],
                            policy="p", policy_arn=None, kind="inline", holder=f"arn:aws:iam::{ACCOUNT}:user/alice", statement=0)


def test_grant_rows_for_administrator_deny_and_group():
    principals = principals_of(
        users=[user("bob", groups=["dba"])],
        groups=[group("dba", inline={"g": doc(connect(arn(CID, "dba"), Sid="Dba"))})],
        roles=[role("admin", inline={"all": doc({"Effect": "Allow", "Action": "*", "Resource": "*"}, connect(arn(RID, "root"), effect="Deny"))})])
    rows = grants.grant_rows(principals, TARGETS, ACCOUNT)
    assert [(row["principal"].rsplit(":", 1)[1], row["db_user"], row["effect"], row["how"], row["kind"], row["statement"]) for row in rows] == [
        ("role/admin", "*", "allow", "administrator", "inline", 0),
        ("role/admin", "root", "deny", "explicit", "inline", 1),
        ("user/bob", "dba", "allow", "explicit", "group_inline", "Dba")]
    assert rows[2]["holder"] == f"arn:aws:iam::{ACCOUNT}:group/dba" and rows[2]["target"] == "app-aurora"


def test_abac_rows_resolve_for_users_and_stay_conditional_for_roles():
    abac = doc(connect(arn(RID, "${aws:PrincipalTag/db_user}")))
    principals = principals_of(users=[user("tagged", inline={"abac": abac}, tags={"db_user": "carol"})], roles=[role("session", inline={"abac": abac})])
    tagged, session = sorted(grants.grant_rows(principals, TARGETS, ACCOUNT), key=lambda row: row["principal_kind"], reverse=True)
    assert tagged["db_user_resolved"] == "carol" and tagged["conditional"] is False and tagged["how"] == "abac"
    assert session["db_user"] == "${aws:PrincipalTag/db_user}" and session["db_user_resolved"] is None and session["conditional"] is True
    assert session["conditions"] == [dict(policy="abac", sid=None, effect="Allow", requirement="any session tagged db_user=<db user>")]
    assert session["resource_id_kind"] == "resource_id" and session["target"] == "app-pg"


def test_not_resource_rows():
    principals = principals_of(roles=[role("r", inline={"n": doc({"Effect": "Allow", "Action": "rds-db:connect", "NotResource": arn(RID, "root")})})])
    [row] = grants.grant_rows(principals, TARGETS, ACCOUNT)
    assert row["resource"] == "*" and row["not_resource"] == [arn(RID, "root")] and row["how"] == "wildcard"


@pytest.mark.parametrize("pattern, expected", [
    ("*", True), ("arn:*", True), ("arn:aws:rds-db:*", True), ("arn:aws:rds*", True), ("arn:aws:rds-db:us-east-1:1:dbuser:x/y", True),
    ("arn:aws:s3:::b/*", False), ("arn:aws:rds:us-east-1:1:db:x", False), ("arn:aws-cn:rds-db:*", True), ("arn:aws:*:*", True),
])
def test_could_name_dbuser(pattern, expected):
    assert grants.could_name_dbuser(pattern) is expected


def test_split_dbuser():
    assert grants.split_dbuser(arn(RID, "alice")) == ("aws", "us-east-1", ACCOUNT, RID, "alice")
    assert grants.split_dbuser("arn:aws:rds-db:*:*:dbuser:*") == ("aws", "*", "*", "*", "*")
    assert grants.split_dbuser("*") == ("*", "*", "*", "*", "*")


# ---- access rows ----

def cells(access):
    """The access entries as one row per database user, the way the audit reads them."""
    return [dict(entry, db_user=db_user) for entry in access for db_user in entry["db_users"]]


def test_access_rows_cover_db_users_and_named_users():
    principals = principals_of(users=[user("alice", inline={"p": doc(connect(arn(RID, "alice")))})],
                               roles=[role("ro", inline={"p": doc(connect(arn(RID, "*")))})])
    rows = grants.grant_rows(principals, TARGETS, ACCOUNT)
    access = grants.access_rows(principals, TARGETS, {"app-aurora": ["zed"]}, rows, "aws", ACCOUNT)
    # A cell no statement allows has no row (zed on app-aurora): the matrix is mostly such cells.
    assert [(row["principal"].rsplit("/", 1)[1], row["target"], row["db_user"], row["decision"], row["how"]) for row in cells(access)] == [
        ("ro", "app-pg", "alice", "allowed", "wildcard"), ("alice", "app-pg", "alice", "allowed", "explicit")]
    assert all(set(row) == {"principal", "principal_kind", "target", "resource_id", "db_users", "decision", "how", "reason", "statements",
                            "conditions", "blocked_by"} for row in access)


def test_access_with_boundary_scp_and_unreadable_principal():
    limit = managed("limit", doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
    principals = principals_of(
        roles=[role("bounded", inline={"p": doc(connect(arn(RID, "app")))}, boundary=limit["Arn"]),
               role("broken", inline={"p": doc(connect(arn(RID, "app")))}, attached=["arn:aws:iam::aws:policy/Gone"]),
               role("fine", inline={"p": doc(connect(arn(RID, "app")))})],
        policies=[limit])
    full_access = account_reader.statements_of(doc({"Effect": "Allow", "Action": "*", "Resource": "*"}), dict(policy="FullAWSAccess", kind="scp"))
    scps = [full_access]
    access = grants.access_rows(principals, TARGETS[:1], {}, grants.grant_rows(principals, TARGETS, ACCOUNT), "aws", ACCOUNT, scp_levels=scps)
    decisions = {row["principal"].rsplit("/", 1)[1]: (row["decision"], row["blocked_by"]) for row in access}
    assert decisions == {"bounded": ("not_allowed", "boundary"), "broken": ("unknown", None), "fine": ("allowed", None)}
    broken = next(row for row in access if row["principal"].endswith("broken"))
    assert "could not be read" in broken["reason"] and "Gone" in broken["reason"]
    no_db = account_reader.statements_of(doc(connect("*", effect="Deny")), dict(policy="no-db", kind="scp"))
    fine = [p for p in principals if p["name"] == "fine"]
    [row] = grants.access_rows(fine, TARGETS[:1], {}, grants.grant_rows(fine, TARGETS, ACCOUNT), "aws", ACCOUNT, scp_levels=[full_access + no_db])
    assert (row["db_users"], row["decision"], row["blocked_by"]) == (["app"], "denied", "scp")
    [row] = grants.access_rows(fine, TARGETS[:1], {}, grants.grant_rows(fine, TARGETS, ACCOUNT), "aws", ACCOUNT, scp_levels=[full_access, []])
    assert (row["decision"], row["blocked_by"]) == ("not_allowed", "scp")


def test_access_for_abac_role_is_conditional_and_user_tag_resolves():
    abac = doc(connect(arn(RID, "${aws:PrincipalTag/db_user}")))
    principals = principals_of(users=[user("tagged", inline={"abac": abac}, tags={"db_user": "carol"})], roles=[role("session", inline={"abac": abac})])
    access = grants.access_rows(principals, TARGETS[:1], {"app-pg": ["carol"]}, [], "aws", ACCOUNT)
    decisions = {row["principal"].rsplit("/", 1)[1]: (row["decision"], row["how"], row["conditions"]) for row in access}
    assert decisions == {"tagged": ("allowed", "abac", []),
                         "session": ("conditional", "abac", [dict(policy="abac", sid=None, effect="Allow", requirement="any session tagged db_user=carol")])}


def test_identifier_grant_grants_nothing_at_access_time():
    principals = principals_of(users=[user("typo", inline={"p": doc(connect(arn("app-pg", "alice")))})])
    rows = grants.grant_rows(principals, TARGETS, ACCOUNT)
    assert [(row["resource_id"], row["resource_id_kind"], row["target"]) for row in rows] == [("app-pg", "identifier", None)]
    # Not allowed, so no row: the audit's finding comes from the grant row above.
    assert grants.access_rows(principals, TARGETS[:1], {"app-pg": ["alice"]}, rows, "aws", ACCOUNT) == []


def test_principals_that_allow_no_connect_are_left_out_and_denials_within_a_grant_are_kept():
    principals = principals_of(users=[user("denier", inline={"p": doc(connect(arn(RID, "alice"), effect="Deny"))}),
                                      user("other", inline={"p": doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})}),
                                      user("mixed", inline={"p": doc(connect(arn(RID, "*")), connect(arn(RID, "alice"), effect="Deny"))})])
    rows = grants.access_rows(principals, TARGETS[:1], {"app-pg": ["alice", "bob"]}, grants.grant_rows(principals, TARGETS, ACCOUNT), "aws", ACCOUNT)
    assert [(row["principal"].rsplit("/", 1)[1], row["db_user"], row["decision"]) for row in cells(rows)] == [
        ("mixed", "alice", "denied"), ("mixed", "bob", "allowed")]


def _screened_and_not(monkeypatch, principals, db_users, scp_levels=None):
    rows = grants.grant_rows(principals, TARGETS, ACCOUNT)
    screened = grants.access_rows(principals, TARGETS, db_users, rows, "aws", ACCOUNT, scp_levels=scp_levels)
    with monkeypatch.context() as patch:
        patch.setattr(grants.iam_eval, "could_apply", lambda *args: (lambda resource: True))
        every_cell = grants.access_rows(principals, TARGETS, db_users, rows, "aws", ACCOUNT, scp_levels=scp_levels)
    return screened, every_cell


def test_skipping_cells_no_statement_can_match_changes_no_row(monkeypatch):
    # Each kind of pattern the screen must not cut short: wildcards, ?, variables known and unknown, a default, the
    # ${*} escape, NotResource, a Deny on a target the principal has no Allow on, boundary and SCP Denies.
    deny_aurora = managed("deny-aurora", doc(connect(arn(CID, "*"), effect="Deny"), {"Effect": "Allow", "Action": "*", "Resource": "*"}))
    users = [
        user("alice", inline={"p": doc(connect(arn(RID, "${aws:username}")))}),
        user("tagged", inline={"p": doc(connect(arn("*", "${aws:PrincipalTag/db_user}")))}, tags={"db_user": "carol"}),
        user("untagged", inline={"p": doc(connect(arn("*", "${aws:PrincipalTag/db_user}")))}),
        user("defaulted", inline={"p": doc(connect(arn(RID, "${aws:PrincipalTag/db_user, 'bob'}")))}),
        user("question", inline={"p": doc(connect(arn(RID, "b?b"), arn(CID, "al*")))}),
        user("star", inline={"p": doc(connect(arn(RID, "${*}")))}),
        user("bounded", inline={"p": doc(connect(arn("*", "*")))}, boundary=deny_aurora["Arn"]),
        user("mixed", inline={"p": doc(connect(arn(RID, "*")), connect(arn(CID, "carol"), effect="Deny"))}),
        user("notres", inline={"p": doc(dict(Effect="Allow", Action="rds-db:connect", NotResource=[arn(CID, "*")]))}),
    ]
    roles = [role("session", inline={"p": doc(connect(arn(CID, "${aws:PrincipalTag/team}-*")))}),
             role("typo", inline={"p": doc(connect(arn("app-pg", "alice")), connect(arn(RID, "zed")))})]
    principals = principals_of(users=users, roles=roles, policies=[deny_aurora])
    db_users = {"app-pg": ["alice", "bob", "carol", "*", "zed"], "app-aurora": ["alice", "alan", "bob", "carol", "ops-x"]}
    full_access = account_reader.statements_of(doc({"Effect": "Allow", "Action": "*", "Resource": "*"}), dict(policy="all", kind="scp"))
    no_zed = account_reader.statements_of(doc(connect(arn("*", "zed"), effect="Deny")), dict(policy="no-zed", kind="scp"))
    for scp_levels in (None, [full_access + no_zed]):
        screened, every_cell = _screened_and_not(monkeypatch, principals, db_users, scp_levels)
        assert screened == every_cell
        assert len(cells(screened)) > 20 and {row["decision"] for row in screened} >= {"allowed", "denied", "conditional"}


def test_a_decision_shared_by_many_users_of_a_target_is_one_entry():
    principals = principals_of(roles=[role("ops", inline={"p": doc(connect(arn(RID, "*")), connect(arn(RID, "root"), effect="Deny"))})])
    access = grants.access_rows(principals, TARGETS, {"app-pg": ["bob", "alice", "root", "carol"]}, [], "aws", ACCOUNT)
    assert [(row["target"], row["db_users"], row["decision"]) for row in access] == [
        ("app-pg", ["alice", "bob", "carol"], "allowed"), ("app-pg", ["root"], "denied")]


def test_public_principal_and_selection():
    principals = principals_of(users=[user("alice")], roles=[role("app-1"), role("ops")])
    assert [p["name"] for p in grants.select_principals(principals, [f"arn:aws:iam::{ACCOUNT}:role/app-*"])] == ["app-1"]
    assert grants.select_principals(principals, None) == principals
    public = grants.public_principal(by_arn(principals, "role/ops"))
    assert set(public) == {"arn", "kind", "name", "id", "account", "tags", "labels", "groups", "members", "readable", "assumable_by"}
    assert public["assumable_by"] == [dict(principal=f"arn:aws:iam::{ACCOUNT}:root", type="account", conditions={}, tag_session=False)]
    assert "assumable_by" not in grants.public_principal(by_arn(principals, "user/alice"))


# ---- paging and service control policies, on a stub client ----

class StubClient:
    """Answers operations from {operation: [answers in order]}; an answer that is an exception is raised."""

    def __init__(self, answers):
        self.answers = {operation: list(items) for operation, items in answers.items()}
        self.requests = []

    def __getattr__(self, operation):
        def call(**params):
            self.requests.append((operation, params))
            answer = self.answers[operation].pop(0) if len(self.answers[operation]) > 1 else self.answers[operation][0]
            if isinstance(answer, Exception):
                raise answer
            return answer
        return call


def client_error(code, operation):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "stubbed"}}, operation)


def test_pages_follow_marker_and_next_token_counting_each_page():
    counter = account_reader.CallCounter()
    iam = StubClient({"get_account_authorization_details": [
        {"UserDetailList": [1], "IsTruncated": True, "Marker": "m1"}, {"UserDetailList": [2], "RoleDetailList": [3], "IsTruncated": False}]})
    found = counter.pages(iam, "get_account_authorization_details", "s", ("UserDetailList", "RoleDetailList"), "Marker", "Marker", Filter=["User"])
    assert found == {"UserDetailList": [1, 2], "RoleDetailList": [3]}
    assert iam.requests == [("get_account_authorization_details", {"Filter": ["User"]}),
                            ("get_account_authorization_details", {"Filter": ["User"], "Marker": "m1"})]
    assert counter.counts == {"GetAccountAuthorizationDetails": 2}


def scp_answers(management=OTHER):
    full = {"Id": "p-FullAWSAccess", "Name": "FullAWSAccess", "Arn": "arn:aws:organizations::1:policy/p-FullAWSAccess"}
    no_db = {"Id": "p-nodb", "Name": "no-db", "Arn": "arn:aws:organizations::1:policy/p-nodb"}
    return {
        "describe_organization": [{"Organization": {"MasterAccountId": management}}],
        "list_policies": [{"Policies": [no_db], "NextToken": "t"}, {"Policies": [full]}],
        # Read in policy id order: p-FullAWSAccess, then p-nodb.
        "describe_policy": [{"Policy": {"Content": json.dumps(doc({"Effect": "Allow", "Action": "*", "Resource": "*"}))}},
                            {"Policy": {"Content": json.dumps(doc(connect("*", effect="Deny")))}}],
        "list_targets_for_policy": [{"Targets": [{"TargetId": "r-root"}]}, {"Targets": [{"TargetId": "ou-1"}]}],
        "list_parents": [{"Parents": [{"Id": "ou-1", "Type": "ORGANIZATIONAL_UNIT"}]}, {"Parents": [{"Id": "r-root", "Type": "ROOT"}]}],
    }


def read_scps_with(monkeypatch, answers):
    stub = StubClient(answers)
    monkeypatch.setattr(account_reader, "aws_client", lambda options, service: stub)
    counter = account_reader.CallCounter()
    return account_reader.read_scps({}, counter, ACCOUNT), counter


def test_scps_are_read_per_level_of_the_organization(monkeypatch):
    scps, counter = read_scps_with(monkeypatch, scp_answers())
    assert scps["status"] == "read"
    assert scps["policies"] == [dict(id="p-FullAWSAccess", name="FullAWSAccess", targets=["r-root"]), dict(id="p-nodb", name="no-db", targets=["ou-1"])]
    root, ou, own = scps["levels"]
    assert [s.source["policy"] for s in root] == ["FullAWSAccess"] and [s.source["policy"] for s in ou] == ["no-db"] and own == []
    assert counter.counts == {"DescribeOrganization": 1, "ListPolicies": 2, "DescribePolicy": 2, "ListTargetsForPolicy": 2, "ListParents": 2}


def test_scps_do_not_restrict_the_management_account(monkeypatch):
    scps, _counter = read_scps_with(monkeypatch, scp_answers(management=ACCOUNT))
    assert scps["status"] == "read" and scps["levels"] is None and "management account" in scps["msg"]


@pytest.mark.parametrize("code, status", [("AWSOrganizationsNotInUseException", "not_in_organization"), ("AccessDeniedException", "not_readable")])
def test_scps_not_in_organization_or_not_readable(monkeypatch, code, status):
    scps, _counter = read_scps_with(monkeypatch, {"describe_organization": [client_error(code, "DescribeOrganization")]})
    assert (scps["status"], scps["policies"], scps["levels"]) == (status, [], None)


def test_other_organization_errors_fail(monkeypatch):
    with pytest.raises(AwsCallError) as caught:
        read_scps_with(monkeypatch, {"describe_organization": [client_error("ServiceException", "DescribeOrganization")]})
    assert caught.value.code == "ServiceException"
