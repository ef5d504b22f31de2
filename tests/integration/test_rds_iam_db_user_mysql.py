"""rds_iam_db_user on the sandbox's MariaDB servers (RDS MariaDB and the MySQL stand-in, which runs MariaDB)."""
import pymysql
import pytest

from tests.integration.support.db_user import (
    MYSQL_TARGETS,
    assert_no_secret,
    db_user_runner,
    my_account,
    my_all_accounts,
    my_drop_accounts,
    my_drop_roles,
    my_execute,
    my_grants,
    unique,
)


@pytest.fixture
def run_db_user(sandbox, module_runner):
    return db_user_runner(sandbox, module_runner)


IAM = "AWSAuthenticationPlugin"


@pytest.fixture
def my_names(sandbox):
    """Unique account and role names for one test, dropped again whatever happens."""
    accounts, roles = [], []

    def user(identifier, prefix, host="%"):
        name = unique(prefix)
        accounts.append((identifier, name, host))
        return name

    def role(identifier, prefix):
        name = unique(prefix)
        roles.append((identifier, name))
        my_execute(sandbox, identifier, "CREATE ROLE `%s`" % name)
        return name

    yield user, role
    for identifier, name, host in accounts:
        my_drop_accounts(sandbox, identifier, (name, host))
    for identifier, name in roles:
        my_drop_roles(sandbox, identifier, name)


@pytest.fixture
def app_table(sandbox):
    """A table in the `app` database of each MariaDB target."""
    name = unique("orders")
    for identifier in MYSQL_TARGETS:
        my_execute(sandbox, identifier, "CREATE TABLE app.`%s` (i int)" % name)
    yield name
    for identifier in MYSQL_TARGETS:
        my_execute(sandbox, identifier, "DROP TABLE IF EXISTS app.`%s`" % name)


@pytest.mark.parametrize("identifier", MYSQL_TARGETS)
def test_creates_iam_users_with_roles_and_privileges_then_rerun_changes_nothing(sandbox, run_db_user, my_names, app_table, identifier):
    user, role = my_names
    reader = role(identifier, "reader")
    alice, bob = user(identifier, "alice"), user(identifier, "bob", host="10.0.%")
    users = [{"name": alice, "roles": [reader], "privileges": f"app.*:SELECT,INSERT/app.{app_table}:ALL"},
             {"name": bob, "host": "10.0.%", "privileges": {"app.*": ["select"]}, "connection_limit": 4}]

    first = run_db_user(identifier, {"users": users})

    assert first["changed"] is True and first["engine"] == "mariadb", first
    assert first["users"][0]["created"] and first["users"][0]["roles_granted"] == [reader]
    assert first["users"][0]["privileges_granted"] == {"app.*": ["INSERT", "SELECT"], f"app.{app_table}": ["ALL PRIVILEGES"]}
    assert first["queries"][0] == f"CREATE USER '{alice}'@'%' IDENTIFIED WITH {IAM} AS 'RDS' REQUIRE SSL"
    assert my_account(sandbox, identifier, alice) == {"plugin": IAM, "ssl_type": "ANY", "max_user_connections": 0, "default_role": reader}
    assert my_account(sandbox, identifier, bob, "10.0.%") == {"plugin": IAM, "ssl_type": "ANY", "max_user_connections": 4, "default_role": ""}
    grants = my_grants(sandbox, identifier, alice)
    assert f"GRANT `{reader}` TO `{alice}`@`%`" in grants
    assert f"GRANT SELECT, INSERT ON `app`.* TO `{alice}`@`%`" in grants
    assert f"GRANT ALL PRIVILEGES ON `app`.`{app_table}` TO `{alice}`@`%`" in grants
    assert f"GRANT SELECT ON `app`.* TO `{bob}`@`10.0.%`" in my_grants(sandbox, identifier, bob, "10.0.%")

    again = run_db_user(identifier, {"users": users})
    assert again["changed"] is False and again["queries"] == [], again
    assert_no_secret(first, sandbox.target(identifier)["master_password"])


