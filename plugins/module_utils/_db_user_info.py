# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Every login account of one database server, read for the audit: whether it is an IAM user (and
# through which roles on PostgreSQL), whether it also has a password, is locked, expired, must use
# TLS, is an administrator, and its roles and privileges in the forms rds_iam_db_user uses. At most
# two catalog queries per server whatever the number of accounts, so a fleet audit costs the same
# per target; the queries only read, and turning their rows into accounts is done by pure functions
# the unit tests feed with rows. Password hashes are reduced to "has one" as they are read.

import json

from ansible_collections.rdsiam.auth.plugins.module_utils._identifiers import check_mysql_user, check_pg_name
from ansible_collections.rdsiam.auth.plugins.module_utils._mysql_privileges import GLOBAL, GRANT_OPTION, Level, level_text
from ansible_collections.rdsiam.auth.plugins.module_utils._pg_iam_inheritance import IAM_ROLE, Membership, MembershipGraph
from ansible_collections.rdsiam.auth.plugins.module_utils._pg_users import CONVEYS

ACCOUNT_KEYS = ('name', 'host', 'can_login', 'iam', 'iam_via', 'auth_plugin', 'has_password', 'locked', 'expired',
                'require_ssl', 'admin', 'roles', 'privileges')
IAM_PLUGIN = 'AWSAuthenticationPlugin'
# RDS's administrators' role: its members can do what the master can.
PG_ADMIN_ROLE = 'rds_superuser'
# Authentication plugins no one can log in through.
NO_LOGIN_PLUGINS = frozenset(('mysql_no_login',))
# Plugins whose authentication string is a password hash ('' means no password is needed at all).
PASSWORD_PLUGINS = frozenset(('', 'mysql_native_password', 'caching_sha2_password', 'sha256_password', 'mysql_old_password',
                              'ed25519', 'parsec'))
# Global privileges that make an account an administrator (ALL PRIVILEGES ON *.* includes SUPER on both servers).
MYSQL_ADMIN_PRIVILEGES = frozenset(('SUPER', GRANT_OPTION))

# ---- PostgreSQL ----

# The server's version, whether this login may read password hashes (the RDS master may not), and every membership edge
# with whether it passes its role on (see _pg_iam_inheritance): one query.
PG_SERVER_QUERY = (
    "SELECT pg_catalog.current_setting('server_version_num')::int, "
    "pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT'), "
    'COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_array(g.rolname, m.rolname, ' + CONVEYS + ')) '
    'FROM pg_catalog.pg_auth_members a JOIN pg_catalog.pg_roles g ON g.oid = a.roleid '
    "JOIN pg_catalog.pg_roles m ON m.oid = a.member), '[]')"
)
# The roles; pg_authid is named only when the first query said it may be read, since naming it otherwise fails.
_PG_ROLES_QUERY = ('SELECT r.rolname, r.rolcanlogin, r.rolsuper, COALESCE(r.rolvaliduntil < pg_catalog.now(), false), %s '
                   'FROM pg_catalog.pg_roles r%s ORDER BY r.rolname')
_PG_HAS_PASSWORD = '(SELECT p.rolpassword IS NOT NULL FROM pg_catalog.pg_authid p WHERE p.oid = r.oid)'
_PG_UNKNOWN_PASSWORD = 'NULL::boolean'


def pg_roles_query(authid_readable, names=None):
    """The second PostgreSQL query: every role (or the named ones, bound as one array parameter)."""
    return _PG_ROLES_QUERY % (_PG_HAS_PASSWORD if authid_readable else _PG_UNKNOWN_PASSWORD,
                              ' WHERE r.rolname = ANY(%s)' if names is not None else '')


def pg_accounts(memberships, rows):
    """The account dicts from the membership edges ([role, member, conveys]) and the role rows
    (name, can login, superuser, expired, has password or None).

    Accounts are the roles that can log in and the IAM users that cannot (locked). A role without LOGIN that holds
    rds_iam and passes it on to members of its own is the group they inherit it through, not a user: left out, as are
    group roles outside rds_iam.
    """
    graph = MembershipGraph(Membership(*edge) for edge in memberships)
    groups = set(role for held in graph.holds.values() for role in held)
    accounts = []
    for name, can_login, superuser, expired, has_password in rows:
        chain = graph.chain_to(name) if name != IAM_ROLE else None
        if not can_login and (chain is None or name in groups):
            continue
        accounts.append(dict(
            name=name, host=None, can_login=bool(can_login), iam=chain is not None, iam_via=chain[1:] if chain else [],
            auth_plugin=None, has_password=None if has_password is None else bool(has_password), locked=not can_login,
            expired=bool(expired), require_ssl=None,
            admin=bool(superuser) or (name != PG_ADMIN_ROLE and graph.chain_to(name, PG_ADMIN_ROLE) is not None),
            roles=sorted(role for role in graph.holds.get(name, ()) if role != IAM_ROLE), privileges={}))
    return sorted_accounts(accounts)


