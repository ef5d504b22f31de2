"""IAM policy evaluation for rds-db:connect, on plain policy documents."""
import json

import pytest

from sandbox.aws.iam_policy_eval import Policy, arn_match, evaluate, glob_match

ACTION = "rds-db:connect"
PREFIX = "arn:aws:rds-db:us-east-1:123456789012:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALICE = f"{PREFIX}/alice"
USER_CONTEXT = {"aws:username": "alice", "aws:userid": "AIDAEXAMPLE", "aws:PrincipalTag/team": "payments"}


def _policy(*statements, name="p"):
    return Policy(name, json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def _allow(resource, action=ACTION, **extra):
    return dict({"Effect": "Allow", "Action": action, "Resource": resource}, **extra)


def _deny(resource, action=ACTION, **extra):
    return dict({"Effect": "Deny", "Action": action, "Resource": resource}, **extra)


def _decide(policies, resource=ALICE, context=None, session_policies=None):
    return evaluate(policies, ACTION, resource, USER_CONTEXT if context is None else context, session_policies)


@pytest.mark.parametrize("resource", [ALICE, f"{PREFIX}/*", "arn:aws:rds-db:*:*:dbuser:*/*", "*",
                                      "arn:aws:rds-db:us-east-1:123456789012:dbuser:db-*/alice", f"{PREFIX}/ali?e",
                                      [f"{PREFIX}/bob", ALICE]])
def test_allow_matches_exact_and_wildcard_resources(resource):
    decision = _decide([_policy(_allow(resource))])
    assert decision.allowed, decision.reason
    assert decision.reason == "allowed by p"


@pytest.mark.parametrize("resource", [f"{PREFIX}/bob", f"{PREFIX}/Alice", f"{PREFIX}/alic", f"{PREFIX}/ali?",
                                      "arn:aws:rds-db:eu-west-1:123456789012:dbuser:*/alice",
                                      "arn:aws:rds-db:us-east-1:999999999999:dbuser:*/alice", "arn:aws:rds-db:*"])
def test_allow_for_another_resource_does_not_apply(resource):
    decision = _decide([_policy(_allow(resource))])
    assert not decision.allowed
    assert decision.reason == f"no policy allows rds-db:connect on {ALICE}"


@pytest.mark.parametrize("action", ["rds-db:connect", "rds-db:*", "*", "RDS-DB:Connect", "rds-db:conn*", ["s3:*", "rds-db:connect"]])
def test_action_wildcards_and_case(action):
    assert _decide([_policy(_allow(ALICE, action=action))]).allowed


@pytest.mark.parametrize("action", ["rds:*", "rds-db:connectx", "rds-db:disconnect", "rds:connect"])
def test_other_actions_do_not_allow(action):
    assert not _decide([_policy(_allow(ALICE, action=action))]).allowed


def test_explicit_deny_wins_over_any_allow_and_is_named():
    allow = _policy(_allow("*"), name="managed policy arn:aws:iam::123456789012:policy/broad")
    deny = _policy(_deny(f"{PREFIX}/*"), name="inline policy 'no-prod' of group dbas")
    decision = _decide([allow, deny])
    assert not decision.allowed
    assert decision.reason == "explicitly denied by inline policy 'no-prod' of group dbas"


def test_deny_on_another_user_leaves_the_allow_standing():
    assert _decide([_policy(_allow(ALICE), _deny(f"{PREFIX}/bob"))]).allowed


def test_not_action_and_not_resource():
    everything_but_rds = {"Effect": "Allow", "NotAction": "rds-db:*", "Resource": "*"}
    assert not _decide([_policy(everything_but_rds)]).allowed
    deny_all_but_alice = {"Effect": "Deny", "Action": ACTION, "NotResource": ALICE}
    assert _decide([_policy(_allow("*"), deny_all_but_alice)]).allowed
    assert not _decide([_policy(_allow("*"), deny_all_but_alice)], resource=f"{PREFIX}/bob").allowed


def test_statement_may_be_a_single_object():
    policy = Policy("single", json.dumps({"Version": "2012-10-17", "Statement": _allow(ALICE)}))
    assert _decide([policy]).allowed


@pytest.mark.parametrize("user_part, allowed", [("${aws:username}", True), ("${aws:userid}", False),
                                                ("${aws:PrincipalTag/team}", False), ("${aws:principaltag/TEAM}", False)])
def test_policy_variables_from_the_request_context(user_part, allowed):
    assert _decide([_policy(_allow(f"{PREFIX}/{user_part}"))]).allowed is allowed
    assert _decide([_policy(_allow(f"{PREFIX}/{user_part}"))], resource=f"{PREFIX}/payments").allowed is (
        user_part.lower() == "${aws:principaltag/team}")


def test_undefined_variable_matches_nothing_and_default_fills_in():
    context = {"aws:userid": "AROAEXAMPLE:session"}  # an assumed role has no aws:username
    assert not _decide([_policy(_allow(f"{PREFIX}/${{aws:username}}"))], context=context).allowed
    assert not _decide([_policy(_allow("arn:aws:rds-db:*:*:dbuser:*/${aws:username}"))], context=context).allowed
    with_default = _policy(_allow(f"{PREFIX}/${{aws:username, 'alice'}}"))
    assert _decide([with_default], context=context).allowed


def test_substituted_values_are_literal_not_wildcards():
    context = {"aws:PrincipalTag/userName": "*"}
    decision = _decide([_policy(_allow(f"{PREFIX}/${{aws:PrincipalTag/userName}}"))], context=context)
    assert not decision.allowed
    assert _decide([_policy(_allow(f"{PREFIX}/${{aws:PrincipalTag/userName}}"))], resource=f"{PREFIX}/*", context=context).allowed


def test_escape_variables():
    assert glob_match("a${*}b", "a*b") and not glob_match("a${*}b", "axb")
    assert glob_match("a${?}b${$}", "a?b$")


def test_arn_segments_match_separately():
    assert arn_match("arn:aws:rds-db:*:123456789012:dbuser:*", ALICE)
    assert not arn_match("arn:aws:rds-db:*:dbuser:*", ALICE)  # five segments: not an ARN pattern
    assert arn_match("arn:aws:rds-db:us-east-1:123456789012:*", ALICE)  # the resource part may hold ':' and '/'


def test_plain_patterns_compare_as_the_wildcard_match_would():
    assert arn_match(ALICE, ALICE) and not arn_match(ALICE.upper(), ALICE) and not arn_match(ALICE + "x", ALICE)
    assert not arn_match("arn:aws:rds-db:dbuser", "arn:aws:rds-db:dbuser")  # fewer than six segments matches nothing
    assert glob_match("rds-db:Connect", "RDS-DB:connect", ignore_case=True) and not glob_match("rds-db:Connect", "rds-db:connect")
    assert glob_match("a$b", "a$b") and not glob_match("a$b", "axb")  # a lone $ is no variable


@pytest.mark.parametrize("condition, allowed", [
    ({"StringEquals": {"aws:PrincipalTag/team": "payments"}}, True),
    ({"StringEquals": {"aws:PrincipalTag/team": ["data", "payments"]}}, True),
    ({"StringEquals": {"aws:PrincipalTag/team": "data"}}, False),
    ({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "PAYMENTS"}}, True),
    ({"StringLike": {"aws:userid": "AIDA*"}}, True),
    ({"StringNotEquals": {"aws:PrincipalTag/team": "data"}}, True),
    ({"StringNotEquals": {"aws:PrincipalTag/missing": "data"}}, True),
    ({"StringEquals": {"aws:PrincipalTag/missing": "data"}}, False),
    ({"StringEqualsIfExists": {"aws:PrincipalTag/missing": "data"}}, True),
    ({"Null": {"aws:PrincipalTag/missing": "true"}}, True),
    ({"Null": {"aws:PrincipalTag/team": "true"}}, False),
    ({"StringEquals": {"aws:username": "${aws:PrincipalTag/team}"}}, False),
    ({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, False),  # not understood: an Allow does not apply
])
def test_conditions_on_allow(condition, allowed):
    assert _decide([_policy(_allow(ALICE, Condition=condition))]).allowed is allowed


def test_unknown_condition_on_a_deny_denies():
    deny = _deny(ALICE, Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})
    decision = _decide([_policy(_allow(ALICE), deny, name="guard")])
    assert (decision.allowed, decision.reason) == (False, "explicitly denied by guard")


