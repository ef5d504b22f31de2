"""PostgreSQL user planning: statements from (current state, desired users), and the fixed number of reads."""
import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils._db_users import UserSyncError, desired_users
from ansible_collections.rdsiam.auth.plugins.module_utils._pg_users import (
    ROLES_QUERY,
    SERVER_QUERY,
    TERMINATE_QUERY,
    PgServer,
    check_no_lockout,
    check_names,
    plan_pg_user_changes,
    read_state,
)

ADMIN = "postgres"
OPTIONS = {"grant_mode": "append", "convert_password_users": False, "reassign_owned_to": None, "terminate_sessions": False}


def role(login=False, member_of=(), limit=-1, superuser=False, admin_has_privileges=False, oid=16384, sessions=0):
    return {"login": login, "connection_limit": limit, "superuser": superuser, "member_of": list(member_of),
            "admin_has_privileges": admin_has_privileges, "oid": oid, "sessions": sessions}


def catalog(**extra):
    roles = {"rds_iam": role(), "app_ro": role(), "app_rw": role(), ADMIN: role(login=True, admin_has_privileges=True)}
    roles.update(extra)
    return roles


def plan(users, roles=None, **options):
    return plan_pg_user_changes(desired_users({"users": users}), ADMIN, catalog() if roles is None else roles, dict(OPTIONS, **options))


def sql_of(result):
    return [statement.sql for statement in result.statements]


def test_new_users_are_created_with_login_rds_iam_and_their_roles():
    result = plan([{"name": "alice", "roles": ["app_ro"]}, {"name": "bob", "roles": ["app_ro", "app_rw"], "connection_limit": 5}])
    assert sql_of(result) == ['CREATE ROLE "alice" LOGIN', 'GRANT "rds_iam", "app_ro" TO "alice"',
                              'CREATE ROLE "bob" LOGIN CONNECTION LIMIT 5', 'GRANT "rds_iam", "app_ro", "app_rw" TO "bob"']
    assert all(statement.params is None for statement in result.statements)
    assert [(u["name"], u["created"], u["roles_granted"]) for u in result.users] == [
        ("alice", True, ["app_ro"]), ("bob", True, ["app_ro", "app_rw"])]
    assert result.after["bob"] == {"exists": True, "login": True, "iam": True, "connection_limit": 5, "roles": ["app_ro", "app_rw"]}


def test_listing_rds_iam_among_the_roles_changes_nothing():
    assert sql_of(plan([{"name": "alice", "roles": ["rds_iam", "app_ro"]}])) == ['CREATE ROLE "alice" LOGIN', 'GRANT "rds_iam", "app_ro" TO "alice"']
    roles = catalog(alice=role(login=True, member_of=["app_ro", "rds_iam"]))
    assert plan([{"name": "alice", "roles": ["rds_iam", "app_ro"]}], roles, grant_mode="exact").statements == []


def test_a_user_that_already_matches_needs_no_statement():
    roles = catalog(alice=role(login=True, member_of=["app_ro", "rds_iam"]))
    result = plan([{"name": "alice", "roles": ["app_ro"]}], roles)
    assert result.statements == [] and not result.changed and result.users[0]["changed"] is False
    assert result.before == result.after


def test_hostile_names_are_quoted_by_the_one_helper():
    evil = 'rds_iam"; DROP ROLE x; --'
    result = plan([{"name": 'o"neil', "roles": [evil]}], catalog(**{evil: role()}))
    assert sql_of(result) == ['CREATE ROLE "o""neil" LOGIN', 'GRANT "rds_iam", "rds_iam""; DROP ROLE x; --" TO "o""neil"']


def test_connection_limit_and_login_are_fixed_on_an_existing_iam_role():
    roles = catalog(alice=role(login=False, member_of=["rds_iam"], limit=2))
    result = plan([{"name": "alice", "connection_limit": 4}], roles)
    assert sql_of(result) == ['ALTER ROLE "alice" LOGIN CONNECTION LIMIT 4']
    assert result.users[0]["converted"] is False


def test_group_roles_are_never_turned_into_users():
    with pytest.raises(UserSyncError, match="user 'app_ro' exists as a role without LOGIN outside rds_iam"):
        plan([{"name": "app_ro"}], convert_password_users=True)
    with pytest.raises(UserSyncError, match="user 'app_ro' exists as a role without LOGIN outside rds_iam"):
        plan([{"name": "app_ro", "state": "absent"}])
    # A disabled IAM user (NOLOGIN, still in rds_iam) and a password user are users: they can be dropped.
    roles = catalog(off=role(member_of=["rds_iam"]), legacy=role(login=True))
    assert plan([{"name": "off", "state": "absent"}, {"name": "legacy", "state": "absent"}], roles).users[1]["dropped"] is True


