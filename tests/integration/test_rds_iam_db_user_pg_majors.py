"""rds_iam_db_user's whole user lifecycle on real PostgreSQL 15, 16, 17 and 18 with RDS's role model.

The servers come from the `pg_majors` fixture: SQL-only (no token checking), a non-superuser
CREATEROLE master in rds_superuser, and from 16 on rds_superuser holding rds_iam WITH ADMIN OPTION,
INHERIT FALSE, SET FALSE, as on RDS. From 16 the master holds ADMIN on every role it creates without
INHERIT or SET, which is what broke REASSIGN OWNED. Catalog reads here go through the superuser's
own connection, never through the collection.
"""
import pytest
from psycopg2 import sql

from tests.integration.support.db_user import unique
from sandbox.pytest_plugin import PG_MAJORS


@pytest.fixture(params=PG_MAJORS, ids=lambda major: f"pg{major}")
def server(request, pg_majors):
    return pg_majors.get(request.param)


@pytest.fixture
def run(server, module_runner):
    """run(args, check=, diff=): rds_iam_db_user as the master of this server, in database app."""

    def call(args, **kwargs):
        options = dict(server.db_login_args(), login_db="app", engine="postgres")
        options.update(args)
        return module_runner("rds_iam_db_user", options, **kwargs)

    return call


@pytest.fixture
def names(server):
    """make(prefix): a unique role name, dropped afterwards (with what it owns) by the superuser."""
    made = []

    def make(prefix):
        made.append(unique(prefix))
        return made[-1]

    yield make
    for dbname in ("app", "postgres"):
        conn = server.superuser_connection(dbname)
        with conn.cursor() as cur:
            for name in reversed(made):
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
                if cur.fetchone():
                    cur.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        conn.close()
    conn = server.superuser_connection()
    with conn.cursor() as cur:
        for name in reversed(made):
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
    conn.close()


def as_master(server, statement, dbname="app"):
    conn = server.master_connection(dbname)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


def as_superuser(server, statement, params=None, dbname="app"):
    conn = server.superuser_connection(dbname)
    with conn.cursor() as cur:
        cur.execute(statement, params)
        rows = cur.fetchall() if cur.description else None
    conn.close()
    return rows


def memberships(server):
    """Every pg_auth_members row as (role, member, grantor, admin, inherit, set); INHERIT and SET exist from 16."""
    options = "a.inherit_option, a.set_option" if server.major >= 16 else "true, true"
    return sorted(as_superuser(server, (
        "SELECT a.roleid::regrole::text, a.member::regrole::text, a.grantor::regrole::text, a.admin_option, " + options +
        " FROM pg_auth_members a")))


def role_state(server, name):
    """(can login, roles it holds with privileges) or None; pg_has_role USAGE counts only inheriting memberships."""
    rows = as_superuser(server, "SELECT rolcanlogin, ARRAY(SELECT g.rolname FROM pg_roles g WHERE g.oid <> r.oid AND "
                        "pg_has_role(r.oid, g.oid, 'USAGE') ORDER BY 1) FROM pg_roles r WHERE rolname = %s", (name,))
    return (rows[0][0], sorted(rows[0][1])) if rows else None


def test_server_is_the_major_it_claims(server):
    assert as_superuser(server, "SHOW server_version_num")[0][0].startswith(str(server.major))


def test_create_rerun_revoke_lock_unlock_with_check_mode_matching_the_real_run(server, run, names):
    app_ro = names("app_ro")
    as_master(server, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(app_ro)))
    alice, bob = names("alice"), names("bob")
    request = {"users": [{"name": alice, "roles": [app_ro]}, {"name": bob, "connection_limit": 3}]}

    planned = run(request, check=True, diff=True)
    assert planned["changed"] is True and role_state(server, alice) is None, planned
    created = run(request)
    assert created["queries"] == planned["queries"], (planned, created)
    assert created["queries"] == [f'CREATE ROLE "{alice}" LOGIN', f'GRANT "rds_iam", "{app_ro}" TO "{alice}"',
                                  f'CREATE ROLE "{bob}" LOGIN CONNECTION LIMIT 3', f'GRANT "rds_iam" TO "{bob}"']
    assert role_state(server, alice) == (True, sorted([app_ro, "rds_iam"]))
    assert role_state(server, bob) == (True, ["rds_iam"])
    again = run(request)
    assert again["changed"] is False and again["queries"] == [], again

    exact = {"users": [{"name": alice, "roles": []}], "grant_mode": "exact"}
    assert run(exact, check=True)["queries"] == [f'REVOKE "{app_ro}" FROM "{alice}"']
    assert role_state(server, alice) == (True, sorted([app_ro, "rds_iam"]))
    assert run(exact)["queries"] == [f'REVOKE "{app_ro}" FROM "{alice}"']
    assert role_state(server, alice) == (True, ["rds_iam"]) and run(exact)["changed"] is False

    locked = {"name": alice, "state": "locked", "terminate_sessions": True}
    assert run(locked, check=True)["queries"][0] == f'ALTER ROLE "{alice}" NOLOGIN'
    assert role_state(server, alice)[0] is True
    assert run(locked)["changed"] is True and role_state(server, alice) == (False, ["rds_iam"])
    assert run(locked)["changed"] is False
    unlocked = run({"name": alice})
    assert unlocked["queries"] == [f'ALTER ROLE "{alice}" LOGIN'] and unlocked["users"][0]["unlocked"] is True
    assert role_state(server, alice) == (True, ["rds_iam"]) and run({"name": alice})["changed"] is False


