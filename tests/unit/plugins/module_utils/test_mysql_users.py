"""MySQL/MariaDB user planning: both SQL dialects and the fixed number of reads (privilege strings: test_mysql_privileges)."""
import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils._db_users import UserSyncError, desired_users
from ansible_collections.rdsiam.auth.plugins.module_utils._mysql_privileges import ALL, GLOBAL, GRANT_OPTION, SCHEMA_ALL, Level
from ansible_collections.rdsiam.auth.plugins.module_utils._mysql_user_state import names_to_terminate, read_state
from ansible_collections.rdsiam.auth.plugins.module_utils._mysql_users import check_names, plan_mysql_user_changes

IAM = "AWSAuthenticationPlugin"
OPTIONS = {"grant_mode": "append", "convert_password_users": False, "terminate_sessions": False}
CREATE = "CREATE USER %s@%s IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL"


# ---- planning ----

def state(accounts=None, role_grants=None, default_roles=None, privileges=None, objects=(("app", None), ("app", "orders"))):
    return {"admin": "admin", "accounts": accounts or {}, "role_grants": role_grants or {}, "default_roles": default_roles or {},
            "privileges": privileges or {}, "objects": set(objects)}


def account(plugin=IAM, ssl_type="ANY", limit=0, is_role=False, default_role="", locked=False):
    return {"plugin": plugin, "ssl_type": ssl_type, "connection_limit": limit, "is_role": is_role, "default_role": default_role,
            "locked": locked}


MARIADB_ROLES = {("reader", ""): account(plugin="", is_role=True), ("writer", ""): account(plugin="", is_role=True)}
MYSQL_ROLES = {("reader", "%"): account(plugin="caching_sha2_password"), ("writer", "%"): account(plugin="caching_sha2_password")}


def plan(users, dialect="mariadb", current=None, sessions=None, **options):
    if current is None:
        current = state(accounts=dict(MARIADB_ROLES if dialect == "mariadb" else MYSQL_ROLES))
    return plan_mysql_user_changes(desired_users({"users": users}), dialect, current, dict(OPTIONS, **options), sessions)


def pairs(result):
    return [(statement.sql, statement.params) for statement in result.statements]


def test_mariadb_create_with_roles_default_role_and_privileges():
    result = plan([{"name": "alice", "roles": ["reader", "writer"], "privileges": "app.*:SELECT/app.orders:ALL", "connection_limit": 3}])
    assert pairs(result) == [
        (CREATE + " WITH MAX_USER_CONNECTIONS 3", ["alice", "%"]),
        ("GRANT %s TO %s@%s", ["reader", "alice", "%"]),
        ("GRANT %s TO %s@%s", ["writer", "alice", "%"]),
        ("SET DEFAULT ROLE %s FOR %s@%s", ["reader", "alice", "%"]),
        ("GRANT SELECT ON `app`.* TO %s@%s", ["alice", "%"]),
        ("GRANT ALL PRIVILEGES ON `app`.`orders` TO %s@%s", ["alice", "%"]),
    ]
    assert result.users[0]["privileges_granted"] == {"app.*": ["SELECT"], "app.orders": [ALL]}


def test_hosts_are_compared_and_written_in_lower_case_as_the_server_stores_them():
    current = state(accounts={**MARIADB_ROLES, ("alice", "db.example"): account()})
    result = plan([{"name": "alice", "host": "DB.Example"}], current=current)
    assert result.statements == [] and result.users[0]["host"] == "db.example"
    assert pairs(plan([{"name": "bob", "host": "DB.Example"}])) == [(CREATE, ["bob", "db.example"])]


def test_sessions_are_ended_only_for_names_no_remaining_account_shares():
    accounts = {("bob", "%"): account(), ("bob", "10.%"): account(), ("ann", "%"): account(), ("cy", "%"): account(),
                ("cy", ""): account(is_role=True)}
    users = desired_users({"users": [{"name": "bob", "host": "10.%", "state": "absent"}, {"name": "ann", "state": "absent"},
                                     {"name": "cy", "state": "absent"}, {"name": "gone", "state": "absent"}]})
    assert names_to_terminate(users, accounts) == ({"ann", "cy"}, {"bob": ["'bob'@'%'"]})


