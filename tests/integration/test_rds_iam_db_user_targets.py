"""rds_iam_db_user over many targets in one run: the sandbox's PostgreSQL and MariaDB servers, each target's own
RDS-managed master secret (read from moto), users per engine, a target that fails alone, check and diff mode.

The catalog is read back with plain psycopg2 / PyMySQL over the master login (tests/integration/support/db_user.py)."""
import pytest

from tests.integration.support.db_user import (
    my_account,
    my_drop_accounts,
    my_grants,
    pg_drop_roles,
    pg_role,
    unique,
)

MODULE = "rds_iam_db_user"
TARGETS = ["sbx-postgres", "sbx-mariadb"]


def fleet_targets(sandbox, module_runner):
    """Both targets as rds_iam_fleet_info returns them (each with its master secret), and the login_overrides that
    reach their servers."""
    targets = module_runner("rds_iam_fleet_info", {"identifiers": TARGETS}, env=sandbox.aws_env())["targets"]
    overrides = {identifier: {"login_host": sandbox.target(identifier)["login_host"], "login_port": sandbox.target(identifier)["login_port"]}
                 for identifier in TARGETS}
    return sorted(targets, key=lambda target: TARGETS.index(target["identifier"])), overrides


@pytest.fixture
def names(sandbox):
    """Two unique user names, dropped from both servers whatever happens."""
    made = [unique("tg_ada"), unique("tg_bob")]
    yield made
    pg_drop_roles(sandbox, "sbx-postgres", *made)
    my_drop_accounts(sandbox, "sbx-mariadb", *[(name, "%") for name in made])


def by_identifier(result):
    return dict((entry["identifier"], entry) for entry in result["results"])


def test_one_run_gives_each_engine_its_own_users_with_each_targets_own_secret(sandbox, module_runner, names):
    targets, overrides = fleet_targets(sandbox, module_runner)
    assert all(target["master_user_secret_arn"] for target in targets)
    args = {"targets": targets, "login_overrides": overrides, "ca_cert": sandbox.ca_cert, "users_by_dialect": {
        "postgres": [{"name": name, "roles": ["pg_read_all_data"]} for name in names],
        "mariadb": [{"name": name, "privileges": "*.*:SELECT", "connection_limit": 4} for name in names]}}

    checked = module_runner(MODULE, args, env=sandbox.aws_env(), check=True, diff=True)
    assert checked.get("failed") is not True and checked["changed"] is True, checked.get("msg")
    assert pg_role(sandbox, "sbx-postgres", names[0]) is None and my_account(sandbox, "sbx-mariadb", names[0]) is None
    assert [(entry["before_header"], sorted(entry["after"])) for entry in checked["diff"]] == [
        ("sbx-postgres", sorted(names)), ("sbx-mariadb", sorted("%s@%%" % name for name in names))]

    done = module_runner(MODULE, args, env=sandbox.aws_env())
    assert done.get("failed") is not True and done["changed"] is True and done["msg"] == "2 of 2 targets changed", done.get("msg")
    pg, maria = by_identifier(done)["sbx-postgres"], by_identifier(done)["sbx-mariadb"]
    assert (pg["kind"], pg["region"], pg["engine"], maria["engine"]) == ("instance", targets[0]["region"], "postgres", "mariadb")
    assert [user["created"] for user in pg["users"] + maria["users"]] == [True] * 4
    assert pg["queries"] == checked["results"][0]["queries"] and maria["queries"] == checked["results"][1]["queries"]
    for name in names:
        assert pg_role(sandbox, "sbx-postgres", name) == {"login": True, "connection_limit": -1,
                                                          "member_of": ["pg_read_all_data", "rds_iam"]}
        account = my_account(sandbox, "sbx-mariadb", name)
        assert (account["plugin"], account["ssl_type"], account["max_user_connections"]) == ("AWSAuthenticationPlugin", "ANY", 4)
        assert [grant for grant in my_grants(sandbox, "sbx-mariadb", name) if grant.startswith("GRANT SELECT ON *.*")], name

    again = module_runner(MODULE, args, env=sandbox.aws_env())
    assert again["changed"] is False and [entry["queries"] for entry in again["results"]] == [[], []]


def test_a_target_that_fails_fails_alone_and_the_others_are_done(sandbox, module_runner, names):
    targets, overrides = fleet_targets(sandbox, module_runner)
    closed = dict(overrides, **{"sbx-mariadb": {"login_host": "127.0.0.1", "login_port": 1}})
    result = module_runner(MODULE, {"targets": targets, "login_overrides": closed, "ca_cert": sandbox.ca_cert,
                                    "connect_timeout": 5, "users": [{"name": names[0]}]}, env=sandbox.aws_env())
    assert result["failed"] is True and result["changed"] is True
    pg, maria = by_identifier(result)["sbx-postgres"], by_identifier(result)["sbx-mariadb"]
    assert pg["users"][0]["created"] is True and pg_role(sandbox, "sbx-postgres", names[0])["member_of"] == ["rds_iam"]
    assert maria["failed"] is True and "could not connect to mysql" in maria["msg"] and "users" not in maria
    assert result["msg"].startswith("1 of 2 targets changed; 1 failed: instance sbx-mariadb: could not connect to mysql")
    assert my_account(sandbox, "sbx-mariadb", names[0]) is None


def test_an_engine_without_a_list_fails_naming_the_list_to_add(sandbox, module_runner, names):
    targets, overrides = fleet_targets(sandbox, module_runner)
    result = module_runner(MODULE, {"targets": targets, "login_overrides": overrides, "ca_cert": sandbox.ca_cert,
                                    "users_by_dialect": {"postgres": [{"name": names[0]}]}}, env=sandbox.aws_env())
    maria = by_identifier(result)["sbx-mariadb"]
    assert result["failed"] is True and maria["failed"] is True
    assert maria["msg"].startswith("users_by_dialect has no list for mariadb, the engine of %s:" % sandbox.target("sbx-mariadb")["endpoint"])
    assert maria["msg"].endswith("add users_by_dialect.mariadb")
    assert by_identifier(result)["sbx-postgres"]["users"][0]["created"] is True


@pytest.mark.parametrize("extra, message", [
    ({"endpoint": "db.example.com"}, "parameters are mutually exclusive: targets|endpoint"),
    ({"login_override": {"login_host": "127.0.0.1"}}, "parameters are mutually exclusive: targets|login_override"),
    ({"users_by_dialect": {"postgres": [{"name": "x"}]}}, "parameters are mutually exclusive: users|name|users_by_dialect"),
    ({"login_overrides": {"sbx-postgres": "127.0.0.1:5432"}}, "login_overrides['sbx-postgres'] is '127.0.0.1:5432': give a dict"),
])
def test_many_targets_refuse_what_each_target_brings_itself(sandbox, module_runner, extra, message):
    targets, _overrides = fleet_targets(sandbox, module_runner)
    result = module_runner(MODULE, dict({"targets": targets, "users": [{"name": "never_made"}]}, **extra), env=sandbox.aws_env())
    assert result["failed"] is True and message in result["msg"], result["msg"]
    assert pg_role(sandbox, "sbx-postgres", "never_made") is None
