"""The collection's IAM evaluator: matching, variables, conditions, explicit deny, permissions boundaries and SCPs."""
import json

import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_eval as ev

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
RID = "db-ABCDEFGHIJKLMNOP"
CONNECT = "rds-db:connect"


def arn(db_user, resource_id=RID, region="us-east-1"):
    return f"arn:aws:rds-db:{region}:{ACCOUNT}:dbuser:{resource_id}/{db_user}"


def stmts(*statements, policy="p", kind="inline", holder=ROLE, policy_arn=None):
    return ev.statements_of({"Version": "2012-10-17", "Statement": list(statements)},
                            dict(policy=policy, policy_arn=policy_arn, kind=kind, holder=holder))


def allow(resource, action=CONNECT, **extra):
    return dict({"Effect": "Allow", "Action": action, "Resource": resource}, **extra)


def deny(resource, action=CONNECT, **extra):
    return dict({"Effect": "Deny", "Action": action, "Resource": resource}, **extra)


ROLE_CONTEXT = {"aws:PrincipalType": "AssumedRole", "aws:PrincipalAccount": ACCOUNT, "aws:username": None}
USER_CONTEXT = {"aws:PrincipalType": "User", "aws:PrincipalAccount": ACCOUNT, "aws:username": "alice", "aws:userid": "AIDAEXAMPLE"}


def decide(identity, resource=None, context=None, **kwargs):
    return ev.evaluate(CONNECT, resource or arn("alice"), identity, ROLE_CONTEXT if context is None else context, **kwargs)


# ---- parsing ----

def test_statements_of_reads_json_strings_single_statements_and_keeps_the_source():
    document = json.dumps({"Statement": {"Sid": "Connect", "Effect": "Allow", "Action": [CONNECT], "Resource": arn("alice")}})
    [statement] = ev.statements_of(document, dict(policy="p", policy_arn="arn:aws:iam::1:policy/p", kind="managed", holder=ROLE))
    assert statement.effect == "Allow" and statement.action == (CONNECT,) and statement.resource == (arn("alice"),)
    assert statement.not_action is None and statement.not_resource is None and statement.condition is None
    assert ev.statement_ref(statement) == dict(policy="p", policy_arn="arn:aws:iam::1:policy/p", kind="managed", holder=ROLE,
                                               sid="Connect", index=0, effect="Allow")


def test_statements_of_refuses_what_is_not_a_json_object():
    with pytest.raises(ValueError):
        ev.statements_of("[1, 2]", {})
    with pytest.raises(ValueError):
        ev.statements_of("not json", {})


# ---- actions ----

@pytest.mark.parametrize("pattern, expected", [
    ("rds-db:connect", True), ("RDS-DB:Connect", True), ("rds-db:*", True), ("rds-db:conn?ct", True), ("*", True),
    ("*:*", True), ("rds-db:connect*", True), ("rds:*", False), ("rds-db:connec", False), ("rds-db:?", False),
])
def test_action_match_is_case_insensitive_with_wildcards(pattern, expected):
    assert ev.action_matches(pattern, CONNECT) is expected


