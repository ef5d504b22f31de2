# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# The collection's own IAM policy evaluator, for the audit modules: may this principal call this action on this
# resource, and why. AWS offers iam:SimulatePrincipalPolicy for that, but it costs one call per (principal, action,
# resource) cell, needs iam:Simulate* rights an auditor rarely holds, and cannot say "allowed for any session tagged
# db_user=alice"; so the rules are applied here, from IAM's documented evaluation logic, to documents read once:
#   - an explicit Deny anywhere (identity policies, permissions boundary, SCPs) wins;
#   - SCPs and a permissions boundary must also allow (they never grant on their own);
#   - Action / NotAction match case-insensitively, Resource / NotResource case-sensitively, '*' and '?' wildcards;
#   - policy variables (${aws:username}, ${aws:userid}, ${aws:PrincipalTag/KEY}, defaults ${key, 'x'}, and the
#     literal escapes ${*} ${?} ${$}) are resolved from the context; a variable that only a session can resolve
#     (a role's session tags) makes the statement conditional on that session, never silently true or false;
#   - any Condition block makes the statement conditional, shown as written: conditions are not evaluated, because
#     their keys (source IP, MFA, time, session tags) belong to a request that has not happened yet.
# Pure: no I/O, no AWS call.

import functools
import json
import re
from collections import namedtuple

OUTCOMES = ('allowed', 'denied', 'not_allowed', 'conditional')

# One statement of a policy, with where it came from. action / not_action / resource / not_resource are tuples of
# patterns or None when the element is absent; condition is the Condition block as written or None.
Statement = namedtuple('Statement', 'effect action not_action resource not_resource condition principal not_principal sid index source')

# The verdict for one (action, resource): see evaluate().
Decision = namedtuple('Decision', 'outcome how statements conditions blocked_by reason')

# What a principal's context says about a tag it does not carry: an IAM user's tags are all known up front, a role's
# session may add tags when it is assumed.
_CLOSED_PRINCIPAL_TYPES = ('user',)

# How a granting statement is described, most specific first: when several statements allow, the first kind found names it.
HOW_ORDER = ('explicit', 'abac', 'wildcard', 'administrator')

_VARIABLE_RE = re.compile(r"\$\{([^}]*)\}")
_WILDCARD_SPLIT_RE = re.compile(r'([*?])')
_DEFAULT_RE = re.compile(r"^\s*([^,]+?)\s*,\s*'((?:[^']|'')*)'\s*$")
_ESCAPES = {'*': '*', '?': '?', '$': '$'}
_ADMIN_ACTIONS = ('*', '*:*')


