"""The SQL-only PostgreSQL 15-18 servers: real servers of the right major, set up with RDS's role
model, and the PostgreSQL 16 membership rules the collection has to live with, reproduced.

These servers are shared by the session (pg_majors), so every role a test makes has a unique name.
"""
import uuid

import psycopg2
import pytest
from psycopg2 import sql

from sandbox.pytest_plugin import PG_MAJORS

MAJORS_16_UP = [major for major in PG_MAJORS if major >= 16]


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def query(conn, statement, params=None):
    with conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else None


def one(conn, statement, params=None):
    return query(conn, statement, params)[0][0]


def give_objects(server, role):
    """role owns a table in public and a schema (with a table) of its own in database app, made by rdsadmin."""
    conn = server.superuser_connection("app")
    try:
        name = sql.Identifier(role)
        query(conn, sql.SQL("CREATE TABLE public.{} (id int)").format(name))
        query(conn, sql.SQL("ALTER TABLE public.{} OWNER TO {}").format(name, name))
        query(conn, sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(name, name))
        query(conn, sql.SQL("CREATE TABLE {}.t (id int)").format(name))
        query(conn, sql.SQL("ALTER TABLE {}.t OWNER TO {}").format(name, name))
    finally:
        conn.close()


def owned_by(server, role):
    conn = server.superuser_connection("app")
    try:
        return one(conn, "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = %s",
                   (role,)) + one(conn, "SELECT count(*) FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner "
                                        "WHERE r.rolname = %s", (role,))
    finally:
        conn.close()


def borrow_reassign_and_drop(master, name, grant, inspect=None):
    """In one transaction as the master: grant (itself the role), REASSIGN OWNED, DROP OWNED, DROP ROLE, commit.

    inspect (statement, params) runs right after the grant; its rows are returned.
    """
    rows = None
    master.autocommit = False
    try:
        query(master, grant)
        if inspect:
            rows = query(master, *inspect)
        query(master, sql.SQL("REASSIGN OWNED BY {} TO postgres").format(name))
        query(master, sql.SQL("DROP OWNED BY {}").format(name))
        query(master, sql.SQL("DROP ROLE {}").format(name))
        master.commit()
    finally:
        master.rollback()
        master.autocommit = True
    return rows


@pytest.fixture(params=PG_MAJORS, ids=lambda major: f"pg{major}")
def server(request, pg_majors):
    return pg_majors.get(request.param)


@pytest.fixture
def master(server):
    conn = server.master_connection("app")
    yield conn
    conn.close()


def test_server_is_the_requested_major(server):
    conn = server.superuser_connection()
    try:
        assert one(conn, "SELECT current_setting('server_version_num')::int") // 10000 == server.major
        assert one(conn, "SHOW server_version") == server.version
    finally:
        conn.close()


