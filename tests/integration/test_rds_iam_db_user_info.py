"""rds_iam_db_user_info against the sandbox's real PostgreSQL 15 and MariaDB, the SQL-only PostgreSQL majors, and a
`targets` run with one server down.

Accounts are set up over the master login with plain psycopg2 / PyMySQL (tests/integration/support/db_user.py), and the
catalog is snapshotted before and after each run to prove the module changed nothing, in check mode too."""
import contextlib

import psycopg2
import pytest
from psycopg2 import sql

from sandbox.pytest_plugin import PG_MAJORS
from tests.integration.support.db_user import (
    assert_no_secret,
    login_args,
    my_all_accounts,
    my_drop_accounts,
    my_drop_roles,
    my_execute,
    pg_all_roles,
    pg_execute,
    unique,
)

MODULE = "rds_iam_db_user_info"
IAM = "AWSAuthenticationPlugin"
PASSWORD = "Pw-" + unique("user")  # the password user's password: must never come back


def run(sandbox, module_runner, identifier, args=None, **kwargs):
    return module_runner(MODULE, dict(login_args(sandbox, identifier), **(args or {})), env=sandbox.aws_env(), **kwargs)


def pg_account(name, **fields):
    account = dict(name=name, host=None, can_login=True, iam=False, iam_via=[], auth_plugin=None, has_password=None,
                   locked=False, expired=False, require_ssl=None, admin=False, roles=[], privileges={})
    account.update(fields)
    return account


def my_account(name, **fields):
    account = dict(name=name, host="%", can_login=True, iam=True, iam_via=[IAM], auth_plugin=IAM, has_password=False,
                   locked=False, expired=False, require_ssl=False, admin=False, roles=[], privileges={})
    account.update(fields)
    return account


def ident(name):
    return sql.Identifier(name)


# ---- PostgreSQL 15 (the sandbox's sbx-postgres) ----

@pytest.fixture
def pg_users(sandbox):
    """A direct IAM user (with a role), a group holding rds_iam and a user inheriting it, a password user whose
    password expired, and a locked IAM user; all dropped afterwards."""
    names = dict((key, unique("ui_" + key)) for key in ("direct", "group", "inherits", "password", "locked", "app_ro"))
    statements = [
        sql.SQL("CREATE ROLE {} NOLOGIN").format(ident(names["app_ro"])),
        sql.SQL("CREATE ROLE {} LOGIN").format(ident(names["direct"])),
        sql.SQL("GRANT rds_iam, {} TO {}").format(ident(names["app_ro"]), ident(names["direct"])),
        sql.SQL("CREATE ROLE {} NOLOGIN").format(ident(names["group"])),
        sql.SQL("GRANT rds_iam TO {}").format(ident(names["group"])),
        sql.SQL("CREATE ROLE {} LOGIN").format(ident(names["inherits"])),
        sql.SQL("GRANT {} TO {}").format(ident(names["group"]), ident(names["inherits"])),
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} VALID UNTIL '2001-01-01'").format(ident(names["password"]), sql.Literal(PASSWORD)),
        sql.SQL("GRANT {} TO {}").format(ident(names["app_ro"]), ident(names["password"])),
        sql.SQL("CREATE ROLE {} NOLOGIN").format(ident(names["locked"])),
        sql.SQL("GRANT rds_iam TO {}").format(ident(names["locked"])),
    ]
    try:
        for statement in statements:
            pg_execute(sandbox, "sbx-postgres", statement)
        yield names
    finally:
        for key in ("direct", "inherits", "password", "locked", "group", "app_ro"):
            pg_execute(sandbox, "sbx-postgres", sql.SQL("DROP ROLE IF EXISTS {}").format(ident(names[key])))


def pg_snapshot(sandbox):
    attributes = pg_execute(sandbox, "sbx-postgres", "SELECT rolname, rolcanlogin, rolsuper, rolvaliduntil, rolconnlimit "
                            "FROM pg_roles ORDER BY 1")
    return pg_all_roles(sandbox, "sbx-postgres"), attributes


