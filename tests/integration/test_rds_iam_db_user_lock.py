"""rds_iam_db_user state=locked on the sandbox's PostgreSQL and MariaDB, proved with real IAM token logins."""
import psycopg2
import pymysql
import pytest
from psycopg2 import sql

from sandbox import iam_login
from tests.integration.support.db_user import (
    assert_no_secret,
    db_user_runner,
    my_all_accounts,
    my_create_user,
    my_drop_accounts,
    my_drop_roles,
    my_execute,
    my_grants,
    pg_all_roles,
    pg_create_roles,
    pg_drop_roles,
    pg_role,
    unique,
)

TARGETS = ["sbx-postgres", "sbx-mariadb"]
DRIVER_ERRORS = (psycopg2.Error, pymysql.err.MySQLError)


@pytest.fixture
def run_db_user(sandbox, module_runner):
    return db_user_runner(sandbox, module_runner)


def is_pg(identifier):
    return "postgres" in identifier


def open_session(sandbox, identifier, db_user, token):
    """A session that stays open, logged in with an IAM token over TLS, as an application would hold one."""
    target = sandbox.target(identifier)
    if is_pg(identifier):
        conn = psycopg2.connect(host=target["login_host"], port=target["login_port"], user=db_user, password=token,
                                dbname="postgres", sslmode="require")
        conn.autocommit = True
        return conn
    return pymysql.connect(host=target["login_host"], port=target["login_port"], user=db_user, password=token,
                           ssl={"ca": sandbox.ca_cert, "check_hostname": False})


def session_user(session):
    """The session's current user; raises the driver's error once the server has ended the session."""
    with session.cursor() as cur:
        cur.execute("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)" if isinstance(session, pymysql.connections.Connection)
                    else "SELECT current_user")
        return cur.fetchone()[0]


def catalog(sandbox, identifier, name):
    """(can log in, memberships or grants): read over the master login, not through the collection."""
    if is_pg(identifier):
        role = pg_role(sandbox, identifier, name)
        return role["login"], role["member_of"]
    return "ACCOUNT LOCK" not in my_create_user(sandbox, identifier, name), my_grants(sandbox, identifier, name)


def snapshot(sandbox, identifier):
    return pg_all_roles(sandbox, identifier) if is_pg(identifier) else my_all_accounts(sandbox, identifier)


@pytest.fixture
def iam_user(sandbox, run_db_user):
    """make(identifier): an IAM database user with a role, its IAM principal and a token minter; all removed afterwards."""
    made = []

    def make(identifier):
        db_user, group, principal = unique("locker"), unique("lock_ro"), unique("t-locker")
        made.append((identifier, db_user, group, principal, iam_login.enable_iam_auth(sandbox, identifier)))
        if is_pg(identifier):
            pg_create_roles(sandbox, identifier, group)
        else:
            my_execute(sandbox, identifier, "CREATE ROLE `%s`" % group)
        created = run_db_user(identifier, {"name": db_user, "roles": [group]})
        assert created["changed"] is True and created["users"][0]["created"] is True, created
        creds = iam_login.iam_user_with_policy(sandbox, principal, [iam_login.allow_connect(iam_login.connect_arn(sandbox, identifier, db_user))])
        return db_user, group, lambda: iam_login.mint_token(creds, sandbox.target(identifier), db_user)

    yield make
    for identifier, db_user, group, principal, restore in made:
        restore()
        iam_login.delete_iam_user(sandbox, principal)
        if is_pg(identifier):
            pg_drop_roles(sandbox, identifier, db_user, group)
        else:
            my_drop_accounts(sandbox, identifier, (db_user, "%"))
            my_drop_roles(sandbox, identifier, group)