def read_pg_accounts(cursor, names=None):
    """(accounts, queries) from a PostgreSQL server in two queries."""
    cursor.execute(PG_SERVER_QUERY)
    _version_num, authid_readable, memberships = cursor.fetchone()
    if isinstance(memberships, str):
        memberships = json.loads(memberships)
    roles_query = pg_roles_query(authid_readable, names)
    cursor.execute(roles_query, (list(names),) if names is not None else None)
    return pg_accounts(memberships, cursor.fetchall()), [PG_SERVER_QUERY, roles_query]


# ---- MySQL and MariaDB ----

def _in_list(count):
    return '(%s)' % ', '.join(['%s'] * count)


def mysql_accounts_query(dialect, names=None):
    """The first MySQL/MariaDB query: every account that is not a role (or those of the named users, bound).

    MariaDB keeps an account's lock, and the other methods of IDENTIFIED VIA a OR b, in the JSON of mysql.global_priv;
    its mysql.user view shows the last method only. MySQL roles are accounts too: locked without credentials, or granted.
    The password hash itself is never selected, only whether there is one.
    """
    columns = "u.User, u.Host, u.plugin, u.authentication_string <> '', u.password_expired, u.ssl_type, "
    if dialect == 'mariadb':
        columns += "IF(JSON_VALUE(g.Priv, '$.account_locked') IN ('1', 'true'), 'Y', 'N'), JSON_EXTRACT(g.Priv, '$.auth_or')"
        source = 'mysql.user u LEFT JOIN mysql.global_priv g ON g.User = u.User AND g.Host = u.Host'
        where = "u.is_role <> 'Y'"
    else:
        columns += 'u.account_locked, NULL'
        source = 'mysql.user u'
        where = ("NOT (u.account_locked = 'Y' AND u.authentication_string = '') AND NOT EXISTS "
                 '(SELECT 1 FROM mysql.role_edges e WHERE e.FROM_USER = u.User AND e.FROM_HOST = u.Host)')
    if names is not None:
        where += ' AND u.User IN %s' % _in_list(len(names))
    return 'SELECT %s FROM %s WHERE %s ORDER BY u.User, u.Host' % (columns, source, where)


def _text(value):
    return value.decode('utf-8') if isinstance(value, bytes) else (value if value is not None else '')


def _utf8(column):
    # The grant tables and information_schema differ in collation, which a UNION refuses to mix.
    return 'CONVERT(%s USING utf8mb4)' % column


def mysql_grants_query(dialect, names=None, grantees=None):
    """The second MySQL/MariaDB query: role grants and privileges, as rows (kind, a, b, c, d, e).

    ('role', user, host, role, NULL, NULL) and ('privilege', grantee, schema or NULL, table or NULL, privilege,
    grantable). With names, the role grants of those users and the privileges of the grantees ('user'@'host') the
    first query found are bound; without, every row is read.
    """
    if dialect == 'mariadb':
        roles = ('User', 'Host', 'Role', 'mysql.roles_mapping')
    else:
        roles = ('TO_USER', 'TO_HOST', 'FROM_USER', 'mysql.role_edges')
    parts = ["SELECT 'role', %s, %s, %s, NULL, NULL FROM %s" % (_utf8(roles[0]), _utf8(roles[1]), _utf8(roles[2]), roles[3])]
    if names is not None:
        parts[0] += ' WHERE %s IN %s' % (roles[0], _in_list(len(names)))
    where = ' WHERE GRANTEE IN %s' % _in_list(len(grantees)) if names is not None else ''
    for schema, table, view in (('NULL', 'NULL', 'USER_PRIVILEGES'), ('TABLE_SCHEMA', 'NULL', 'SCHEMA_PRIVILEGES'),
                                ('TABLE_SCHEMA', 'TABLE_NAME', 'TABLE_PRIVILEGES')):
        parts.append("SELECT 'privilege', %s, %s, %s, %s, %s FROM information_schema.%s%s" % (
            _utf8('GRANTEE'), _utf8(schema) if schema != 'NULL' else 'NULL', _utf8(table) if table != 'NULL' else 'NULL',
            _utf8('PRIVILEGE_TYPE'), _utf8('IS_GRANTABLE'), view, where))
    return ' UNION ALL '.join(parts)


def grantee(user, host):
    """An account as information_schema writes it (no escaping)."""
    return "'%s'@'%s'" % (user, host)