def test_postgres_accounts_every_field_in_two_read_only_queries(sandbox, module_runner, pg_users):
    names = pg_users
    before = pg_snapshot(sandbox)
    wanted = sorted(names[key] for key in ("direct", "inherits", "password", "locked", "group", "app_ro"))

    checked = run(sandbox, module_runner, "sbx-postgres", {"names": wanted}, check=True)
    result = run(sandbox, module_runner, "sbx-postgres", {"names": wanted})

    assert pg_snapshot(sandbox) == before
    for outcome in (checked, result):
        assert outcome.get("failed") is not True, outcome.get("msg")
        assert outcome["changed"] is False and outcome["engine"] == "postgres" and outcome["target"] is None
        assert len(outcome["queries"]) == 2 and all(query.startswith("SELECT ") for query in outcome["queries"])
    assert checked["accounts"] == result["accounts"]
    # The master cannot read pg_authid (as on RDS): whether a role has a password is unknown. The group roles
    # (app_ro, and the group that holds rds_iam for its member) are not accounts.
    assert result["accounts"] == sorted([
        pg_account(names["direct"], iam=True, iam_via=["rds_iam"], roles=[names["app_ro"]]),
        pg_account(names["inherits"], iam=True, iam_via=[names["group"], "rds_iam"], roles=[names["group"]]),
        pg_account(names["password"], expired=True, roles=[names["app_ro"]]),
        pg_account(names["locked"], can_login=False, locked=True, iam=True, iam_via=["rds_iam"]),
    ], key=lambda account: account["name"])
    assert_no_secret(result, PASSWORD, sandbox.target("sbx-postgres")["master_password"])
    assert names["direct"] not in " ".join(result["queries"])  # names are bound, not written into the SQL


def test_postgres_without_names_lists_every_login_including_the_master(sandbox, module_runner, pg_users):
    result = run(sandbox, module_runner, "sbx-postgres")
    assert result.get("failed") is not True, result.get("msg")
    by_name = dict((account["name"], account) for account in result["accounts"])
    master = sandbox.target("sbx-postgres")["master_username"]
    assert by_name[master] == pg_account(master, admin=True, roles=["rds_superuser"])
    assert by_name[pg_users["inherits"]]["iam_via"] == [pg_users["group"], "rds_iam"]
    assert not set(by_name) & {pg_users["group"], pg_users["app_ro"], "rds_iam", "rds_superuser"}
    assert [account["name"] for account in result["accounts"]] == sorted(by_name) and len(result["queries"]) == 2


def test_a_name_postgres_would_truncate_fails_naming_it(sandbox, module_runner):
    result = run(sandbox, module_runner, "sbx-postgres", {"names": ["n" * 64]})
    assert result["failed"] is True and "64 bytes long" in result["msg"] and "shorter name" in result["msg"], result["msg"]


# ---- MariaDB (the sandbox's sbx-mariadb) ----

@pytest.fixture
def my_users(sandbox):
    """IAM users with and without REQUIRE SSL, one also with a password, a locked IAM user, an expired password user,
    a role, database and table privileges; all dropped afterwards."""
    names = dict((key, unique("ui_" + key)) for key in ("ssl", "nossl", "both", "locked", "password", "reader", "db"))
    db, quoted = names["db"], dict((key, "`%s`" % value) for key, value in names.items())
    statements = [
        "CREATE DATABASE %s" % quoted["db"],
        "CREATE TABLE %s.orders (i int)" % quoted["db"],
        "CREATE ROLE %s" % quoted["reader"],
        "CREATE USER %s@'%%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL" % quoted["ssl"],
        "GRANT %s TO %s@'%%'" % (quoted["reader"], quoted["ssl"]),
        "GRANT SELECT ON %s.* TO %s@'%%'" % (quoted["db"], quoted["ssl"]),
        "GRANT SELECT, UPDATE ON %s.orders TO %s@'%%' WITH GRANT OPTION" % (quoted["db"], quoted["ssl"]),
        "CREATE USER %s@'%%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'" % quoted["nossl"],
        "CREATE USER %s@'%%' IDENTIFIED VIA AWSAuthenticationPlugin USING 'RDS' OR mysql_native_password USING PASSWORD('%s') "
        "REQUIRE SSL" % (quoted["both"], PASSWORD),
        "CREATE USER %s@'%%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL ACCOUNT LOCK" % quoted["locked"],
        "CREATE USER %s@'%%' IDENTIFIED BY '%s' PASSWORD EXPIRE" % (quoted["password"], PASSWORD),
        "GRANT PROCESS ON *.* TO %s@'%%'" % quoted["password"],
    ]
    try:
        for statement in statements:
            my_execute(sandbox, "sbx-mariadb", statement)
        yield names
    finally:
        my_drop_accounts(sandbox, "sbx-mariadb", *[(names[key], "%") for key in ("ssl", "nossl", "both", "locked", "password")])
        my_drop_roles(sandbox, "sbx-mariadb", names["reader"])
        my_execute(sandbox, "sbx-mariadb", "DROP DATABASE IF EXISTS `%s`" % db)