def test_password_users_are_refused_naming_them_unless_conversion_is_asked_for():
    roles = catalog(legacy=role(login=True), other=role(login=True))
    with pytest.raises(UserSyncError) as failed:
        plan([{"name": "legacy"}, {"name": "other"}, {"name": "fresh"}], roles)
    message = str(failed.value)
    assert "'legacy', 'other'" in message and "convert_password_users" in message and "fresh" not in message
    result = plan([{"name": "legacy"}], roles, convert_password_users=True)
    assert sql_of(result) == ['GRANT "rds_iam" TO "legacy"'] and result.users[0]["converted"] is True


@pytest.mark.parametrize("name", [ADMIN, "rdsadmin", "rds_superuser", "rds_iam", "rdsproxyadmin", "rdsrepladmin"])
@pytest.mark.parametrize("state", ["present", "absent", "locked"])
def test_the_login_user_and_reserved_roles_are_never_touched(name, state):
    with pytest.raises(UserSyncError, match="user '%s' is .*remove it from the list" % name):
        plan([{"name": name, "state": state}], convert_password_users=True)


def test_missing_roles_are_named_and_nothing_is_planned():
    with pytest.raises(UserSyncError) as failed:
        plan([{"name": "alice", "roles": ["app_ro"]}, {"name": "bob", "roles": ["ghost", "app_ro", "phantom"]}])
    assert "user 'bob': role(s) 'ghost', 'phantom' do not exist" in str(failed.value)
    assert "Nothing was changed" in str(failed.value)


def test_mysql_only_options_and_self_membership_are_refused():
    with pytest.raises(UserSyncError, match="MySQL/MariaDB only"):
        plan([{"name": "alice", "privileges": "app.*:SELECT"}])
    with pytest.raises(UserSyncError, match="MySQL/MariaDB only"):
        plan([{"name": "alice", "host": "%"}])
    with pytest.raises(UserSyncError, match="lists itself in roles"):
        plan([{"name": "alice", "roles": ["alice"]}], catalog(alice=role(login=True, member_of=["rds_iam"])))


def test_superusers_are_refused():
    with pytest.raises(UserSyncError, match="is a superuser"):
        plan([{"name": "boss"}], catalog(boss=role(login=True, superuser=True, member_of=["rds_iam"])))


def test_exact_mode_revokes_unlisted_roles_but_never_rds_iam():
    roles = catalog(alice=role(login=True, member_of=["app_ro", "app_rw", "rds_iam"]))
    assert sql_of(plan([{"name": "alice", "roles": ["app_rw"]}], roles)) == []
    result = plan([{"name": "alice", "roles": ["app_rw"]}], roles, grant_mode="exact")
    assert sql_of(result) == ['REVOKE "app_ro" FROM "alice"'] and result.users[0]["roles_revoked"] == ["app_ro"]
    result = plan([{"name": "alice", "roles": []}], roles, grant_mode="exact")
    assert sql_of(result) == ['REVOKE "app_ro", "app_rw" FROM "alice"']


def test_drop_borrows_membership_reassigns_drops_and_terminates_with_a_bound_name():
    roles = catalog(bob=role(login=True, member_of=["rds_iam"], oid=24601), ann=role(login=True, member_of=["rds_iam"], oid=24602))
    result = plan([{"name": "bob", "state": "absent"}, {"name": "ann", "state": "absent"}], roles, terminate_sessions=True)
    # Sessions end after every drop (run after the commit): a failed drop ends none, and no new login slips in between.
    terminations = [(statement.sql, statement.params) for statement in result.statements[-2:]]
    assert terminations == [(TERMINATE_QUERY, (24601,)), (TERMINATE_QUERY, (24602,))]
    assert sql_of(result)[:4] == ['GRANT "bob" TO "postgres"', 'REASSIGN OWNED BY "bob" TO "postgres"', 'DROP OWNED BY "bob"',
                                  'DROP ROLE "bob"']
    assert "usesysid = %s" in TERMINATE_QUERY
    assert result.users[0]["dropped"] is True and result.after["bob"] == {"exists": False}


def test_drop_to_another_heir_borrows_its_membership_and_gives_it_back():
    roles = catalog(bob=role(login=True, member_of=["rds_iam"], admin_has_privileges=True), heir=role())
    result = plan([{"name": "bob", "state": "absent"}], roles, reassign_owned_to="heir")
    assert sql_of(result) == ['GRANT "heir" TO "postgres"', 'REASSIGN OWNED BY "bob" TO "heir"', 'DROP OWNED BY "bob"',
                              'DROP ROLE "bob"', 'REVOKE "heir" FROM "postgres"']