def test_master_is_an_rds_style_master(server, master):
    rolsuper, createrole, createdb = query(master, "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                                                   "WHERE rolname = current_user")[0]
    assert (rolsuper, createrole, createdb) == (False, True, True)
    assert one(master, "SELECT pg_has_role(current_user, 'rds_superuser', 'USAGE')") is True
    assert one(master, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'") == server.master_user
    assert query(master, "SELECT rolname FROM pg_roles WHERE rolsuper") == [("rdsadmin",)]


@pytest.mark.parametrize("server", MAJORS_16_UP, indirect=True, ids=lambda major: f"pg{major}")
def test_rds_superuser_administers_rds_roles_without_holding_them(server, master):
    rows = query(master, "SELECT pg_get_userbyid(roleid), admin_option, inherit_option, set_option FROM pg_auth_members "
                         "WHERE member = 'rds_superuser'::regrole AND pg_get_userbyid(roleid) IN ('rds_iam', 'rds_password', "
                         "'rds_replication') ORDER BY 1")
    assert rows == [(role, True, False, False) for role in ("rds_iam", "rds_password", "rds_replication")]
    assert one(master, "SELECT pg_has_role('postgres', 'rds_iam', 'USAGE')") is False
    # pg_hba's +rds_iam would match the master: why these servers have no rds_iam routing.
    assert one(master, "SELECT pg_has_role('postgres', 'rds_iam', 'MEMBER')") is True


def test_pg15_gives_rds_superuser_no_grant_of_rds_iam(pg_majors):
    conn = pg_majors.get(15).superuser_connection()
    try:
        assert one(conn, "SELECT count(*) FROM pg_auth_members WHERE roleid = 'rds_iam'::regrole") == 0
        assert one(conn, "SELECT pg_has_role('postgres', 'rds_iam', 'MEMBER')") is False
    finally:
        conn.close()


def test_master_logs_in_over_tls_verifying_the_endpoint_name(server, master):
    assert one(master, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
    assert server.db_login_args() == {"login_host": "127.0.0.1", "login_port": server.port, "endpoint": server.endpoint,
                                      "login_user": "postgres", "login_password": server.master_password,
                                      "ca_cert": server.ca_cert}


def test_certificate_is_not_valid_for_another_name(server):
    with pytest.raises(psycopg2.OperationalError, match="does not match host name"):
        psycopg2.connect(host="pg99.sql.sandbox.invalid", hostaddr=server.host, port=server.port, user=server.master_user,
                         password=server.master_password, dbname="postgres", sslmode="verify-full",
                         sslrootcert=server.ca_cert)


def test_plaintext_tcp_is_refused(server):
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        psycopg2.connect(host=server.host, port=server.port, user=server.master_user, password=server.master_password,
                         dbname="postgres", sslmode="disable")


def test_master_creates_a_login_role_and_grants_it_rds_iam(server, master):
    role = unique("iam")
    query(master, sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    query(master, sql.SQL("GRANT rds_iam TO {}").format(sql.Identifier(role)))
    assert one(master, "SELECT pg_has_role(%s, 'rds_iam', 'USAGE')", (role,)) is True
    query(master, sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# REASSIGN OWNED / DROP OWNED need the privileges of the old owner, which the master does not have
# by creating a role. On 15 CREATEROLE lets it grant itself any role; from 16 only roles it
# administers (those it created), and it must ask for INHERIT (the default) to gain privileges.

def test_master_cannot_reassign_objects_of_a_role_it_is_not_a_member_of(server, master):
    role = unique("alice")
    query(master, sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    query(master, sql.SQL("GRANT rds_iam TO {}").format(sql.Identifier(role)))
    give_objects(server, role)
    expected = "permission denied to reassign objects"
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match=expected) as raised:
        query(master, sql.SQL("REASSIGN OWNED BY {} TO postgres").format(sql.Identifier(role)))
    detail = raised.value.diag.message_detail
    if server.major >= 16:
        assert one(master, "SELECT pg_has_role('postgres', %s, 'MEMBER')", (role,)) is True  # ADMIN only
        assert detail == f'Only roles with privileges of role "{role}" may reassign objects owned by it.'
    else:
        assert one(master, "SELECT pg_has_role('postgres', %s, 'MEMBER')", (role,)) is False
        assert detail is None
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied to drop objects"):
        query(master, sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    assert owned_by(server, role) == 3


def test_master_grants_itself_a_role_it_created_then_reassigns_and_drops_it(server, master):
    role = unique("alice")
    name = sql.Identifier(role)
    query(master, sql.SQL("CREATE ROLE {} LOGIN").format(name))
    give_objects(server, role)
    borrow_reassign_and_drop(master, name, sql.SQL("GRANT {} TO postgres").format(name))
    assert one(master, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)) == 0
    assert one(master, "SELECT count(*) FROM pg_class WHERE relname = %s AND relowner = 'postgres'::regrole", (role,)) == 1


@pytest.mark.parametrize("server", MAJORS_16_UP, indirect=True, ids=lambda major: f"pg{major}")
def test_inherit_without_set_is_enough_to_reassign_on_16_and_later(server, master):
    role = unique("alice")
    name = sql.Identifier(role)
    query(master, sql.SQL("CREATE ROLE {} LOGIN").format(name))
    query(master, sql.SQL("GRANT rds_iam TO {}").format(name))
    give_objects(server, role)
    rows = borrow_reassign_and_drop(
        master, name, sql.SQL("GRANT {} TO postgres WITH INHERIT TRUE, SET FALSE").format(name),
        ("SELECT pg_get_userbyid(grantor), admin_option, inherit_option, set_option FROM pg_auth_members "
         "WHERE roleid = %s::regrole AND member = 'postgres'::regrole ORDER BY 1", (role,)))
    assert rows == [("postgres", False, True, False), ("rdsadmin", True, False, False)]
    assert one(master, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)) == 0


def test_grant_of_a_role_the_master_did_not_create(server, master):
    """15: CREATEROLE grants any role; 16+: only with ADMIN on it, which the master lacks here."""
    role = unique("dave")
    su = server.superuser_connection()
    try:
        query(su, sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        statement = sql.SQL("GRANT {} TO postgres").format(sql.Identifier(role))
        if server.major >= 16:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege, match=f'permission denied to grant role "{role}"'):
                query(master, statement)
        else:
            query(master, statement)
            assert one(master, "SELECT pg_has_role('postgres', %s, 'USAGE')", (role,)) is True
        query(su, sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))  # 16+: neither may the master drop it
    finally:
        su.close()


@pytest.mark.parametrize("server", MAJORS_16_UP, indirect=True, ids=lambda major: f"pg{major}")
def test_revoking_a_self_grant_leaves_the_creators_admin_membership(server, master):
    role = unique("bob")
    name = sql.Identifier(role)
    members = ("SELECT pg_get_userbyid(grantor), admin_option, inherit_option, set_option FROM pg_auth_members "
               "WHERE roleid = %s::regrole AND member = 'postgres'::regrole ORDER BY 1")
    query(master, sql.SQL("CREATE ROLE {}").format(name))
    created = query(master, members, (role,))
    assert created == [("rdsadmin", True, False, False)]
    query(master, sql.SQL("GRANT {} TO postgres WITH INHERIT TRUE").format(name))
    assert query(master, members, (role,)) == [("postgres", False, True, True), *created]
    query(master, sql.SQL("REVOKE {} FROM postgres").format(name))
    assert query(master, members, (role,)) == created
    query(master, sql.SQL("DROP ROLE {}").format(name))


def test_sql_only_pg_hba_has_no_rds_iam_routing():
    from sandbox.db.postgres import pg_hba

    assert pg_hba(True, iam_auth=False).splitlines() == [
        "local all rdsadmin trust", "hostssl all all 127.0.0.1/32 scram-sha-256", "hostnossl all all 0.0.0.0/0 reject"]


def password_login(server, user, password):
    """current_user of a password login over verified TLS, or the server's refusal as an OperationalError."""
    conn = psycopg2.connect(host=server.endpoint, hostaddr=server.host, port=server.port, user=user, password=password,
                            dbname="postgres", sslmode="verify-full", sslrootcert=server.ca_cert)
    try:
        return one(conn, "SELECT current_user")
    finally:
        conn.close()


def test_from_17_a_password_login_that_holds_rds_iam_is_refused_as_on_rds(server, master):
    team, carol = unique("team"), unique("carol")
    query(master, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(team)))
    query(master, sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'carol-pw-1' IN ROLE {}").format(sql.Identifier(carol), sql.Identifier(team)))
    try:
        assert password_login(server, carol, "carol-pw-1") == carol
        query(master, sql.SQL("GRANT rds_iam TO {}").format(sql.Identifier(team)))
        if server.major >= 17:
            with pytest.raises(psycopg2.OperationalError, match="holds rds_iam"):
                password_login(server, carol, "carol-pw-1")
        else:  # no login event triggers before 17: nothing here can refuse it
            assert password_login(server, carol, "carol-pw-1") == carol
        # The master's own ADMIN-only memberships (of team, and rds_superuser's of rds_iam) convey nothing.
        assert password_login(server, server.master_user, server.master_password) == server.master_user
    finally:
        query(master, sql.SQL("DROP ROLE {}, {}").format(sql.Identifier(carol), sql.Identifier(team)))
