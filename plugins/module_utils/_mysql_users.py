# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# IAM database users on MySQL and MariaDB: plan the statements that make every listed account match,
# from the state _mysql_user_state reads, and run them. The privilege grammar (community.mysql's "db.table:PRIV1,PRIV2/db2.*:ALL" form) is in
# _mysql_privileges. DDL commits implicitly here, so everything is validated before the first write.

from ansible_collections.rdsiam.auth.plugins.module_utils._common import import_library
from ansible_collections.rdsiam.auth.plugins.module_utils._db_users import UserPlan, UserSyncError, execute_plan, new_user_result
from ansible_collections.rdsiam.auth.plugins.module_utils._identifiers import (
    IdentifierError,
    check_mysql_host,
    check_mysql_user,
    unescape_mysql_db_pattern,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._mysql_privileges import (
    GLOBAL,
    GRANT_OPTION,
    level_text,
    on_clause,
    parse_privileges,
    privilege_changes,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._mysql_user_state import (
    DEFAULT_HOST,
    account_host,
    names_to_terminate,
    read_sessions,
    read_state,
)

IAM_PLUGIN = 'AWSAuthenticationPlugin'
# Accounts RDS (or the server) keeps for itself: never created, converted or dropped here.
RESERVED_USERS = frozenset((
    'rdsadmin', 'rdsrepladmin', 'rdsproxyadmin', 'rds_superuser_role', 'mysql.sys', 'mysql.session', 'mysql.infoschema',
    'mariadb.sys', 'root',
))


# ---- planning ----

# Every account statement costs the server a rewrite of its privilege tables (about 3 ms each on MariaDB), so
# statements that differ only in the account are sent once for up to BATCH_SIZE accounts. Each user's statements
# follow the phase order below, so running all of one phase before the next keeps every user's order.
BATCH_SIZE = 100
PHASE_ACCOUNT, PHASE_ROLES, PHASE_DEFAULT_ROLE, PHASE_PRIVILEGES, PHASE_DROP, PHASE_KILL = range(6)
ACCOUNT_SQL = '%s@%s'


class BatchedPlan(UserPlan):
    """A UserPlan whose account statements are merged across users: GRANT x TO a, b, c instead of three GRANTs."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def add_for_account(self, phase, head, account, tail='', fixed=(), batch=True, item=ACCOUNT_SQL):
        """head + item (the account) + tail, fixed params first; batch=False keeps it one account per statement."""
        key = (phase, head, tail, tuple(fixed), item) if batch else (phase, head, tail, tuple(fixed), item, tuple(account))
        self.ops.append((key, list(account)))

    def add_plain(self, phase, sql):
        self.ops.append(((phase, sql, None, None, None, len(self.ops)), None))

    def finish(self):
        groups = {}
        for key, account in self.ops:
            groups.setdefault(key, []).append(account)
        for key in sorted(groups, key=lambda entry: entry[0]):  # stable: first-seen order within a phase
            head, tail, fixed, item = key[1:5]
            if tail is None:
                self.add(head)
                continue
            accounts = groups[key]
            for start in range(0, len(accounts), BATCH_SIZE):
                chunk = accounts[start:start + BATCH_SIZE]
                self.add(head + ', '.join([item] * len(chunk)) + tail, list(fixed) + [part for account in chunk for part in account])


def _account_params(user, host):
    return [user, host]


def _role_sql(dialect, role):
    """A role in GRANT/REVOKE/SET DEFAULT ROLE: MariaDB roles have no host, MySQL roles are 'role'@'%'."""
    return ('%s', [role]) if dialect == 'mariadb' else ('%s@%s', [role, DEFAULT_HOST])


def _role_exists(state, dialect, role):
    account = state['accounts'].get((role, '' if dialect == 'mariadb' else DEFAULT_HOST))
    return bool(account and (account['is_role'] or dialect == 'mysql'))


def _check_names(user, dialect):
    check_mysql_user(user['name'], dialect)
    check_mysql_host(account_host(user))
    for role in user['roles']:
        check_mysql_user(role, dialect, 'role')


def check_names(users, dialect):
    """Refuse names the server cannot store before they reach a query (an emoji breaks even a SELECT on mysql.user)."""
    problems = []
    for user in users:
        try:
            _check_names(user, dialect)
        except IdentifierError as exc:
            problems.append('user %s@%s: %s' % (ascii(user['name']), ascii(account_host(user)), exc))
    if problems:
        raise UserSyncError('; '.join(problems) + '. Nothing was changed.')


def _missing_objects(levels, objects):
    missing = []
    for level in levels:
        if level == GLOBAL:
            continue
        if level.table is None:
            name = unescape_mysql_db_pattern(level.db)
            if (name, None) not in objects:
                missing.append('database %s' % ascii(name))
        elif (level.db, None) not in objects:
            missing.append('database %s' % ascii(level.db))
        elif (level.db, level.table) not in objects:
            missing.append('table %s' % ascii('%s.%s' % (level.db, level.table)))
    return missing


def validate_users(users, dialect, state, options):
    """({account: parsed privileges}, problems) for the whole request, before anything is written."""
    problems, to_convert, parsed = [], [], {}
    for user in users:
        name, host = user['name'], account_host(user)
        label = '%s@%s' % (ascii(name), ascii(host))
        try:
            _check_names(user, dialect)
            parsed[(name, host)] = parse_privileges(user['privileges'], dialect) if user['state'] == 'present' else {}
        except (IdentifierError, UserSyncError) as exc:
            problems.append('user %s: %s' % (label, exc))
            continue
        if user['connection_limit'] is not None and user['connection_limit'] < 0:
            problems.append('user %s: connection_limit must be 0 (no limit) or more on MySQL/MariaDB' % label)
        if name == state['admin'] or name in RESERVED_USERS:
            reason = 'the user this module is logged in as' if name == state['admin'] else 'reserved by RDS or the server'
            problems.append('user %s is %s: it is never converted to IAM, locked or dropped; remove it from the list' % (label, reason))
            continue
        current = state['accounts'].get((name, host))
        same_name_role = state['accounts'].get((name, ''))  # MariaDB roles live in mysql.user with an empty host
        if (current and current['is_role']) or (same_name_role and same_name_role['is_role']):
            problems.append('user %s is a role, not a user: remove it from the list' % label)
            continue
        if user['state'] != 'present':
            continue
        if current and current['plugin'] != IAM_PLUGIN and not options['convert_password_users']:
            to_convert.append(label)
        missing = ['role %s' % ascii(role) for role in user['roles'] if not _role_exists(state, dialect, role)]
        missing += _missing_objects(parsed[(name, host)], state['objects'])
        if missing:
            problems.append('user %s: %s do(es) not exist: create them first or correct the names' % (label, ', '.join(missing)))
    if to_convert:
        problems.append('user(s) %s already log in with another authentication plugin (a password); switching them to IAM breaks '
                        'whatever uses that password today: set convert_password_users to true to convert them' % ', '.join(to_convert))
    return parsed, problems


def _plan_account(plan, user, host, current, result):
    account = _account_params(user['name'], host)
    limit = user['connection_limit']
    limit_clause = '' if limit is None else ' WITH MAX_USER_CONNECTIONS %d' % limit
    if current is None:
        # CREATE USER a IDENTIFIED WITH ... AS 'RDS', b IDENTIFIED WITH ... AS 'RDS' REQUIRE SSL: the auth clause is per account.
        plan.add_for_account(PHASE_ACCOUNT, 'CREATE USER ', account, " REQUIRE SSL%s" % limit_clause,
                             item="%%s@%%s IDENTIFIED WITH %s AS 'RDS'" % IAM_PLUGIN)
        result['created'] = True
        return
    # present lifts a lock (state=locked, or ACCOUNT LOCK by hand); the lock option comes last in ALTER USER.
    unlock = ' ACCOUNT UNLOCK' if current['locked'] else ''
    result['unlocked'] = current['locked']
    if current['plugin'] != IAM_PLUGIN:
        plan.add_for_account(PHASE_ACCOUNT, 'ALTER USER ', account,
                             " IDENTIFIED WITH %s AS 'RDS' REQUIRE SSL%s%s" % (IAM_PLUGIN, limit_clause, unlock), batch=False)
        result['converted'] = True
        return
    changes = []
    if current['ssl_type'] == '':  # ANY, X509 and SPECIFIED all require TLS already
        changes.append('REQUIRE SSL')
    if limit is not None and limit != current['connection_limit']:
        changes.append(limit_clause.strip())
    if unlock:
        changes.append(unlock.strip())
    if changes:
        plan.add_for_account(PHASE_ACCOUNT, 'ALTER USER ', account, ' ' + ' '.join(changes), batch=False)


def _plan_roles(plan, dialect, user, host, state, options, result):
    key = (user['name'], host)
    account = _account_params(*key)
    held = state['role_grants'].get(key, set())
    for role in user['roles']:
        if role not in held:
            role_sql, role_params = _role_sql(dialect, role)
            plan.add_for_account(PHASE_ROLES, 'GRANT %s TO ' % role_sql, account, fixed=role_params)
            result['roles_granted'].append(role)
    kept = set(user['roles'])
    if options['grant_mode'] == 'exact':
        for role in sorted(held - kept):
            role_sql, role_params = _role_sql(dialect, role)
            plan.add_for_account(PHASE_ROLES, 'REVOKE %s FROM ' % role_sql, account, fixed=role_params)
            result['roles_revoked'].append(role)
    else:
        kept |= held
    _plan_default_roles(plan, dialect, user, account, state['default_roles'].get(key, set()), kept, options)


def _plan_default_roles(plan, dialect, user, account, defaults, roles_after, options):
    """Roles only act once activated: make the listed roles the default ones (MariaDB allows one: the first listed)."""
    if user['roles']:
        wanted = {user['roles'][0]} if dialect == 'mariadb' else roles_after
    elif options['grant_mode'] == 'exact':
        wanted = set()
    else:
        return
    if wanted == defaults:
        return
    # MySQL takes a list of accounts here; MariaDB one account per SET DEFAULT ROLE.
    batch = dialect == 'mysql'
    if not wanted:
        plan.add_for_account(PHASE_DEFAULT_ROLE, 'SET DEFAULT ROLE NONE %s ' % ('FOR' if dialect == 'mariadb' else 'TO'), account, batch=batch)
    elif dialect == 'mariadb':
        plan.add_for_account(PHASE_DEFAULT_ROLE, 'SET DEFAULT ROLE %s FOR ', account, fixed=[user['roles'][0]], batch=False)
    else:
        plan.add_for_account(PHASE_DEFAULT_ROLE, 'SET DEFAULT ROLE ALL TO ', account)


def _plan_privileges(plan, key, wanted, held, options, result):
    account = _account_params(*key)
    for level in sorted(set(wanted) | set(held), key=lambda item: (item.db or '', item.table or '')):
        want, have = wanted.get(level), held.get(level, set())
        if want is None:
            if options['grant_mode'] == 'exact' and have:
                _revoke(plan, level, have, account, result)
            continue
        grant, with_grant, extra = privilege_changes(level, want, have, options['grant_mode'] == 'exact')
        if grant or with_grant:
            plan.add_for_account(PHASE_PRIVILEGES, 'GRANT %s ON %s TO ' % (', '.join(grant or ['USAGE']), on_clause(level)), account,
                                 ' WITH GRANT OPTION' if with_grant else '')
            result['privileges_granted'][level_text(level)] = grant + ([GRANT_OPTION] if with_grant else [])
        if extra:
            _revoke(plan, level, extra, account, result)


def _revoke(plan, level, privileges, account, result):
    plain = sorted(privileges - {GRANT_OPTION})
    if plain:
        plan.add_for_account(PHASE_PRIVILEGES, 'REVOKE %s ON %s FROM ' % (', '.join(plain), on_clause(level)), account)
    if GRANT_OPTION in privileges:
        plan.add_for_account(PHASE_PRIVILEGES, 'REVOKE GRANT OPTION ON %s FROM ' % on_clause(level), account)
    result['privileges_revoked'][level_text(level)] = sorted(privileges)


def _view(current, roles, defaults, privileges):
    if current is None:
        return dict(exists=False)
    return dict(exists=True, iam=current['plugin'] == IAM_PLUGIN, require_ssl=current['ssl_type'] != '', locked=current['locked'],
                connection_limit=current['connection_limit'], roles=sorted(roles), default_roles=sorted(defaults),
                privileges=dict((level_text(level), sorted(privs)) for level, privs in sorted(privileges.items(), key=str) if privs))


def plan_mysql_user_changes(users, dialect, state, options, sessions=None):
    """A UserPlan for MySQL/MariaDB; raises UserSyncError with every problem before anything is written."""
    parsed, problems = validate_users(users, dialect, state, options)
    if problems:
        raise UserSyncError('; '.join(problems) + '. Nothing was changed.')
    plan = BatchedPlan()
    for user in users:
        host = account_host(user)
        key = (user['name'], host)
        current = state['accounts'].get(key)
        result = new_user_result(user['name'], host, exists=user['state'] == 'present' or (user['state'] == 'locked' and current is not None))
        before = len(plan.ops)
        view_key = '%s@%s' % key
        plan.before[view_key] = _view(current, state['role_grants'].get(key, ()), state['default_roles'].get(key, ()),
                                      state['privileges'].get(key, {}))
        if user['state'] == 'present':
            _plan_account(plan, user, host, current, result)
            _plan_roles(plan, dialect, user, host, state, options, result)
            _plan_privileges(plan, key, parsed[key], state['privileges'].get(key, {}), options, result)
            plan.after[view_key] = _expected_view(plan.before[view_key], user, result, dialect, options)
        elif current is None:
            plan.after[view_key] = dict(exists=False)  # nothing to drop or lock: `exists` false says so
        else:
            # DROP USER or ACCOUNT LOCK first: the account cannot log in again between KILL and the change.
            if user['state'] == 'absent':
                plan.add_for_account(PHASE_DROP, 'DROP USER ', _account_params(*key))
                result['dropped'] = True
                plan.after[view_key] = dict(exists=False)
            else:
                if not current['locked']:
                    plan.add_for_account(PHASE_ACCOUNT, 'ALTER USER ', _account_params(*key), ' ACCOUNT LOCK')
                    result['locked'] = True
                plan.after[view_key] = dict(plan.before[view_key], locked=True)
            for conn_id in (sessions or {}).get(user['name'], []) if options['terminate_sessions'] else []:
                plan.add_plain(PHASE_KILL, 'KILL CONNECTION %d' % conn_id)
        result['changed'] = len(plan.ops) > before
        plan.users.append(result)
    plan.finish()
    return plan


def _expected_view(before, user, result, dialect, options):
    after = dict(before) if before.get('exists') else dict(exists=True, roles=[], default_roles=[], privileges={}, connection_limit=0)
    after.update(iam=True, require_ssl=True, locked=False)
    if user['connection_limit'] is not None:
        after['connection_limit'] = user['connection_limit']
    roles = set(after['roles']) - set(result['roles_revoked']) | set(result['roles_granted'])
    after['roles'] = sorted(roles)
    if user['roles']:
        after['default_roles'] = [user['roles'][0]] if dialect == 'mariadb' else sorted(roles)
    elif options['grant_mode'] == 'exact':
        after['default_roles'] = []
    privileges = dict((level, set(privs)) for level, privs in after['privileges'].items())
    for level, privs in result['privileges_revoked'].items():
        privileges[level] = privileges.get(level, set()) - set(privs)
    for level, privs in result['privileges_granted'].items():
        privileges[level] = privileges.get(level, set()) | set(privs)
    after['privileges'] = dict((level, sorted(privs)) for level, privs in sorted(privileges.items()) if privs)
    return after


# ---- running ----

_ER_NO_SUCH_THREAD = 1094


def _session_gone(statement, exc):
    # A session may end on its own between reading the process list and KILL.
    return statement.sql.startswith('KILL ') and exc.args and exc.args[0] == _ER_NO_SUCH_THREAD


def sync_mysql_users(conn, dialect, users, options, check_mode):
    """Read (a fixed number of queries), validate and plan everything, then run the plan; returns (plan, queries)."""
    pymysql = import_library('pymysql', 'PyMySQL', reason='to manage MySQL and MariaDB users')
    check_names(users, dialect)
    try:
        with conn.cursor() as cursor:
            state = read_state(cursor, dialect, users)
            sessions, shared = {}, {}
            if options['terminate_sessions']:
                names, shared = names_to_terminate(users, state['accounts'])
                sessions = read_sessions(cursor, names)
            plan = plan_mysql_user_changes(users, dialect, state, options, sessions)
            for name, kept in sorted(shared.items()):
                plan.warnings.append('the sessions of %s were not ended: the server does not say which account a session logged in '
                                     'as, and account(s) %s with that name stay; end them with KILL CONNECTION'
                                     % (ascii(name), ', '.join(kept)))

            def note(index):
                if not index:
                    return 'Nothing was changed.'
                return ('MySQL/MariaDB commit account statements at once, so the %d statement(s) before it stay applied; '
                        'fix the cause and run again to finish' % index)

            queries = execute_plan(cursor, plan, check_mode, pymysql.err.MySQLError, note, tolerate=_session_gone)
        conn.commit()
    except pymysql.err.MySQLError as exc:
        raise UserSyncError('reading MySQL/MariaDB accounts failed: %s. Nothing was changed.' % str(exc).strip()) from None
    return plan, queries