def test_session_policy_must_allow_too():
    role = _policy(_allow(f"{PREFIX}/*"), name="role policy")
    narrow = _policy(_allow(f"{PREFIX}/bob"), name="session policy")
    decision = _decide([role], session_policies=[narrow])
    assert not decision.allowed and "session policy does not" in decision.reason
    assert _decide([role], session_policies=[_policy(_allow("*"))]).allowed
    assert not _decide([role], session_policies=[_policy(_allow("*"), _deny(ALICE), name="s")]).allowed


def test_permissions_boundary_must_allow_too():
    role = _policy(_allow(f"{PREFIX}/*"), name="role policy")
    decision = evaluate([role], ACTION, ALICE, USER_CONTEXT, boundary_policies=[_policy(_allow(f"{PREFIX}/bob"))])
    assert (decision.allowed, decision.reason) == (
        False, f"role policy allows rds-db:connect on {ALICE} but the permissions boundary does not")
    assert evaluate([role], ACTION, ALICE, USER_CONTEXT, boundary_policies=[_policy(_allow("*"))]).allowed
    both = evaluate([role], ACTION, ALICE, USER_CONTEXT, session_policies=[], boundary_policies=[])
    assert both.reason.endswith("but the session policy and the permissions boundary do not")


def test_unreadable_policy_is_skipped_and_reported():
    decision = _decide([Policy("broken", "{not json"), _policy(_allow(f"{PREFIX}/bob"))])
    assert not decision.allowed
    assert decision.reason.endswith("(unreadable: broken)")
    assert _decide([Policy("broken", "{not json"), _policy(_allow(ALICE))]).allowed


def test_no_policies_at_all():
    assert _decide([]).reason == f"no policy allows rds-db:connect on {ALICE}"