def _as_tuple(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def load_document(document):
    """A policy document as a dict, from a dict or a JSON string."""
    if isinstance(document, dict):
        return document
    if isinstance(document, (bytes, bytearray)):
        document = document.decode('utf-8')
    try:
        loaded = json.loads(document)
    except (TypeError, ValueError) as exc:
        raise ValueError('policy document is not JSON: %s' % exc) from None
    if not isinstance(loaded, dict):
        raise ValueError('policy document is not a JSON object')
    return loaded


def statements_of(document, source):
    """The Statements of a policy document (dict or JSON string). source: {policy, policy_arn, kind, holder}; the
    statements keep it so a decision can name the policy, its kind and who holds it."""
    raw = load_document(document).get('Statement') or []
    if isinstance(raw, dict):
        raw = [raw]
    source = dict(source or {})
    statements = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            continue
        statements.append(Statement(
            effect='Deny' if str(item.get('Effect', '')).lower() == 'deny' else 'Allow',
            action=_as_tuple(item.get('Action')), not_action=_as_tuple(item.get('NotAction')),
            resource=_as_tuple(item.get('Resource')), not_resource=_as_tuple(item.get('NotResource')),
            condition=item.get('Condition') or None,
            principal=item.get('Principal'), not_principal=item.get('NotPrincipal'),
            sid=item.get('Sid') or None, index=index, source=source))
    return statements


@functools.lru_cache(maxsize=4096)
def _text_regex(text):
    return ''.join('.*' if part == '*' else '.' if part == '?' else re.escape(part) for part in _WILDCARD_SPLIT_RE.split(text) if part)


@functools.lru_cache(maxsize=1024)
def _glob_regex(pattern, flags=0):
    return re.compile('^' + _text_regex(pattern) + '$', flags | re.DOTALL)


def action_matches(pattern, action):
    """IAM action match: service prefix and name case-insensitive, '*' and '?' wildcards."""
    return bool(_glob_regex(pattern, re.IGNORECASE).match(action))


def statement_action_matches(statement, action):
    if statement.action is not None:
        return any(action_matches(pattern, action) for pattern in statement.action)
    if statement.not_action is not None:
        return not any(action_matches(pattern, action) for pattern in statement.not_action)
    return False


def context_value(context, key):
    """(known, value) for a context key, keys compared case-insensitively as IAM does. A key that is absent is known
    to be absent for keys every request carries and for an IAM user's tags, unknown for what a session may add."""
    lowered = key.lower()
    for name, value in (context or {}).items():
        if name.lower() == lowered:
            return True, value
    principal_type = str((context or {}).get('aws:PrincipalType', '')).lower()
    if lowered.startswith('aws:principaltag/') and principal_type not in _CLOSED_PRINCIPAL_TYPES:
        return False, None
    if lowered == 'aws:userid' and principal_type not in _CLOSED_PRINCIPAL_TYPES and principal_type:
        # An assumed role's aws:userid is ROLEID:session-name: the session name is chosen at assume time.
        return False, None
    return True, None


def _parse_variable(body):
    """(key, default or None) of a ${...} body."""
    match = _DEFAULT_RE.match(body)
    if match:
        return match.group(1), match.group(2).replace("''", "'")
    return body.strip(), None


def tokenize(pattern):
    """The pattern as a list of (kind, value): ('text', s) with '*'/'?' wildcards, ('literal', c) for the ${*} ${?} ${$}
    escapes, ('var', (key, default))."""
    tokens = []
    position = 0
    for match in _VARIABLE_RE.finditer(pattern):
        if match.start() > position:
            tokens.append(('text', pattern[position:match.start()]))
        body = match.group(1)
        if body in _ESCAPES:
            tokens.append(('literal', _ESCAPES[body]))
        else:
            tokens.append(('var', _parse_variable(body)))
        position = match.end()
    if position < len(pattern):
        tokens.append(('text', pattern[position:]))
    return tokens


def has_variables(pattern):
    return any(kind == 'var' for kind, _value in tokenize(pattern))


def has_wildcards(pattern):
    """True when the pattern matches more than one string: a '*' or '?' outside the ${*} ${?} escapes."""
    return any(kind == 'text' and ('*' in value or '?' in value) for kind, value in tokenize(pattern))


def variable_requirement(key, value):
    """How a report says what a session must carry for a variable to take a value."""
    if key.lower().startswith('aws:principaltag/'):
        return 'any session tagged %s=%s' % (key.split('/', 1)[1], value)
    if key.lower() == 'aws:userid':
        return 'any session whose aws:userid is %s' % value
    return 'any request where %s is %s' % (key, value)


@functools.lru_cache(maxsize=4096)
def _tokens(pattern):
    return tuple(tokenize(pattern))


@functools.lru_cache(maxsize=8192)
def _compiled(regex):
    return re.compile(regex, re.DOTALL)


def match_resource(pattern, resource, context):
    """('yes' | 'no' | 'maybe', requirements): whether an IAM resource pattern (case-sensitive, wildcards, policy
    variables) matches the resource. 'maybe' when it matches only if unknown session values take the values in
    requirements (texts such as "any session tagged db_user=alice")."""
    if not any(char in pattern for char in '*?$'):
        # A plain ARN, the common case of an audit's many cells: no regex to build.
        return ('yes' if pattern == resource else 'no'), []
    unknown = {}  # lower-cased key -> regex group
    written = {}  # regex group -> the key as the policy writes it

    def capture(key):
        if key.lower() in unknown:
            return '(?P=%s)' % unknown[key.lower()]
        group = 'v%d' % len(unknown)
        unknown[key.lower()] = group
        written[group] = key
        return '(?P<%s>[^/]*)' % group

    regex = _pattern_regex(pattern, context, capture)
    if regex is None:
        return 'no', []
    match = _compiled('^' + regex + '$').match(resource)
    if not match:
        return 'no', []
    if not unknown:
        return 'yes', []
    return 'maybe', [variable_requirement(written[group], match.group(group)) for group in sorted(written)]


def _pattern_regex(pattern, context, unknown_variable):
    """The pattern as a regex (unanchored) for this context: wildcards, ${*} ${?} ${$} escapes, variables the context
    knows as their value, and unknown_variable(key) for one it does not. None when a known variable has no value and no
    default: IAM then makes the element match nothing."""
    parts = []
    for kind, value in _tokens(pattern):
        if kind == 'text':
            parts.append(_text_regex(value))
        elif kind == 'literal':
            parts.append(re.escape(value))
        else:
            key, default = value
            known, resolved = context_value(context, key)
            if not known:
                parts.append(unknown_variable(key))
                continue
            resolved = resolved if resolved is not None else default
            if resolved is None:
                return None
            parts.append(re.escape(str(resolved)))
    return ''.join(parts)


def _match_any(patterns, resource, context):
    requirements = []
    for pattern in patterns:
        state, needs = match_resource(pattern, resource, context)
        if state == 'yes':
            return 'yes', [], pattern
        if state == 'maybe':
            requirements.append((needs, pattern))
    if requirements:
        return 'maybe', [' and '.join(needs) for needs, _pattern in requirements], requirements[0][1]
    return 'no', [], None


def statement_resource_match(statement, resource, context):
    """('yes' | 'no' | 'maybe', requirements, pattern) for the statement's Resource or NotResource."""
    if statement.resource is not None:
        return _match_any(statement.resource, resource, context)
    if statement.not_resource is not None:
        state, needs, pattern = _match_any(statement.not_resource, resource, context)
        if state == 'yes':
            return 'no', [], None
        if state == 'maybe':
            return 'maybe', ['not (%s)' % need for need in needs], pattern
        return 'yes', [], None
    return 'no', [], None


def could_apply(identity, context, boundary=None, scps=None):
    """A predicate on resources that is False only where evaluate() with these statements and context finds nothing,
    whatever the rest of the request: no identity statement and no Deny of the boundary or the SCPs can match the
    resource (a variable the context does not know stands for any text, a NotResource for any resource), so the verdict
    is not_allowed with nothing blocking.

    evaluate() stays the verdict; this skips, with one regex match, the cells a fleet's access matrix is mostly made of."""
    statements = list(identity) + [statement for statement in boundary or () if statement.effect == 'Deny']
    statements += [statement for level in _scp_levels(scps) for statement in level if statement.effect == 'Deny']
    regexes = set()
    for statement in statements:
        if statement.resource is None:
            if statement.not_resource is not None:
                return lambda resource: True
            continue
        # A variable the context does not know may take any value, '/' included.
        regexes.update(_pattern_regex(pattern, context, lambda key: '.*') for pattern in statement.resource)
    regexes.discard(None)
    if not regexes:
        return lambda resource: False
    screen = re.compile('^(?:%s)$' % '|'.join(sorted(regexes)), re.DOTALL)
    return lambda resource: screen.match(resource) is not None


def how_granted(statement, action, resource_pattern):
    """'administrator' | 'abac' | 'wildcard' | 'explicit' for a statement that matched: administrator when every action
    (Action '*' / '*:*', or NotAction) is allowed on every resource (Resource '*' or NotResource)."""
    every_action = statement.not_action is not None or any(pattern in _ADMIN_ACTIONS for pattern in statement.action or ())
    every_resource = statement.not_resource is not None or resource_pattern == '*'
    if every_action and every_resource:
        return 'administrator'
    if resource_pattern is not None and has_variables(resource_pattern):
        return 'abac'
    if resource_pattern is None or has_wildcards(resource_pattern):
        return 'wildcard'
    # rds-db:* on one exact dbuser ARN still names that ARN: the resource, not the action, says how wide a grant is.
    return 'explicit'


def statement_ref(statement):
    source = statement.source
    return dict(policy=source.get('policy'), policy_arn=source.get('policy_arn'), kind=source.get('kind'),
                holder=source.get('holder'), sid=statement.sid, index=statement.index, effect=statement.effect)


class _Match(namedtuple('_Match', 'statement state requirements pattern how')):
    """One statement that applies to the request: state 'yes' (unconditionally) or 'maybe' (condition or session)."""


def _matches(statements, action, resource, context):
    found = []
    for statement in statements or ():
        if not statement_action_matches(statement, action):
            continue
        state, requirements, pattern = statement_resource_match(statement, resource, context)
        if state == 'no':
            continue
        if statement.condition:
            state = 'maybe'
        found.append(_Match(statement, state, requirements, pattern, how_granted(statement, action, pattern)))
    return found


def _conditions_of(matches):
    conditions = []
    for match in matches:
        if match.state != 'maybe':
            continue
        source = match.statement.source
        base = dict(policy=source.get('policy'), sid=match.statement.sid, effect=match.statement.effect)
        if match.statement.condition:
            conditions.append(dict(base, condition=match.statement.condition))
        for requirement in match.requirements:
            conditions.append(dict(base, requirement=requirement))
    return conditions


class _Layer(namedtuple('_Layer', 'name allows maybe_allows denies maybe_denies')):
    """What one policy layer (identity, boundary, one SCP level) says about the request."""

    @property
    def allowed(self):
        return bool(self.allows)

    @property
    def may_allow(self):
        return bool(self.allows or self.maybe_allows)


def _layer(name, statements, action, resource, context):
    matches = _matches(statements, action, resource, context)
    return _Layer(name,
                  [m for m in matches if m.statement.effect == 'Allow' and m.state == 'yes'],
                  [m for m in matches if m.statement.effect == 'Allow' and m.state == 'maybe'],
                  [m for m in matches if m.statement.effect == 'Deny' and m.state == 'yes'],
                  [m for m in matches if m.statement.effect == 'Deny' and m.state == 'maybe'])


def _scp_levels(scps):
    """SCPs as levels: a flat list of Statements is one level; a list of lists is one level per list (every level of the
    organization, root to account, must allow)."""
    if scps is None:
        return []
    if scps and all(isinstance(item, (list, tuple)) and not isinstance(item, Statement) for item in scps):
        return [list(level) for level in scps]
    return [list(scps)]


def _describe(statement):
    source = statement.source
    holder = (source.get('holder') or '').split(':')[-1] or 'unknown holder'
    kind = (source.get('kind') or 'inline').replace('_', ' ')
    label = statement.sid if statement.sid else statement.index
    return '%s %s policy %s statement %s' % (holder, kind, source.get('policy'), label)


_HOW_TEXT = dict(explicit='explicit ARN', wildcard='wildcard resource', abac='policy variable', administrator='administrator: every action on every resource')


def _best(matches):
    return sorted(matches, key=lambda match: (HOW_ORDER.index(match.how), match.statement.source.get('policy') or '', match.statement.index))


def evaluate(action, resource, identity, context, boundary=None, scps=None):
    """The Decision for one action on one resource by a principal with these identity policy Statements.

    context: known request context keys ('aws:username', 'aws:userid', 'aws:PrincipalTag/KEY', 'aws:PrincipalType'
    ('User' | 'AssumedRole'), ...); a key given as None is known to be absent. For a principal that is not an IAM user,
    a PrincipalTag that is not given is taken as set (or not) by the session, so statements that need it are conditional.
    boundary: the permissions boundary's Statements, or None when there is none. scps: the SCP Statements (a flat list,
    or one list per organization level), or None when not known or not applicable.
    """
    layers = [_layer('identity', identity, action, resource, context)]
    if boundary is not None:
        layers.append(_layer('boundary', boundary, action, resource, context))
    for level in _scp_levels(scps):
        layers.append(_layer('scp', level, action, resource, context))
    blocked_name = dict(identity='deny', boundary='boundary', scp='scp')

    for layer in layers:
        if layer.denies:
            deny = layer.denies[0].statement
            return Decision('denied', None, [statement_ref(m.statement) for m in layer.denies], [], blocked_name[layer.name],
                            'denied by %s (explicit Deny)' % _describe(deny))

    identity_layer = layers[0]
    grants = _best(identity_layer.allows) or _best(identity_layer.maybe_allows)
    refs = [statement_ref(m.statement) for m in _best(identity_layer.allows) + _best(identity_layer.maybe_allows)]
    how = grants[0].how if grants else None
    if not identity_layer.may_allow:
        return Decision('not_allowed', None, [], [], None, 'no identity policy statement allows %s on %s' % (action, resource))

    for layer in layers[1:]:
        if not layer.may_allow:
            what = 'the permissions boundary' if layer.name == 'boundary' else 'the service control policies'
            return Decision('not_allowed', how, refs, [], blocked_name[layer.name],
                            'allowed by %s (%s) but %s do%s not allow %s' % (
                                _describe(grants[0].statement), _HOW_TEXT[how], what, 'es' if layer.name == 'boundary' else '', action))

    conditional = not identity_layer.allowed or any(not layer.allowed for layer in layers[1:]) or any(layer.maybe_denies for layer in layers)
    conditions = []
    for layer in layers:
        if not layer.allowed:
            conditions.extend(_conditions_of(layer.maybe_allows))
        conditions.extend(_conditions_of(layer.maybe_denies))
    if conditional:
        return Decision('conditional', how, refs, conditions, None,
                        'allowed by %s (%s) only under the conditions shown' % (_describe(grants[0].statement), _HOW_TEXT[how]))
    return Decision('allowed', how, refs, [], None, 'allowed by %s (%s)' % (_describe(grants[0].statement), _HOW_TEXT[how]))