def test_a_password_user_is_converted_only_when_asked(server, run, names):
    legacy = names("legacy")
    as_master(server, sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'legacy-pw-1'").format(sql.Identifier(legacy)))
    refused = run({"name": legacy})
    assert refused.get("failed") is True and "convert_password_users" in refused["msg"], refused
    assert role_state(server, legacy) == (True, [])
    planned = run({"name": legacy, "convert_password_users": True}, check=True)
    converted = run({"name": legacy, "convert_password_users": True})
    assert planned["queries"] == converted["queries"] == [f'GRANT "rds_iam" TO "{legacy}"']
    assert converted["users"][0]["converted"] is True and role_state(server, legacy) == (True, ["rds_iam"])
    assert run({"name": legacy})["changed"] is False


@pytest.mark.parametrize("heir", ["master", "other role"])
def test_drop_reassigns_a_table_and_a_schema_and_leaves_no_membership_behind(server, run, names, heir):
    leaver = names("leaver")
    run({"name": leaver})
    reassign_to = server.master_user
    if heir != "master":
        reassign_to = names("heir")
        as_master(server, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(reassign_to)))
    table, schema = unique("t"), unique("s")
    as_superuser(server, sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(schema), sql.Identifier(leaver)))
    as_superuser(server, sql.SQL("CREATE TABLE public.{} (i int)").format(sql.Identifier(table)))
    as_superuser(server, sql.SQL("ALTER TABLE public.{} OWNER TO {}").format(sql.Identifier(table), sql.Identifier(leaver)))
    before = [row for row in memberships(server) if leaver not in row[:2]]
    request = {"name": leaver, "state": "absent", "reassign_owned_to": reassign_to, "terminate_sessions": True}
    try:
        planned = run(request, check=True)
        assert role_state(server, leaver) is not None
        dropped = run(request)
        owners = [as_superuser(server, "SELECT tableowner FROM pg_tables WHERE tablename = %s", (table,)),
                  as_superuser(server, "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s", (schema,))]
    finally:
        as_superuser(server, sql.SQL("DROP TABLE IF EXISTS public.{}; DROP SCHEMA IF EXISTS {}").format(sql.Identifier(table), sql.Identifier(schema)))

    assert dropped["changed"] is True and dropped["users"][0]["dropped"] is True, dropped
    assert dropped["queries"] == planned["queries"]
    # The master created both roles: it holds at most ADMIN on them, never their privileges, so it borrows them.
    inherit = " WITH INHERIT TRUE" if server.major >= 16 else ""
    borrowed = [f'GRANT "{leaver}" TO "{server.master_user}"{inherit}']
    if heir != "master":
        borrowed.append(f'GRANT "{reassign_to}" TO "{server.master_user}"{inherit}')
    assert dropped["queries"][:len(borrowed)] == borrowed
    assert role_state(server, leaver) is None
    assert owners == [[(reassign_to,)], [(reassign_to,)]]
    assert memberships(server) == before  # the borrowed memberships went with the role or were revoked
    assert run(request)["changed"] is False


def master_password_login_works(server):
    import psycopg2

    try:
        server.master_connection().close()
    except psycopg2.OperationalError:
        return False
    return True


def test_converting_a_role_the_master_belongs_to_is_refused_on_every_major(server, run, names):
    ops, team = names("ops"), names("team")
    as_master(server, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(team)))
    as_master(server, sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(ops)))
    as_master(server, sql.SQL("GRANT {} TO {}").format(sql.Identifier(ops), sql.Identifier(team)))
    as_master(server, sql.SQL("GRANT {} TO {}").format(sql.Identifier(team), sql.Identifier(server.master_user)))
    before = memberships(server)

    refused = run({"name": ops, "convert_password_users": True})

    assert refused.get("failed") is True, refused
    assert f"{server.master_user} \u2192 {team} \u2192 {ops} \u2192 rds_iam" in refused["msg"]
    assert memberships(server) == before
    assert master_password_login_works(server)
    if server.refuses_iam_password_logins:
        # The same grant behind the module's back really locks the master out (from 17 these servers refuse as RDS does).
        as_superuser(server, sql.SQL("GRANT rds_iam TO {}").format(sql.Identifier(ops)))
        try:
            assert not master_password_login_works(server)
        finally:
            as_superuser(server, sql.SQL("REVOKE rds_iam FROM {}").format(sql.Identifier(ops)))
        assert master_password_login_works(server)


def test_a_role_the_master_only_created_is_converted(server, run, names):
    """From 16 the creator's ADMIN-only membership conveys nothing: converting the role locks nobody out."""
    ops = names("ops")
    as_master(server, sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(ops)))
    converted = run({"name": ops, "convert_password_users": True})
    assert converted["queries"] == [f'GRANT "rds_iam" TO "{ops}"'], converted
    assert role_state(server, server.master_user)[1].count("rds_iam") == 0
