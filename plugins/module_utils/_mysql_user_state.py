# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Reading what rds_iam_db_user needs from a MySQL or MariaDB server: the listed accounts, their roles,
# default roles and privileges, the databases and tables the privileges name, and live sessions. A fixed
# number of queries over the grant tables and information_schema (not one SHOW GRANTS per user), so the
# cost does not grow with the number of users; _mysql_users plans from what is read here.

from ansible_collections.rdsiam.auth.plugins.module_utils._db_users import UserSyncError
from ansible_collections.rdsiam.auth.plugins.module_utils._identifiers import unescape_mysql_db_pattern
from ansible_collections.rdsiam.auth.plugins.module_utils._mysql_privileges import GLOBAL, GRANT_OPTION, Level, parse_privileges

DEFAULT_HOST = '%'


def account_host(user):
    """The host part as the server stores it: both servers keep account hosts in lower case ('DB.Example' is 'db.example')."""
    return (user['host'] or DEFAULT_HOST).lower()


def _in_list(count):
    return '(%s)' % ', '.join(['%s'] * count)


def _grantee(user, host):
    # information_schema writes grantees as 'user'@'host' without escaping.
    return "'%s'@'%s'" % (user, host)


def read_state(cursor, dialect, users):
    """Everything the planner needs about the listed accounts, their roles and objects, in at most seven queries."""
    cursor.execute('SELECT CURRENT_USER()')
    admin = cursor.fetchone()[0].rsplit('@', 1)[0]
    names = sorted(set([user['name'] for user in users] + [role for user in users for role in user['roles']]))
    accounts = _read_accounts(cursor, dialect, names)
    keys = [(user['name'], account_host(user)) for user in users]
    state = dict(admin=admin, accounts=accounts, role_grants=_read_role_grants(cursor, dialect, keys),
                 privileges=_read_privileges(cursor, keys), objects=_read_objects(cursor, users, dialect))
    state['default_roles'] = _read_default_roles(cursor, dialect, keys, accounts)
    return state


def _read_accounts(cursor, dialect, names):
    # MariaDB keeps roles and the single default role in mysql.user; MySQL has separate tables for both.
    # MySQL roles are accounts; CREATE ROLE leaves them locked and without credentials, which is how to tell them apart.
    # MariaDB's mysql.user view has no lock column: the lock is a key of the account's JSON in mysql.global_priv.
    if dialect == 'mariadb':
        extra = "u.is_role, u.default_role, IF(JSON_VALUE(g.Priv, '$.account_locked') IN ('1', 'true'), 'Y', 'N')"
        source = 'mysql.user u LEFT JOIN mysql.global_priv g ON g.User = u.User AND g.Host = u.Host'
    else:
        extra = "IF(u.account_locked = 'Y' AND u.authentication_string = '', 'Y', 'N'), '', u.account_locked"
        source = 'mysql.user u'
    cursor.execute('SELECT u.User, u.Host, u.plugin, u.ssl_type, u.max_user_connections, %s FROM %s WHERE u.User IN %s'
                   % (extra, source, _in_list(len(names))), names)
    accounts = {}
    for user, host, plugin, ssl_type, max_conn, is_role, default_role, locked in cursor.fetchall():
        accounts[(_text(user), _text(host))] = dict(plugin=_text(plugin), ssl_type=_text(ssl_type), connection_limit=int(max_conn),
                                                    is_role=_text(is_role) == 'Y', default_role=_text(default_role),
                                                    locked=_text(locked) == 'Y')
    return accounts


def _text(value):
    return value.decode('utf-8') if isinstance(value, bytes) else (value if value is not None else '')


def _read_role_grants(cursor, dialect, keys):
    users = sorted(set(user for user, _host in keys))
    if dialect == 'mariadb':
        cursor.execute('SELECT User, Host, Role FROM mysql.roles_mapping WHERE User IN %s' % _in_list(len(users)), users)
    else:
        cursor.execute('SELECT TO_USER, TO_HOST, FROM_USER FROM mysql.role_edges WHERE TO_USER IN %s' % _in_list(len(users)), users)
    grants = {}
    for user, host, role in cursor.fetchall():
        grants.setdefault((_text(user), _text(host)), set()).add(_text(role))
    return grants