def test_mysql_dialect_names_roles_with_a_host_and_activates_them_all():
    result = plan([{"name": "alice", "roles": ["reader", "writer"]}], dialect="mysql")
    assert pairs(result) == [
        (CREATE, ["alice", "%"]),
        ("GRANT %s@%s TO %s@%s", ["reader", "%", "alice", "%"]),
        ("GRANT %s@%s TO %s@%s", ["writer", "%", "alice", "%"]),
        ("SET DEFAULT ROLE ALL TO %s@%s", ["alice", "%"]),
    ]


def test_mysql_user_names_stop_at_32_characters_mariadb_at_80():
    with pytest.raises(UserSyncError, match="33 characters long, more than the 32 characters a user name can have on mysql"):
        check_names(desired_users({"name": "u" * 33}), "mysql")
    check_names(desired_users({"name": "u" * 33}), "mariadb")
    with pytest.raises(UserSyncError, match="81 characters"):
        check_names(desired_users({"name": "u" * 81}), "mariadb")
    with pytest.raises(UserSyncError, match="role .*33 characters"):
        check_names(desired_users({"name": "u", "roles": ["r" * 33]}), "mysql")


def test_percent_in_names_survives_the_driver_template():
    result = plan([{"name": "per%cent", "privileges": "100%.*:SELECT"}], current=state(objects=[("100%", None)]))
    assert pairs(result)[1] == ("GRANT SELECT ON `100\\%%`.* TO %s@%s", ["per%cent", "%"])
    assert ("GRANT SELECT ON `100\\%%`.* TO %s@%s" % ("'x'", "'%'")) == "GRANT SELECT ON `100\\%`.* TO 'x'@'%'"


def test_matching_accounts_need_no_statement_and_all_counts_as_held():
    key = ("alice", "%")
    current = state(accounts={**MARIADB_ROLES, key: account(default_role="reader")}, role_grants={key: {"reader"}},
                    default_roles={key: {"reader"}},
                    privileges={key: {Level("app", None): set(SCHEMA_ALL) | {"DELETE HISTORY"}, GLOBAL: {"PROCESS", GRANT_OPTION}}})
    result = plan([{"name": "alice", "roles": ["reader"], "privileges": "app.*:ALL/*.*:PROCESS,GRANT"}], current=current)
    assert result.statements == [] and result.before == result.after


def test_append_adds_only_what_is_missing_and_exact_revokes_the_rest():
    key = ("alice", "%")
    current = state(accounts={**MARIADB_ROLES, key: account(default_role="reader")}, role_grants={key: {"reader", "writer"}},
                    default_roles={key: {"reader"}},
                    privileges={key: {Level("app", None): {"SELECT", "DELETE", GRANT_OPTION}, Level("app", "orders"): {"UPDATE"}}})
    users = [{"name": "alice", "roles": ["writer"], "privileges": "app.*:SELECT,INSERT"}]
    assert pairs(plan(users, current=current)) == [("SET DEFAULT ROLE %s FOR %s@%s", ["writer", "alice", "%"]),
                                                   ("GRANT INSERT ON `app`.* TO %s@%s", ["alice", "%"])]
    exact = plan(users, current=current, grant_mode="exact")
    assert pairs(exact) == [
        ("REVOKE %s FROM %s@%s", ["reader", "alice", "%"]),
        ("SET DEFAULT ROLE %s FOR %s@%s", ["writer", "alice", "%"]),
        ("GRANT INSERT ON `app`.* TO %s@%s", ["alice", "%"]),
        ("REVOKE DELETE ON `app`.* FROM %s@%s", ["alice", "%"]),
        ("REVOKE GRANT OPTION ON `app`.* FROM %s@%s", ["alice", "%"]),
        ("REVOKE UPDATE ON `app`.`orders` FROM %s@%s", ["alice", "%"]),
    ]
    assert exact.users[0]["privileges_revoked"] == {"app.*": ["DELETE", GRANT_OPTION], "app.orders": ["UPDATE"]}


