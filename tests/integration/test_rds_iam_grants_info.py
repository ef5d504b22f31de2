"""rds_iam_grants_info against the sandbox's moto: exact grant and access rows for every kind of grant, each access
decision checked against the sandbox verifier's real one, and AWS calls that do not grow with the principals."""
import json
import secrets

import pytest

from sandbox.iam_login import assume_role, iam_auth_set, iam_user_with_policy, mint_token, policy_document, verify_over_http
from sandbox.fleet import MANAGEMENT_ACCOUNT
from tests.integration.support import accounts
from tests.integration.support.harness import run_module

PREFIX = f"gi{secrets.token_hex(3)}"
OTHER_ACCOUNT = MANAGEMENT_ACCOUNT
TARGETS = ("sbx-postgres", "sbx-mariadb", "sbx-aurora-pg")
DB_USERS = ("p_alice", "p_dba", "p_other", "p_sso")
ABAC_TAG_VALUE = "p_alice"


def name(suffix):
    return f"{PREFIX}-{suffix}"


class Account:
    """The principals one test module creates in moto's IAM, and their removal."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.iam = sandbox.moto().client("iam")
        self.number = sandbox.state["operator"]["account_id"]
        self.users, self.roles, self.groups, self.policies, self.saml = [], [], [], [], []
        self.credentials = {}

    def arn(self, kind, suffix):
        return f"arn:aws:iam::{self.number}:{kind}/{suffix}"

    def user(self, suffix, statements=None, tags=None):
        user_name = name(suffix)
        self.users.append(user_name)
        self.credentials[user_name] = iam_user_with_policy(self.sandbox, user_name, statements, tags=tags)
        return self.arn("user", user_name)

    def managed(self, suffix, statements):
        policy_arn = self.iam.create_policy(PolicyName=name(suffix), PolicyDocument=policy_document(statements))["Policy"]["Arn"]
        self.policies.append(policy_arn)
        return policy_arn

    def group(self, suffix, policy_arn, members):
        group_name = name(suffix)
        self.iam.create_group(GroupName=group_name)
        self.groups.append(group_name)
        self.iam.attach_group_policy(GroupName=group_name, PolicyArn=policy_arn)
        for member in members:
            self.iam.add_user_to_group(GroupName=group_name, UserName=member)
        return self.arn("group", group_name)

    def role(self, role_name, trust, statements=None, managed=None, boundary=None, path="/"):
        extra = {"PermissionsBoundary": boundary} if boundary else {}
        arn = self.iam.create_role(RoleName=role_name, Path=path, AssumeRolePolicyDocument=json.dumps(trust), **extra)["Role"]["Arn"]
        self.roles.append(role_name)
        if statements:
            self.iam.put_role_policy(RoleName=role_name, PolicyName="rds-connect", PolicyDocument=policy_document(statements))
        if managed:
            self.iam.attach_role_policy(RoleName=role_name, PolicyArn=managed)
        return arn

    def saml_provider(self, provider_name):
        # IAM wants at least 1000 characters of metadata; moto does not parse it.
        metadata = ("<md:EntityDescriptor xmlns:md='urn:oasis:names:tc:SAML:2.0:metadata' entityID='https://portal.sso.example'>"
                    "<!-- %s --></md:EntityDescriptor>" % ("x" * 1000))
        arn = self.iam.create_saml_provider(SAMLMetadataDocument=metadata, Name=provider_name)["SAMLProviderArn"]
        self.saml.append(arn)
        return arn

    def trust_account(self, account=None):
        return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account or self.number}:root"},
                                                        "Action": ["sts:AssumeRole", "sts:TagSession"]}]}

    def remove(self):
        iam = self.iam
        for group_name in self.groups:
            for user_name in self.users:
                try:
                    iam.remove_user_from_group(GroupName=group_name, UserName=user_name)
                except iam.exceptions.NoSuchEntityException:
                    pass
            for policy in iam.list_attached_group_policies(GroupName=group_name)["AttachedPolicies"]:
                iam.detach_group_policy(GroupName=group_name, PolicyArn=policy["PolicyArn"])
            iam.delete_group(GroupName=group_name)
        for user_name in self.users:
            for key in iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=user_name, AccessKeyId=key["AccessKeyId"])
            for policy in iam.list_user_policies(UserName=user_name)["PolicyNames"]:
                iam.delete_user_policy(UserName=user_name, PolicyName=policy)
            for policy in iam.list_attached_user_policies(UserName=user_name)["AttachedPolicies"]:
                iam.detach_user_policy(UserName=user_name, PolicyArn=policy["PolicyArn"])
            iam.delete_user(UserName=user_name)
        for role_name in self.roles:
            for policy in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
                iam.delete_role_policy(RoleName=role_name, PolicyName=policy)
            for policy in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=role_name, PolicyArn=policy["PolicyArn"])
            iam.delete_role(RoleName=role_name)
        for policy_arn in self.policies:
            iam.delete_policy(PolicyArn=policy_arn)
        for provider in self.saml:
            iam.delete_saml_provider(SAMLProviderArn=provider)


def connect(*resources, effect="Allow", action="rds-db:connect", sid=None):
    statement = {"Effect": effect, "Action": action, "Resource": list(resources)}
    if sid:
        statement["Sid"] = sid
    return statement


@pytest.fixture(scope="module")
def world(sandbox):
    """Every kind of grant the audit must report, created once for the module and removed after it."""
    account = Account(sandbox)
    region = sandbox.region
    rid = {identifier: sandbox.target(identifier)["resource_id"] for identifier in TARGETS}

    def dbuser(identifier_or_id, db_user):
        return f"arn:aws:rds-db:{region}:{account.number}:dbuser:{rid.get(identifier_or_id, identifier_or_id)}/{db_user}"

    sso_role = f"AWSReservedSSO_dba_{PREFIX}"
    try:
        world = dict(account=account, region=region, rid=rid, dbuser=dbuser, sso_role=sso_role)
        world["explicit"] = account.user("explicit", [connect(dbuser("sbx-postgres", "p_alice"))])
        world["member"] = account.user("member")
        dba_policy = account.managed("dba-connect", [connect(dbuser("sbx-mariadb", "p_dba"))])
        world["dba_policy"] = dba_policy
        world["group"] = account.group("dba", dba_policy, [name("member")])
        world["abac"] = account.role(name("abac"), account.trust_account(),
                                     [connect(dbuser("sbx-postgres", "${aws:PrincipalTag/db_user}"))])
        world["wildcard_resource"] = f"arn:aws:rds-db:{region}:{account.number}:dbuser:*/*"
        world["wild"] = account.user("wild", [connect(world["wildcard_resource"])])
        admin_policy = account.managed("admin", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])
        world["admin_policy"] = admin_policy
        world["admin"] = account.role(name("admin"), account.trust_account(), managed=admin_policy)
        world["denied"] = account.user("denied", [connect(world["wildcard_resource"], sid="Everything"),
                                                  connect(dbuser("sbx-postgres", "p_alice"), effect="Deny", sid="NotAlice")])
        boundary = account.managed("boundary", [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])
        world["boundary_policy"] = boundary
        world["bounded"] = account.role(name("bounded"), account.trust_account(), [connect(dbuser("sbx-postgres", "p_alice"))],
                                        boundary=boundary)
        # The identifier where the resource id belongs: IAM accepts it, RDS never asks for it.
        world["typo_resource"] = f"arn:aws:rds-db:{region}:{account.number}:dbuser:sbx-postgres/p_alice"
        world["typo"] = account.user("typo", [connect(world["typo_resource"])])
        world["saml"] = account.saml_provider(f"AWSSSO_{PREFIX}_DO_NOT_DELETE")
        sso_trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": world["saml"]}, "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
            "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}}]}
        world["sso"] = account.role(sso_role, sso_trust, [connect(dbuser("sbx-aurora-pg", "p_sso"))], path="/aws-reserved/sso.amazonaws.com/")
        world["partner"] = account.role(name("partner"), account.trust_account(OTHER_ACCOUNT), [connect(dbuser("sbx-aurora-pg", "p_other"))])
        yield world
    finally:
        account.remove()


def grants_info(**args):
    result = run_module("rds_iam_grants_info", args)
    assert not result.get("failed"), result
    assert result["changed"] is False
    return result


@pytest.fixture(scope="module")
def fleet_targets(sandbox):
    with pytest.MonkeyPatch.context() as patch:
        for key, value in sandbox.aws_env().items():
            patch.setenv(key, value)
        result = run_module("rds_iam_fleet_info", {"identifiers": list(TARGETS)})
    assert not result.get("failed"), result
    return sorted(result["targets"], key=lambda target: target["identifier"])


def principal_globs(world):
    return [f"arn:aws:iam::*:*/{PREFIX}-*", f"arn:aws:iam::*:role/*/{world['sso_role']}"]


@pytest.fixture(scope="module")
def report(world, fleet_targets, sandbox):
    with pytest.MonkeyPatch.context() as patch:
        for key, value in sandbox.aws_env().items():
            patch.setenv(key, value)
        return grants_info(targets=fleet_targets, db_users={identifier: list(DB_USERS) for identifier in TARGETS},
                           principals=principal_globs(world))


def grant_row(world, principal, principal_kind, resource, *, db_user, resource_id, resource_id_kind, target, how, policy, kind,
              holder=None, policy_arn=None, effect="allow", statement=0, conditions=(), region=None, account=None):
    return dict(principal=principal, principal_kind=principal_kind, db_user=db_user, db_user_resolved=None, resource=resource,
                resource_id=resource_id, resource_id_kind=resource_id_kind, region=region or world["region"],
                account=account or world["account"].number, target=target, effect=effect, how=how, conditional=bool(conditions),
                conditions=list(conditions), policy=policy, policy_arn=policy_arn, kind=kind, holder=holder or principal, statement=statement)


def expected_grants(world):
    rid, dbuser = world["rid"], world["dbuser"]
    pg, maria, aurora = rid["sbx-postgres"], rid["sbx-mariadb"], rid["sbx-aurora-pg"]
    inline = dict(policy="rds-connect", kind="inline")
    return [
        grant_row(world, world["abac"], "role", dbuser(pg, "${aws:PrincipalTag/db_user}"), db_user="${aws:PrincipalTag/db_user}",
                  resource_id=pg, resource_id_kind="resource_id", target="sbx-postgres", how="abac",
                  conditions=[dict(policy="rds-connect", sid=None, effect="Allow", requirement="any session tagged db_user=<db user>")], **inline),
        grant_row(world, world["admin"], "role", "*", db_user="*", resource_id="*", resource_id_kind="pattern", target=None,
                  how="administrator", policy=name("admin"), policy_arn=world["admin_policy"], kind="managed", region="*", account="*"),
        grant_row(world, world["bounded"], "role", dbuser(pg, "p_alice"), db_user="p_alice", resource_id=pg, resource_id_kind="resource_id",
                  target="sbx-postgres", how="explicit", **inline),
        grant_row(world, world["partner"], "role", dbuser(aurora, "p_other"), db_user="p_other", resource_id=aurora,
                  resource_id_kind="resource_id", target="sbx-aurora-pg", how="explicit", **inline),
        grant_row(world, world["denied"], "user", world["wildcard_resource"], db_user="*", resource_id="*", resource_id_kind="pattern",
                  target=None, how="wildcard", statement="Everything", **inline),
        grant_row(world, world["denied"], "user", dbuser(pg, "p_alice"), db_user="p_alice", resource_id=pg, resource_id_kind="resource_id",
                  target="sbx-postgres", how="explicit", effect="deny", statement="NotAlice", **inline),
        grant_row(world, world["explicit"], "user", dbuser(pg, "p_alice"), db_user="p_alice", resource_id=pg, resource_id_kind="resource_id",
                  target="sbx-postgres", how="explicit", **inline),
        grant_row(world, world["member"], "user", dbuser(maria, "p_dba"), db_user="p_dba", resource_id=maria, resource_id_kind="resource_id",
                  target="sbx-mariadb", how="explicit", policy=name("dba-connect"), policy_arn=world["dba_policy"], kind="group_managed",
                  holder=world["group"]),
        grant_row(world, world["typo"], "user", world["typo_resource"], db_user="p_alice", resource_id="sbx-postgres",
                  resource_id_kind="identifier", target=None, how="explicit", **inline),
        grant_row(world, world["wild"], "user", world["wildcard_resource"], db_user="*", resource_id="*", resource_id_kind="pattern",
                  target=None, how="wildcard", **inline),
        grant_row(world, world["sso"], "role", dbuser(aurora, "p_sso"), db_user="p_sso", resource_id=aurora, resource_id_kind="resource_id",
                  target="sbx-aurora-pg", how="explicit", **inline),
    ]


def by_statement(row):
    return row["principal"], str(row["statement"]), row["resource"]


def test_grant_rows_are_exactly_the_grants_written(world, report):
    key = by_statement
    assert sorted(report["grants"], key=key) == sorted(expected_grants(world), key=key)
    # The module's own order: by principal, then target (no target first), resource id, db user.
    assert [row["principal"] for row in report["grants"]] == sorted(row["principal"] for row in report["grants"])


def test_principals_with_groups_trusts_and_labels(world, report):
    by_arn = {principal["arn"]: principal for principal in report["principals"]}
    assert sorted(by_arn) == sorted([world[key] for key in ("explicit", "member", "wild", "denied", "typo", "group", "abac", "admin",
                                                            "bounded", "sso", "partner")])
    assert by_arn[world["member"]]["groups"] == [name("dba")]
    assert by_arn[world["group"]]["members"] == [name("member")] and by_arn[world["group"]]["kind"] == "group"
    sso = by_arn[world["sso"]]
    assert sso["labels"] == ["identity_center"]
    assert sso["assumable_by"] == [dict(principal=world["saml"], type="identity_center",
                                        conditions={"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}, tag_session=True)]
    partner = by_arn[world["partner"]]
    assert partner["labels"] == ["cross_account_trust"]
    assert partner["assumable_by"] == [dict(principal=f"arn:aws:iam::{OTHER_ACCOUNT}:root", type="cross_account", conditions={},
                                            tag_session=True)]
    assert by_arn[world["abac"]]["assumable_by"] == [dict(principal=f"arn:aws:iam::{world['account'].number}:root", type="account",
                                                          conditions={}, tag_session=True)]
    assert by_arn[world["bounded"]]["labels"] == ["permissions_boundary"]
    assert by_arn[world["bounded"]]["permissions_boundary"] == world["boundary_policy"]
    assert all(principal["readable"] for principal in report["principals"])
    assert report["account"] == world["account"].number


def short(world, arn):
    return next(key for key in ("explicit", "member", "wild", "denied", "typo", "abac", "admin", "bounded", "sso", "partner")
                if world[key] == arn)


def expected_access(world):
    """{(principal, target, db user): (decision, how, blocked_by)} for every cell not simply not_allowed."""
    everywhere = [(target, db_user) for target in TARGETS for db_user in DB_USERS]
    cells = {("explicit", "sbx-postgres", "p_alice"): ("allowed", "explicit", None),
             ("member", "sbx-mariadb", "p_dba"): ("allowed", "explicit", None),
             ("bounded", "sbx-postgres", "p_alice"): ("not_allowed", "explicit", "boundary"),
             ("sso", "sbx-aurora-pg", "p_sso"): ("allowed", "explicit", None),
             ("partner", "sbx-aurora-pg", "p_other"): ("allowed", "explicit", None)}
    for target, db_user in everywhere:
        cells[("wild", target, db_user)] = ("allowed", "wildcard", None)
        cells[("admin", target, db_user)] = ("allowed", "administrator", None)
        cells[("denied", target, db_user)] = ("allowed", "wildcard", None)
    cells[("denied", "sbx-postgres", "p_alice")] = ("denied", None, "deny")
    for db_user in DB_USERS:
        cells[("abac", "sbx-postgres", db_user)] = ("conditional", "abac", None)
    return cells


def cells_of(access):
    """The access entries as one row per database user, the way the audit reads them."""
    return [dict(entry, db_user=db_user) for entry in access for db_user in entry["db_users"]]


def test_access_rows_decide_every_cell(world, report):
    entries = report["access"]
    assert [(row["principal"], row["target"], row["db_users"][0]) for row in entries] == sorted(
        (row["principal"], row["target"], row["db_users"][0]) for row in entries)
    assert all(row["db_users"] == sorted(set(row["db_users"])) for row in entries)
    access = cells_of(entries)
    decided = {(short(world, row["principal"]), row["target"], row["db_user"]): (row["decision"], row["how"], row["blocked_by"])
               for row in access if row["decision"] != "not_allowed" or row["blocked_by"]}
    assert decided == expected_access(world)
    # A cell no statement allows (and no boundary or SCP blocked) has no row: every row is one of the decided cells, once.
    assert len(access) == len(decided)
    # One decision for every user of a target is one entry.
    assert [(row["target"], row["db_users"]) for row in entries if row["principal"] == world["wild"]] == [
        (target, sorted(DB_USERS)) for target in sorted(TARGETS)]
    abac = next(row for row in access if row["principal"] == world["abac"] and row["db_user"] == "p_dba" and row["target"] == "sbx-postgres")
    assert abac["conditions"] == [dict(policy="rds-connect", sid=None, effect="Allow", requirement="any session tagged db_user=p_dba")]
    denied = next(row for row in access if row["principal"] == world["denied"] and row["db_user"] == "p_alice" and row["target"] == "sbx-postgres")
    assert denied["statements"] == [dict(policy="rds-connect", policy_arn=None, kind="inline", holder=world["denied"], sid="NotAlice", index=1,
                                         effect="Deny")]
    assert denied["reason"] == f"denied by user/{name('denied')} inline policy rds-connect statement NotAlice (explicit Deny)"
    assert [row for row in access if row["principal"] == world["typo"]] == []  # its grant names no resource id: nothing


def session_credentials(sandbox, world):
    """Credentials for every principal of the grid: the users' access keys, a session per role (the ABAC one tagged)."""
    credentials = {key: world["account"].credentials[name(key)] for key in ("explicit", "member", "wild", "denied", "typo")}
    for key in ("abac", "admin", "bounded"):
        tags = {"db_user": ABAC_TAG_VALUE} if key == "abac" else None
        credentials[key] = assume_role(sandbox, world[key], f"{PREFIX}-{key}", session_tags=tags)
    # The sandbox's STS checks trust policies: the Identity Center role is reached through SAML, the partner's role from
    # the account its trust policy names (the sandbox's management account).
    credentials["sso"] = accounts.saml_session(sandbox, world["sso"], world["saml"], f"{PREFIX}-sso")
    credentials["partner"] = accounts.assume_role_as(sandbox, accounts.management(sandbox), world["partner"], f"{PREFIX}-partner")
    return credentials


