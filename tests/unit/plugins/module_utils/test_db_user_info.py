"""Login accounts for the audit: rows to account dicts, the shape of the (at most two) catalog queries, name checks."""
import json

import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils._db_user_info import (
    ACCOUNT_KEYS,
    PG_SERVER_QUERY,
    auth_methods,
    mysql_accounts,
    mysql_accounts_query,
    mysql_grants_query,
    pg_accounts,
    pg_roles_query,
    read_accounts,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._identifiers import IdentifierError


class FakeCursor:
    """Answers each execute with the next canned result and records (sql, params)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.executed = []
        self.rows = None
        self.closed = False

    def execute(self, sql, params=None):
        self.executed.append((sql, params))
        self.rows = self.answers.pop(0)

    def fetchone(self):
        return self.rows[0]

    def fetchall(self):
        return list(self.rows)

    def close(self):
        self.closed = True


class FakeConn:
    def __init__(self, answers):
        self.cursor_ = FakeCursor(answers)
        self.rolled_back = False
        self.committed = False

    def cursor(self):
        return self.cursor_

    def rollback(self):
        self.rolled_back = True

    def commit(self):
        self.committed = True


def pg_account(name, **fields):
    account = dict(name=name, host=None, can_login=True, iam=False, iam_via=[], auth_plugin=None, has_password=None,
                   locked=False, expired=False, require_ssl=None, admin=False, roles=[], privileges={})
    account.update(fields)
    return account


def my_account(name, host='%', **fields):
    account = dict(name=name, host=host, can_login=True, iam=False, iam_via=[], auth_plugin='mysql_native_password',
                   has_password=True, locked=False, expired=False, require_ssl=False, admin=False, roles=[], privileges={})
    account.update(fields)
    return account


# ---- PostgreSQL ----

EDGES = [
    ['rds_iam', 'alice', True],            # direct IAM user
    ['rds_iam', 'app_iam_group', True],    # a group holding rds_iam for its members
    ['app_iam_group', 'bob', True],        # bob inherits it
    ['app_ro', 'bob', True],
    ['rds_iam', 'carol', True],            # locked IAM user (NOLOGIN)
    ['rds_superuser', 'postgres', True],
    ['rds_iam', 'rds_superuser', False],   # from 16: ADMIN only, conveys nothing
    ['rds_iam', 'dave', False],            # ADMIN-only membership: not an IAM user
    ['app_ro', 'erin', True],
]
ROWS = [
    # name, can login, superuser, expired, has password
    ('alice', True, False, False, None),
    ('app_iam_group', False, False, False, None),
    ('app_ro', False, False, False, None),
    ('bob', True, False, False, None),
    ('carol', False, False, False, None),
    ('dave', True, False, False, None),
    ('erin', True, False, True, None),
    ('postgres', True, False, False, None),
    ('rds_iam', False, False, False, None),
    ('rds_superuser', False, False, False, None),
    ('rdsadmin', True, True, False, None),
]


def test_pg_accounts_are_login_roles_and_locked_iam_users_with_their_chains():
    assert pg_accounts(EDGES, ROWS) == [
        pg_account('alice', iam=True, iam_via=['rds_iam']),
        pg_account('bob', iam=True, iam_via=['app_iam_group', 'rds_iam'], roles=['app_iam_group', 'app_ro']),
        pg_account('carol', can_login=False, locked=True, iam=True, iam_via=['rds_iam']),
        pg_account('dave'),
        pg_account('erin', expired=True, roles=['app_ro']),
        pg_account('postgres', admin=True, roles=['rds_superuser']),
        pg_account('rdsadmin', admin=True),
    ]


def test_pg_every_account_has_exactly_the_contract_keys():
    for account in pg_accounts(EDGES, ROWS):
        assert tuple(sorted(account)) == tuple(sorted(ACCOUNT_KEYS))


def test_pg_has_password_is_a_bool_when_readable_and_none_when_not():
    rows = [('alice', True, False, False, False), ('legacy', True, False, False, True), ('other', True, False, False, None)]
    accounts = pg_accounts([['rds_iam', 'alice', True]], rows)
    assert [(account['name'], account['has_password']) for account in accounts] == [
        ('alice', False), ('legacy', True), ('other', None)]


def test_pg_a_long_chain_is_followed_and_the_shortest_one_named():
    edges = [['rds_iam', 'g3', True], ['g3', 'g2', True], ['g2', 'g1', True], ['g1', 'u', True], ['g3', 'u', True]]
    rows = [('u', True, False, False, None)]
    assert pg_accounts(edges, rows)[0]['iam_via'] == ['g3', 'rds_iam']
    rows = [('deep', True, False, False, None)]
    assert pg_accounts(edges + [['g1', 'deep', True]], rows)[0]['iam_via'] == ['g1', 'g2', 'g3', 'rds_iam']


def test_pg_an_admin_only_membership_in_the_chain_breaks_it():
    edges = [['rds_iam', 'grp', False], ['grp', 'u', True]]
    assert pg_accounts(edges, [('u', True, False, False, None)])[0]['iam'] is False


def test_pg_membership_cycles_do_not_loop():
    edges = [['a', 'b', True], ['b', 'a', True], ['a', 'u', True]]
    assert pg_accounts(edges, [('u', True, False, False, None)])[0]['iam_via'] == []


def test_pg_admin_through_rds_superuser_chain():
    edges = [['rds_superuser', 'ops', True], ['ops', 'u', True]]
    assert pg_accounts(edges, [('u', True, False, False, None)])[0]['admin'] is True


def test_pg_query_shape_reads_pg_authid_only_when_readable_and_binds_names():
    assert 'pg_authid' not in pg_roles_query(False) and 'NULL::boolean' in pg_roles_query(False)
    assert 'pg_catalog.pg_authid p WHERE p.oid = r.oid' in pg_roles_query(True)
    assert 'WHERE' not in pg_roles_query(False)
    assert pg_roles_query(False, ['x']).endswith('WHERE r.rolname = ANY(%s) ORDER BY r.rolname')
    assert "has_table_privilege('pg_catalog.pg_authid', 'SELECT')" in PG_SERVER_QUERY
    for query in (PG_SERVER_QUERY, pg_roles_query(True), pg_roles_query(False, ['x'])):
        assert query.lstrip().upper().startswith('SELECT') and ';' not in query


def test_pg_read_accounts_uses_two_queries_binds_names_and_rolls_back():
    conn = FakeConn([[(160004, False, json.dumps(EDGES))], ROWS])
    accounts, queries = read_accounts(conn, 'postgres', ['bob', "o'hara\"x", 'bob'])
    executed = conn.cursor_.executed
    assert queries == [PG_SERVER_QUERY, pg_roles_query(False, ['x'])] == [sql for sql, _params in executed]
    assert executed[0][1] is None and executed[1][1] == (['bob', "o'hara\"x"],)
    assert "o'hara" not in ''.join(queries)
    assert conn.rolled_back and not conn.committed and conn.cursor_.closed
    assert [account['name'] for account in accounts][:2] == ['alice', 'bob']


def test_pg_read_accounts_reads_passwords_when_pg_authid_is_readable():
    conn = FakeConn([[(150007, True, [])], [('legacy', True, False, False, True)]])
    accounts, queries = read_accounts(conn, 'postgres')
    assert queries[1] == pg_roles_query(True) and conn.cursor_.executed[1][1] is None
    assert accounts == [pg_account('legacy', has_password=True)]


def test_names_the_server_cannot_hold_fail_before_any_query():
    conn = FakeConn([])
    with pytest.raises(IdentifierError, match='63 bytes'):
        read_accounts(conn, 'postgres', ['x' * 64])
    with pytest.raises(IdentifierError, match='NUL'):
        read_accounts(conn, 'mariadb', ['a\x00b'])
    with pytest.raises(IdentifierError, match='32'):
        read_accounts(conn, 'mysql', ['m' * 33])
    assert conn.cursor_.executed == []


def test_an_empty_names_list_reads_nothing():
    conn = FakeConn([])
    assert read_accounts(conn, 'mariadb', []) == ([], [])
    assert conn.cursor_.executed == []


# ---- MySQL and MariaDB ----

# user, host, plugin, has authentication string, password expired, ssl type, locked, MariaDB auth_or
MARIADB_ROWS = [
    ('admin', '%', 'mysql_native_password', 1, 'N', '', 'N', None),
    ('app', '10.0.%', 'AWSAuthenticationPlugin', 1, 'N', '', 'N', None),
    ('both', '%', 'mysql_native_password', 1, 'N', 'ANY', 'N',
     '[{"plugin": "AWSAuthenticationPlugin", "authentication_string": "RDS"}, {}]'),
    ('gone', '%', 'AWSAuthenticationPlugin', 1, 'N', 'ANY', 'Y', None),
    ('iam', '%', b'AWSAuthenticationPlugin', 1, 'N', b'ANY', 'N', None),
    ('nopw', 'localhost', '', 0, 'Y', '', 'N', None),
    ('nologin', '%', 'mysql_no_login', 0, 'N', '', 'N', None),
]
GRANT_ROWS = [
    ('role', 'iam', '%', 'reader', None, None),
    ('role', 'iam', '%', 'auditor', None, None),
    ('role', 'admin', '%', 'reader', None, None),
    ('role', 'someone_else', '%', 'reader', None, None),
    ('privilege', "'admin'@'%'", None, None, 'SELECT', 'YES'),
    ('privilege', "'admin'@'%'", None, None, 'CREATE USER', 'YES'),
    ('privilege', "'iam'@'%'", None, None, 'USAGE', 'NO'),
    ('privilege', "'iam'@'%'", 'shop', None, 'SELECT', 'NO'),
    ('privilege', "'iam'@'%'", 'shop', 'orders', 'UPDATE', 'NO'),
    ('privilege', "'iam'@'%'", 'shop', 'orders', 'SELECT', 'NO'),
    ('privilege', "'iam'@'%'", 'my\\_db', None, 'INSERT', 'NO'),
    ('privilege', "'app'@'10.0.%'", None, None, 'SUPER', 'NO'),
    ('privilege', "'IAM'@'%'", None, None, 'SELECT', 'NO'),  # a case-insensitive match of another grantee
]


def test_mariadb_accounts_with_roles_privileges_and_every_iam_form():
    assert mysql_accounts(MARIADB_ROWS, GRANT_ROWS) == [
        my_account('admin', admin=True, roles=['reader'], privileges={'*.*': ['CREATE USER', 'GRANT OPTION', 'SELECT']}),
        my_account('app', '10.0.%', iam=True, iam_via=['AWSAuthenticationPlugin'], auth_plugin='AWSAuthenticationPlugin',
                   has_password=False, admin=True, privileges={'*.*': ['SUPER']}),
        my_account('both', iam=True, iam_via=['AWSAuthenticationPlugin'], auth_plugin='AWSAuthenticationPlugin',
                   has_password=True, require_ssl=True),
        my_account('gone', iam=True, iam_via=['AWSAuthenticationPlugin'], auth_plugin='AWSAuthenticationPlugin',
                   has_password=False, locked=True, require_ssl=True),
        my_account('iam', iam=True, iam_via=['AWSAuthenticationPlugin'], auth_plugin='AWSAuthenticationPlugin',
                   has_password=False, require_ssl=True, roles=['auditor', 'reader'],
                   privileges={'shop.*': ['SELECT'], 'shop.orders': ['SELECT', 'UPDATE'], 'my_db.*': ['INSERT']}),
        my_account('nologin', can_login=False, auth_plugin='mysql_no_login', has_password=False),
        my_account('nopw', 'localhost', auth_plugin='', has_password=False, expired=True),
    ]


def test_mysql_every_account_has_exactly_the_contract_keys():
    for account in mysql_accounts(MARIADB_ROWS, GRANT_ROWS):
        assert tuple(sorted(account)) == tuple(sorted(ACCOUNT_KEYS))


def test_auth_methods_in_the_order_mariadb_tries_them_without_keeping_the_hash():
    auth_or = [{'plugin': 'ed25519', 'authentication_string': 'hash'}, {},
               {'plugin': 'AWSAuthenticationPlugin', 'authentication_string': 'RDS'}]
    methods = auth_methods('mysql_native_password', True, auth_or)
    assert methods == [('ed25519', True), ('mysql_native_password', True), ('AWSAuthenticationPlugin', True)]
    assert auth_methods('AWSAuthenticationPlugin', 1, None) == [('AWSAuthenticationPlugin', True)]
    assert auth_methods('ed25519', 0, '[{"plugin": "ed25519", "authentication_string": ""}]') == [('ed25519', False)]


def test_an_iam_account_with_an_empty_password_alternative_has_no_password():
    row = ('x', '%', 'AWSAuthenticationPlugin', 1, 'N', '', 'N',
           '[{}, {"plugin": "mysql_native_password", "authentication_string": ""}]')
    account = mysql_accounts([row], [])[0]
    assert (account['iam'], account['has_password'], account['auth_plugin']) == (True, False, 'AWSAuthenticationPlugin')


def test_mariadb_query_shape():
    accounts = mysql_accounts_query('mariadb')
    assert 'mysql.global_priv' in accounts and "u.is_role <> 'Y'" in accounts and 'u.User IN' not in accounts
    assert 'u.authentication_string <> ' in accounts and 'u.authentication_string,' not in accounts
    assert mysql_accounts_query('mariadb', ['a', 'b']).endswith("u.User IN (%s, %s) ORDER BY u.User, u.Host")
    grants = mysql_grants_query('mariadb')
    assert 'mysql.roles_mapping' in grants and 'WHERE' not in grants
    named = mysql_grants_query('mariadb', ['a'], ["'a'@'%'", "'a'@'h'"])
    assert named.count('GRANTEE IN (%s, %s)') == 3 and 'FROM mysql.roles_mapping WHERE User IN (%s)' in named
    for view in ('USER_PRIVILEGES', 'SCHEMA_PRIVILEGES', 'TABLE_PRIVILEGES'):
        assert 'information_schema.%s' % view in grants


def test_mysql_query_shape_leaves_roles_out_and_reads_role_edges():
    accounts = mysql_accounts_query('mysql')
    assert 'global_priv' not in accounts and 'u.account_locked' in accounts
    assert "NOT (u.account_locked = 'Y' AND u.authentication_string = '')" in accounts
    assert 'mysql.role_edges e WHERE e.FROM_USER = u.User' in accounts
    grants = mysql_grants_query('mysql', ['a'], ["'a'@'%'"])
    assert 'FROM mysql.role_edges WHERE TO_USER IN (%s)' in grants and 'roles_mapping' not in grants


def test_mysql_read_accounts_two_queries_with_bound_names_and_grantees():
    rows = [('bob', '%', 'AWSAuthenticationPlugin', 1, 'N', 'ANY', 'N', None),
            ('bob', 'db.local', 'caching_sha2_password', 1, 'Y', '', 'Y', None)]
    grants = [('role', 'bob', '%', 'app_ro', None, None), ('privilege', "'bob'@'db.local'", 'shop', None, 'SELECT', 'NO')]
    conn = FakeConn([rows, grants])
    accounts, queries = read_accounts(conn, 'mysql', ['bob'])
    executed = conn.cursor_.executed
    expected = [mysql_accounts_query('mysql', ['bob']), mysql_grants_query('mysql', ['bob'], ['x', 'y'])]
    assert queries == [sql for sql, _params in executed] == expected
    assert executed[0][1] == ['bob'] and executed[1][1] == ['bob'] + ["'bob'@'%'", "'bob'@'db.local'"] * 3
    assert accounts == [
        my_account('bob', iam=True, iam_via=['AWSAuthenticationPlugin'], auth_plugin='AWSAuthenticationPlugin',
                   has_password=False, require_ssl=True, roles=['app_ro']),
        my_account('bob', 'db.local', auth_plugin='caching_sha2_password', locked=True, expired=True,
                   privileges={'shop.*': ['SELECT']}),
    ]
    assert not conn.rolled_back and not conn.committed


def test_mysql_no_account_found_means_one_query():
    conn = FakeConn([[]])
    assert read_accounts(conn, 'mariadb', ['ghost']) == ([], [mysql_accounts_query('mariadb', ['ghost'])])
    assert len(conn.cursor_.executed) == 1


def test_every_query_only_reads():
    queries = [PG_SERVER_QUERY, pg_roles_query(True), pg_roles_query(False, ['x'])]
    for dialect in ('mysql', 'mariadb'):
        queries += [mysql_accounts_query(dialect), mysql_accounts_query(dialect, ['x']), mysql_grants_query(dialect),
                    mysql_grants_query(dialect, ['x'], ['y'])]
    for query in queries:
        words = set(query.upper().replace('(', ' ').replace(',', ' ').split())
        assert query.startswith('SELECT ') and ';' not in query
        assert not words & {'INSERT', 'UPDATE', 'DELETE', 'GRANT', 'REVOKE', 'ALTER', 'CREATE', 'DROP', 'SET', 'FOR'}, query
