# -*- coding: utf-8 -*-
# Copyright: rdsiam.auth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the onboard/offboard roles use to turn the playbook's inputs into module arguments and a report.

Kept in Python rather than Jinja so that each rule (grants per engine, policy names, what a row says) has one
implementation that the unit tests exercise directly.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.rdsiam.auth.plugins.module_utils._common import DB_USER_NAME_LIMITS, RdsIamError, db_user_name_length
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy import db_user_problems
from ansible_collections.rdsiam.auth.plugins.module_utils._identifiers import (
    check_mysql_host,
    check_mysql_user,
    check_pg_name,
    check_pg_new_role_name,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._mysql_users import parse_privileges
from ansible_collections.rdsiam.auth.plugins.module_utils._policy_names import policy_description
from ansible_collections.rdsiam.auth.plugins.module_utils._policy_names import policy_name as derive_policy_name

ENGINES = ('postgres', 'mysql', 'mariadb')
USER_GRANT_KEYS = ('roles', 'privileges', 'connection_limit', 'host')
USER_KEYS = ('name', 'state', 'grants') + USER_GRANT_KEYS
USER_STATES = ('present', 'absent', 'locked')
POLICY_MODES = ('per_user', 'abac')
TAG_KEY = re.compile(r'^[\w.:/=+@-]{1,128}$')
REPORT_COLUMNS = (('target', 'target'), ('engine', 'engine'), ('iam_auth', 'IAM auth'), ('user', 'user'),
                  ('policy', 'policy'), ('login', 'login verified'), ('changed', 'what changed'))


def _user_entry(user):
    if isinstance(user, str):
        return {'name': user}
    if not isinstance(user, dict) or not isinstance(user.get('name'), str) or not user['name']:
        raise AnsibleFilterError('each user must be a name or a dict with a name, got %r: write `- alice` or `- {name: alice}`' % (user,))
    unknown = sorted(set(user) - set(USER_KEYS))
    if unknown:
        raise AnsibleFilterError("user '%s' has unknown keys %s: allowed are %s" % (user['name'], ', '.join(unknown), ', '.join(USER_KEYS)))
    return user


def user_names(users):
    """The database user names from a list of names or user dicts."""
    return [_user_entry(user)['name'] for user in users or []]


def _engine_grants(grants, engine, owner):
    grants = grants or {}
    if not isinstance(grants, dict):
        raise AnsibleFilterError('grants of %s must be a dict keyed by engine (%s)' % (owner, ', '.join(ENGINES)))
    unknown = sorted(set(grants) - set(ENGINES))
    if unknown:
        raise AnsibleFilterError('grants of %s name unknown engines %s: use %s' % (owner, ', '.join(unknown), ', '.join(ENGINES)))
    # MariaDB takes MySQL's grant syntax, so a mysql entry serves both unless mariadb has its own.
    found = grants.get(engine)
    if found is None and engine == 'mariadb':
        found = grants.get('mysql')
    found = found or {}
    bad = sorted(set(found) - set(USER_GRANT_KEYS))
    if bad:
        raise AnsibleFilterError('grants of %s for %s have unknown keys %s: allowed are %s' % (owner, engine, ', '.join(bad), ', '.join(USER_GRANT_KEYS)))
    return found


def db_user_specs(users, engine, grants=None, state='present'):
    """The `users` list of rds_iam_db_user for one target: each user with the grants for that target's engine.

    A user's own `grants` (per engine) replace the shared `grants` for that engine; keys set directly on the user
    (roles, privileges, connection_limit, host) apply on every engine. `state` is the default for users without one.
    """
    if engine not in ENGINES:
        raise AnsibleFilterError("engine '%s' has no IAM database users: rdsiam.auth handles %s" % (engine, ', '.join(ENGINES)))
    if state not in USER_STATES:
        raise AnsibleFilterError("state '%s' is not one of %s" % (state, ', '.join(USER_STATES)))
    shared = _engine_grants(grants, engine, 'the playbook')
    specs, seen = [], set()
    for user in users or []:
        entry = _user_entry(user)
        name = entry['name']
        if name in seen:
            raise AnsibleFilterError("user '%s' is listed twice: list each database user once" % name)
        seen.add(name)
        spec = {'name': name, 'state': entry.get('state') or state}
        if spec['state'] not in USER_STATES:
            raise AnsibleFilterError("user '%s' has state '%s': use one of %s" % (name, spec['state'], ', '.join(USER_STATES)))
        if entry.get('host') is not None and engine != 'postgres':
            spec['host'] = entry['host']
        if spec['state'] == 'present':
            own = _engine_grants(entry.get('grants'), engine, "user '%s'" % name) if entry.get('grants') else shared
            for key in USER_GRANT_KEYS:
                value = entry.get(key, own.get(key))
                if value is not None and not (key == 'host' and engine == 'postgres'):
                    spec[key] = value
        specs.append(spec)
    if not specs:
        raise AnsibleFilterError('no database users given: set at least one user name')
    return specs


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _iam_problems(name):
    """Why database user name cannot be onboarded with IAM whatever the engine (empty list when it can)."""
    if '${' in name:
        return ["db user '%s' contains '${', which IAM reads as a policy variable: the policy would name other users" % name]
    problems = db_user_problems(name)
    if not problems and all(db_user_name_length(name, engine)[0] > DB_USER_NAME_LIMITS[engine][0] for engine in ENGINES):
        problems.append("db user '%s' is longer than any engine keeps (%s): use a shorter name"
                        % (name, ', '.join('%s %d %s' % ((engine,) + DB_USER_NAME_LIMITS[engine]) for engine in ENGINES)))
    return problems


def _engine_problems(spec, engine):
    """Why one user spec (from db_user_specs) would be refused on engine: the names, and MySQL/MariaDB privileges."""
    try:
        if engine == 'postgres':
            check_pg_new_role_name(spec['name'])
            for role in _as_list(spec.get('roles')):
                check_pg_name(role, 'role')
        else:
            check_mysql_user(spec['name'], engine)
            for role in _as_list(spec.get('roles')):
                check_mysql_user(role, engine, 'role')
            if spec.get('host') is not None:
                check_mysql_host(spec['host'])
    except RdsIamError as exc:
        return [str(exc)]
    if engine == 'postgres':
        if spec.get('privileges'):
            return ['user %s: privileges apply to MySQL/MariaDB only; on PostgreSQL list roles' % ascii(spec['name'])]
        return []
    try:
        parse_privileges(spec.get('privileges'), engine)
    except RdsIamError as exc:
        return ['user %s: %s' % (ascii(spec['name']), exc)]
    return []


def check_users(users, grants=None, targets=None):
    """The user names, after checking the users and grants for every engine, each name against IAM's rules and, when
    `targets` (rds_iam_fleet_info's) are given, every user against the engines of those targets: bad input fails here,
    naming each problem and where, before any change."""
    for engine in ENGINES:
        db_user_specs(users, engine, grants)
    names = user_names(users)
    problems = [problem for name in names for problem in _iam_problems(name)]
    where = {}
    for target in targets or []:
        where.setdefault(target.get('engine'), []).append(target.get('identifier') or '?')
    for engine in [engine for engine in ENGINES if engine in where]:
        label = '%s (%s)' % (engine, ', '.join(sorted(where[engine])))
        for spec in db_user_specs(users, engine, grants):
            problems.extend('on %s: %s' % (label, problem) for problem in _engine_problems(spec, engine))
    if problems:
        raise AnsibleFilterError('%d problem(s) with the users, so nothing was changed: %s' % (len(problems), '; '.join(problems)))
    return names


def inventory_identifiers(host_vars):
    """The target identifiers of inventory hosts: an `identifier` variable, the aws_rds inventory plugin's
    db_cluster_identifier / db_instance_identifier, or else the host name."""
    identifiers = []
    for variables in host_vars or []:
        for key in ('identifier', 'db_cluster_identifier', 'db_instance_identifier', 'inventory_hostname'):
            if variables.get(key):
                identifiers.append(variables[key])
                break
    return identifiers


def _arns(targets):
    arns = []
    for target in targets or []:
        arn = target.get('arn') if isinstance(target, dict) else target
        if not isinstance(arn, str) or not arn:
            raise AnsibleFilterError('each policy target must be an ARN, an identifier or a target dict with an arn, got %r' % (target,))
        arns.append(arn)
    return sorted(set(arns))


def policy_name(user, prefix='rdsiam-'):
    """The IAM policy name of one database user: prefix + user when IAM accepts it as it is, else a derived name (see
    module_utils/_policy_names); the one derivation onboarding and offboarding share."""
    try:
        return derive_policy_name(user, prefix)
    except RdsIamError as exc:
        raise AnsibleFilterError(str(exc)) from None


def policy_specs(users, targets, mode='per_user', prefix='rdsiam-', state='present', abac_tag='db_user', abac_name=None):
    """The `policies` list of rds_iam_policy: one per database user, or one attribute-based policy for everyone.

    The ABAC form names the database user through the principal's tag, so one document serves every person and
    onboarding someone new needs a tag, not a policy change.
    """
    if mode not in POLICY_MODES:
        raise AnsibleFilterError("policy mode '%s' is not one of %s" % (mode, ', '.join(POLICY_MODES)))
    arns = _arns(targets)
    if state == 'present' and not arns:
        raise AnsibleFilterError('no targets for the IAM policy: the policy would allow nothing')
    if mode == 'abac':
        if not TAG_KEY.match(abac_tag or ''):
            raise AnsibleFilterError("abac_tag '%s' is not a valid IAM tag key" % abac_tag)
        entries = [(abac_name or policy_name('abac', prefix), '${aws:PrincipalTag/%s}' % abac_tag)]
    else:
        names = user_names(users)
        problems = [problem for name in names for problem in _iam_problems(name)]
        if problems:
            raise AnsibleFilterError('no IAM policy can let anyone log in as these users: %s' % '; '.join(problems))
        entries = [(policy_name(name, prefix), name) for name in names]
    specs = []
    for name, db_user in entries:
        spec = {'name': name, 'state': state}
        if state == 'present':
            spec['grants'] = [{'db_users': [db_user], 'targets': arns}]
            # A derived name does not say whose policy it is: the description does (ABAC's variable needs none).
            description = None if mode == 'abac' else policy_description(db_user, prefix)
            if description:
                spec['description'] = description
        specs.append(spec)
    return specs


def _by_name(items, key='name'):
    return {item.get(key): item for item in items or [] if isinstance(item, dict)}


def _iam_auth(target, flag, check_mode):
    if flag and not flag.get('skipped'):
        state = 'pending' if flag.get('pending_maintenance') else 'on' if flag.get('iam_auth_enabled') else 'off'
        return 'would be %s' % state if check_mode and flag.get('changed') else state
    return 'on' if target.get('iam_auth_enabled') else 'off'


def _target_changes(flag, group):
    changes = []
    if flag and flag.get('changed'):
        changes.append('IAM auth %s' % ('scheduled' if flag.get('pending_maintenance') else 'turned on' if flag.get('iam_auth_enabled') else 'turned off'))
    if group and not group.get('skipped'):
        if group.get('changed'):
            changes.append('parameter group %s' % (group.get('parameter_group') or {}).get('name', ''))
        if group.get('pending_reboot') and not group.get('rebooted'):
            changes.append('reboot pending')
        if group.get('rebooted'):
            changes.append('rebooted')
    return changes


def _user_changes(result):
    if not result:
        return []
    changes = []
    for key, words in (('created', 'created'), ('converted', 'converted to IAM'), ('dropped', 'dropped'),
                       ('locked', 'locked'), ('unlocked', 'unlocked')):
        if result.get(key):
            changes.append(words)
    if result.get('roles_granted'):
        changes.append('+' + ','.join(result['roles_granted']))
    if result.get('roles_revoked'):
        changes.append('-' + ','.join(result['roles_revoked']))
    for key, sign in (('privileges_granted', '+'), ('privileges_revoked', '-')):
        for scope, privileges in sorted((result.get(key) or {}).items()):
            changes.append('%s%s on %s' % (sign, ','.join(privileges), scope))
    if result.get('changed') and not changes:
        changes.append('updated')
    return changes


def _policy_cell(policy_result, name, state, check_mode):
    if not policy_result or policy_result.get('skipped'):
        return 'not managed'
    entry = _by_name(policy_result.get('policies')).get(name)
    changed = bool(entry and entry.get('changed'))
    if state == 'absent':
        return '%s %s' % (('would remove' if check_mode else 'removed') if changed else 'absent', name)
    if entry is None:
        return '%s (not written)' % name
    return '%s (%s)' % (name, ('would change' if check_mode else 'changed') if changed else 'in place')


def _login_cell(login, name, expect_failure, check_mode):
    if not login or login.get('skipped'):
        # Check mode creates no user and writes no policy, so there is nothing a login could prove.
        return 'not checked (check mode)' if check_mode else 'not checked'
    entry = _by_name(login.get('logins'), 'db_user').get(name)
    if entry is None:
        return 'FAILED' if login.get('failed') else 'not checked'
    if entry.get('logged_in'):
        return 'LOGGED IN (expected refusal)' if expect_failure else 'yes (TLS %s)' % entry.get('tls_version', '?')
    return 'refused, as expected' if expect_failure else 'FAILED'


def _changed_cell(changes, failure, check_mode):
    done = ', '.join(changes)
    if failure:
        before = ' (%s: %s)' % ('would change' if check_mode else 'done', done) if done else ''
        return 'FAILED at %s%s' % (failure.get('step', '?'), before)
    if check_mode:
        return 'would change: %s' % done if done else 'nothing would change'
    return done or 'nothing'


def target_report(target, users, steps=None, mode='per_user', prefix='rdsiam-', policy_state='present', expect_login_failure=False,
                  check_mode=False):
    """One summary row per database user on one target, from the results the role registered.

    `steps` holds the registered results by step name (iam_auth, parameter_group, db_users, policy, login) and, if a
    step failed, `failure` as {step, msg}: the row then says the step, the reason and what was done before it. In
    `check_mode` the results are what would change, and the row says so.
    """
    steps = steps or {}
    failure = steps.get('failure') or {}
    db_result = steps.get('db_users') or {}
    per_user = _by_name(db_result.get('users'))
    target_changes = _target_changes(steps.get('iam_auth'), steps.get('parameter_group'))
    rows = []
    for name in user_names(users):
        if mode == 'abac':
            name_of_policy = policy_name('abac', prefix)
        else:
            name_of_policy = policy_name(name, prefix)
        row = {
            'target': target.get('identifier', '?'),
            'engine': target.get('engine_family') or target.get('engine', '?'),
            'iam_auth': _iam_auth(target, steps.get('iam_auth'), check_mode),
            'user': name,
            'policy': _policy_cell(steps.get('policy'), name_of_policy, policy_state, check_mode),
            'login': _login_cell(steps.get('login'), name, expect_login_failure, check_mode),
            'changed': _changed_cell(target_changes + _user_changes(per_user.get(name)), failure, check_mode),
            'failed': bool(failure),
            'error': failure.get('msg', '') if failure else '',
        }
        if failure:
            row['step'] = failure.get('step', '?')
        rows.append(row)
    return rows


def unreported_row(target):
    """The row of a target whose host stopped before it could report (an unexpected error, shown in the task output)."""
    target = target if isinstance(target, dict) else {'identifier': str(target)}
    return {'target': target.get('identifier', '?'), 'engine': target.get('engine_family') or target.get('engine', '?'),
            'iam_auth': 'on' if target.get('iam_auth_enabled') else 'off', 'user': '-', 'policy': '-', 'login': 'not checked',
            'changed': 'FAILED at an unexpected step', 'failed': True, 'step': 'an unexpected step',
            'error': 'the host stopped before reporting; see its failed task above'}


def summary_table(rows):
    """The rows as aligned text lines, header first, for `ansible.builtin.debug`."""
    rows = [row for row in rows or [] if isinstance(row, dict)]
    cells = [[title for _key, title in REPORT_COLUMNS]]
    cells += [[str(row.get(key, '')) for key, _title in REPORT_COLUMNS] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(REPORT_COLUMNS))]
    lines = [' | '.join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, '-+-'.join('-' * width for width in widths))
    return lines


def failed_targets(rows):
    """`target: step: reason` once per failed target, for the closing failure message."""
    seen, out = set(), []
    for row in rows or []:
        if isinstance(row, dict) and row.get('failed') and row.get('target') not in seen:
            seen.add(row['target'])
            step = row.get('step') or row.get('changed', '').replace('FAILED at ', '')
            out.append('%s: %s: %s' % (row['target'], step, row.get('error', '')))
    return out


class FilterModule(object):
    def filters(self):
        return {
            'db_user_specs': db_user_specs,
            'policy_specs': policy_specs,
            'target_report': target_report,
            'summary_table': summary_table,
            'failed_targets': failed_targets,
            'user_names': user_names,
            'unreported_row': unreported_row,
            'check_users': check_users,
            'inventory_identifiers': inventory_identifiers,
            'policy_name': policy_name,
        }