def predicted_allow(row):
    """The module's answer for the sessions the grid uses: allowed, or conditional only on the ABAC tag this session carries."""
    if row["decision"] == "allowed":
        return True
    if row["decision"] != "conditional":
        return False
    return all(condition.get("requirement") == f"any session tagged db_user={ABAC_TAG_VALUE}" for condition in row["conditions"])


def test_every_decision_equals_the_verifiers(sandbox, world, report):
    credentials = session_credentials(sandbox, world)
    mismatches = []
    rows = {(short(world, row["principal"]), row["target"], row["db_user"]): row for row in cells_of(report["access"])}
    checked = 0
    with iam_auth_set(sandbox, TARGETS):
        for key in credentials:
            for target in TARGETS:
                for db_user in DB_USERS:
                    row = rows.get((key, target, db_user))  # no row: no statement allows it
                    token = mint_token(credentials[key], sandbox.target(target), db_user)
                    status, answer = verify_over_http(sandbox, target, db_user, token)
                    assert status in (200, 403), (status, answer)
                    checked += 1
                    if answer["allow"] != (predicted_allow(row) if row else False):
                        mismatches.append((key, target, db_user, row and row["decision"], answer))
    assert checked == 10 * len(TARGETS) * len(DB_USERS)
    assert mismatches == []
    # The ABAC session really is the only way in for that role: p_alice yes, everyone else no.
    assert sum(predicted_allow(row) for row in cells_of(report["access"]) if row["principal"] == world["abac"]) == 1


