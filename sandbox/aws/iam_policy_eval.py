"""IAM identity-policy evaluation for one action on one resource, as AWS does it for rds-db:connect.

The sandbox's token verifier asks one question: may this principal `rds-db:connect` on
`arn:aws:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/DB_USER`? The answer follows AWS's order:
an explicit Deny in any policy wins, otherwise some Allow must match, otherwise refused.
A session policy (AssumeRole `Policy`) and a role's permissions boundary limit the grant:
each must allow too.

Supported: Action/NotAction (case-insensitive, `*` and `?`), Resource/NotResource (ARN
segment by segment, case-sensitive, `*` and `?`), policy variables `${aws:username}`,
`${aws:userid}`, `${aws:PrincipalTag/KEY}` and any other key in the request context, with
`${*}`/`${?}`/`${$}` escapes and `${key, 'default'}` defaults (a variable with no value makes
its element match nothing, as in AWS), and the common String/Arn/Bool/Null condition
operators with `IfExists`. An operator this module does not know never widens access: its
Allow statement does not apply, its Deny statement does.

Pure functions over plain dicts and JSON strings: no moto, no boto, no collection code.
"""
import dataclasses
import functools
import json
import re

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


@dataclasses.dataclass(frozen=True)
class Policy:
    """One policy document and how to name it in a refusal ("inline policy 'x' of user alice")."""

    name: str
    document: object  # a JSON string or an already-parsed dict


@dataclasses.dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


class _Unknown(Exception):
    """A condition this module cannot evaluate."""


@functools.lru_cache(maxsize=1024)
def _parse_json(text):
    return json.loads(text)


def statements(document):
    """The statements of a policy document (string or dict) as a list of dicts."""
    if isinstance(document, (str, bytes)):
        document = _parse_json(document)
    found = document.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def _as_list(value):
    return [value] if isinstance(value, str) else list(value or [])


def _context_value(context, key):
    """A request-context value; keys are case-insensitive in IAM. None when absent."""
    return context.get(key.lower())


def _split_pattern(pattern, context):
    """The pattern as (text, is_literal) pieces with variables substituted; None if a variable has no value."""
    pieces, position = [], 0
    for match in _VARIABLE.finditer(pattern):
        pieces.append((pattern[position:match.start()], False))
        inner = match.group(1).strip()
        if inner in _ESCAPES:
            value = _ESCAPES[inner]
        else:
            key, _, default = inner.partition(",")
            value = _context_value(context, key.strip())
            if value is None and default.strip():
                value = default.strip().strip("'")
            if value is None:
                return None
        pieces.append((value, True))
        position = match.end()
    pieces.append((pattern[position:], False))
    return pieces