def test_not_action_allows_every_action_it_does_not_name():
    identity = stmts({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    decision = decide(identity)
    assert decision.outcome == "allowed" and decision.how == "administrator"
    assert decide(stmts({"Effect": "Allow", "NotAction": ["rds-db:*"], "Resource": "*"})).outcome == "not_allowed"


# ---- resources ----

def test_explicit_arn_allows_only_that_user_and_target():
    identity = stmts(allow(arn("alice")))
    decision = decide(identity)
    assert decision.outcome == "allowed" and decision.how == "explicit" and decision.blocked_by is None
    assert decision.statements == [dict(policy="p", policy_arn=None, kind="inline", holder=ROLE, sid=None, index=0, effect="Allow")]
    assert decision.reason == "allowed by role/app inline policy p statement 0 (explicit ARN)"
    assert decide(identity, arn("bob")).outcome == "not_allowed"
    assert decide(identity, arn("alice", "db-OTHER")).outcome == "not_allowed"


def test_resource_match_is_case_sensitive():
    assert decide(stmts(allow(arn("Alice")))).outcome == "not_allowed"
    assert decide(stmts(allow(arn("alice").upper()))).outcome == "not_allowed"


def test_resource_wildcards_star_and_question_mark():
    assert decide(stmts(allow(arn("*")))).how == "wildcard"
    assert decide(stmts(allow(f"arn:aws:rds-db:*:{ACCOUNT}:dbuser:*/*"))).outcome == "allowed"
    assert decide(stmts(allow(arn("al?ce")))).outcome == "allowed"
    assert decide(stmts(allow(arn("al?e")))).outcome == "not_allowed"
    assert decide(stmts(allow(arn("*", "db-*")))).outcome == "allowed"
    assert decide(stmts(allow(arn("alice", "cluster-*")))).outcome == "not_allowed"


def test_rds_db_star_on_star_is_a_wildcard_not_administrator():
    decision = decide(stmts(allow("*", action="rds-db:*")))
    assert decision.outcome == "allowed" and decision.how == "wildcard"


@pytest.mark.parametrize("action", ["*", "*:*", ["s3:GetObject", "*"]])
def test_every_action_on_every_resource_is_administrator(action):
    decision = decide(stmts(allow("*", action=action)))
    assert decision.outcome == "allowed" and decision.how == "administrator"
    assert "administrator" in decision.reason


def test_every_action_on_one_arn_is_explicit():
    assert decide(stmts(allow(arn("alice"), action="*"))).how == "explicit"


def test_not_resource_allows_everything_else():
    identity = stmts({"Effect": "Allow", "Action": CONNECT, "NotResource": arn("root")})
    assert decide(identity).outcome == "allowed"
    assert decide(identity, arn("root")).outcome == "not_allowed"
    assert decide(identity).how == "wildcard"


def test_not_resource_deny_protects_everything_but_the_exception():
    identity = stmts(allow("*", action="*"), {"Effect": "Deny", "Action": CONNECT, "NotResource": arn("alice")})
    assert decide(identity).outcome == "allowed"
    denied = decide(identity, arn("bob"))
    assert denied.outcome == "denied" and denied.blocked_by == "deny"


def test_other_services_resources_grant_nothing():
    assert decide(stmts(allow("arn:aws:s3:::bucket/*", action="*"))).outcome == "not_allowed"


def test_statement_without_resource_matches_nothing():
    assert decide(stmts({"Effect": "Allow", "Action": CONNECT})).outcome == "not_allowed"


# ---- explicit deny ----

def test_explicit_deny_wins_over_allow_in_any_order():
    for statements in ([allow(arn("*")), deny(arn("alice"))], [deny(arn("alice")), allow(arn("alice"))]):
        decision = decide(stmts(*statements))
        assert decision.outcome == "denied" and decision.blocked_by == "deny" and decision.how is None
        assert [ref["effect"] for ref in decision.statements] == ["Deny"]
        assert decision.reason.startswith("denied by role/app inline policy p statement")


def test_deny_in_another_policy_kind_wins_too():
    group_policy = stmts(deny("*", action="rds-db:*"), policy="deny-all", kind="group_managed", holder=f"arn:aws:iam::{ACCOUNT}:group/ops")
    identity = stmts(allow(arn("alice"))) + group_policy
    decision = decide(identity)
    assert decision.outcome == "denied"
    assert decision.statements[0]["policy"] == "deny-all" and decision.statements[0]["kind"] == "group_managed"


def test_deny_of_another_user_does_not_block():
    assert decide(stmts(allow(arn("*")), deny(arn("bob")))).outcome == "allowed"


def test_nothing_matching_is_an_implicit_deny():
    decision = decide([])
    assert decision == ev.Decision("not_allowed", None, [], [], None, f"no identity policy statement allows {CONNECT} on {arn('alice')}")


# ---- policy variables ----

def test_username_variable_resolves_for_users_and_never_matches_for_roles():
    identity = stmts(allow(arn("${aws:username}")), holder=USER)
    decision = decide(identity, context=USER_CONTEXT)
    assert decision.outcome == "allowed" and decision.how == "abac"
    assert decide(identity, arn("bob"), context=USER_CONTEXT).outcome == "not_allowed"
    assert decide(identity, context=ROLE_CONTEXT).outcome == "not_allowed"


def test_variable_names_are_case_insensitive():
    assert decide(stmts(allow(arn("${AWS:UserName}"))), context=USER_CONTEXT).outcome == "allowed"


def test_userid_variable():
    identity = stmts(allow(arn("${aws:userid}")))
    assert decide(identity, arn("AIDAEXAMPLE"), context=USER_CONTEXT).outcome == "allowed"
    role = decide(identity, arn("AROA1:alice"))
    assert role.outcome == "conditional"
    assert role.conditions == [dict(policy="p", sid=None, effect="Allow", requirement="any session whose aws:userid is AROA1:alice")]


def test_principal_tag_known_resolves():
    identity = stmts(allow(arn("${aws:PrincipalTag/db_user}")))
    context = dict(ROLE_CONTEXT, **{"aws:PrincipalTag/db_user": "alice"})
    assert decide(identity, context=context).outcome == "allowed"
    assert decide(identity, arn("bob"), context=context).outcome == "not_allowed"
    # Tag keys compare case-insensitively.
    assert decide(identity, context=dict(ROLE_CONTEXT, **{"aws:principaltag/DB_USER": "alice"})).outcome == "allowed"


def test_principal_tag_unknown_for_a_role_is_conditional_on_the_session():
    decision = decide(stmts(allow(arn("${aws:PrincipalTag/db_user}")), policy="abac"))
    assert decision.outcome == "conditional" and decision.how == "abac" and decision.blocked_by is None
    assert decision.conditions == [dict(policy="abac", sid=None, effect="Allow", requirement="any session tagged db_user=alice")]
    assert "only under the conditions shown" in decision.reason


def test_principal_tag_missing_on_a_user_matches_nothing():
    assert decide(stmts(allow(arn("${aws:PrincipalTag/db_user}"))), context=USER_CONTEXT).outcome == "not_allowed"


def test_principal_tag_known_absent_matches_nothing():
    context = dict(ROLE_CONTEXT, **{"aws:PrincipalTag/db_user": None})
    assert decide(stmts(allow(arn("${aws:PrincipalTag/db_user}"))), context=context).outcome == "not_allowed"


def test_same_variable_twice_must_take_one_value():
    identity = stmts(allow(f"arn:aws:rds-db:us-east-1:{ACCOUNT}:dbuser:${{aws:PrincipalTag/rid}}/${{aws:PrincipalTag/rid}}"))
    assert decide(identity, arn("x", "x")).outcome == "conditional"
    assert decide(identity, arn("alice")).outcome == "not_allowed"


def test_variable_default_value():
    identity = stmts(allow(arn("${aws:PrincipalTag/db_user, 'reader'}")))
    assert decide(identity, arn("reader"), context=USER_CONTEXT).outcome == "allowed"
    assert decide(identity, arn("alice"), context=USER_CONTEXT).outcome == "not_allowed"
    tagged = dict(USER_CONTEXT, **{"aws:PrincipalTag/db_user": "alice"})
    assert decide(identity, arn("alice"), context=tagged).outcome == "allowed"


def test_escapes_are_literal_characters():
    identity = stmts(allow(arn("a${*}b")))
    assert decide(identity, arn("a*b")).outcome == "allowed"
    assert decide(identity, arn("axb")).outcome == "not_allowed"
    assert decide(identity, arn("a*b")).how == "explicit"
    assert decide(stmts(allow(arn("a${?}"))), arn("a?")).outcome == "allowed"
    assert decide(stmts(allow(arn("a${?}"))), arn("ab")).outcome == "not_allowed"
    assert decide(stmts(allow(arn("a${$}"))), arn("a$")).outcome == "allowed"


def test_resolved_values_are_literal_not_wildcards():
    context = dict(USER_CONTEXT, **{"aws:PrincipalTag/db_user": "a*"})
    identity = stmts(allow(arn("${aws:PrincipalTag/db_user}")))
    assert decide(identity, arn("a*"), context=context).outcome == "allowed"
    assert decide(identity, arn("abc"), context=context).outcome == "not_allowed"


def test_unknown_tag_in_a_deny_makes_an_allow_conditional():
    identity = stmts(allow(arn("*")), deny(arn("${aws:PrincipalTag/blocked}")))
    decision = decide(identity)
    assert decision.outcome == "conditional"
    assert decision.conditions == [dict(policy="p", sid=None, effect="Deny", requirement="any session tagged blocked=alice")]


# ---- conditions ----

def test_condition_makes_an_allow_conditional_and_is_shown_as_written():
    condition = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    decision = decide(stmts(allow(arn("alice"), Sid="FromOffice", Condition=condition)))
    assert decision.outcome == "conditional" and decision.how == "explicit"
    assert decision.conditions == [dict(policy="p", sid="FromOffice", effect="Allow", condition=condition)]


def test_unconditional_allow_beside_a_conditional_one_is_allowed():
    condition = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    decision = decide(stmts(allow(arn("alice"), Condition=condition), allow(arn("*"))))
    assert decision.outcome == "allowed" and decision.how == "wildcard" and decision.conditions == []


def test_conditional_deny_makes_an_allow_conditional_unconditional_deny_denies():
    condition = {"Bool": {"aws:SecureTransport": "false"}}
    decision = decide(stmts(allow(arn("alice")), deny(arn("alice"), Condition=condition)))
    assert decision.outcome == "conditional"
    assert decision.conditions == [dict(policy="p", sid=None, effect="Deny", condition=condition)]
    assert decide(stmts(allow(arn("alice"), Condition=condition), deny(arn("alice")))).outcome == "denied"


def test_condition_on_a_variable_statement_keeps_both():
    condition = {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}
    decision = decide(stmts(allow(arn("${aws:PrincipalTag/db_user}"), Condition=condition)))
    assert decision.outcome == "conditional"
    assert decision.conditions == [dict(policy="p", sid=None, effect="Allow", condition=condition),
                                   dict(policy="p", sid=None, effect="Allow", requirement="any session tagged db_user=alice")]


# ---- permissions boundary ----

def test_boundary_must_also_allow():
    identity = stmts(allow(arn("alice")))
    boundary = stmts(allow("arn:aws:s3:::*", action="s3:*"), policy="b", kind="boundary")
    decision = decide(identity, boundary=boundary)
    assert decision.outcome == "not_allowed" and decision.blocked_by == "boundary" and decision.how == "explicit"
    assert decision.statements[0]["policy"] == "p"
    assert "permissions boundary does not allow" in decision.reason
    assert decide(identity, boundary=stmts(allow("*", action="rds-db:*"), kind="boundary")).outcome == "allowed"


def test_empty_boundary_blocks_and_no_boundary_does_not():
    identity = stmts(allow(arn("alice")))
    assert decide(identity, boundary=[]).blocked_by == "boundary"
    assert decide(identity, boundary=None).outcome == "allowed"


def test_boundary_alone_grants_nothing():
    assert decide([], boundary=stmts(allow("*", action="*"), kind="boundary")).outcome == "not_allowed"


def test_boundary_deny_is_an_explicit_deny():
    decision = decide(stmts(allow(arn("alice"))), boundary=stmts(allow("*", action="*"), deny(arn("alice")), kind="boundary"))
    assert decision.outcome == "denied" and decision.blocked_by == "boundary"


def test_boundary_with_a_condition_makes_it_conditional():
    condition = {"StringEquals": {"aws:PrincipalTag/team": "db"}}
    decision = decide(stmts(allow(arn("alice"))), boundary=stmts(allow("*", Condition=condition), policy="b", kind="boundary"))
    assert decision.outcome == "conditional"
    assert decision.conditions == [dict(policy="b", sid=None, effect="Allow", condition=condition)]


# ---- service control policies ----

FULL_ACCESS = [allow("*", action="*")]


def test_scps_must_also_allow_and_deny_wins():
    identity = stmts(allow(arn("alice")))
    assert decide(identity, scps=stmts(*FULL_ACCESS, kind="scp")).outcome == "allowed"
    blocked = decide(identity, scps=stmts(allow("*", action="s3:*"), kind="scp"))
    assert blocked.outcome == "not_allowed" and blocked.blocked_by == "scp"
    denied = decide(identity, scps=stmts(*FULL_ACCESS, deny("*", action="rds-db:*"), kind="scp"))
    assert denied.outcome == "denied" and denied.blocked_by == "scp"


def test_every_scp_level_must_allow():
    identity = stmts(allow(arn("alice")))
    root = stmts(*FULL_ACCESS, kind="scp", policy="root")
    ou = stmts(allow("*", action="ec2:*"), kind="scp", policy="ou")
    assert decide(identity, scps=[root, ou]).blocked_by == "scp"
    assert decide(identity, scps=[root, root]).outcome == "allowed"


def test_unknown_scps_are_not_applied():
    assert decide(stmts(allow(arn("alice"))), scps=None).outcome == "allowed"


def test_explicit_deny_is_reported_before_a_blocking_boundary():
    decision = decide(stmts(allow(arn("alice")), deny(arn("alice"))), boundary=[], scps=stmts(*FULL_ACCESS, kind="scp"))
    assert decision.outcome == "denied" and decision.blocked_by == "deny"


# ---- how a grant is named ----

def test_most_specific_grant_names_the_decision():
    decision = decide(stmts(allow("*", action="*"), allow(arn("*")), allow(arn("alice"))))
    assert decision.how == "explicit"
    assert [ref["index"] for ref in decision.statements] == [2, 1, 0]


@pytest.mark.parametrize("pattern, expected", [
    ("abc", False), ("a*", True), ("a?", True), ("a${*}", False), ("${aws:username}", False),
])
def test_has_wildcards(pattern, expected):
    assert ev.has_wildcards(pattern) is expected


def test_match_resource_reports_requirements():
    state, needs = ev.match_resource(arn("${aws:PrincipalTag/db_user}"), arn("carol"), ROLE_CONTEXT)
    assert (state, needs) == ("maybe", ["any session tagged db_user=carol"])
    assert ev.match_resource(arn("x"), arn("y"), ROLE_CONTEXT) == ("no", [])
    assert ev.match_resource(arn("x"), arn("x"), ROLE_CONTEXT) == ("yes", [])


# ---- the screen that skips cells nothing can match ----

@pytest.mark.parametrize("identity, context, resource, expected", [
    (stmts(allow(arn("alice"))), ROLE_CONTEXT, arn("alice"), True),
    (stmts(allow(arn("alice"))), ROLE_CONTEXT, arn("bob"), False),
    (stmts(allow(arn("a?i*"))), ROLE_CONTEXT, arn("alice"), True),
    (stmts(allow(arn("${aws:username}"))), USER_CONTEXT, arn("alice"), True),
    (stmts(allow(arn("${aws:username}"))), USER_CONTEXT, arn("bob"), False),
    # A role's session tag is not known before the session: any user may be the one it names.
    (stmts(allow(arn("${aws:PrincipalTag/db_user}"))), ROLE_CONTEXT, arn("bob"), True),
    (stmts(allow(arn("${aws:PrincipalTag/db_user}"))), dict(USER_CONTEXT, **{"aws:PrincipalTag/db_user": "carol"}), arn("bob"), False),
    # A user without the tag: the element matches nothing, unless it has a default.
    (stmts(allow(arn("${aws:PrincipalTag/db_user}"))), USER_CONTEXT, arn("bob"), False),
    (stmts(allow(arn("${aws:PrincipalTag/db_user, 'bob'}"))), USER_CONTEXT, arn("bob"), True),
    (stmts(allow(arn("${*}"))), ROLE_CONTEXT, arn("*"), True),
    (stmts(allow(arn("${*}"))), ROLE_CONTEXT, arn("bob"), False),
    (stmts({"Effect": "Allow", "Action": CONNECT, "NotResource": arn("alice")}), ROLE_CONTEXT, arn("alice"), True),
    (stmts(deny(arn("*"))), ROLE_CONTEXT, arn("bob"), True),
    (stmts({"Effect": "Allow", "Action": CONNECT}), ROLE_CONTEXT, arn("bob"), False),
])
def test_could_apply_is_false_only_where_no_statement_can_match(identity, context, resource, expected):
    assert ev.could_apply(identity, context)(resource) is expected
    if not expected:
        assert ev.evaluate(CONNECT, resource, identity, context).outcome == "not_allowed"


def test_could_apply_counts_boundary_and_scp_denies_but_not_their_allows():
    boundary = stmts(allow("*", action="*"), deny(arn("bob")), kind="boundary")
    scps = [stmts(allow("*", action="*"), deny(arn("carol")), kind="scp")]
    screen = ev.could_apply(stmts(allow(arn("alice"))), ROLE_CONTEXT, boundary=boundary, scps=scps)
    assert [screen(arn(name)) for name in ("alice", "bob", "carol", "dave")] == [True, True, True, False]
    assert ev.evaluate(CONNECT, arn("bob"), stmts(allow(arn("alice"))), ROLE_CONTEXT, boundary=boundary).outcome == "denied"