def test_check_mode_writes_nothing_and_shows_the_real_runs_queries(sandbox, run_db_user, my_names, app_table):
    identifier = "sbx-mariadb"
    user, role = my_names
    reader = role(identifier, "reader")
    name = user(identifier, "carol")
    args = {"name": name, "roles": [reader], "privileges": f"app.{app_table}:SELECT,UPDATE,GRANT"}
    before = my_all_accounts(sandbox, identifier)

    checked = run_db_user(identifier, args, check=True, diff=True)

    assert checked["changed"] is True and checked["users"][0]["created"] is True, checked
    assert my_all_accounts(sandbox, identifier) == before
    assert checked["diff"]["before"] == {f"{name}@%": {"exists": False}}
    assert checked["diff"]["after"][f"{name}@%"]["privileges"] == {f"app.{app_table}": ["GRANT OPTION", "SELECT", "UPDATE"]}
    real = run_db_user(identifier, args, diff=True)
    assert real["queries"] == checked["queries"] and real["diff"] == checked["diff"]
    assert f"GRANT SELECT, UPDATE ON `app`.`{app_table}` TO `{name}`@`%` WITH GRANT OPTION" in my_grants(sandbox, identifier, name)


def test_append_keeps_and_exact_revokes_roles_and_privileges(sandbox, run_db_user, my_names, app_table):
    identifier = "sbx-mysql"
    user, role = my_names
    reader, writer = role(identifier, "reader"), role(identifier, "writer")
    name = user(identifier, "dave")
    run_db_user(identifier, {"name": name, "roles": [reader, writer], "privileges": f"app.*:SELECT/app.{app_table}:UPDATE"})

    appended = run_db_user(identifier, {"name": name, "roles": [writer], "privileges": "app.*:INSERT"})
    assert appended["users"][0]["privileges_granted"] == {"app.*": ["INSERT"]} and appended["users"][0]["roles_revoked"] == []
    assert f"GRANT `{reader}` TO `{name}`@`%`" in my_grants(sandbox, identifier, name)

    exact = run_db_user(identifier, {"name": name, "roles": [writer], "privileges": "app.*:INSERT", "grant_mode": "exact"})
    result = exact["users"][0]
    assert result["roles_revoked"] == [reader]
    assert result["privileges_revoked"] == {"app.*": ["SELECT"], f"app.{app_table}": ["UPDATE"]}
    assert sorted(my_grants(sandbox, identifier, name)) == sorted([
        f"GRANT USAGE ON *.* TO `{name}`@`%` IDENTIFIED VIA {IAM} USING 'RDS' REQUIRE SSL",
        f"GRANT INSERT ON `app`.* TO `{name}`@`%`", f"GRANT `{writer}` TO `{name}`@`%`", f"SET DEFAULT ROLE `{writer}` FOR `{name}`@`%`",
    ])
    assert run_db_user(identifier, {"name": name, "roles": [writer], "privileges": "app.*:INSERT", "grant_mode": "exact"})["changed"] is False


def test_password_user_is_refused_unless_conversion_is_asked_for(sandbox, run_db_user, my_names):
    identifier = "sbx-mariadb"
    user, _role = my_names
    legacy, fresh = user(identifier, "legacy"), user(identifier, "fresh")
    my_execute(sandbox, identifier, "CREATE USER %s@'%%' IDENTIFIED BY 'old-password-1'", (legacy,))
    before = my_all_accounts(sandbox, identifier)

    refused = run_db_user(identifier, {"users": [{"name": fresh}, {"name": legacy}]})

    assert refused.get("failed") is True and legacy in refused["msg"] and "convert_password_users" in refused["msg"]
    assert my_all_accounts(sandbox, identifier) == before

    converted = run_db_user(identifier, {"users": [{"name": fresh}, {"name": legacy}], "convert_password_users": True})
    assert [(u["name"], u["created"], u["converted"]) for u in converted["users"]] == [(fresh, True, False), (legacy, False, True)]
    assert my_account(sandbox, identifier, legacy)["plugin"] == IAM
    assert run_db_user(identifier, {"users": [{"name": fresh}, {"name": legacy}]})["changed"] is False


