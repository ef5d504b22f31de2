# -*- coding: utf-8 -*-
# Copyright: rdsiam.auth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the onboard/offboard roles use to turn the playbook's inputs into module arguments: the users and their
grants per engine for rds_iam_db_user, the policies for rds_iam_policy, and every check that must fail before a change.

Kept in Python rather than Jinja so that each rule (grants per engine, policy names) has one implementation that the
unit tests exercise directly. The report rows and the summary table are in onboarding_report.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._db_users import ENGINES as DB_USER_ENGINES
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy import db_user_problems
from ansible_collections.rdsiam.auth.plugins.module_utils._identifiers import (
    check_mysql_host,
    check_mysql_user,
    check_pg_name,
    check_pg_new_role_name,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._mysql_privileges import parse_privileges
from ansible_collections.rdsiam.auth.plugins.module_utils._policy_names import DEFAULT_POLICY_PREFIX, policy_description
from ansible_collections.rdsiam.auth.plugins.module_utils._policy_names import policy_name as derive_policy_name

# The engines rds_iam_db_user manages, without its 'auto' (a target's engine is always known here).
ENGINES = tuple(engine for engine in DB_USER_ENGINES if engine != 'auto')
USER_GRANT_KEYS = ('roles', 'privileges', 'connection_limit', 'host')
USER_KEYS = ('name', 'state', 'grants') + USER_GRANT_KEYS
USER_STATES = ('present', 'absent', 'locked')
POLICY_MODES = ('per_user', 'abac')
TAG_KEY = re.compile(r'^[\w.:/=+@-]{1,128}$')


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


def users_by_dialect(users, targets, grants=None, state='present'):
    """The `users_by_dialect` argument of rds_iam_db_user for these targets: db_user_specs for each engine among them."""
    dialects = sorted(set(target.get('dialect') for target in targets or []))
    return dict((dialect, db_user_specs(users, dialect, grants, state)) for dialect in dialects)


# What parameter group hardening sets when the playbook does not say: TLS only and connections logged. None leaves a
# setting as it is.
RECOMMENDED_HARDENING = dict(force_ssl=True, log_connections=True, restrict_password_commands=None, audit_logging=None)


def hardening_settings(settings=None):
    """The rds_iam_parameter_group settings for a hardening dict: the recommended ones when none is given, otherwise the
    given ones, each setting left out of it None (left as it is)."""
    if settings is None:
        return dict(RECOMMENDED_HARDENING)
    if not isinstance(settings, dict) or set(settings) - set(RECOMMENDED_HARDENING):
        raise AnsibleFilterError('hardening settings %r: give a dict with any of %s'
                                 % (settings, ', '.join(RECOMMENDED_HARDENING)))
    return dict((name, settings.get(name)) for name in RECOMMENDED_HARDENING)


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _iam_problems(name):
    """Why database user name cannot be onboarded with IAM whatever the engine (empty list when it can)."""
    if '${' in name:
        return ["db user '%s' contains '${', which IAM reads as a policy variable: the policy would name other users" % name]
    return db_user_problems(name)


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
        where.setdefault(target.get('dialect'), []).append(target.get('identifier') or '?')
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


# The session tag that names the database user in the attribute-based policy.
DEFAULT_ABAC_TAG = 'db_user'


def policy_name(user, prefix=None):
    """The IAM policy name of one database user: prefix (by default DEFAULT_POLICY_PREFIX) + user when IAM accepts it
    as it is, else a derived name (see module_utils/_policy_names); the one derivation onboarding and offboarding share."""
    try:
        return derive_policy_name(user, DEFAULT_POLICY_PREFIX if prefix is None else prefix)
    except RdsIamError as exc:
        raise AnsibleFilterError(str(exc)) from None


def policy_specs(users, targets, mode='per_user', prefix=None, state='present', abac_tag=None, abac_name=None):
    """The `policies` list of rds_iam_policy: one per database user, or one attribute-based policy for everyone.

    The ABAC form names the database user through the principal's tag, so one document serves every person and
    onboarding someone new needs a tag, not a policy change.
    """
    if mode not in POLICY_MODES:
        raise AnsibleFilterError("policy mode '%s' is not one of %s" % (mode, ', '.join(POLICY_MODES)))
    # None: the role passing it through left the input unset.
    prefix = DEFAULT_POLICY_PREFIX if prefix is None else prefix
    abac_tag = DEFAULT_ABAC_TAG if abac_tag is None else abac_tag
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


class FilterModule(object):
    def filters(self):
        return {
            'db_user_specs': db_user_specs,
            'users_by_dialect': users_by_dialect,
            'hardening_settings': hardening_settings,
            'policy_specs': policy_specs,
            'user_names': user_names,
            'check_users': check_users,
            'inventory_identifiers': inventory_identifiers,
            'policy_name': policy_name,
        }