def my_snapshot(sandbox):
    tables = ["SELECT * FROM mysql.global_priv ORDER BY 1, 2", "SELECT * FROM mysql.roles_mapping ORDER BY 1, 2, 3",
              "SELECT * FROM mysql.db ORDER BY 1, 2, 3", "SELECT * FROM mysql.tables_priv ORDER BY 1, 2, 3, 4"]
    return my_all_accounts(sandbox, "sbx-mariadb"), [my_execute(sandbox, "sbx-mariadb", query) for query in tables]


def test_mariadb_accounts_every_field_in_two_read_only_queries(sandbox, module_runner, my_users):
    names = my_users
    before = my_snapshot(sandbox)
    wanted = [names[key] for key in ("ssl", "nossl", "both", "locked", "password", "reader")]

    checked = run(sandbox, module_runner, "sbx-mariadb", {"names": wanted}, check=True)
    result = run(sandbox, module_runner, "sbx-mariadb", {"names": wanted, "engine": "mariadb"})

    assert my_snapshot(sandbox) == before
    for outcome in (checked, result):
        assert outcome.get("failed") is not True, outcome.get("msg")
        assert outcome["changed"] is False and outcome["engine"] == "mariadb" and outcome["target"] is None
        assert len(outcome["queries"]) == 2 and all(query.startswith("SELECT ") for query in outcome["queries"])
    assert checked["accounts"] == result["accounts"]
    db = names["db"]
    assert result["accounts"] == sorted([
        my_account(names["ssl"], require_ssl=True, roles=[names["reader"]],
                   privileges={"%s.*" % db: ["SELECT"], "%s.orders" % db: ["GRANT OPTION", "SELECT", "UPDATE"]}),
        my_account(names["nossl"]),
        my_account(names["both"], has_password=True, require_ssl=True),
        my_account(names["locked"], locked=True, require_ssl=True),
        my_account(names["password"], iam=False, iam_via=[], auth_plugin="mysql_native_password", has_password=True,
                   expired=True, privileges={"*.*": ["PROCESS"]}),
    ], key=lambda account: account["name"])
    assert_no_secret(result, PASSWORD, sandbox.target("sbx-mariadb")["master_password"])
    assert names["ssl"] not in " ".join(result["queries"])


def test_mariadb_without_names_lists_the_master_as_admin_and_no_role(sandbox, module_runner, my_users):
    result = run(sandbox, module_runner, "sbx-mariadb")
    assert result.get("failed") is not True, result.get("msg")
    master = sandbox.target("sbx-mariadb")["master_username"]
    accounts = dict(((account["name"], account["host"]), account) for account in result["accounts"])
    assert accounts[(master, "%")]["admin"] is True and accounts[(master, "%")]["iam"] is False
    assert accounts[(master, "%")]["has_password"] is True and my_users["reader"] in accounts[(master, "%")]["roles"]
    assert not [key for key in accounts if key[0] == my_users["reader"]]
    assert accounts[(my_users["nossl"], "%")] == my_account(my_users["nossl"])
    assert len(result["queries"]) == 2
    assert_no_secret(result, PASSWORD, sandbox.target("sbx-mariadb")["master_password"])


# ---- many targets, one of them down ----

def test_targets_report_a_stopped_server_and_read_the_others(sandbox, module_runner, pg_users, my_users):
    identifiers = ["sbx-postgres", "sbx-mariadb", "sbx-mysql"]
    described = module_runner("rds_iam_fleet_info", {"identifiers": identifiers}, env=sandbox.aws_env())["targets"]
    targets = sorted(described, key=lambda target: identifiers.index(target["identifier"]))
    overrides = dict((identifier, {"login_host": sandbox.target(identifier)["login_host"],
                                   "login_port": sandbox.target(identifier)["login_port"]}) for identifier in identifiers)
    args = {"targets": targets, "login_overrides": overrides, "ca_cert": sandbox.ca_cert, "connect_timeout": 5,
            "names": [pg_users["direct"], my_users["nossl"]]}
    before = (pg_snapshot(sandbox), my_snapshot(sandbox))

    with sandbox.stopped("sbx-mysql"):
        checked = module_runner(MODULE, args, env=sandbox.aws_env(), check=True)
        result = module_runner(MODULE, args, env=sandbox.aws_env())

    assert (pg_snapshot(sandbox), my_snapshot(sandbox)) == before
    for outcome in (checked, result):
        assert outcome.get("failed") is not True and outcome["changed"] is False, outcome.get("msg")
        assert outcome["msg"] == "2 of 3 targets read"
        assert [entry["identifier"] for entry in outcome["results"]] == identifiers
    pg, maria, down = result["results"]
    assert pg == {"kind": "instance", "identifier": "sbx-postgres", "region": sandbox.region, "engine": "postgres",
                  "accounts": [pg_account(pg_users["direct"], iam=True, iam_via=["rds_iam"], roles=[pg_users["app_ro"]])],
                  "queries": pg["queries"]}
    assert maria == {"kind": "instance", "identifier": "sbx-mariadb", "region": sandbox.region, "engine": "mariadb",
                     "accounts": [my_account(my_users["nossl"])], "queries": maria["queries"]}
    assert len(pg["queries"]) == 2 and len(maria["queries"]) == 2
    assert set(down) == {"kind", "identifier", "region", "failed", "msg"} and down["failed"] is True
    assert down["msg"].startswith("could not connect to mysql at 127.0.0.1:%s" % sandbox.target("sbx-mysql")["login_port"])
    assert any("instance sbx-mysql could not be read: could not connect" in str(warning) for warning in result.get("warnings", []))
    assert_no_secret(result, PASSWORD, *[sandbox.target(identifier)["master_password"] for identifier in identifiers])


