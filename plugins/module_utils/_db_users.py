# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# What the PostgreSQL and MySQL/MariaDB user planners share: the per-user option set, turning
# module parameters into a list of desired users, the plan and result shapes, and running a plan
# (or only rendering it in check mode).

import collections

from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError

USER_OPTION_SPEC = dict(
    name=dict(type='str', required=True),
    state=dict(type='str', default='present', choices=['present', 'absent', 'locked']),
    roles=dict(type='list', elements='str'),
    privileges=dict(type='raw'),
    host=dict(type='str'),
    connection_limit=dict(type='int'),
)
ENGINES = ('auto', 'postgres', 'mysql', 'mariadb')
DIALECTS = ENGINES[1:]
# The engine option of every module that logs in to a database.
ENGINE_OPTION = dict(type='str', default='auto', choices=list(ENGINES))

# A statement and its bound values; sql is a DB-API "format" template when params is not None.
Statement = collections.namedtuple('Statement', 'sql params')


class UserSyncError(RdsIamError):
    """The desired users cannot be applied; nothing was written (str(exc) names the objects and the fix)."""


class UserPlan:
    """Statements to run in order, the per-user results they produce, and diff before/after per user."""

    def __init__(self):
        self.statements = []
        self.users = []
        self.before = {}
        self.after = {}
        self.warnings = []

    def add(self, sql, params=None):
        self.statements.append(Statement(sql, params))

    @property
    def changed(self):
        return bool(self.statements)


def new_user_result(name, host=None, exists=False):
    """The per-user entry of the module's `users` return value, with nothing done yet; exists: the user is there now."""
    result = dict(name=name, exists=exists, created=False, converted=False, roles_granted=[], roles_revoked=[],
                  privileges_granted={}, privileges_revoked={}, locked=False, unlocked=False, dropped=False)
    if host is not None:
        result['host'] = host
    return result


def _dedupe(items):
    return list(dict.fromkeys(items or []))


def desired_users(params):
    """The `users` list, or the single top-level user, as dicts with every USER_OPTION_SPEC key set.

    Raises UserSyncError for an empty request or a user listed twice, which would make the result ambiguous.
    """
    if params.get('users'):
        entries = params['users']
    elif params.get('name'):
        entries = [dict((key, params.get(key)) for key in USER_OPTION_SPEC)]
    else:
        raise UserSyncError('no user given: set users (a list) or name (one user)')
    users, seen = [], set()
    for entry in entries:
        user = dict((key, entry.get(key)) for key in USER_OPTION_SPEC)
        user['state'] = user['state'] or 'present'
        user['roles'] = _dedupe(user['roles'])
        if user['connection_limit'] is not None and user['connection_limit'] < -1:
            raise UserSyncError("user %s: connection_limit %d is not valid: use -1 (no limit) or a number >= 0"
                                % (ascii(user['name']), user['connection_limit']))
        # No host is MySQL's '%', and account hosts compare case-insensitively: 'a'@'H' and 'a'@'h' are one account.
        key = (user['name'], (user['host'] or '%').lower())
        if key in seen:
            raise UserSyncError('user %s is listed twice: list each user once' % ascii(user['name']))
        seen.add(key)
        users.append(user)
    return users


def wanted_users(params):
    """{dialect: desired users} from users_by_dialect, or {None: desired users} from users or name (any engine)."""
    by_dialect = params.get('users_by_dialect')
    if by_dialect is None:
        return {None: desired_users(params)}
    if not isinstance(by_dialect, dict) or not by_dialect:
        raise UserSyncError('users_by_dialect is %r: give a dict of user lists keyed by postgres, mysql or mariadb' % (by_dialect,))
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    validator = ArgumentSpecValidator(dict(users=dict(type='list', elements='dict', required=True, options=USER_OPTION_SPEC)))
    wanted = {}
    for dialect, users in by_dialect.items():
        if dialect not in DIALECTS:
            raise UserSyncError("users_by_dialect has a key '%s': use postgres, mysql or mariadb" % dialect)
        if not users:
            raise UserSyncError('users_by_dialect.%s is empty: list at least one user, or leave %s out' % (dialect, dialect))
        checked = validator.validate(dict(users=users))
        if checked.error_messages:
            raise UserSyncError('users_by_dialect.%s: %s' % (dialect, '; '.join(checked.error_messages)))
        wanted[dialect] = desired_users(checked.validated_parameters)
    return wanted


def users_for_engine(wanted, engine, server):
    """The desired users for a server of this engine (from wanted_users), or UserSyncError naming the missing list."""
    if None in wanted:
        return wanted[None]
    if engine not in wanted:
        raise UserSyncError('users_by_dialect has no list for %s, the engine of %s: add users_by_dialect.%s'
                            % (engine, server, engine))
    return wanted[engine]


def render_statement(cursor, statement):
    """The statement as the server receives it (values bound by the driver), for `queries`."""
    if statement.params is None:
        return statement.sql
    text = cursor.mogrify(statement.sql, statement.params)
    return text.decode('utf-8') if isinstance(text, bytes) else text


def execute_plan(cursor, plan, check_mode, driver_error, failure_note, tolerate=None):
    """Run the plan's statements (none in check mode); returns the rendered statements either way.

    A statement the server refuses raises UserSyncError naming it, its position and failure_note
    (what became of the statements before it); tolerate(statement, exc) may let it pass instead.
    """
    queries = [render_statement(cursor, statement) for statement in plan.statements]
    if check_mode:
        return queries
    for index, statement in enumerate(plan.statements):
        try:
            cursor.execute(statement.sql, statement.params)
        except driver_error as exc:
            if tolerate and tolerate(statement, exc):
                continue
            raise UserSyncError('statement %d of %d failed: %s; the server said: %s. %s'
                                % (index + 1, len(plan.statements), queries[index], str(exc).strip(), failure_note(index))) from None
    return queries


def module_result(plan, queries, engine, diff):
    """The module's return value for an executed (or check-mode) plan."""
    result = dict(changed=plan.changed, engine=engine, users=plan.users, queries=queries)
    if diff:
        result['diff'] = dict(before=plan.before, after=plan.after)
    return result
