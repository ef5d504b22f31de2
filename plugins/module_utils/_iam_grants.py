# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Who may connect to which database as whom, from the principals _iam_account read: the grant rows (every statement
# that allows or denies rds-db:connect, one row per resource it names, as written) and the access rows (the decision
# of _iam_eval.evaluate for each concrete principal x target x database user). A grant written with a target's
# identifier where RDS expects its resource id (db-..., cluster-..., prx-...) grants nothing; such rows keep the
# identifier as resource_id with resource_id_kind 'identifier' so the audit can say so. Pure: no AWS call.

import fnmatch
import json
import re

from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_eval as iam_eval

CONNECT_ACTION = 'rds-db:connect'
_DBUSER_RE = re.compile(r'^arn:(?P<partition>[^:]*):rds-db:(?P<region>[^:]*):(?P<account>[^:]*):dbuser:(?P<rest>.*)$')
_RESOURCE_ID_RE = re.compile(r'^(db|cluster|prx)-[A-Za-z0-9]+$')
_EFFECTIVE_KINDS = ('user', 'role')
_PRINCIPAL_TYPES = dict(user='User', role='AssumedRole')


def dbuser_arn(partition, region, account, resource_id, db_user):
    return 'arn:%s:rds-db:%s:%s:dbuser:%s/%s' % (partition, region, account, resource_id, db_user)


def _literal(value):
    return bool(value) and not iam_eval.has_wildcards(value) and not iam_eval.has_variables(value)


def could_name_dbuser(pattern):
    """Whether a resource pattern can match an rds-db dbuser ARN at all (an s3 ARN beside rds-db:* cannot)."""
    prefix = re.split(r'[*?]|\$\{', pattern, maxsplit=1)[0]
    match = re.match(r'^arn:[^:]*:', prefix)
    if match is None:
        # The literal part ends before the service: a wildcard covers it.
        return 'arn:'.startswith(prefix) or (prefix.startswith('arn:') and prefix.count(':') < 2)
    service = prefix[match.end():]
    return service.startswith('rds-db:') or 'rds-db:'.startswith(service)


def split_dbuser(pattern):
    """(partition, region, account, resource_id, db_user) of a dbuser ARN or pattern; '*' for parts a wildcard covers."""
    if pattern == '*':
        return '*', '*', '*', '*', '*'
    match = _DBUSER_RE.match(pattern)
    if not match:
        return '*', '*', '*', '*', '*'
    rest = match.group('rest')
    if '/' in rest:
        resource_id, db_user = rest.split('/', 1)
    else:
        resource_id, db_user = rest, '*' if iam_eval.has_wildcards(rest) else ''
    return match.group('partition'), match.group('region'), match.group('account'), resource_id, db_user


def resource_id_kind(resource_id, targets):
    """'resource_id' | 'identifier' | 'pattern' | 'unknown' for the resource id part of a grant, against the targets:
    'identifier' when it is a target's identifier, which RDS never puts in the ARN it checks."""
    if not _literal(resource_id):
        return 'pattern'
    if any(target.get('resource_id') == resource_id for target in targets):
        return 'resource_id'
    if any(target.get('identifier') == resource_id for target in targets):
        return 'identifier'
    return 'unknown'


def _matches_part(pattern, value):
    return pattern in ('*', '') or fnmatch.fnmatchcase(value, pattern.replace('[', '[[]'))


def target_of(region, account, resource_id, targets, own_account):
    """The identifier of the one target a literal resource id names in that region and account, else None."""
    if not _literal(resource_id):
        return None
    found = [target for target in targets if target.get('resource_id') == resource_id
             and _matches_part(region, target.get('region') or '') and _matches_part(account, own_account)]
    return found[0]['identifier'] if len(found) == 1 else None


