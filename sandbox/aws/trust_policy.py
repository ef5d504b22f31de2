"""May this caller assume this role? AWS's decision for sts:AssumeRole, as a pure function.

moto lets any key assume any role, existing or not. AWS asks two questions, and the sandbox
asks them the same way:

- the role's trust policy (a resource policy) must allow the action for a Principal that
  names the caller: `*`, the caller's account (`"123456789012"` or `arn:aws:iam::123456789012:root`),
  the user's ARN, or for a role session the role's ARN or the session's own ARN; its
  Conditions are evaluated against the request (sts:ExternalId, sts:RoleSessionName,
  aws:RequestTag/KEY, the caller's aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalTag/KEY);
- the caller's identity policies (with its permissions boundary and session policy) must allow
  the action on the role's ARN too, except in one case: the role is in the caller's account and
  the trust policy names the caller's own ARN (user, role or session), not its account.

An explicit Deny in either wins. Passing session tags asks both questions again for
sts:TagSession. Statements are matched and conditions evaluated by the sandbox's one policy
evaluator (iam_policy_eval): a trust statement that names the caller becomes an ordinary
statement on the role's ARN. Not modelled: SCPs, multi-valued keys (aws:TagKeys) and the
ForAnyValue/ForAllValues operators (an Allow that needs them does not apply, a Deny does), and
AssumeRoleWithSAML / AssumeRoleWithWebIdentity (their trust policies are not checked).

Pure functions over plain values: no moto, no boto.
"""
import dataclasses
import json

from sandbox.aws.iam_policy_eval import Decision, Policy, evaluate, statements

ASSUME_ROLE = "sts:AssumeRole"
TAG_SESSION = "sts:TagSession"


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who calls AssumeRole: its ARN, account, the ARNs a Principal may name it by, and what IAM evaluates for it."""

    arn: str  # user ARN, or the session ARN (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION)
    account_id: str
    own_arns: tuple  # the user ARN; for a session the role's ARN and the session ARN
    policies: tuple = ()  # iam_policy_eval.Policy
    context: dict = dataclasses.field(default_factory=dict)  # aws:PrincipalArn, aws:PrincipalTag/KEY, ...
    session_policies: tuple = None
    boundary_policies: tuple = None


def _principal_values(principal):
    """The AWS principal values a statement's Principal/NotPrincipal names; `*` for the bare "*" form."""
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        return []
    found = principal.get("AWS", [])
    return [found] if isinstance(found, str) else list(found)


def _names_caller(values, caller):
    """(named at all, named by its own ARN): the account, `*` and the caller's ARNs are the forms AWS matches."""
    own = any(value in caller.own_arns for value in values)
    account = any(value in ("*", caller.account_id, f"arn:aws:iam::{caller.account_id}:root") for value in values)
    return own or account, own


def _statement_on_role(statement, role_arn):
    """The trust statement as an identity-policy statement on the role's ARN, for the evaluator."""
    rewritten = {key: value for key, value in statement.items() if key not in ("Principal", "NotPrincipal", "Resource", "NotResource")}
    rewritten["Resource"] = role_arn
    return rewritten


def trust_statements(document, caller, role_arn):
    """(statements that apply to the caller, those of them that name the caller's own ARN), rewritten onto role_arn."""
    applying, direct = [], []
    for statement in statements(document):
        if not isinstance(statement, dict):
            continue
        if "Principal" in statement:
            named, own = _names_caller(_principal_values(statement["Principal"]), caller)
        elif "NotPrincipal" in statement:
            named, own = not _names_caller(_principal_values(statement["NotPrincipal"]), caller)[0], False
        else:
            named, own = False, False  # a trust statement without a principal lets nobody in
        if named:
            applying.append(_statement_on_role(statement, role_arn))
            if own:
                direct.append(applying[-1])
    return applying, direct


def _document(found):
    return {"Version": "2012-10-17", "Statement": found}


def decide(trust_document, role_arn, caller, context, action):
    """The Decision for caller doing action (sts:AssumeRole or sts:TagSession) on role_arn.

    context is the request context on top of the caller's own (sts:ExternalId, aws:RequestTag/KEY, ...).
    """
    if isinstance(trust_document, str):
        try:
            trust_document = json.loads(trust_document)
        except ValueError:
            return Decision(False, "the role's trust policy is not JSON")
    request = dict(caller.context, **context)
    role_account = role_arn.split(":")[4]
    name = f"the trust policy of {role_arn}"
    applying, direct = trust_statements(trust_document, caller, role_arn)
    trust = evaluate([Policy(name, _document(applying))], action, role_arn, request)
    if not trust.allowed:
        return trust
    identity = evaluate(caller.policies, action, role_arn, request, caller.session_policies, caller.boundary_policies)
    if identity.allowed or identity.reason.startswith("explicitly denied"):
        return identity
    if role_account == caller.account_id and evaluate([Policy(name, _document(direct))], action, role_arn, request).allowed:
        return trust  # the trust policy names the caller itself, in its own account: no identity policy needed
    return Decision(False, f"{name} allows {caller.arn} but its own policies do not: {identity.reason}")


def request_context(session_name, external_id, tags, transitive_tag_keys):
    """The AssumeRole request's own condition keys."""
    context = {"sts:RoleSessionName": session_name, "sts:ExternalId": external_id}
    context.update({f"aws:RequestTag/{key}": value for key, value in tags.items()})
    if len(tags) == 1:  # a single-valued aws:TagKeys is all the evaluator can compare
        context["aws:TagKeys"] = next(iter(tags))
    if len(transitive_tag_keys) == 1:
        context["sts:TransitiveTagKeys"] = transitive_tag_keys[0]
    return {key: value for key, value in context.items() if value is not None}
