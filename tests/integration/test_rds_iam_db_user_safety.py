"""rds_iam_db_user against hostile names, names the server would truncate, broken admin logins, and a real token login."""
import socket

import pytest
from psycopg2 import sql

from sandbox import iam_login
from tests.integration.support.db_user import (
    assert_no_secret,
    db_user_runner,
    login_args,
    my_account,
    my_all_accounts,
    my_drop_accounts,
    my_drop_roles,
    my_execute,
    pg_all_roles,
    pg_drop_roles,
    pg_execute,
    pg_role,
    unique,
)


@pytest.fixture
def run_db_user(sandbox, module_runner):
    return db_user_runner(sandbox, module_runner)


# Each is stored exactly (checked from the catalog) and changes nothing else.
HOSTILE = ["o'brien", 'dq"uote', "back`tick", "semi;colon", "dash--dash", "per%cent", "under_score", "ünïcødé", "in ner",
           "tab\tname", "back\\slash", "x'); DROP USER admin; --", " leading"]


# With Ansible's default no_target_syslog=false, a NUL byte in any argument already makes AnsibleModule fail
# ("Failed to log to syslog") before the module runs; with it set, the module's own check must say why.
NO_SYSLOG = {"_ansible_no_log": True}  # what no_target_syslog (or no_log) sends


def _hostile_names(suffix):
    return [f"{name}{suffix}" for name in HOSTILE]


def test_hostile_names_are_stored_exactly_on_postgres(sandbox, run_db_user):
    identifier = "sbx-postgres"
    suffix = unique("")
    sentinel = unique("sentinel")
    evil_role = f"rds_iam; DROP ROLE {sentinel}"
    names = _hostile_names(suffix) + [f"trailing{suffix} ", f"UPPER{suffix}"]
    pg_execute(sandbox, identifier, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(sentinel)))
    pg_execute(sandbox, identifier, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(evil_role)))
    before = pg_all_roles(sandbox, identifier)
    users = [{"name": name, "roles": [evil_role]} for name in names]
    try:
        created = run_db_user(identifier, {"users": users})

        assert created["changed"] is True and all(u["created"] for u in created["users"]), created
        for name in names:
            assert pg_role(sandbox, identifier, name) == {"login": True, "connection_limit": -1, "member_of": sorted(["rds_iam", evil_role])}
        after = pg_all_roles(sandbox, identifier)
        assert {name: entry for name, entry in after.items() if name not in names} == before
        assert run_db_user(identifier, {"users": users})["changed"] is False

        dropped = run_db_user(identifier, {"users": [{"name": name, "state": "absent"} for name in names]})
        assert all(u["dropped"] for u in dropped["users"]), dropped
        assert pg_all_roles(sandbox, identifier) == before
    finally:
        pg_drop_roles(sandbox, identifier, *names, evil_role, sentinel)


def test_hostile_names_are_stored_exactly_on_mariadb(sandbox, run_db_user):
    identifier = "sbx-mariadb"
    suffix = unique("")
    sentinel = unique("sentinel")
    evil_role = f"r'; DROP USER {sentinel}; --"
    names = _hostile_names(suffix)
    my_execute(sandbox, identifier, "CREATE USER %s@'%%' IDENTIFIED BY 'sentinel-pw-1'", (sentinel,))
    my_execute(sandbox, identifier, "CREATE ROLE `%s`" % evil_role.replace("`", "``"))
    before = my_all_accounts(sandbox, identifier)
    users = [{"name": name, "roles": [evil_role], "host": "10.%"} for name in names]
    try:
        created = run_db_user(identifier, {"users": users})

        assert created["changed"] is True and all(u["created"] for u in created["users"]), created
        for name in names:
            assert my_account(sandbox, identifier, name, "10.%") == {"plugin": "AWSAuthenticationPlugin", "ssl_type": "ANY",
                                                                     "max_user_connections": 0, "default_role": evil_role}
        after = my_all_accounts(sandbox, identifier)
        assert {key: grants for key, grants in after.items() if key[0] not in names} == before
        assert run_db_user(identifier, {"users": users})["changed"] is False

        run_db_user(identifier, {"users": [{"name": name, "host": "10.%", "state": "absent"} for name in names]})
        assert my_all_accounts(sandbox, identifier) == before
    finally:
        my_drop_accounts(sandbox, identifier, (sentinel, "%"), *[(name, "10.%") for name in names])
        my_drop_roles(sandbox, identifier, evil_role)


@pytest.mark.parametrize("name, reason", [
    ("x" * 64, "64 bytes long, more than the 63 bytes a user name can have on postgres: use a shorter name (PostgreSQL would silently truncate it)"),
    ("é" * 32, "64 bytes long"),
    ("nul\x00byte", "NUL character"),
    ("pg_evil", "reserved by PostgreSQL"),
    ("public", "reserved by PostgreSQL"),
])
def test_postgres_refuses_names_it_would_truncate_or_cannot_store(sandbox, run_db_user, name, reason):
    identifier = "sbx-aurora-pg"
    before = pg_all_roles(sandbox, identifier)
    result = run_db_user(identifier, {"name": name, **NO_SYSLOG})
    assert result.get("failed") is True and reason in result["msg"], result
    assert pg_all_roles(sandbox, identifier) == before