def test_drop_needs_an_existing_heir_and_a_missing_user_needs_nothing():
    roles = catalog(bob=role(login=True, member_of=["rds_iam"]))
    with pytest.raises(UserSyncError, match="reassign_owned_to role 'ghost' does not exist"):
        plan([{"name": "bob", "state": "absent"}], roles, reassign_owned_to="ghost")
    assert plan([{"name": "nobody", "state": "absent"}], roles, reassign_owned_to="ghost").statements == []


# ---- locked ----

def test_locking_takes_login_away_and_keeps_memberships_and_a_rerun_changes_nothing():
    roles = catalog(bob=role(login=True, member_of=["app_ro", "rds_iam"], limit=3))
    result = plan([{"name": "bob", "state": "locked", "roles": ["app_rw"], "connection_limit": 9}], roles)
    # Roles and the connection limit listed next to locked are not applied: the lock leaves grants as they are.
    assert sql_of(result) == ['ALTER ROLE "bob" NOLOGIN']
    entry = result.users[0]
    assert (entry["locked"], entry["exists"], entry["changed"], entry["dropped"], entry["roles_granted"]) == (True, True, True, False, [])
    assert result.before["bob"]["login"] is True
    assert result.after["bob"] == dict(result.before["bob"], login=False)
    locked = catalog(bob=role(login=False, member_of=["app_ro", "rds_iam"], limit=3))
    again = plan([{"name": "bob", "state": "locked"}], locked, terminate_sessions=True)
    assert again.statements == [] and again.users[0]["changed"] is False and again.users[0]["locked"] is False
    assert again.before == again.after


def test_locking_a_user_that_does_not_exist_changes_nothing_and_says_so():
    result = plan([{"name": "ghost", "state": "locked"}], terminate_sessions=True)
    assert result.statements == [] and not result.changed
    assert (result.users[0]["exists"], result.users[0]["changed"], result.users[0]["locked"]) == (False, False, False)
    assert result.before["ghost"] == result.after["ghost"] == {"exists": False}


def test_sessions_of_locked_users_end_after_the_lock_including_users_locked_before():
    roles = catalog(bob=role(login=True, member_of=["rds_iam"], oid=501), ann=role(member_of=["rds_iam"], oid=502, sessions=2),
                    cy=role(member_of=["rds_iam"], oid=503))
    users = [{"name": "bob", "state": "locked"}, {"name": "ann", "state": "locked"}, {"name": "cy", "state": "locked"}]
    result = plan(users, roles, terminate_sessions=True)
    assert [(statement.sql, statement.params) for statement in result.statements] == [
        ('ALTER ROLE "bob" NOLOGIN', None), (TERMINATE_QUERY, (501,)), (TERMINATE_QUERY, (502,))]
    # ann was locked already but still has sessions: ending them is a change; cy has none: nothing to do.
    assert [(u["name"], u["locked"], u["changed"]) for u in result.users] == [("bob", True, True), ("ann", False, True), ("cy", False, False)]
    assert sql_of(plan(users, roles)) == ['ALTER ROLE "bob" NOLOGIN']


def test_present_lifts_the_lock_and_says_so():
    roles = catalog(bob=role(login=False, member_of=["app_ro", "rds_iam"]))
    result = plan([{"name": "bob", "roles": ["app_ro"]}], roles)
    assert sql_of(result) == ['ALTER ROLE "bob" LOGIN']
    assert (result.users[0]["unlocked"], result.users[0]["locked"], result.users[0]["exists"]) == (True, False, True)
    assert result.before["bob"]["login"] is False and result.after["bob"]["login"] is True
    assert plan([{"name": "bob", "roles": ["app_ro"]}], catalog(bob=role(login=True, member_of=["app_ro", "rds_iam"]))).users[0]["unlocked"] is False


def test_password_users_can_be_locked_without_conversion_but_superusers_cannot():
    assert sql_of(plan([{"name": "legacy", "state": "locked"}], catalog(legacy=role(login=True)))) == ['ALTER ROLE "legacy" NOLOGIN']
    with pytest.raises(UserSyncError, match="user 'boss' is a superuser"):
        plan([{"name": "boss", "state": "locked"}], catalog(boss=role(login=True, superuser=True)))


def test_a_group_role_listed_as_locked_is_left_as_it_is():
    result = plan([{"name": "app_ro", "state": "locked"}], terminate_sessions=True)
    assert result.statements == [] and result.users[0]["exists"] is True and result.users[0]["changed"] is False