# ---- PostgreSQL 15 to 18 (SQL-only servers with RDS's role model) ----

@pytest.fixture(params=PG_MAJORS, ids=lambda major: f"pg{major}")
def server(request, pg_majors):
    return pg_majors.get(request.param)


@contextlib.contextmanager
def pg_major_users(server):
    """As the master: a direct and an inherited IAM user; as the superuser: a password login that may read pg_authid."""
    names = dict((key, unique("um_" + key)) for key in ("direct", "group", "inherits", "auditor"))
    auditor_password = "Aud-" + unique("pw")
    master = server.master_connection()
    superuser = server.superuser_connection()
    try:
        with master.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident(names["direct"])))
            cur.execute(sql.SQL("GRANT rds_iam TO {}").format(ident(names["direct"])))
            cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(ident(names["group"])))
            cur.execute(sql.SQL("GRANT rds_iam TO {}").format(ident(names["group"])))
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident(names["inherits"])))
            cur.execute(sql.SQL("GRANT {} TO {}").format(ident(names["group"]), ident(names["inherits"])))
        with superuser.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident(names["auditor"]), sql.Literal(auditor_password)))
            cur.execute(sql.SQL("GRANT SELECT ON pg_catalog.pg_authid TO {}").format(ident(names["auditor"])))
        yield names, auditor_password
    finally:
        with superuser.cursor() as cur:
            cur.execute(sql.SQL("REVOKE ALL ON pg_catalog.pg_authid FROM {}").format(ident(names["auditor"])))
            for key in ("auditor", "inherits", "direct", "group"):
                cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident(names[key])))
        master.close()
        superuser.close()


def test_every_postgres_major_follows_direct_and_inherited_memberships(server, module_runner):
    with pg_major_users(server) as (names, auditor_password):
        wanted = sorted(names.values()) + [server.master_user]
        as_master = module_runner(MODULE, dict(server.db_login_args(), engine="postgres", names=wanted))
        auditor_args = dict(server.db_login_args(), login_user=names["auditor"], login_password=auditor_password)
        as_auditor = module_runner(MODULE, dict(auditor_args, engine="postgres", names=wanted), check=True)
    for result in (as_master, as_auditor):
        assert result.get("failed") is not True, result.get("msg")
        assert len(result["queries"]) == 2
        assert_no_secret(result, auditor_password, server.master_password)
    direct = pg_account(names["direct"], iam=True, iam_via=["rds_iam"])
    inherits = pg_account(names["inherits"], iam=True, iam_via=[names["group"], "rds_iam"], roles=[names["group"]])
    # From 16 the master holds ADMIN, without INHERIT or SET, on every role it created: that passes nothing on.
    master = pg_account(server.master_user, admin=True, roles=["rds_superuser"])
    assert as_master["accounts"] == sorted([pg_account(names["auditor"]), direct, inherits, master], key=lambda a: a["name"])
    # A login that may read pg_authid learns who has a password.
    assert as_auditor["accounts"] == sorted([
        pg_account(names["auditor"], has_password=True), dict(direct, has_password=False), dict(inherits, has_password=False),
        dict(master, has_password=True)], key=lambda a: a["name"])


def test_the_master_cannot_read_pg_authid_on_any_major(server):
    conn = server.master_connection()
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("SELECT rolpassword FROM pg_catalog.pg_authid LIMIT 1")
    finally:
        conn.close()