def principal_context(principal):
    """The request context a principal brings: an IAM user's name, id and tags are fixed; a role session's tags and name
    are chosen when it is assumed, so its role tags are known but anything else a session may add is left unknown."""
    context = {'aws:PrincipalType': _PRINCIPAL_TYPES.get(principal['kind'], principal['kind']),
               'aws:PrincipalAccount': principal['account'], 'aws:PrincipalArn': principal['arn']}
    if principal['kind'] == 'user':
        context['aws:username'] = principal['name']
        context['aws:userid'] = principal['id']
    else:
        context['aws:username'] = None
    for key, value in (principal.get('tags') or {}).items():
        context['aws:PrincipalTag/%s' % key] = value
    return context


def _resolved_db_user(db_user, context):
    """The database user an ABAC pattern names for this principal when the context resolves it, else None."""
    if not iam_eval.has_variables(db_user):
        return None
    parts = []
    for kind, value in iam_eval.tokenize(db_user):
        if kind == 'var':
            state, resolved = iam_eval.context_value(context, value[0])
            resolved = resolved if resolved is not None else value[1]
            if not state or resolved is None:
                return None
            parts.append(str(resolved))
        else:
            parts.append(value)
    resolved = ''.join(parts)
    return resolved if _literal(resolved) else None


def _statement_resources(statement):
    if statement.resource is not None:
        return [(pattern, None) for pattern in statement.resource]
    return [('*', list(statement.not_resource or ()))]


def _grant_rows_of(principal, targets, own_account):
    context = principal_context(principal)
    rows = []
    for statement in principal['statements']:
        if not iam_eval.statement_action_matches(statement, CONNECT_ACTION):
            continue
        for pattern, not_resource in _statement_resources(statement):
            if not_resource is None and not could_name_dbuser(pattern):
                continue
            rows.append(_grant_row(principal, statement, pattern, not_resource, context, targets, own_account))
    return rows


def _grant_row(principal, statement, pattern, not_resource, context, targets, own_account):
    _partition, region, account, resource_id, db_user = split_dbuser(pattern)
    conditions = []
    if statement.condition:
        conditions.append(dict(policy=statement.source.get('policy'), sid=statement.sid, effect=statement.effect, condition=statement.condition))
    resolved = _resolved_db_user(db_user, context)
    unresolved_session = iam_eval.has_variables(pattern) and resolved is None and principal['kind'] != 'user'
    if unresolved_session:
        for kind, value in iam_eval.tokenize(pattern):
            if kind == 'var':
                conditions.append(dict(policy=statement.source.get('policy'), sid=statement.sid, effect=statement.effect,
                                       requirement=iam_eval.variable_requirement(value[0], '<db user>')))
    row = dict(principal=principal['arn'], principal_kind=principal['kind'], db_user=db_user, db_user_resolved=resolved,
               resource=pattern, resource_id=resource_id, resource_id_kind=resource_id_kind(resource_id, targets), region=region,
               account=account, target=target_of(region, account, resource_id, targets, own_account),
               effect=statement.effect.lower(), how=iam_eval.how_granted(statement, CONNECT_ACTION, None if not_resource is not None else pattern),
               conditional=bool(conditions), conditions=conditions, policy=statement.source.get('policy'),
               policy_arn=statement.source.get('policy_arn'), kind=statement.source.get('kind'), holder=statement.source.get('holder'),
               statement=statement.sid if statement.sid is not None else statement.index)
    if not_resource is not None:
        row['not_resource'] = not_resource
    return row


def _row_key(row):
    return tuple(str(row.get(key)) for key in ('principal', 'target', 'resource_id', 'db_user', 'effect', 'policy', 'kind', 'statement', 'resource'))


def grant_rows(principals, targets, own_account):
    """One row per (user or role, statement, resource) allowing or denying rds-db:connect, group statements included in
    each member's rows (kind group_inline / group_managed, holder the group), sorted."""
    rows = []
    for principal in principals:
        if principal['kind'] in _EFFECTIVE_KINDS and principal['readable']:
            rows.extend(_grant_rows_of(principal, targets, own_account))
    return sorted(rows, key=_row_key)