def test_drop_ends_live_sessions(sandbox, run_db_user, my_names):
    identifier = "sbx-mysql"
    target = sandbox.target(identifier)
    user, _role = my_names
    leaver = user(identifier, "leaver")
    my_execute(sandbox, identifier, "CREATE USER %s@'%%' IDENTIFIED BY 'leaver-pw-1'", (leaver,))
    session = pymysql.connect(host=target["login_host"], port=target["login_port"], user=leaver, password="leaver-pw-1")
    try:
        dropped = run_db_user(identifier, {"name": leaver, "state": "absent", "terminate_sessions": True})

        assert dropped["users"][0]["dropped"] is True, dropped
        assert dropped["queries"][0] == f"DROP USER '{leaver}'@'%'" and dropped["queries"][1].startswith("KILL CONNECTION ")
        assert my_account(sandbox, identifier, leaver) is None
        with pytest.raises(pymysql.err.OperationalError):
            with session.cursor() as cur:
                cur.execute("SELECT 1")
        assert run_db_user(identifier, {"name": leaver, "state": "absent"})["changed"] is False
    finally:
        session.close()


@pytest.mark.parametrize("missing", ["role", "database", "table"])
def test_missing_role_database_or_table_fails_before_the_first_write(sandbox, run_db_user, my_names, missing):
    identifier = "sbx-mariadb"
    user, role = my_names
    reader = role(identifier, "reader")
    ok_user, bad_user = user(identifier, "ok"), user(identifier, "bad")
    ghost = unique("ghost")
    bad = {"name": bad_user, "roles": [reader]}
    bad.update({"role": {"roles": [reader, ghost]}, "database": {"privileges": f"{ghost}.*:SELECT"},
                "table": {"privileges": f"app.{ghost}:SELECT"}}[missing])
    before = my_all_accounts(sandbox, identifier)

    failed = run_db_user(identifier, {"users": [{"name": ok_user, "roles": [reader]}, bad]})

    assert failed.get("failed") is True and ghost in failed["msg"] and bad_user in failed["msg"], failed
    assert "Nothing was changed" in failed["msg"]
    assert my_all_accounts(sandbox, identifier) == before


@pytest.mark.parametrize("who", ["login user", "rdsadmin", "mysql.sys", "mariadb.sys"])
def test_never_touches_the_login_user_or_reserved_accounts(sandbox, run_db_user, who):
    identifier = "sbx-mysql"
    name = sandbox.target(identifier)["master_username"] if who == "login user" else who
    host = "localhost" if who != "login user" else "%"
    before = my_all_accounts(sandbox, identifier)
    for state in ("present", "absent"):
        result = run_db_user(identifier, {"name": name, "host": host, "state": state, "convert_password_users": True})
        assert result.get("failed") is True and repr(name) in result["msg"] and "remove it from the list" in result["msg"], result
    assert my_all_accounts(sandbox, identifier) == before


def test_wildcards_in_database_names_are_literal(sandbox, run_db_user, my_names):
    """`_` in a database name is a wildcard in GRANT: the module escapes it, so app_x does not also match appYx."""
    identifier = "sbx-mariadb"
    user, _role = my_names
    database = unique("app_x")
    my_execute(sandbox, identifier, f"CREATE DATABASE `{database}`")
    name = user(identifier, "literal")
    try:
        result = run_db_user(identifier, {"name": name, "privileges": f"{database}.*:SELECT"})
        assert result["changed"] is True, result
        escaped = database.replace("_", "\\_")
        assert my_execute(sandbox, identifier, "SELECT Db FROM mysql.db WHERE User = %s", (name,)) == ((escaped,),)
        assert run_db_user(identifier, {"name": name, "privileges": f"{database}.*:SELECT"})["changed"] is False
    finally:
        my_execute(sandbox, identifier, f"DROP DATABASE IF EXISTS `{database}`")