def _read_default_roles(cursor, dialect, keys, accounts):
    """{account: set of default role names}."""
    if dialect == 'mariadb':
        return dict((key, {account['default_role']}) for key, account in accounts.items() if account['default_role'])
    users = sorted(set(user for user, _host in keys))
    cursor.execute('SELECT USER, HOST, DEFAULT_ROLE_USER FROM mysql.default_roles WHERE USER IN %s' % _in_list(len(users)), users)
    defaults = {}
    for user, host, role in cursor.fetchall():
        defaults.setdefault((_text(user), _text(host)), set()).add(_text(role))
    return defaults


def _read_privileges(cursor, keys):
    grantees = sorted(set(_grantee(user, host) for user, host in keys))
    where = 'WHERE GRANTEE IN %s' % _in_list(len(grantees))
    cursor.execute(
        "SELECT GRANTEE, NULL, NULL, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES %s "
        "UNION ALL SELECT GRANTEE, TABLE_SCHEMA, NULL, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES %s "
        "UNION ALL SELECT GRANTEE, TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.TABLE_PRIVILEGES %s"
        % (where, where, where), grantees * 3)
    by_grantee = dict((_grantee(user, host), (user, host)) for user, host in keys)
    privileges = {}
    for grantee, db, table, privilege, grantable in cursor.fetchall():
        key = by_grantee.get(_text(grantee))  # the IN match may be case-insensitive; this one is exact
        if key is None:
            continue
        level = Level(_text(db) if db is not None else None, _text(table) if table is not None else None)
        held = privileges.setdefault(key, {}).setdefault(level, set())
        if _text(privilege) != 'USAGE':
            held.add(_text(privilege))
        if _text(grantable) == 'YES':
            held.add(GRANT_OPTION)
    return privileges


def _wanted_objects(users, dialect):
    databases, tables = set(), set()
    for user in users:
        if user['state'] != 'present':
            continue
        try:
            levels = parse_privileges(user['privileges'], dialect)
        except UserSyncError:
            continue  # reported by the planner, with the user's name
        for level in levels:
            if level == GLOBAL:
                continue
            if level.table is None:
                databases.add(unescape_mysql_db_pattern(level.db))
            else:
                databases.add(level.db)
                tables.add((level.db, level.table))
    return sorted(databases), sorted(tables)


def _read_objects(cursor, users, dialect):
    """The databases and tables named in privileges that exist: {('db', None), ('db', 'table')}."""
    databases, tables = _wanted_objects(users, dialect)
    if not databases:
        return set()
    sql = 'SELECT SCHEMA_NAME, NULL FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN %s' % _in_list(len(databases))
    params = list(databases)
    if tables:
        sql += (' UNION ALL SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE (TABLE_SCHEMA, TABLE_NAME) IN (%s)'
                % ', '.join(['(%s, %s)'] * len(tables)))
        params.extend(part for pair in tables for part in pair)
    cursor.execute(sql, params)
    return set((_text(db), _text(table) if table is not None else None) for db, table in cursor.fetchall())


def names_to_terminate(users, accounts):
    """(user names whose sessions terminate_sessions may end, {name: accounts of that name that stay}).

    A session only shows its user name, so the sessions of a name are ended only when every account of that name is
    dropped or locked by this call.
    """
    ending = set((user['name'], account_host(user)) for user in users
                 if user['state'] in ('absent', 'locked') and (user['name'], account_host(user)) in accounts)
    names = set(name for name, _host in ending)
    shared = {}
    for (name, host), account in sorted(accounts.items()):
        if name in names and (name, host) not in ending and not account['is_role']:
            shared.setdefault(name, []).append('%s@%s' % (ascii(name), ascii(host)))
    return names - set(shared), shared


def read_sessions(cursor, names):
    """{user name: [connection ids]} of live sessions, for terminate_sessions."""
    if not names:
        return {}
    cursor.execute('SELECT ID, USER FROM information_schema.PROCESSLIST WHERE USER IN %s AND ID <> CONNECTION_ID()'
                   % _in_list(len(names)), sorted(names))
    sessions = {}
    for conn_id, user in cursor.fetchall():
        if _text(user) in names:
            sessions.setdefault(_text(user), []).append(int(conn_id))
    return sessions
