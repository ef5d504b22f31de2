"""What the PostgreSQL and MySQL/MariaDB user planners share: desired users and plan execution."""
import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils._db_users import (
    USER_OPTION_SPEC,
    UserPlan,
    UserSyncError,
    desired_users,
    execute_plan,
    module_result,
    new_user_result,
    users_for_engine,
    wanted_users,
)


def test_one_top_level_user_is_a_one_entry_list():
    assert desired_users({"name": "alice", "roles": ["r", "r", "s"], "state": None}) == [
        {"name": "alice", "state": "present", "roles": ["r", "s"], "privileges": None, "host": None, "connection_limit": None}]


def test_locked_is_a_user_state_and_results_say_whether_the_user_exists_and_was_locked():
    assert desired_users({"users": [{"name": "bob", "state": "locked"}]})[0]["state"] == "locked"
    assert "locked" in USER_OPTION_SPEC["state"]["choices"]
    result = new_user_result("bob", "%", exists=True)
    assert (result["exists"], result["locked"], result["unlocked"], result["host"]) == (True, False, False, "%")
    assert new_user_result("bob")["exists"] is False and "host" not in new_user_result("bob")


def test_users_listed_twice_or_not_at_all_are_refused():
    with pytest.raises(UserSyncError, match="listed twice"):
        desired_users({"users": [{"name": "a"}, {"name": "a"}]})
    assert len(desired_users({"users": [{"name": "a", "host": "x"}, {"name": "a", "host": "y"}]})) == 2
    with pytest.raises(UserSyncError, match="listed twice"):  # the same MySQL account: hosts compare without case
        desired_users({"users": [{"name": "a", "host": "Db.Example"}, {"name": "a", "host": "db.example"}]})
    with pytest.raises(UserSyncError, match="listed twice"):  # no host is '%'
        desired_users({"users": [{"name": "a"}, {"name": "a", "host": "%"}]})
    with pytest.raises(UserSyncError, match="no user given"):
        desired_users({"users": []})
    with pytest.raises(UserSyncError, match="connection_limit -2 is not valid"):
        desired_users({"name": "a", "connection_limit": -2})


class DriverError(Exception):
    pass


class Cursor:
    def __init__(self, fail_on=None):
        self.executed = []
        self.fail_on = fail_on

    def mogrify(self, statement, params):
        return (statement % tuple("'%s'" % value for value in params)).encode()

    def execute(self, statement, params=None):
        if statement == self.fail_on:
            raise DriverError("role does not exist")
        self.executed.append(statement)


def a_plan(*statements):
    plan = UserPlan()
    for statement, params in statements:
        plan.add(statement, params)
    return plan


def test_check_mode_renders_every_statement_and_runs_none():
    cursor = Cursor()
    plan = a_plan(("CREATE ROLE \"a%\"", None), ("SELECT f(%s)", ("x",)))
    assert execute_plan(cursor, plan, True, DriverError, str) == ['CREATE ROLE "a%"', "SELECT f('x')"]
    assert cursor.executed == []
    assert execute_plan(cursor, plan, False, DriverError, str) == ['CREATE ROLE "a%"', "SELECT f('x')"]
    assert cursor.executed == ['CREATE ROLE "a%"', "SELECT f(%s)"]


def test_a_refused_statement_is_named_with_its_position_and_what_became_of_the_others():
    cursor = Cursor(fail_on="B")
    with pytest.raises(UserSyncError) as failed:
        execute_plan(cursor, a_plan(("A", None), ("B", None), ("C", None)), False, DriverError, lambda index: "%d stay applied" % index)
    assert str(failed.value) == "statement 2 of 3 failed: B; the server said: role does not exist. 1 stay applied"
    assert cursor.executed == ["A"]


def test_tolerated_failures_do_not_stop_the_plan():
    cursor = Cursor(fail_on="KILL 1")
    execute_plan(cursor, a_plan(("KILL 1", None), ("KILL 2", None)), False, DriverError, str, tolerate=lambda s, e: True)
    assert cursor.executed == ["KILL 2"]


def test_module_result_carries_diff_only_in_diff_mode():
    plan = a_plan(("A", None))
    plan.before, plan.after = {"u": {"exists": False}}, {"u": {"exists": True}}
    assert "diff" not in module_result(plan, ["A"], "postgres", False)
    assert module_result(plan, ["A"], "postgres", True)["diff"] == {"before": {"u": {"exists": False}}, "after": {"u": {"exists": True}}}


def test_users_by_dialect_give_each_engine_its_own_checked_list():
    wanted = wanted_users({"users_by_dialect": {"postgres": [{"name": "ada", "roles": ["app_ro"]}],
                                                "mariadb": [{"name": "ada", "privileges": "*.*:SELECT", "connection_limit": 3}]}})
    assert users_for_engine(wanted, "postgres", "pg:5432") == [
        {"name": "ada", "state": "present", "roles": ["app_ro"], "privileges": None, "host": None, "connection_limit": None}]
    assert users_for_engine(wanted, "mariadb", "maria:3306")[0]["privileges"] == "*.*:SELECT"
    with pytest.raises(UserSyncError, match=r"users_by_dialect has no list for mysql, the engine of my:3306: add users_by_dialect.mysql"):
        users_for_engine(wanted, "mysql", "my:3306")


def test_one_users_list_serves_every_engine():
    wanted = wanted_users({"users": [{"name": "ada"}], "users_by_dialect": None})
    assert users_for_engine(wanted, "mysql", "my:3306") == users_for_engine(wanted, "postgres", "pg:5432")


@pytest.mark.parametrize("by_dialect, match", [
    ({}, r"users_by_dialect is \{\}: give a dict of user lists"),
    ({"aurora-postgresql": [{"name": "ada"}]}, r"users_by_dialect has a key 'aurora-postgresql': use postgres, mysql or mariadb"),
    ({"postgres": []}, r"users_by_dialect.postgres is empty: list at least one user, or leave postgres out"),
    ({"postgres": [{"name": "ada", "state": "gone"}]}, r"users_by_dialect.postgres: .*state.*gone"),
    ({"postgres": [{"roles": ["r"]}]}, r"users_by_dialect.postgres: .*name"),
    ({"mysql": [{"name": "a"}, {"name": "a"}]}, r"user 'a' is listed twice"),
])
def test_bad_users_by_dialect_are_refused_naming_the_list(by_dialect, match):
    with pytest.raises(UserSyncError, match=match):
        wanted_users({"users_by_dialect": by_dialect})