def test_check_mode_gives_the_same_answer_and_no_secret_leaks(sandbox_env, world, fleet_targets, report):
    args = dict(targets=fleet_targets, db_users={identifier: list(DB_USERS) for identifier in TARGETS}, principals=principal_globs(world))
    checked = run_module("rds_iam_grants_info", args, check=True)
    assert checked["changed"] is False
    for key in ("grants", "access", "principals", "scps"):
        assert checked[key] == report[key]
    text = json.dumps(checked)
    for credentials in world["account"].credentials.values():
        assert credentials["secret_access_key"] not in text
    assert sandbox_env.state["operator"]["secret_access_key"] not in text + checked["_stderr"]


def test_scps_status_follows_the_organization(sandbox_env, report):
    organizations = sandbox_env.moto().client("organizations")
    try:
        organizations.describe_organization()
        in_organization = True
    except organizations.exceptions.AWSOrganizationsNotInUseException:
        in_organization = False
    assert report["scps"]["status"] == ("read" if in_organization else "not_in_organization")
    if not in_organization:
        assert report["scps"]["policies"] == []
        assert report["aws_calls"]["organizations:DescribeOrganization"] == 1


def test_without_targets_only_grants(sandbox_env, world):
    result = grants_info(principals=[world["typo"]])
    assert "access" not in result
    assert [(row["resource_id"], row["resource_id_kind"]) for row in result["grants"]] == [("sbx-postgres", "unknown")]