def access_cells(grants, targets, db_users):
    """{target identifier: sorted db users}: the users db_users lists for it, plus those grant rows name literally on
    its resource id."""
    cells = {}
    for target in targets:
        names = set((db_users or {}).get(target['identifier']) or ())
        for row in grants:
            if row['resource_id'] == target.get('resource_id') and _literal(row['db_user']):
                names.add(row['db_user'])
        cells[target['identifier']] = sorted(names)
    return cells


def access_rows(principals, targets, db_users, grants, partition, account, scp_levels=None):
    """The decisions for each (user or role) x target x db user (see access_cells) that is not 'not_allowed', or that a
    boundary or SCP made so: one entry per principal, target and decision with the db users it covers (db_users), sorted
    by principal, target and first db user. A cell in no entry is one no statement allows. A principal whose policies
    could not be read gets decision 'unknown' in every cell, never not_allowed.

    Only the statements about rds-db:connect are evaluated, and a principal none of whose statements allows it is left
    out whole: its cells are all not allowed (an explicit Deny changes nothing there). A fleet's matrix is mostly such
    cells, so this is what keeps the audit's cost with the grants rather than with principals x users x targets; and
    a grant to every user of a target is one entry, not one per user."""
    cells = access_cells(grants, targets, db_users)
    entries = {}
    for principal in principals:
        if principal['kind'] not in _EFFECTIVE_KINDS:
            continue
        statements = [statement for statement in principal['statements'] if iam_eval.statement_action_matches(statement, CONNECT_ACTION)]
        if principal['readable'] and not any(statement.effect == 'Allow' for statement in statements):
            continue
        context = principal_context(principal)
        could_apply = iam_eval.could_apply(statements, context, principal['boundary'], scp_levels) if principal['readable'] else None
        for target in targets:
            for db_user in cells[target['identifier']]:
                resource = dbuser_arn(partition, target.get('region'), account, target.get('resource_id'), db_user)
                if could_apply is not None and not could_apply(resource):
                    continue
                row = _access_row(principal, statements, target, resource, context, scp_levels)
                if row['decision'] != 'not_allowed' or row['blocked_by']:
                    key = json.dumps(row, sort_keys=True)
                    entries.setdefault(key, dict(row, db_users=[]))['db_users'].append(db_user)
    return sorted(entries.values(), key=lambda entry: (entry['principal'], entry['target'], entry['db_users'][0]))


def _access_row(principal, statements, target, resource, context, scp_levels):
    row = dict(principal=principal['arn'], principal_kind=principal['kind'], target=target['identifier'],
               resource_id=target.get('resource_id'))
    if not principal['readable']:
        return dict(row, decision='unknown', how=None, statements=[], conditions=[], blocked_by=None,
                    reason='the policies of %s could not be read: %s' % (principal['arn'], '; '.join(principal['problems'])))
    decision = iam_eval.evaluate(CONNECT_ACTION, resource, statements, context, boundary=principal['boundary'], scps=scp_levels)
    return dict(row, decision=decision.outcome, how=decision.how, reason=decision.reason, statements=decision.statements,
                conditions=decision.conditions, blocked_by=decision.blocked_by)


def public_principal(principal):
    """A principal as the module returns it: no Statements, no internal bookkeeping."""
    keys = ('arn', 'kind', 'name', 'id', 'account', 'tags', 'labels', 'groups', 'members', 'readable')
    public = dict((key, principal[key]) for key in keys)
    if principal['kind'] == 'role':
        public['assumable_by'] = principal['assumable_by']
    if principal.get('boundary_arn'):
        public['permissions_boundary'] = principal['boundary_arn']
    if principal['problems']:
        public['problems'] = principal['problems']
    return public


def select_principals(principals, globs):
    """The principals whose ARN matches one of the globs (all of them without globs)."""
    if not globs:
        return principals
    return [principal for principal in principals if any(fnmatch.fnmatchcase(principal['arn'], glob) for glob in globs)]