def test_names_are_checked_before_any_query():
    with pytest.raises(UserSyncError, match="NUL character"):
        check_names(desired_users({"name": "x\x00"}), OPTIONS)
    with pytest.raises(UserSyncError, match="64 bytes"):
        check_names(desired_users({"name": "ok", "roles": ["r" * 64]}), OPTIONS)
    with pytest.raises(UserSyncError, match="reassign_owned_to role"):
        check_names(desired_users({"name": "ok"}), dict(OPTIONS, reassign_owned_to="h" * 64))


class RecordingCursor:
    """Answers the two state queries and records every statement."""

    def __init__(self, roles):
        self.roles = roles
        self.executed = []
        self._rows = []

    def execute(self, statement, params=None):
        self.executed.append((statement, params))
        if statement == SERVER_QUERY:
            self._rows = [(ADMIN, ADMIN, 160004, [["rds_superuser", ADMIN, True], ["rds_iam", "rds_superuser", False]], [ADMIN])]
        else:
            assert statement == ROLES_QUERY
            self._rows = [(name, *values) for name, values in self.roles.items() if name in params[0]]

    def fetchone(self):
        return self._rows[0]

    def fetchall(self):
        return list(self._rows)


@pytest.mark.parametrize("count", [1, 50, 500])
def test_state_of_any_number_of_users_is_read_in_two_queries(count):
    users = desired_users({"users": [{"name": "user%d" % index, "roles": ["app_ro"]} for index in range(count)]})
    cursor = RecordingCursor({"app_ro": (False, -1, False, [], False, 16390, 0), "rds_iam": (False, -1, False, [], False, 16391, 0)})
    admin, roles, server = read_state(cursor, users, None)
    assert len(cursor.executed) == 2
    assert admin == ADMIN and sorted(roles) == ["app_ro", "rds_iam"]
    assert server.major == 16 and server.session_user == ADMIN and server.logins == {ADMIN}
    assert [tuple(edge) for edge in server.memberships] == [("rds_superuser", ADMIN, True), ("rds_iam", "rds_superuser", False)]
    assert roles["app_ro"]["sessions"] == 0 and "pg_stat_activity" in ROLES_QUERY
    names = cursor.executed[1][1][0]
    assert len(names) == count + 3 and "postgres" in names  # users, app_ro, rds_iam and the default heir


# ---- no lockout by inheritance ----

def pg16(*memberships, logins=(ADMIN,)):
    """A PostgreSQL 16 server whose membership edges are (role, member, conveys)."""
    return PgServer(160004, ADMIN, memberships, logins)


def plan_on(server, users, roles, **options):
    return plan_pg_user_changes(desired_users({"users": users}), ADMIN, roles, dict(OPTIONS, **options), server)


def test_converting_a_role_the_login_belongs_to_is_refused_naming_the_chain():
    server = pg16(("rds_superuser", ADMIN, True), ("rds_iam", "rds_superuser", False), ("ops", ADMIN, True),
                  logins=(ADMIN, "ops"))
    roles = catalog(ops=role(login=True))
    with pytest.raises(UserSyncError) as failed:
        plan_on(server, [{"name": "ops"}], roles, convert_password_users=True)
    message = str(failed.value)
    assert "'postgres', the login this module uses" in message
    assert "postgres \u2192 ops \u2192 rds_iam" in message and 'REVOKE "ops" FROM "postgres"' in message
    assert message.endswith("Nothing was changed.")


def test_a_chain_two_roles_deep_is_found_and_named():
    server = pg16(("team", ADMIN, True), ("ops", "team", True), logins=(ADMIN, "ops"))
    with pytest.raises(UserSyncError, match="postgres \u2192 team \u2192 ops \u2192 rds_iam"):
        plan_on(server, [{"name": "ops"}], catalog(ops=role(login=True)), convert_password_users=True)


def test_other_password_logins_that_would_inherit_are_refused_unless_listed_for_conversion():
    server = pg16(("ops", "carol", True), ("ops", "dave", True), ("ops", "nologin_group", True),
                  logins=(ADMIN, "ops", "carol", "dave"))
    roles = catalog(ops=role(login=True), carol=role(login=True, member_of=["ops"]), dave=role(login=True, member_of=["ops"]))
    with pytest.raises(UserSyncError) as failed:
        plan_on(server, [{"name": "ops"}], roles, convert_password_users=True)
    message = str(failed.value)
    assert "login role(s) 'carol', 'dave'" in message and "carol \u2192 ops \u2192 rds_iam" in message
    assert "nologin_group" not in message and "convert_password_users" in message
    result = plan_on(server, [{"name": "ops"}, {"name": "carol", "roles": ["ops"]}, {"name": "dave", "roles": ["ops"]}],
                     roles, convert_password_users=True)
    assert sql_of(result) == ['GRANT "rds_iam" TO "ops"', 'GRANT "rds_iam" TO "carol"', 'GRANT "rds_iam" TO "dave"']