def test_bad_targets_fail_naming_the_target(sandbox_env):
    result = run_module("rds_iam_grants_info", {"targets": [{"identifier": "sbx-postgres"}]})
    assert result["failed"] is True
    assert "targets[0] (sbx-postgres) has no resource_id/region" in result["msg"]


def test_aws_calls_do_not_grow_with_principals(sandbox_env):
    iam = sandbox_env.moto().client("iam")
    shared = iam.create_policy(PolicyName=name("bench"), PolicyDocument=policy_document([connect("arn:aws:rds-db:*:*:dbuser:*/bench")]))
    created = []

    def add_users(count):
        for _user in range(count):
            user_name = name(f"bench-{len(created)}")
            iam.create_user(UserName=user_name)
            created.append(user_name)
            iam.put_user_policy(UserName=user_name, PolicyName="own", PolicyDocument=policy_document([connect(f"arn:aws:rds-db:*:*:dbuser:*/{user_name}")]))
            iam.attach_user_policy(UserName=user_name, PolicyArn=shared["Policy"]["Arn"])

    try:
        add_users(5)
        few = grants_info(principals=[f"arn:aws:iam::*:user/{PREFIX}-bench-*"])
        add_users(45)
        many = grants_info(principals=[f"arn:aws:iam::*:user/{PREFIX}-bench-*"])
    finally:
        for user_name in created:
            iam.delete_user_policy(UserName=user_name, PolicyName="own")
            iam.detach_user_policy(UserName=user_name, PolicyArn=shared["Policy"]["Arn"])
            iam.delete_user(UserName=user_name)
        iam.delete_policy(PolicyArn=shared["Policy"]["Arn"])
    assert len(few["principals"]) == 5 and len(many["principals"]) == 50
    assert len(few["grants"]) == 10 and len(many["grants"]) == 100
    pages = "iam:GetAccountAuthorizationDetails"
    assert many["aws_calls"][pages] >= few["aws_calls"][pages] >= 1
    assert {op: count for op, count in many["aws_calls"].items() if op != pages} == {op: count for op, count in few["aws_calls"].items() if op != pages}
    assert many["aws_calls"]["sts:GetCallerIdentity"] == 1