def test_exact_mode_without_roles_clears_the_default_role():
    key = ("alice", "%")
    current = state(accounts={key: account(default_role="reader")}, role_grants={key: {"reader"}}, default_roles={key: {"reader"}})
    assert pairs(plan([{"name": "alice"}], current=current, grant_mode="exact")) == [
        ("REVOKE %s FROM %s@%s", ["reader", "alice", "%"]), ("SET DEFAULT ROLE NONE FOR %s@%s", ["alice", "%"])]
    assert pairs(plan([{"name": "alice"}], dialect="mysql", current=current, grant_mode="exact"))[-1] == \
        ("SET DEFAULT ROLE NONE TO %s@%s", ["alice", "%"])


def test_an_iam_account_without_require_ssl_gets_it():
    current = state(accounts={("alice", "%"): account(ssl_type="")})
    assert pairs(plan([{"name": "alice", "connection_limit": 2}], current=current)) == [
        ("ALTER USER %s@%s REQUIRE SSL WITH MAX_USER_CONNECTIONS 2", ["alice", "%"])]


def test_password_accounts_are_refused_unless_conversion_is_asked_for():
    current = state(accounts={("legacy", "%"): account(plugin="mysql_native_password", ssl_type="")})
    with pytest.raises(UserSyncError, match="user\\(s\\) 'legacy'@'%' already log in with another authentication plugin"):
        plan([{"name": "legacy"}], current=current)
    result = plan([{"name": "legacy"}], current=current, convert_password_users=True)
    assert pairs(result) == [("ALTER USER %s@%s IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL", ["legacy", "%"])]
    assert result.users[0]["converted"] is True


@pytest.mark.parametrize("name", ["admin", "rdsadmin", "mysql.sys", "mysql.session", "mysql.infoschema", "rdsproxyadmin"])
def test_the_login_user_and_reserved_accounts_are_never_touched(name):
    for desired_state in ("present", "absent", "locked"):
        with pytest.raises(UserSyncError, match="remove it from the list"):
            plan([{"name": name, "state": desired_state}], convert_password_users=True)


def test_everything_missing_is_reported_at_once_before_any_statement():
    with pytest.raises(UserSyncError) as failed:
        plan([{"name": "ok", "roles": ["reader"]},
              {"name": "bad", "roles": ["ghost"], "privileges": "nodb.*:SELECT/app.nosuch:SELECT/app.orders:SELECT"}])
    message = str(failed.value)
    assert "role 'ghost'" in message and "database 'nodb'" in message and "table 'app.nosuch'" in message
    assert "orders" not in message and "'ok'" not in message and message.endswith("Nothing was changed.")


def test_roles_listed_as_users_are_refused():
    with pytest.raises(UserSyncError, match="is a role, not a user"):
        plan([{"name": "reader"}])
    mysql_role = state(accounts={("reader", "%"): account(plugin="caching_sha2_password", is_role=True)})
    with pytest.raises(UserSyncError, match="is a role, not a user"):
        plan([{"name": "reader"}], dialect="mysql", current=mysql_role, convert_password_users=True)


def test_drop_comes_before_killing_sessions_so_nobody_logs_back_in():
    current = state(accounts={("bob", "%"): account()})
    result = plan([{"name": "bob", "state": "absent"}], current=current, sessions={"bob": [17, 18]}, terminate_sessions=True)
    assert pairs(result) == [("DROP USER %s@%s", ["bob", "%"]), ("KILL CONNECTION 17", None), ("KILL CONNECTION 18", None)]
    assert pairs(plan([{"name": "bob", "state": "absent"}], current=current, sessions={"bob": [17]})) == [
        ("DROP USER %s@%s", ["bob", "%"])]


# ---- locked ----