def test_postgres_takes_a_name_of_exactly_63_bytes(sandbox, run_db_user):
    identifier = "sbx-aurora-pg"
    name = "é" * 30 + unique("")[:3]  # 60 + 3 bytes
    assert len(name.encode()) == 63
    try:
        assert run_db_user(identifier, {"name": name})["changed"] is True
        assert pg_role(sandbox, identifier, name)["member_of"] == ["rds_iam"]
    finally:
        pg_drop_roles(sandbox, identifier, name)


@pytest.mark.parametrize("name, host, reason", [
    ("x" * 81, "%", "81 characters long, more than the 80 characters a user name can have on mariadb"),
    ("trailing ", "%", "ends with a space"),
    ("emoji\U0001F600", "%", "outside the Basic Multilingual Plane"),
    ("nul\x00byte", "%", "NUL character"),
    ("fine", "h" * 256, "256 characters long; the limit here is 255"),
])
def test_mariadb_refuses_names_it_would_truncate_or_cannot_store(sandbox, run_db_user, name, host, reason):
    identifier = "sbx-mysql"
    before = my_all_accounts(sandbox, identifier)
    result = run_db_user(identifier, {"name": name, "host": host, **NO_SYSLOG})
    assert result.get("failed") is True and reason in result["msg"], result
    assert my_all_accounts(sandbox, identifier) == before


def test_mariadb_takes_a_name_of_exactly_80_characters(sandbox, run_db_user):
    identifier = "sbx-mysql"
    name = unique("u") + "ü" * (80 - len(unique("u")))
    assert len(name) == 80
    try:
        assert run_db_user(identifier, {"name": name})["changed"] is True
        assert my_account(sandbox, identifier, name)["plugin"] == "AWSAuthenticationPlugin"
    finally:
        my_drop_accounts(sandbox, identifier, (name, "%"))


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("identifier", ["sbx-postgres", "sbx-mariadb"])
@pytest.mark.parametrize("failure", ["wrong port", "bad password", "certificate name", "admin token refused"])
def test_connection_failures_name_host_port_user_and_cause_but_no_secret(sandbox, run_db_user, identifier, failure):
    target = sandbox.target(identifier)
    engine = "postgres" if "postgres" in target["engine"] else "mariadb"
    port = target["login_port"]
    args = {"name": unique("never"), "engine": engine}
    if failure == "wrong port":
        port = _free_port()
        args["login_port"] = port
    elif failure == "bad password":
        args["login_password"] = "Wr0ng-but-s3cret-pw"
    elif failure == "certificate name":
        args["endpoint"] = target["endpoint"].replace(identifier, "someone-else")
    else:
        # The master is no IAM user: the server refuses its token, which must not show up anywhere.
        args.update(login_password=None, login_iam=True)
    result = run_db_user(identifier, args)
    assert result.get("failed") is True, result
    message = result["msg"]
    assert f"127.0.0.1:{port}" in message and f"user '{target['master_username']}'" in message, message
    assert_no_secret(result, target["master_password"], "Wr0ng-but-s3cret-pw", "X-Amz-Signature=", "X-Amz-Credential")


@pytest.mark.parametrize("identifier", ["sbx-postgres", "sbx-mariadb"])
def test_a_user_created_here_logs_in_with_an_iam_token(sandbox, run_db_user, identifier):
    db_user = unique("tokenuser")
    iam_name = unique("t-dbuser")
    restore = iam_login.enable_iam_auth(sandbox, identifier)
    try:
        assert run_db_user(identifier, {"name": db_user})["changed"] is True
        creds = iam_login.iam_user_with_policy(sandbox, iam_name, [iam_login.allow_connect(iam_login.connect_arn(sandbox, identifier, db_user))])
        token = iam_login.mint_token(creds, sandbox.target(identifier), db_user)
        assert iam_login.login(sandbox, identifier, db_user, token) == db_user
    finally:
        restore()
        iam_login.delete_iam_user(sandbox, iam_name)
        run_db_user(identifier, {"name": db_user, "state": "absent"})


def test_a_playbook_at_vvvv_with_check_and_diff_never_shows_the_admin_password(sandbox, playbook_runner):
    identifier = "sbx-postgres"
    password = sandbox.target(identifier)["master_password"]
    name = unique("pb_user")
    task = {"name": "onboard", "rdsiam.auth.rds_iam_db_user": dict(login_args(sandbox, identifier), name=name)}
    plays = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [task]}]
    try:
        checked = playbook_runner(plays, check=True, diff=True, verbosity=4)
        assert checked.rc == 0, checked.stdout[-3000:]
        assert checked.task("onboard")["result"]["changed"] is True
        assert pg_role(sandbox, identifier, name) is None
        real = playbook_runner(plays, diff=True, verbosity=4)
        assert real.rc == 0 and real.task("onboard")["result"]["queries"] == checked.task("onboard")["result"]["queries"]
        for run in (checked, real):
            assert password not in run.stdout and password not in run.stderr
            assert password not in repr(run.results)
    finally:
        pg_drop_roles(sandbox, identifier, name)