@pytest.mark.parametrize("identifier", TARGETS)
def test_locked_user_keeps_its_grants_cannot_log_in_loses_its_sessions_and_present_lets_it_back(sandbox, run_db_user, iam_user, identifier):
    db_user, group, token = iam_user(identifier)
    iam_login.assert_login(sandbox, identifier, db_user, token())
    session = open_session(sandbox, identifier, db_user, token())
    granted = catalog(sandbox, identifier, db_user)
    assert granted[0] is True and session_user(session) == db_user
    lock = {"name": db_user, "state": "locked", "terminate_sessions": True}
    view_key = db_user if is_pg(identifier) else f"{db_user}@%"
    try:
        # Check mode: the statements a real run would send, the diff, and nothing done (the session lives on).
        before = snapshot(sandbox, identifier)
        checked = run_db_user(identifier, lock, check=True, diff=True)
        assert checked["changed"] is True and checked["users"][0]["locked"] is True, checked
        if is_pg(identifier):
            assert checked["queries"][0] == f'ALTER ROLE "{db_user}" NOLOGIN'
            assert checked["queries"][1].startswith("SELECT pg_catalog.pg_terminate_backend(pid)")
            assert (checked["diff"]["before"][view_key]["login"], checked["diff"]["after"][view_key]["login"]) == (True, False)
        else:
            assert checked["queries"][0] == f"ALTER USER '{db_user}'@'%' ACCOUNT LOCK"
            assert checked["queries"][1].startswith("KILL CONNECTION ")
            assert (checked["diff"]["before"][view_key]["locked"], checked["diff"]["after"][view_key]["locked"]) == (False, True)
        assert snapshot(sandbox, identifier) == before
        assert session_user(session) == db_user
        iam_login.assert_login(sandbox, identifier, db_user, token())

        # Locked without terminate_sessions: new logins are refused, the open session is not ended, grants stay.
        locked = run_db_user(identifier, dict(lock, terminate_sessions=False), diff=True)
        assert locked["changed"] is True and locked["queries"] == checked["queries"][:1], locked
        assert (locked["users"][0]["locked"], locked["users"][0]["exists"]) == (True, True)
        assert locked["diff"]["after"] == checked["diff"]["after"]
        assert catalog(sandbox, identifier, db_user) == (False, granted[1])
        refusals_before = len(iam_login.auth_error_log(sandbox))
        refused = iam_login.login_error(sandbox, identifier, db_user, token())
        assert ("not permitted to log in" if is_pg(identifier) else "this account is locked") in refused, refused
        # The token itself was good: the lock refused the login, not the IAM check.
        assert iam_login.refusals_for(sandbox, identifier, db_user, since=refusals_before) == []
        assert session_user(session) == db_user

        # Locked again with terminate_sessions: ends the session that outlived the lock, and that alone.
        ended = run_db_user(identifier, lock)
        assert ended["changed"] is True and ended["users"][0]["locked"] is False, ended
        assert ended["queries"] == checked["queries"][1:]
        with pytest.raises(DRIVER_ERRORS):
            session_user(session)
        again = run_db_user(identifier, lock)
        assert again["changed"] is False and again["queries"] == [] and again["users"][0]["changed"] is False, again

        # present lifts the lock: a fresh token logs in again, with the same grants.
        unlocked = run_db_user(identifier, {"name": db_user, "roles": [group]})
        assert unlocked["changed"] is True and unlocked["users"][0]["unlocked"] is True, unlocked
        assert unlocked["queries"] == ([f'ALTER ROLE "{db_user}" LOGIN'] if is_pg(identifier) else [f"ALTER USER '{db_user}'@'%' ACCOUNT UNLOCK"])
        assert catalog(sandbox, identifier, db_user) == granted
        iam_login.assert_login(sandbox, identifier, db_user, token())
        assert run_db_user(identifier, {"name": db_user, "roles": [group]})["changed"] is False
        assert_no_secret([checked, locked, ended, unlocked], sandbox.target(identifier)["master_password"], "X-Amz-Signature=")
    finally:
        session.close()


@pytest.mark.parametrize("identifier", TARGETS)
def test_locking_a_user_that_does_not_exist_changes_nothing_and_says_it_is_absent(sandbox, run_db_user, identifier):
    ghost = unique("ghost")
    before = snapshot(sandbox, identifier)
    result = run_db_user(identifier, {"users": [{"name": ghost, "state": "locked"}], "terminate_sessions": True}, diff=True)
    assert result.get("failed") is not True and result["changed"] is False and result["queries"] == [], result
    assert (result["users"][0]["exists"], result["users"][0]["locked"], result["users"][0]["changed"]) == (False, False, False)
    assert list(result["diff"]["after"].values()) == [{"exists": False}]
    assert snapshot(sandbox, identifier) == before


@pytest.mark.parametrize("identifier", TARGETS)
def test_the_login_user_is_never_locked(sandbox, run_db_user, identifier):
    master = sandbox.target(identifier)["master_username"]
    before = snapshot(sandbox, identifier)
    result = run_db_user(identifier, {"name": master, "state": "locked", "terminate_sessions": True})
    assert result.get("failed") is True, result
    assert repr(master) in result["msg"] and "logged in as" in result["msg"] and "locked" in result["msg"], result
    assert "remove it from the list" in result["msg"]
    assert snapshot(sandbox, identifier) == before


def test_a_password_user_locked_on_postgres_cannot_log_in_with_its_password(sandbox, run_db_user):
    """Offboarding also covers users not yet on IAM: locking needs no convert_password_users and converts nothing."""
    identifier = "sbx-postgres"
    target = sandbox.target(identifier)
    legacy = unique("legacy")
    iam_login.drop_db_user(sandbox, identifier, legacy)
    conn = iam_login.admin_connection(sandbox, identifier)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'legacy-pw-1'").format(sql.Identifier(legacy)))
    conn.close()
    try:
        result = run_db_user(identifier, {"name": legacy, "state": "locked"})
        assert result["changed"] is True and result["users"][0]["converted"] is False, result
        assert pg_role(sandbox, identifier, legacy) == {"login": False, "connection_limit": -1, "member_of": []}
        with pytest.raises(psycopg2.OperationalError, match="not permitted to log in"):
            psycopg2.connect(host=target["login_host"], port=target["login_port"], user=legacy, password="legacy-pw-1",
                             dbname="postgres", sslmode="require").close()
        assert run_db_user(identifier, {"name": legacy, "state": "locked"})["changed"] is False
    finally:
        pg_drop_roles(sandbox, identifier, legacy)