@functools.lru_cache(maxsize=8192)
def _glob_regex(pieces, flags=0):
    # Cached: a principal's policies are matched on every login, and building the regex was most of a verification.
    parts = []
    for text, literal in pieces:
        if literal:
            parts.append(re.escape(text))
        else:
            parts.append("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text))
    return re.compile("".join(parts), flags | re.DOTALL)


def glob_match(pattern, value, context=None, ignore_case=False):
    """`*`/`?` wildcard match of a whole string, variables substituted literally."""
    if not _is_glob(pattern):
        # Most patterns are plain names and ARNs: comparing them is what the regex would do, without building one.
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    pieces = _split_pattern(pattern, context or {})
    if pieces is None:
        return False
    return _glob_regex(tuple(pieces), re.IGNORECASE if ignore_case else 0).fullmatch(value) is not None


def _is_glob(pattern):
    return "*" in pattern or "?" in pattern or "${" in pattern


def arn_match(pattern, arn, context=None):
    """IAM's Resource match: `*` matches everything, otherwise each of the six ARN segments on its own."""
    if pattern == "*":
        return True
    if not _is_glob(pattern):
        # Equal strings have equal segments; a pattern of fewer than six segments matches nothing.
        return pattern == arn and pattern.count(":") >= 5
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return False
    return all(glob_match(p, a, context) for p, a in zip(pattern_parts, arn_parts))


def _matches_any(patterns, value, match):
    return any(match(pattern, value) for pattern in _as_list(patterns))


def _applies_to(statement, action, resource, context):
    if "Action" in statement:
        if not _matches_any(statement["Action"], action, lambda p, v: glob_match(p, v, ignore_case=True)):
            return False
    elif "NotAction" in statement:
        if _matches_any(statement["NotAction"], action, lambda p, v: glob_match(p, v, ignore_case=True)):
            return False
    else:
        return False
    if "Resource" in statement:
        return _matches_any(statement["Resource"], resource, lambda p, v: arn_match(p, v, context))
    if "NotResource" in statement:
        return not _matches_any(statement["NotResource"], resource, lambda p, v: arn_match(p, v, context))
    return False


# --- conditions -------------------------------------------------------------------------------

def _string_equals(pattern, value, context, ignore_case=False):
    pieces = _split_pattern(pattern, context)
    if pieces is None:
        return False
    expected = "".join(text for text, _ in pieces)
    return expected.lower() == value.lower() if ignore_case else expected == value


_POSITIVE = {  # operator -> f(pattern, value, context)
    "stringequals": _string_equals,
    "stringequalsignorecase": lambda p, v, c: _string_equals(p, v, c, ignore_case=True),
    "stringlike": glob_match,
    "arnequals": _string_equals,
    "arnlike": arn_match,
    "bool": lambda p, v, c: str(p).lower() == str(v).lower(),
}
_NEGATED = {
    "stringnotequals": "stringequals",
    "stringnotequalsignorecase": "stringequalsignorecase",
    "stringnotlike": "stringlike",
    "arnnotequals": "arnequals",
    "arnnotlike": "arnlike",
}


def _condition_holds(operator, key, expected, context):
    name = operator.lower()
    if_exists = name.endswith("ifexists")
    if if_exists:
        name = name[: -len("ifexists")]
    value = _context_value(context, key)
    expected = [str(item).lower() if isinstance(item, bool) else item for item in _as_list(expected)]
    if name == "null":
        return (value is None) == (expected[0].lower() == "true")
    if name in _NEGATED:
        if value is None:
            return True  # AWS: a negated operator on an absent key holds
        return not any(_POSITIVE[_NEGATED[name]](item, value, context) for item in expected)
    if name in _POSITIVE:
        if value is None:
            return if_exists
        return any(_POSITIVE[name](item, value, context) for item in expected)
    raise _Unknown(operator)


def _conditions_hold(statement, context):
    for operator, block in (statement.get("Condition") or {}).items():
        for key, expected in block.items():
            if not _condition_holds(operator, key, expected, context):
                return False
    return True


# --- evaluation ------------------------------------------------------------------------------

def _effective(statement, action, resource, context):
    """True when the statement applies to this request; unknown conditions resolve against access."""
    if not _applies_to(statement, action, resource, context):
        return False
    try:
        return _conditions_hold(statement, context)
    except _Unknown:
        return statement.get("Effect") == "Deny"


def _scan(policies, action, resource, context):
    """(first policy with a matching Deny, first policy with a matching Allow, unreadable policy names)."""
    denied = allowed = None
    unreadable = []
    for policy in policies:
        try:
            found = statements(policy.document)
        except (ValueError, AttributeError, TypeError):
            unreadable.append(policy.name)
            continue
        for statement in found:
            if not isinstance(statement, dict) or not _effective(statement, action, resource, context):
                continue
            if statement.get("Effect") == "Deny" and denied is None:
                denied = policy.name
            elif statement.get("Effect") == "Allow" and allowed is None:
                allowed = policy.name
    return denied, allowed, unreadable


def context_keys(values):
    """A request context with IAM's case-insensitive keys: {"aws:username": "alice", ...}."""
    return {key.lower(): value for key, value in values.items() if value is not None}


def _limits(action, resource, context, session_policies, boundary_policies):
    """(first Deny among the limits, names of the limits that allow nothing here, unreadable policies)."""
    denied, missing, unreadable = None, [], []
    for label, limit in (("the session policy", session_policies), ("the permissions boundary", boundary_policies)):
        if limit is None:
            continue
        limit_denied, limit_allowed, limit_unreadable = _scan(limit, action, resource, context)
        denied = denied or limit_denied
        unreadable += limit_unreadable
        if not limit_allowed:
            missing.append(label)
    return denied, missing, unreadable


def evaluate(policies, action, resource, context, session_policies=None, boundary_policies=None):
    """May a principal with these identity policies do action on resource?

    session_policies (AssumeRole `Policy`) and boundary_policies (a permissions boundary) limit
    what the identity policies grant: when given, each must allow too, and a Deny in any wins.
    context is the request context: aws:username, aws:userid, aws:PrincipalTag/KEY, ...
    Returns a Decision with a reason that names the deciding policy.
    """
    context = context_keys(context)
    denied, allowed, unreadable = _scan(policies, action, resource, context)
    limit_denied, missing_limits, limit_unreadable = _limits(action, resource, context, session_policies, boundary_policies)
    denied = denied or limit_denied
    if denied:
        return Decision(False, f"explicitly denied by {denied}")
    if allowed and not missing_limits:
        return Decision(True, f"allowed by {allowed}")
    if allowed:
        verb = "does" if len(missing_limits) == 1 else "do"
        return Decision(False, f"{allowed} allows {action} on {resource} but {' and '.join(missing_limits)} {verb} not")
    unreadable += limit_unreadable
    note = f" (unreadable: {', '.join(unreadable)})" if unreadable else ""
    return Decision(False, f"no policy allows {action} on {resource}{note}")
