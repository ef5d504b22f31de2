"""rds_iam_db_user on the sandbox's PostgreSQL servers (RDS PostgreSQL and the Aurora stand-in)."""
import pytest
from psycopg2 import sql

from tests.integration.support.db_user import (
    PG_TARGETS,
    assert_no_secret,
    db_user_runner,
    pg_all_roles,
    pg_create_roles,
    pg_drop_roles,
    pg_execute,
    pg_master,
    pg_role,
    unique,
)


@pytest.fixture
def run_db_user(sandbox, module_runner):
    return db_user_runner(sandbox, module_runner)


@pytest.fixture
def pg_names(sandbox):
    """Unique role names for one test, dropped again (users first, then roles) whatever happens."""
    created = []

    def make(identifier, prefix):
        name = unique(prefix)
        created.append((identifier, name))
        return name

    yield make
    for identifier, name in reversed(created):
        pg_drop_roles(sandbox, identifier, name)


@pytest.mark.parametrize("identifier", PG_TARGETS)
def test_creates_iam_users_with_roles_then_rerun_changes_nothing(sandbox, run_db_user, pg_names, identifier):
    ro, rw = pg_names(identifier, "app_ro"), pg_names(identifier, "app_rw")
    pg_create_roles(sandbox, identifier, ro, rw)
    alice, bob = pg_names(identifier, "alice"), pg_names(identifier, "bob")
    users = [{"name": alice, "roles": [ro]}, {"name": bob, "roles": [ro, rw], "connection_limit": 3}]

    first = run_db_user(identifier, {"users": users})

    assert first["changed"] is True, first
    assert first["engine"] == "postgres"
    assert [(u["name"], u["created"], u["roles_granted"]) for u in first["users"]] == [(alice, True, [ro]), (bob, True, [ro, rw])]
    assert first["queries"] == [
        f'CREATE ROLE "{alice}" LOGIN', f'GRANT "rds_iam", "{ro}" TO "{alice}"',
        f'CREATE ROLE "{bob}" LOGIN CONNECTION LIMIT 3', f'GRANT "rds_iam", "{ro}", "{rw}" TO "{bob}"',
    ]
    assert pg_role(sandbox, identifier, alice) == {"login": True, "connection_limit": -1, "member_of": sorted(["rds_iam", ro])}
    assert pg_role(sandbox, identifier, bob) == {"login": True, "connection_limit": 3, "member_of": sorted(["rds_iam", ro, rw])}

    again = run_db_user(identifier, {"users": users})
    assert again["changed"] is False and again["queries"] == [], again
    assert not any(u["changed"] for u in again["users"])
    assert_no_secret(first, sandbox.target(identifier)["master_password"])


def test_check_mode_writes_nothing_and_shows_the_real_runs_queries(sandbox, run_db_user, pg_names):
    identifier = "sbx-postgres"
    ro = pg_names(identifier, "app_ro")
    pg_create_roles(sandbox, identifier, ro)
    user = pg_names(identifier, "carol")
    args = {"name": user, "roles": [ro], "connection_limit": 2}
    before = pg_all_roles(sandbox, identifier)

    checked = run_db_user(identifier, args, check=True, diff=True)

    assert checked["changed"] is True and checked["users"][0]["created"] is True
    assert pg_all_roles(sandbox, identifier) == before
    assert checked["diff"]["before"] == {user: {"exists": False}}
    assert checked["diff"]["after"] == {user: {"exists": True, "login": True, "iam": True, "connection_limit": 2, "roles": [ro]}}
    real = run_db_user(identifier, args, diff=True)
    assert real["queries"] == checked["queries"] and real["diff"] == checked["diff"]
    assert pg_role(sandbox, identifier, user)["member_of"] == sorted(["rds_iam", ro])


def test_append_keeps_other_roles_and_exact_revokes_them_but_never_rds_iam(sandbox, run_db_user, pg_names):
    identifier = "sbx-aurora-pg"
    ro, rw, extra = (pg_names(identifier, prefix) for prefix in ("app_ro", "app_rw", "extra"))
    pg_create_roles(sandbox, identifier, ro, rw, extra)
    user = pg_names(identifier, "dave")
    run_db_user(identifier, {"name": user, "roles": [ro, extra]})

    appended = run_db_user(identifier, {"name": user, "roles": [rw]})
    assert appended["users"][0]["roles_granted"] == [rw] and appended["users"][0]["roles_revoked"] == []
    assert pg_role(sandbox, identifier, user)["member_of"] == sorted(["rds_iam", ro, rw, extra])

    exact = run_db_user(identifier, {"name": user, "roles": [rw], "grant_mode": "exact"})
    assert sorted(exact["users"][0]["roles_revoked"]) == sorted([ro, extra])
    assert exact["queries"] == [f'REVOKE {", ".join(chr(34) + r + chr(34) for r in sorted([ro, extra]))} FROM "{user}"']
    assert pg_role(sandbox, identifier, user)["member_of"] == sorted(["rds_iam", rw])
    assert run_db_user(identifier, {"name": user, "roles": [rw], "grant_mode": "exact"})["changed"] is False