def test_locking_batches_accounts_skips_locked_and_missing_ones_and_leaves_grants_alone():
    key = ("bob", "%")
    current = state(accounts={**MARIADB_ROLES, key: account(), ("ann", "10.%"): account(), ("cy", "%"): account(locked=True)},
                    role_grants={key: {"reader"}}, default_roles={key: {"reader"}})
    users = [{"name": "bob", "state": "locked", "roles": ["writer"], "privileges": "app.*:SELECT"},
             {"name": "ann", "host": "10.%", "state": "locked"}, {"name": "cy", "state": "locked"}, {"name": "gone", "state": "locked"}]
    result = plan(users, current=current, grant_mode="exact")
    assert pairs(result) == [("ALTER USER %s@%s, %s@%s ACCOUNT LOCK", ["bob", "%", "ann", "10.%"])]
    assert [(u["name"], u["exists"], u["locked"], u["changed"]) for u in result.users] == [
        ("bob", True, True, True), ("ann", True, True, True), ("cy", True, False, False), ("gone", False, False, False)]
    assert result.before["bob@%"]["locked"] is False
    assert result.after["bob@%"] == dict(result.before["bob@%"], locked=True)
    assert result.before["cy@%"] == result.after["cy@%"] and result.after["gone@%"] == {"exists": False}


def test_sessions_of_locked_accounts_are_killed_after_the_lock_even_when_locked_before():
    current = state(accounts={("bob", "%"): account(), ("cy", "%"): account(locked=True)})
    users = [{"name": "bob", "state": "locked"}, {"name": "cy", "state": "locked"}]
    result = plan(users, current=current, sessions={"bob": [17], "cy": [21]}, terminate_sessions=True)
    assert pairs(result) == [("ALTER USER %s@%s ACCOUNT LOCK", ["bob", "%"]), ("KILL CONNECTION 17", None), ("KILL CONNECTION 21", None)]
    assert [u["changed"] for u in result.users] == [True, True]
    assert pairs(plan(users, current=current, sessions={}, terminate_sessions=True)) == [("ALTER USER %s@%s ACCOUNT LOCK", ["bob", "%"])]


def test_sessions_of_a_locked_name_are_ended_only_when_no_account_of_that_name_can_still_log_in():
    accounts = {("bob", "%"): account(), ("bob", "10.%"): account(), ("ann", "%"): account(), ("ann", "10.%"): account()}
    users = desired_users({"users": [{"name": "bob", "host": "10.%", "state": "locked"}, {"name": "ann", "state": "locked"},
                                     {"name": "ann", "host": "10.%", "state": "absent"}]})
    assert names_to_terminate(users, accounts) == ({"ann"}, {"bob": ["'bob'@'%'"]})


def test_present_unlocks_and_a_converted_locked_password_account_is_unlocked_too():
    current = state(accounts={("bob", "%"): account(locked=True, ssl_type=""),
                              ("legacy", "%"): account(plugin="mysql_native_password", ssl_type="", locked=True)})
    result = plan([{"name": "bob", "connection_limit": 2}, {"name": "legacy"}], current=current, convert_password_users=True)
    assert pairs(result) == [
        ("ALTER USER %s@%s REQUIRE SSL WITH MAX_USER_CONNECTIONS 2 ACCOUNT UNLOCK", ["bob", "%"]),
        ("ALTER USER %s@%s IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL ACCOUNT UNLOCK", ["legacy", "%"])]
    assert [(u["unlocked"], u["converted"]) for u in result.users] == [(True, False), (True, True)]
    assert result.before["bob@%"]["locked"] is True and result.after["bob@%"]["locked"] is False
    just_unlock = plan([{"name": "bob"}], current=state(accounts={("bob", "%"): account(locked=True)}))
    assert pairs(just_unlock) == [("ALTER USER %s@%s ACCOUNT UNLOCK", ["bob", "%"])]


def test_locking_a_password_account_needs_no_conversion():
    current = state(accounts={("legacy", "%"): account(plugin="mysql_native_password", ssl_type="")})
    result = plan([{"name": "legacy", "state": "locked"}], current=current)
    assert pairs(result) == [("ALTER USER %s@%s ACCOUNT LOCK", ["legacy", "%"])] and result.users[0]["converted"] is False


# ---- reading ----

class RecordingCursor:
    """Answers every state query with no rows (CURRENT_USER aside) and records them."""

    def __init__(self):
        self.executed = []
        self._rows = []

    def execute(self, statement, params=None):
        self.executed.append((statement, params))
        self._rows = [("admin@%",)] if statement.startswith("SELECT CURRENT_USER()") else []

    def fetchone(self):
        return self._rows[0]

    def fetchall(self):
        return list(self._rows)