def test_granting_a_role_that_already_holds_rds_iam_is_checked_the_same_way():
    # lead gets iam_team, which holds rds_iam: even without rds_iam itself in the plan, the master would inherit it.
    server = pg16(("rds_iam", "iam_team", True), ("lead", ADMIN, True), logins=(ADMIN, "lead"))
    roles = catalog(iam_team=role(member_of=["rds_iam"]), lead=role(login=True))
    problems = check_no_lockout([{"name": "lead", "state": "present"}], ADMIN, server, [("grant", "iam_team", "lead")])
    assert len(problems) == 1 and "postgres \u2192 lead \u2192 iam_team \u2192 rds_iam" in problems[0]
    with pytest.raises(UserSyncError, match="postgres \u2192 lead \u2192 "):
        plan_on(server, [{"name": "lead", "roles": ["iam_team"]}], roles, convert_password_users=True)


def test_admin_only_memberships_from_postgresql_16_convey_nothing():
    # The master created ops, so it holds ADMIN on ops without INHERIT or SET: converting ops leaves the master alone.
    server = pg16(("rds_superuser", ADMIN, True), ("rds_iam", "rds_superuser", False), ("ops", ADMIN, False),
                  logins=(ADMIN, "ops"))
    result = plan_on(server, [{"name": "ops"}], catalog(ops=role(login=True)), convert_password_users=True)
    assert sql_of(result) == ['GRANT "rds_iam" TO "ops"']


def test_before_postgresql_16_every_membership_counts():
    server = PgServer(150007, ADMIN, [("ops", ADMIN, True)], (ADMIN, "ops"))
    with pytest.raises(UserSyncError, match="postgres \u2192 ops \u2192 rds_iam"):
        plan_on(server, [{"name": "ops"}], catalog(ops=role(login=True)), convert_password_users=True)


def test_the_session_user_is_protected_as_well_as_the_current_user():
    server = PgServer(170002, "deployer", [("ops", "deployer", True)], (ADMIN, "deployer", "ops"))
    with pytest.raises(UserSyncError, match="'deployer', the login this module uses"):
        plan_on(server, [{"name": "ops"}], catalog(ops=role(login=True)), convert_password_users=True)


def test_revokes_and_drops_never_count_as_a_lockout():
    server = pg16(("rds_iam", "alice", True), ("app_ro", "alice", True), ("alice", ADMIN, False), logins=(ADMIN, "alice"))
    roles = catalog(alice=role(login=True, member_of=["app_ro", "rds_iam"]))
    assert sql_of(plan_on(server, [{"name": "alice", "roles": []}], roles, grant_mode="exact")) == ['REVOKE "app_ro" FROM "alice"']
    dropped = plan_on(server, [{"name": "alice", "state": "absent"}], roles)
    assert sql_of(dropped)[0] == 'GRANT "alice" TO "postgres" WITH INHERIT TRUE'


def test_the_borrowed_membership_is_explicitly_inheriting_from_postgresql_16_only():
    roles = catalog(bob=role(login=True, member_of=["rds_iam"]), heir=role())
    on_15 = plan_on(PgServer(150007, ADMIN), [{"name": "bob", "state": "absent"}], roles, reassign_owned_to="heir")
    on_17 = plan_on(PgServer(170002, ADMIN), [{"name": "bob", "state": "absent"}], roles, reassign_owned_to="heir")
    assert sql_of(on_15)[:2] == ['GRANT "bob" TO "postgres"', 'GRANT "heir" TO "postgres"']
    assert sql_of(on_17) == ['GRANT "bob" TO "postgres" WITH INHERIT TRUE', 'GRANT "heir" TO "postgres" WITH INHERIT TRUE',
                             'REASSIGN OWNED BY "bob" TO "heir"', 'DROP OWNED BY "bob"', 'DROP ROLE "bob"',
                             'REVOKE "heir" FROM "postgres"']


def test_a_password_user_conversion_message_does_not_claim_a_password():
    with pytest.raises(UserSyncError) as failed:
        plan([{"name": "legacy"}], catalog(legacy=role(login=True)))
    assert "LOGIN roles outside rds_iam (they log in with a password or another method today)" in str(failed.value)