def test_password_user_is_refused_unless_conversion_is_asked_for(sandbox, run_db_user, pg_names):
    identifier = "sbx-postgres"
    legacy, fresh = pg_names(identifier, "legacy"), pg_names(identifier, "fresh")
    pg_execute(sandbox, identifier, sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'old-password-1'").format(sql.Identifier(legacy)))
    before = pg_all_roles(sandbox, identifier)

    refused = run_db_user(identifier, {"users": [{"name": fresh}, {"name": legacy}]})

    assert refused.get("failed") is True
    assert legacy in refused["msg"] and "convert_password_users" in refused["msg"] and fresh not in refused["msg"]
    assert pg_all_roles(sandbox, identifier) == before  # not even the fresh user was created

    converted = run_db_user(identifier, {"users": [{"name": fresh}, {"name": legacy}], "convert_password_users": True})
    assert [(u["name"], u["created"], u["converted"]) for u in converted["users"]] == [(fresh, True, False), (legacy, False, True)]
    assert "rds_iam" in pg_role(sandbox, identifier, legacy)["member_of"]
    again = run_db_user(identifier, {"users": [{"name": fresh}, {"name": legacy}]})
    assert again["changed"] is False  # an IAM user now: no conversion flag needed any more


def test_drop_reassigns_owned_objects_and_ends_live_sessions(sandbox, run_db_user, pg_names):
    import psycopg2

    identifier = "sbx-postgres"
    target = sandbox.target(identifier)
    master = target["master_username"]
    leaver = pg_names(identifier, "leaver")
    table = unique("leaver_table")
    # A password user (IAM users cannot log in with a password) that owns a table and has a session open.
    pg_execute(sandbox, identifier, sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'leaver-pw-1'").format(sql.Identifier(leaver)))
    pg_execute(sandbox, identifier, sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(leaver)), dbname="app")
    session = psycopg2.connect(host=target["login_host"], port=target["login_port"], user=leaver, password="leaver-pw-1",
                               dbname="app", sslmode="require")
    session.autocommit = True
    with session.cursor() as cur:
        cur.execute(sql.SQL("CREATE TABLE public.{} (i int)").format(sql.Identifier(table)))
    try:
        dropped = run_db_user(identifier, {"name": leaver, "state": "absent", "terminate_sessions": True, "login_db": "app"})

        assert dropped["changed"] is True and dropped["users"][0]["dropped"] is True, dropped
        assert dropped["queries"][-4:-1] == [f'REASSIGN OWNED BY "{leaver}" TO "{master}"', f'DROP OWNED BY "{leaver}"', f'DROP ROLE "{leaver}"']
        assert dropped["queries"][-1].startswith("SELECT pg_catalog.pg_terminate_backend(pid)")  # after the drop is committed
        assert pg_role(sandbox, identifier, leaver) is None
        owner = pg_execute(sandbox, identifier, "SELECT tableowner FROM pg_tables WHERE tablename = %s", (table,), dbname="app")
        assert owner == [(master,)]
        with pytest.raises(psycopg2.OperationalError):
            with session.cursor() as cur:
                cur.execute("SELECT 1")
        assert run_db_user(identifier, {"name": leaver, "state": "absent", "login_db": "app"})["changed"] is False
    finally:
        session.close()
        pg_execute(sandbox, identifier, sql.SQL("DROP TABLE IF EXISTS public.{}").format(sql.Identifier(table)), dbname="app")


def test_drop_to_another_role_borrows_and_returns_its_membership(sandbox, run_db_user, pg_names):
    identifier = "sbx-aurora-pg"
    heir, leaver = pg_names(identifier, "heir"), pg_names(identifier, "leaver")
    pg_create_roles(sandbox, identifier, heir)
    run_db_user(identifier, {"name": leaver})
    before = pg_all_roles(sandbox, identifier)

    dropped = run_db_user(identifier, {"name": leaver, "state": "absent", "reassign_owned_to": heir})

    assert f'REASSIGN OWNED BY "{leaver}" TO "{heir}"' in dropped["queries"], dropped
    after = pg_all_roles(sandbox, identifier)
    del before[leaver]
    assert after == before  # the admin holds no membership in the heir afterwards


def test_missing_role_fails_naming_it_and_writes_nothing(sandbox, run_db_user, pg_names):
    identifier = "sbx-postgres"
    ro = pg_names(identifier, "app_ro")
    pg_create_roles(sandbox, identifier, ro)
    ok_user, bad_user, ghost = pg_names(identifier, "ok"), pg_names(identifier, "bad"), unique("no_such_role")
    before = pg_all_roles(sandbox, identifier)

    failed = run_db_user(identifier, {"users": [{"name": ok_user, "roles": [ro]}, {"name": bad_user, "roles": [ro, ghost]}]})

    assert failed.get("failed") is True
    assert ghost in failed["msg"] and bad_user in failed["msg"] and "do not exist" in failed["msg"]
    assert pg_all_roles(sandbox, identifier) == before


@pytest.mark.parametrize("who", ["login user", "rdsadmin", "rds_superuser", "rds_iam"])
def test_never_touches_the_login_user_or_reserved_roles(sandbox, run_db_user, who):
    identifier = "sbx-postgres"
    name = sandbox.target(identifier)["master_username"] if who == "login user" else who
    before = pg_all_roles(sandbox, identifier)
    for state in ("present", "absent"):
        result = run_db_user(identifier, {"name": name, "state": state, "convert_password_users": True})
        assert result.get("failed") is True, result
        assert repr(name) in result["msg"] and "remove it from the list" in result["msg"]
    assert pg_all_roles(sandbox, identifier) == before


def test_mysql_only_options_are_refused_on_postgres(sandbox, run_db_user, pg_names):
    identifier = "sbx-postgres"
    user = pg_names(identifier, "myopts")
    result = run_db_user(identifier, {"name": user, "privileges": "app.*:SELECT"})
    assert result.get("failed") is True and "MySQL/MariaDB only" in result["msg"]
    assert pg_role(sandbox, identifier, user) is None


def test_login_secret_and_engine_auto(sandbox, run_db_user, pg_names):
    identifier = "sbx-aurora-pg"
    target = sandbox.target(identifier)
    user = pg_names(identifier, "secretive")
    args = {"name": user, "login_user": None, "login_password": None, "login_secret": target["secret_arn"], "engine": "auto"}
    result = run_db_user(identifier, args)
    assert result.get("changed") is True and result["engine"] == "postgres", result
    assert pg_role(sandbox, identifier, user)["member_of"] == ["rds_iam"]
    assert_no_secret(result, target["master_password"])


def test_transaction_rolls_back_when_a_statement_fails(sandbox, run_db_user, pg_names):
    """A statement the server refuses after others ran (a circular membership the planner does not look for) leaves nothing behind."""
    identifier = "sbx-postgres"
    first, second = pg_names(identifier, "first"), pg_names(identifier, "second")
    blocker = pg_names(identifier, "blocker")
    pg_create_roles(sandbox, identifier, blocker)
    # second: an IAM user someone disabled with NOLOGIN; the module gives LOGIN back before the GRANT that fails.
    pg_execute(sandbox, identifier, sql.SQL("CREATE ROLE {} NOLOGIN IN ROLE rds_iam").format(sql.Identifier(second)))
    pg_execute(sandbox, identifier, sql.SQL("GRANT {} TO {}").format(sql.Identifier(second), sql.Identifier(blocker)))
    before = pg_all_roles(sandbox, identifier)

    failed = run_db_user(identifier, {"users": [{"name": first}, {"name": second, "roles": [blocker]}]})

    assert failed.get("failed") is True and "rolled back" in failed["msg"], failed
    assert f'ALTER ROLE "{second}" LOGIN' in failed["msg"] or f'GRANT "{blocker}" TO "{second}"' in failed["msg"]
    assert pg_all_roles(sandbox, identifier) == before
    assert pg_role(sandbox, identifier, first) is None


def test_pg_master_helper_is_not_superuser(sandbox):
    """The tests above rely on the RDS model: the master is no superuser, so nothing passes on superuser powers."""
    with pg_master(sandbox, "sbx-postgres") as conn, conn.cursor() as cur:
        cur.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone() == (False, True)


def test_drop_blocked_by_grants_in_another_database_rolls_back_and_says_why(sandbox, run_db_user, pg_names):
    identifier = "sbx-postgres"
    leaver = pg_names(identifier, "leaver")
    table = unique("elsewhere")
    run_db_user(identifier, {"name": leaver})
    pg_execute(sandbox, identifier, sql.SQL("CREATE TABLE public.{} (i int)").format(sql.Identifier(table)), dbname="app")
    pg_execute(sandbox, identifier, sql.SQL("GRANT SELECT ON public.{} TO {}").format(sql.Identifier(table), sql.Identifier(leaver)),
               dbname="app")
    before = pg_all_roles(sandbox, identifier)
    try:
        failed = run_db_user(identifier, {"name": leaver, "state": "absent"})  # login_db defaults to postgres

        assert failed.get("failed") is True, failed
        assert f'DROP ROLE "{leaver}"' in failed["msg"] and "database app" in failed["msg"]
        assert "rolled back" in failed["msg"] and "login_db" in failed["msg"]
        assert pg_all_roles(sandbox, identifier) == before
    finally:
        pg_execute(sandbox, identifier, sql.SQL("DROP TABLE IF EXISTS public.{}").format(sql.Identifier(table)), dbname="app")


def test_a_group_role_listed_as_a_user_is_refused(sandbox, run_db_user, pg_names):
    identifier = "sbx-aurora-pg"
    group = pg_names(identifier, "app_ro")
    pg_create_roles(sandbox, identifier, group)
    before = pg_all_roles(sandbox, identifier)
    result = run_db_user(identifier, {"name": group, "convert_password_users": True})
    assert result.get("failed") is True and "without LOGIN" in result["msg"] and group in result["msg"], result
    assert pg_all_roles(sandbox, identifier) == before


def test_a_group_role_listed_for_removal_is_refused_and_keeps_its_privileges(sandbox, run_db_user, pg_names):
    """state=absent used to REASSIGN/DROP OWNED and drop a group role such as app_ro, taking its privileges from every member."""
    identifier = "sbx-aurora-pg"
    group, member = pg_names(identifier, "app_ro"), pg_names(identifier, "member")
    pg_create_roles(sandbox, identifier, group)
    pg_execute(sandbox, identifier, sql.SQL("GRANT CONNECT ON DATABASE app TO {}").format(sql.Identifier(group)))
    try:
        run_db_user(identifier, {"name": member, "roles": [group]})
        before = pg_all_roles(sandbox, identifier)
        result = run_db_user(identifier, {"name": group, "state": "absent"})
        assert result.get("failed") is True and "without LOGIN" in result["msg"] and group in result["msg"], result
        assert pg_all_roles(sandbox, identifier) == before
        assert pg_execute(sandbox, identifier, "SELECT has_database_privilege(%s, 'app', 'CONNECT')", (group,)) == [(True,)]
    finally:
        pg_execute(sandbox, identifier, sql.SQL("REVOKE CONNECT ON DATABASE app FROM {}").format(sql.Identifier(group)))


@pytest.mark.parametrize("option", [{"state": "absent"}, {"roles": ["x"]}, {"connection_limit": 2}])
def test_top_level_user_options_next_to_a_users_list_are_refused(sandbox, run_db_user, pg_names, option):
    """They describe `name` only: next to `users` they were ignored, so state=absent created the users it meant to drop."""
    identifier = "sbx-postgres"
    user = pg_names(identifier, "listed")
    before = pg_all_roles(sandbox, identifier)
    result = run_db_user(identifier, {"users": [{"name": user}], **option})
    assert result.get("failed") is True, result
    assert "mutually exclusive" in result["msg"] and f"users|{next(iter(option))}" in result["msg"], result
    assert pg_all_roles(sandbox, identifier) == before


def test_a_drop_that_fails_ends_no_session(sandbox, run_db_user, pg_names):
    """Sessions are ended only once the drop is committed: a rolled-back drop used to have cut them off already."""
    import psycopg2

    identifier = "sbx-postgres"
    target = sandbox.target(identifier)
    stayer = pg_names(identifier, "stayer")
    table = unique("blocking")
    pg_execute(sandbox, identifier, sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'stayer-pw-1'").format(sql.Identifier(stayer)))
    pg_execute(sandbox, identifier, sql.SQL("CREATE TABLE public.{} (i int)").format(sql.Identifier(table)), dbname="app")
    pg_execute(sandbox, identifier, sql.SQL("GRANT SELECT ON public.{} TO {}").format(sql.Identifier(table), sql.Identifier(stayer)),
               dbname="app")
    session = psycopg2.connect(host=target["login_host"], port=target["login_port"], user=stayer, password="stayer-pw-1",
                               dbname="postgres", sslmode="require")
    before = pg_all_roles(sandbox, identifier)
    try:
        failed = run_db_user(identifier, {"name": stayer, "state": "absent", "terminate_sessions": True})

        assert failed.get("failed") is True and "rolled back" in failed["msg"], failed
        assert pg_all_roles(sandbox, identifier) == before
        with session.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone() == (stayer,)
    finally:
        session.close()
        pg_execute(sandbox, identifier, sql.SQL("DROP TABLE IF EXISTS public.{}").format(sql.Identifier(table)), dbname="app")
