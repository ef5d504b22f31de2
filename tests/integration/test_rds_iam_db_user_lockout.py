"""rds_iam_db_user never forces a password login onto IAM by inheritance (real PostgreSQL 15 with token routing).

On the sandbox's PostgreSQL 15, pg_hba sends every role that holds rds_iam to the token check, as RDS
does: a role that inherits rds_iam through any chain can no longer log in with its password. Each
test builds a chain as the master, asks the module to convert a role in it, and then proves with a
real password login that the master (or the other login) still gets in. The first test shows that
the same grant, made behind the module's back, really does lock the master out.
"""
import contextlib

import psycopg2
import pytest
from psycopg2 import sql

from tests.integration.support.db_user import db_user_runner, pg_execute, pg_role, unique
from sandbox import lifecycle

IDENTIFIER = "sbx-postgres"


@pytest.fixture
def run_db_user(sandbox, module_runner):
    return db_user_runner(sandbox, module_runner)


@pytest.fixture
def roles(sandbox):
    """make(prefix, login=False, password=None, member_of=()): a role created by the master; all dropped afterwards."""
    created = []

    def make(prefix, login=False, password=None, member_of=()):
        name = unique(prefix)
        clause = sql.SQL(" LOGIN PASSWORD {}").format(sql.Literal(password)) if password else sql.SQL(" LOGIN" if login else " NOLOGIN")
        pg_execute(sandbox, IDENTIFIER, sql.SQL("CREATE ROLE {}").format(sql.Identifier(name)) + clause)
        created.append(name)
        return name

    yield make
    # As the superuser: should a test have locked the master out, its password could not clean up.
    with superuser(sandbox) as cur:
        for name in reversed(created):
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@contextlib.contextmanager
def superuser(sandbox):
    conn = lifecycle.server(sandbox.state, IDENTIFIER).admin_connection()
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def password_login_works(sandbox, user, password):
    target = sandbox.target(IDENTIFIER)
    try:
        conn = psycopg2.connect(host=target["login_host"], port=target["login_port"], user=user, password=password,
                                dbname="postgres", sslmode="verify-ca", sslrootcert=sandbox.ca_cert, connect_timeout=10)
    except psycopg2.OperationalError:
        return False
    with conn, conn.cursor() as cur:
        cur.execute("SELECT current_user")
        assert cur.fetchone() == (user,)
    conn.close()
    return True


def grant(sandbox, role, member):
    pg_execute(sandbox, IDENTIFIER, sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(member)))


def test_the_trap_is_real_a_master_inside_a_converted_role_loses_its_password_login(sandbox, roles):
    target = sandbox.target(IDENTIFIER)
    master, password = target["master_username"], target["master_password"]
    ops = roles("ops", login=True)
    grant(sandbox, ops, master)
    assert password_login_works(sandbox, master, password)
    with superuser(sandbox) as cur:
        cur.execute(sql.SQL("GRANT rds_iam TO {}").format(sql.Identifier(ops)))
    try:
        assert not password_login_works(sandbox, master, password)
    finally:
        with superuser(sandbox) as cur:
            cur.execute(sql.SQL("REVOKE rds_iam FROM {}").format(sql.Identifier(ops)))
    assert password_login_works(sandbox, master, password)


def test_converting_a_role_the_master_belongs_to_is_refused_and_the_master_keeps_its_password(sandbox, run_db_user, roles):
    target = sandbox.target(IDENTIFIER)
    master = target["master_username"]
    ops = roles("ops", login=True)
    grant(sandbox, ops, master)

    result = run_db_user(IDENTIFIER, {"name": ops, "convert_password_users": True})

    assert result.get("failed") is True, result
    assert f"{master} \u2192 {ops} \u2192 rds_iam" in result["msg"], result["msg"]
    assert "the login this module uses" in result["msg"] and "Nothing was changed." in result["msg"]
    assert "rds_iam" not in pg_role(sandbox, IDENTIFIER, ops)["member_of"]
    assert password_login_works(sandbox, master, target["master_password"])


def test_a_chain_two_roles_deep_is_refused_naming_it(sandbox, run_db_user, roles):
    target = sandbox.target(IDENTIFIER)
    master = target["master_username"]
    team, ops = roles("team"), roles("ops", login=True)
    grant(sandbox, team, master)
    grant(sandbox, ops, team)

    result = run_db_user(IDENTIFIER, {"users": [{"name": ops}], "convert_password_users": True}, check=True)
    assert result.get("failed") is True and f"{master} \u2192 {team} \u2192 {ops} \u2192 rds_iam" in result["msg"], result
    result = run_db_user(IDENTIFIER, {"users": [{"name": ops}], "convert_password_users": True})

    assert result.get("failed") is True and f"{master} \u2192 {team} \u2192 {ops} \u2192 rds_iam" in result["msg"], result
    assert "rds_iam" not in pg_role(sandbox, IDENTIFIER, ops)["member_of"]
    assert password_login_works(sandbox, master, target["master_password"])


def test_another_password_login_that_would_inherit_is_refused_unless_listed_for_conversion(sandbox, run_db_user, roles):
    ops = roles("ops", login=True)
    carol = roles("carol", password="carol-pw-1")
    grant(sandbox, ops, carol)

    refused = run_db_user(IDENTIFIER, {"name": ops, "convert_password_users": True})

    assert refused.get("failed") is True and f"login role(s) '{carol}'" in refused["msg"], refused
    assert f"{carol} \u2192 {ops} \u2192 rds_iam" in refused["msg"] and "Nothing was changed." in refused["msg"]
    assert "rds_iam" not in pg_role(sandbox, IDENTIFIER, ops)["member_of"]
    assert password_login_works(sandbox, carol, "carol-pw-1")

    # Listed for conversion on purpose, both become IAM users: carol's password login ends, as asked.
    converted = run_db_user(IDENTIFIER, {"users": [{"name": ops}, {"name": carol, "roles": [ops]}], "convert_password_users": True})

    assert converted["changed"] is True and [user["converted"] for user in converted["users"]] == [True, True], converted
    assert "rds_iam" in pg_role(sandbox, IDENTIFIER, carol)["member_of"]
    assert not password_login_works(sandbox, carol, "carol-pw-1")


def test_granting_a_role_that_already_holds_rds_iam_is_refused_the_same_way(sandbox, run_db_user, roles):
    """The user gets rds_iam and iam_team, which holds rds_iam itself: either grant would reach the master through lead."""
    target = sandbox.target(IDENTIFIER)
    master = target["master_username"]
    iam_team, lead = roles("iam_team"), roles("lead", login=True)
    with superuser(sandbox) as cur:
        cur.execute(sql.SQL("GRANT rds_iam TO {}").format(sql.Identifier(iam_team)))
    grant(sandbox, lead, master)

    result = run_db_user(IDENTIFIER, {"name": lead, "roles": [iam_team], "convert_password_users": True})

    assert result.get("failed") is True and f"{master} \u2192 {lead} \u2192 " in result["msg"], result
    assert pg_role(sandbox, IDENTIFIER, lead)["member_of"] == []
    assert password_login_works(sandbox, master, target["master_password"])
