"""Helpers for the rds_iam_db_user integration tests: run the module, read the catalog independently.

Catalog reads go through plain psycopg2 / PyMySQL over the master login, never through the
collection, so they check the module rather than repeat it. (No tests live here.)
"""
import contextlib
import uuid

import psycopg2
import pymysql
from psycopg2 import sql

PG_TARGETS = ["sbx-postgres", "sbx-aurora-pg"]
MYSQL_TARGETS = ["sbx-mariadb", "sbx-mysql"]


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def login_args(sandbox, identifier, **overrides):
    """Connection options for the master login with its password (the secret path has its own test)."""
    target = sandbox.target(identifier)
    args = {"login_host": target["login_host"], "login_port": target["login_port"], "endpoint": target["endpoint"],
            "login_user": target["master_username"], "login_password": target["master_password"], "ca_cert": sandbox.ca_cert}
    args.update(overrides)
    return args


def db_user_runner(sandbox, module_runner):
    """run(identifier, args, check=, diff=): the module as the master of that target, with args on top (None drops one)."""

    def run(identifier, args, **kwargs):
        options = login_args(sandbox, identifier)
        options.update(args)
        options = {key: value for key, value in options.items() if value is not None}
        return module_runner("rds_iam_db_user", options, env=sandbox.aws_env(), **kwargs)

    return run


def assert_no_secret(result, *secrets):
    text = repr(result)
    for secret in secrets:
        assert secret not in text


# --- PostgreSQL catalog ---

@contextlib.contextmanager
def pg_master(sandbox, identifier, dbname="postgres"):
    target = sandbox.target(identifier)
    conn = psycopg2.connect(host=target["login_host"], port=target["login_port"], user=target["master_username"],
                            password=target["master_password"], dbname=dbname, sslmode="require")
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def pg_execute(sandbox, identifier, statement, params=None, dbname="postgres"):
    with pg_master(sandbox, identifier, dbname) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else None


def pg_create_roles(sandbox, identifier, *names):
    with pg_master(sandbox, identifier) as conn, conn.cursor() as cur:
        for name in names:
            cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))


def pg_drop_roles(sandbox, identifier, *names):
    with pg_master(sandbox, identifier) as conn, conn.cursor() as cur:
        for name in names:
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def pg_role(sandbox, identifier, name):
    """{login, connection_limit, member_of} for a role, or None."""
    rows = pg_execute(sandbox, identifier,
                      "SELECT r.rolcanlogin, r.rolconnlimit, ARRAY(SELECT g.rolname FROM pg_auth_members m "
                      "JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1) FROM pg_roles r WHERE r.rolname = %s",
                      (name,))
    if not rows:
        return None
    login, limit, member_of = rows[0]
    return {"login": login, "connection_limit": limit, "member_of": sorted(member_of)}


def pg_all_roles(sandbox, identifier):
    """Every role with its memberships: a snapshot to prove nothing else changed."""
    rows = pg_execute(sandbox, identifier,
                      "SELECT r.rolname, r.rolcanlogin, ARRAY(SELECT m.roleid::regrole::text FROM pg_auth_members m "
                      "WHERE m.member = r.oid ORDER BY 1) FROM pg_roles r ORDER BY 1")
    return {name: (login, tuple(member_of)) for name, login, member_of in rows}


# --- MySQL / MariaDB catalog ---

@contextlib.contextmanager
def my_master(sandbox, identifier):
    target = sandbox.target(identifier)
    conn = pymysql.connect(host=target["login_host"], port=target["login_port"], user=target["master_username"],
                           password=target["master_password"], autocommit=True, charset="utf8mb4")
    try:
        yield conn
    finally:
        conn.close()


def my_execute(sandbox, identifier, statement, params=None):
    with my_master(sandbox, identifier) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else None


def my_account(sandbox, identifier, user, host="%"):
    """{plugin, ssl_type, max_user_connections, default_role} of an account, or None."""
    rows = my_execute(sandbox, identifier, "SELECT plugin, ssl_type, max_user_connections, default_role FROM mysql.user "
                      "WHERE User = %s AND Host = %s", (user, host))
    if not rows:
        return None
    plugin, ssl_type, limit, default_role = rows[0]
    return {"plugin": plugin, "ssl_type": ssl_type, "max_user_connections": int(limit), "default_role": default_role}


def my_create_user(sandbox, identifier, user, host="%"):
    """SHOW CREATE USER: how the server itself describes an account (it ends in ACCOUNT LOCK when locked)."""
    return my_execute(sandbox, identifier, "SHOW CREATE USER %s@%s", (user, host))[0][0]


def my_grants(sandbox, identifier, user, host="%"):
    return sorted(row[0] for row in my_execute(sandbox, identifier, "SHOW GRANTS FOR %s@%s", (user, host)))


def my_all_accounts(sandbox, identifier):
    """Every account with its grants: a snapshot to prove nothing else changed."""
    with my_master(sandbox, identifier) as conn, conn.cursor() as cur:
        cur.execute("SELECT User, Host FROM mysql.user ORDER BY 1, 2")
        accounts = cur.fetchall()
        snapshot = {}
        for user, host in accounts:
            if host == "":
                continue  # roles
            try:
                cur.execute("SHOW GRANTS FOR %s@%s", (user, host))
                snapshot[(user, host)] = sorted(row[0] for row in cur.fetchall())
            except pymysql.err.OperationalError as exc:  # accounts without any grant row, such as root@<hostname>
                snapshot[(user, host)] = exc.args[0]
        return snapshot


def my_drop_accounts(sandbox, identifier, *accounts):
    with my_master(sandbox, identifier) as conn, conn.cursor() as cur:
        for user, host in accounts:
            cur.execute("DROP USER IF EXISTS %s@%s", (user, host))


def my_drop_roles(sandbox, identifier, *roles):
    with my_master(sandbox, identifier) as conn, conn.cursor() as cur:
        for role in roles:
            cur.execute("DROP ROLE IF EXISTS %s" % ("`%s`" % role.replace("`", "``")))