@pytest.mark.parametrize("privileges, expected", [
    ("app.*:SELECT (col1)", "column privileges"),
    ("app.*:FLY", "'FLY' is not a MariaDB privilege"),
    ("*.*:ALL", "ALL on *.* is not supported"),
    ("app:SELECT", "not db.table"),
    ("app.*", "has no ':'"),
])
def test_bad_privilege_strings_are_refused(sandbox, run_db_user, my_names, privileges, expected):
    identifier = "sbx-mariadb"
    user, _role = my_names
    name = user(identifier, "badpriv")
    result = run_db_user(identifier, {"name": name, "privileges": privileges})
    assert result.get("failed") is True and expected in result["msg"], result
    assert my_account(sandbox, identifier, name) is None


def test_engine_auto_tells_mariadb_from_postgres(sandbox, run_db_user, my_names):
    identifier = "sbx-mariadb"
    user, _role = my_names
    name = user(identifier, "auto")
    result = run_db_user(identifier, {"name": name, "engine": "auto", "login_user": None, "login_password": None,
                                      "login_secret": sandbox.target(identifier)["secret_arn"]})
    assert result.get("changed") is True and result["engine"] == "mariadb", result
    assert_no_secret(result, sandbox.target(identifier)["master_password"])


def test_a_host_in_mixed_case_is_stored_in_lower_case_and_rerun_changes_nothing(sandbox, run_db_user, my_names):
    """The server lowercases account hosts; comparing with the host as typed made the rerun try CREATE USER again and fail."""
    identifier = "sbx-mariadb"
    user, _role = my_names
    name = user(identifier, "mixed", host="app.example.com")
    args = {"name": name, "host": "App.Example.COM", "connection_limit": 2}

    first = run_db_user(identifier, args)

    assert first["changed"] is True and first["users"][0]["host"] == "app.example.com", first
    assert my_account(sandbox, identifier, name, "app.example.com")["plugin"] == IAM
    again = run_db_user(identifier, args)
    assert again.get("failed") is not True and again["changed"] is False and again["queries"] == [], again
    duplicate = run_db_user(identifier, {"users": [{"name": name, "host": "APP.example.com"}, {"name": name, "host": "app.example.com"}]})
    assert duplicate.get("failed") is True and "listed twice" in duplicate["msg"], duplicate
    dropped = run_db_user(identifier, {"name": name, "host": "App.Example.COM", "state": "absent"})
    assert dropped["users"][0]["dropped"] is True and my_account(sandbox, identifier, name, "app.example.com") is None


def test_dropping_one_account_ends_no_session_of_another_account_with_the_same_name(sandbox, run_db_user, my_names):
    """A session shows only its user name: dropping 'twin'@'10.9.%' used to kill the sessions of 'twin'@'%', which stays."""
    identifier = "sbx-mysql"
    target = sandbox.target(identifier)
    user, _role = my_names
    twin = user(identifier, "twin")  # the fixture drops twin@%; twin@10.9.% is dropped below
    my_execute(sandbox, identifier, "CREATE USER %s@'%%' IDENTIFIED BY 'twin-pw-1'", (twin,))
    my_execute(sandbox, identifier, "CREATE USER %s@'10.9.%%' IDENTIFIED BY 'twin-pw-2'", (twin,))
    session = pymysql.connect(host=target["login_host"], port=target["login_port"], user=twin, password="twin-pw-1")
    try:
        dropped = run_db_user(identifier, {"name": twin, "host": "10.9.%", "state": "absent", "terminate_sessions": True})

        assert dropped["users"][0]["dropped"] is True and dropped["queries"] == [f"DROP USER '{twin}'@'10.9.%'"], dropped
        assert any("were not ended" in str(warning) and f"'{twin}'@'%'" in str(warning) for warning in dropped.get("warnings", [])), dropped
        with session.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone() == (f"{twin}@%",)
    finally:
        session.close()
        my_drop_accounts(sandbox, identifier, (twin, "10.9.%"))