def auth_methods(plugin, has_string, auth_or):
    """[(plugin, has an authentication string)] of an account in the order the server tries them.

    auth_or: MariaDB's list of methods (JSON text or list) for IDENTIFIED VIA a OR b, where {} stands for the one the
    mysql.user view shows; None for a single method.
    """
    main = (_text(plugin), bool(has_string))
    if isinstance(auth_or, (str, bytes)):
        auth_or = json.loads(_text(auth_or))
    if not auth_or:
        return [main]
    return [(item.get('plugin') or '', bool(item.get('authentication_string'))) if item.get('plugin') else main
            for item in auth_or]


def mysql_account(row):
    """The account dict for one row of the first query, roles and privileges still empty."""
    user, host, plugin, has_string, expired, ssl_type, locked, auth_or = row
    methods = auth_methods(plugin, has_string, auth_or)
    plugins = [name for name, _has in methods]
    return dict(
        name=_text(user), host=_text(host), can_login=any(name not in NO_LOGIN_PLUGINS for name in plugins),
        iam=IAM_PLUGIN in plugins, iam_via=[IAM_PLUGIN] if IAM_PLUGIN in plugins else [], auth_plugin=plugins[0],
        has_password=any(name in PASSWORD_PLUGINS and has for name, has in methods), locked=_text(locked) == 'Y',
        expired=_text(expired) == 'Y', require_ssl=_text(ssl_type) != '', admin=False, roles=[], privileges={})


def mysql_accounts(account_rows, grant_rows):
    """The account dicts from the rows of both queries."""
    accounts = dict(((account['name'], account['host']), account) for account in map(mysql_account, account_rows))
    by_grantee = dict((grantee(*key), key) for key in accounts)
    held = {}
    for kind, first, second, third, privilege, grantable in grant_rows:
        if _text(kind) == 'role':
            account = accounts.get((_text(first), _text(second)))
            if account is not None and _text(third) not in account['roles']:
                account['roles'].append(_text(third))
            continue
        key = by_grantee.get(_text(first))  # information_schema may match GRANTEE case-insensitively; this is exact
        if key is None:
            continue
        level = Level(_text(second) if second is not None else None, _text(third) if third is not None else None)
        privileges = held.setdefault(key, {}).setdefault(level, set())
        if _text(privilege) != 'USAGE':  # USAGE means "no privilege"
            privileges.add(_text(privilege))
        if _text(grantable) == 'YES':
            privileges.add(GRANT_OPTION)
    for key, account in accounts.items():
        levels = held.get(key, {})
        account['roles'].sort()
        account['admin'] = bool(levels.get(GLOBAL, set()) & MYSQL_ADMIN_PRIVILEGES)
        account['privileges'] = dict((level_text(level), sorted(privileges)) for level, privileges in levels.items() if privileges)
    return sorted_accounts(accounts.values())


def read_mysql_accounts(cursor, dialect, names=None):
    """(accounts, queries) from a MySQL or MariaDB server in at most two queries (one when no account matched)."""
    accounts_query = mysql_accounts_query(dialect, names)
    cursor.execute(accounts_query, list(names) if names is not None else None)
    account_rows = cursor.fetchall()
    if not account_rows:
        return [], [accounts_query]
    grantees = sorted(set(grantee(_text(row[0]), _text(row[1])) for row in account_rows))
    grants_query = mysql_grants_query(dialect, names, grantees)
    cursor.execute(grants_query, list(names) + grantees * 3 if names is not None else None)
    return mysql_accounts(account_rows, cursor.fetchall()), [accounts_query, grants_query]


# ---- both ----

def sorted_accounts(accounts):
    return sorted(accounts, key=lambda account: (account['name'], account['host'] or ''))


def checked_names(names, dialect):
    """The distinct names, sorted, each one a name the server could hold (IdentifierError otherwise); None for all."""
    if names is None:
        return None
    for name in names:
        if dialect == 'postgres':
            check_pg_name(name, 'user')
        else:
            check_mysql_user(name, dialect)
    return sorted(set(names))


def read_accounts(conn, dialect, names=None):
    """(accounts, queries): every login account of the server conn is connected to (or of the named users), see
    ACCOUNT_KEYS, sorted by name and host, and the catalog queries that read them (at most two, with %s for the bound
    names). Only reads; on PostgreSQL the transaction is rolled back afterwards."""
    names = checked_names(names, dialect)
    if names == []:
        return [], []
    cursor = conn.cursor()
    try:
        if dialect == 'postgres':
            return read_pg_accounts(cursor, names)
        return read_mysql_accounts(cursor, dialect, names)
    finally:
        cursor.close()
        if dialect == 'postgres':
            conn.rollback()