class AccountsCursor(RecordingCursor):
    """Answers the mysql.user read with one IAM account, locked as each server writes it."""

    def __init__(self, dialect):
        super().__init__()
        self.dialect = dialect

    def execute(self, statement, params=None):
        super().execute(statement, params)
        if "FROM mysql.user" in statement and "CURRENT_USER" not in statement:
            locked = "Y"  # MariaDB: from JSON_VALUE(Priv, '$.account_locked') in global_priv; MySQL: the column itself
            self._rows = [("bob", "%", IAM, "ANY", 0, "N", "", locked)]


@pytest.mark.parametrize("dialect, lock_source", [("mariadb", "JSON_VALUE(g.Priv, '$.account_locked')"), ("mysql", "u.account_locked")])
def test_the_lock_is_read_with_the_accounts_in_the_same_query(dialect, lock_source):
    cursor = AccountsCursor(dialect)
    current = read_state(cursor, dialect, desired_users({"name": "bob", "state": "locked"}))
    assert current["accounts"][("bob", "%")]["locked"] is True
    account_reads = [statement for statement, _params in cursor.executed if "FROM mysql.user" in statement]
    assert len(account_reads) == 1 and lock_source in account_reads[0]
    assert ("mysql.global_priv" in account_reads[0]) is (dialect == "mariadb")


@pytest.mark.parametrize("dialect, queries", [("mariadb", 5), ("mysql", 6)])
@pytest.mark.parametrize("count", [1, 40, 400])
def test_state_of_any_number_of_users_is_read_in_a_fixed_number_of_queries(dialect, queries, count):
    users = desired_users({"users": [{"name": "user%d" % index, "roles": ["reader"], "privileges": "app.orders:SELECT"}
                                     for index in range(count)]})
    cursor = RecordingCursor()
    current = read_state(cursor, dialect, users)
    assert len(cursor.executed) == queries
    assert current["admin"] == "admin"
    assert all("%s" in statement for statement, params in cursor.executed if params)


# ---- batching ----

def test_statements_that_differ_only_in_the_account_are_sent_once_for_many_users():
    users = [{"name": "u%d" % index, "roles": ["reader"], "privileges": "app.*:SELECT"} for index in range(3)]
    result = plan(users)
    accounts = ["u0", "%", "u1", "%", "u2", "%"]
    assert pairs(result) == [
        ("CREATE USER %s@%s IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS', %s@%s IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS', "
         "%s@%s IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL", accounts),
        ("GRANT %s TO %s@%s, %s@%s, %s@%s", ["reader"] + accounts),
        # MariaDB sets one account's default role per statement
        ("SET DEFAULT ROLE %s FOR %s@%s", ["reader", "u0", "%"]),
        ("SET DEFAULT ROLE %s FOR %s@%s", ["reader", "u1", "%"]),
        ("SET DEFAULT ROLE %s FOR %s@%s", ["reader", "u2", "%"]),
        ("GRANT SELECT ON `app`.* TO %s@%s, %s@%s, %s@%s", accounts),
    ]
    assert all(user["created"] and user["changed"] for user in result.users)


def test_mysql_sets_default_roles_for_many_accounts_at_once_and_batches_stay_bounded():
    result = plan([{"name": "u%03d" % index, "roles": ["reader"]} for index in range(250)], dialect="mysql")
    statements = [statement.sql for statement in result.statements]
    assert [sql.split(" %s")[0] for sql in statements] == ["CREATE USER"] * 3 + ["GRANT"] * 3 + ["SET DEFAULT ROLE ALL TO"] * 3
    assert [len(statement.params) for statement in result.statements] == [200, 200, 100, 202, 202, 102, 200, 200, 100]


def test_users_with_different_clauses_are_not_merged():
    result = plan([{"name": "a", "connection_limit": 2}, {"name": "b"}, {"name": "c", "host": "10.%"}])
    assert pairs(result) == [(CREATE + " WITH MAX_USER_CONNECTIONS 2", ["a", "%"]),
                             ("CREATE USER %s@%s IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS', %s@%s IDENTIFIED WITH "
                              "AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL", ["b", "%", "c", "10.%"])]
