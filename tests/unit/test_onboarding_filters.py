"""The filters behind the onboard/offboard roles: grants per engine, policy entries, report rows and the table."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.rdsiam.auth.plugins.filter import onboarding

ARN_PG = "arn:aws:rds:us-east-1:123456789012:db:orders"
ARN_AURORA = "arn:aws:rds:us-east-1:123456789012:cluster:ledger"
GRANTS = {"postgres": {"roles": ["app_ro"]}, "mysql": {"privileges": "shop.*:SELECT"}}


def test_every_filter_is_exported_and_documented():
    import os

    names = onboarding.FilterModule().filters()
    here = os.path.dirname(onboarding.__file__)
    assert sorted(names) == sorted(name[:-4] for name in os.listdir(here) if name.endswith(".yml"))


def test_shared_grants_apply_per_engine_and_mariadb_falls_back_to_mysql():
    users = ["alice", {"name": "bob", "connection_limit": 3}]
    assert onboarding.db_user_specs(users, "postgres", GRANTS) == [
        {"name": "alice", "state": "present", "roles": ["app_ro"]},
        {"name": "bob", "state": "present", "roles": ["app_ro"], "connection_limit": 3},
    ]
    assert onboarding.db_user_specs(["alice"], "mariadb", GRANTS) == [
        {"name": "alice", "state": "present", "privileges": "shop.*:SELECT"}]
    own = dict(GRANTS, mariadb={"roles": ["reader"]})
    assert onboarding.db_user_specs(["alice"], "mariadb", own) == [{"name": "alice", "state": "present", "roles": ["reader"]}]


def test_a_users_own_grants_replace_the_shared_ones_for_that_engine_only():
    users = [{"name": "carol", "grants": {"postgres": {"roles": ["app_rw"]}}}]
    assert onboarding.db_user_specs(users, "postgres", GRANTS)[0]["roles"] == ["app_rw"]
    # Her grants say nothing for MySQL, so she gets no grant there rather than the shared ones.
    assert onboarding.db_user_specs(users, "mysql", GRANTS) == [{"name": "carol", "state": "present"}]


def test_absent_and_locked_users_carry_no_grants_and_host_is_mysql_only():
    users = [{"name": "dave", "host": "10.%"}]
    assert onboarding.db_user_specs(users, "mysql", GRANTS, "locked") == [{"name": "dave", "state": "locked", "host": "10.%"}]
    assert onboarding.db_user_specs(users, "postgres", GRANTS, "absent") == [{"name": "dave", "state": "absent"}]


@pytest.mark.parametrize("users, grants, engine, message", [
    ([], {}, "postgres", "no database users"),
    (["alice", "alice"], {}, "postgres", "listed twice"),
    ([{"roles": ["x"]}], {}, "postgres", "a name or a dict with a name"),
    ([{"name": "alice", "role": ["x"]}], {}, "postgres", "unknown keys role"),
    (["alice"], {"oracle": {}}, "postgres", "unknown engines oracle"),
    (["alice"], {"postgres": {"role": ["x"]}}, "postgres", "unknown keys role"),
    ([{"name": "alice", "state": "gone"}], {}, "postgres", "state 'gone'"),
    (["alice"], {}, "sqlserver", "engine 'sqlserver'"),
])
def test_bad_users_and_grants_fail_naming_what_is_wrong(users, grants, engine, message):
    with pytest.raises(AnsibleFilterError, match=message):
        onboarding.db_user_specs(users, engine, grants)


def test_check_users_validates_for_every_engine():
    assert onboarding.check_users(["alice", {"name": "bob"}], GRANTS) == ["alice", "bob"]
    with pytest.raises(AnsibleFilterError, match="for mariadb have unknown keys"):
        onboarding.check_users(["alice"], {"mariadb": {"privilege": "x"}})


def test_per_user_policies_cover_every_target_once():
    targets = [{"arn": ARN_PG}, ARN_AURORA, ARN_PG]
    assert onboarding.policy_specs(["alice", {"name": "bob"}], targets) == [
        {"name": "rdsiam-alice", "state": "present", "grants": [{"db_users": ["alice"], "targets": [ARN_AURORA, ARN_PG]}]},
        {"name": "rdsiam-bob", "state": "present", "grants": [{"db_users": ["bob"], "targets": [ARN_AURORA, ARN_PG]}]},
    ]
    assert onboarding.policy_specs(["alice"], [], state="absent") == [{"name": "rdsiam-alice", "state": "absent"}]


def test_abac_policy_names_the_user_by_principal_tag():
    assert onboarding.policy_specs(["alice"], [ARN_PG], mode="abac", abac_tag="db_user") == [
        {"name": "rdsiam-abac", "state": "present",
         "grants": [{"db_users": ["${aws:PrincipalTag/db_user}"], "targets": [ARN_PG]}]}]


@pytest.mark.parametrize("kwargs, message", [
    ({"users": ["alice"], "targets": []}, "no targets"),
    ({"users": ["alice"], "targets": [ARN_PG], "mode": "shared"}, "policy mode 'shared'"),
    ({"users": ["a" * 130], "targets": [ARN_PG]}, "not a valid IAM policy name"),
    ({"users": ["al ice"], "targets": [ARN_PG]}, "not a valid IAM policy name"),
    ({"users": ["alice"], "targets": [ARN_PG], "mode": "abac", "abac_tag": "bad tag"}, "not a valid IAM tag key"),
    ({"users": ["alice"], "targets": [{"identifier": "x"}]}, "must be an ARN"),
])
def test_bad_policy_input_fails_before_any_write(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        onboarding.policy_specs(kwargs.pop("users"), kwargs.pop("targets"), **kwargs)


TARGET = {"identifier": "orders", "engine": "postgres", "engine_family": "postgres", "iam_auth_enabled": False}


def test_report_rows_say_what_changed_per_user():
    steps = {
        "iam_auth": {"changed": True, "iam_auth_enabled": True},
        "parameter_group": {"changed": True, "parameter_group": {"name": "rdsiam-postgres15-orders"}, "pending_reboot": True},
        "db_users": {"users": [{"name": "alice", "changed": True, "created": True, "roles_granted": ["app_ro"]},
                               {"name": "bob", "changed": False}]},
        "policy": {"policies": [{"name": "rdsiam-alice", "changed": True}, {"name": "rdsiam-bob", "changed": False}]},
        "login": {"logins": [{"db_user": "alice", "logged_in": True, "tls_version": "TLSv1.3"},
                             {"db_user": "bob", "logged_in": True, "tls_version": "TLSv1.3"}]},
        "failure": {},
    }
    alice, bob = onboarding.target_report(TARGET, ["alice", "bob"], steps)
    assert alice == {"target": "orders", "engine": "postgres", "iam_auth": "on", "user": "alice",
                     "policy": "rdsiam-alice (changed)", "login": "yes (TLS TLSv1.3)", "failed": False, "error": "",
                     "changed": "IAM auth turned on, parameter group rdsiam-postgres15-orders, reboot pending, created, +app_ro"}
    assert bob["policy"] == "rdsiam-bob (in place)"
    assert bob["changed"] == "IAM auth turned on, parameter group rdsiam-postgres15-orders, reboot pending"


def test_report_rows_of_a_failed_target_name_the_step_and_reason():
    steps = {"failure": {"step": "Create and grant the database users", "msg": "connection refused"},
             "policy": {"skipped": True}}
    (row,) = onboarding.target_report(TARGET, ["alice"], steps)
    assert row["failed"] and row["changed"] == "FAILED at Create and grant the database users"
    assert row["error"] == "connection refused" and row["login"] == "not checked" and row["policy"] == "not managed"
    assert onboarding.failed_targets([row, dict(row, user="bob")]) == [
        "orders: Create and grant the database users: connection refused"]


def test_offboard_rows_expect_refusals():
    steps = {"db_users": {"users": [{"name": "alice", "changed": True, "dropped": True}]},
             "policy": {"policies": [{"name": "rdsiam-alice", "changed": True}]},
             "login": {"logins": [{"db_user": "alice", "logged_in": False, "error": "PAM authentication failed"}]}}
    (row,) = onboarding.target_report(dict(TARGET, iam_auth_enabled=True), ["alice"], steps, policy_state="absent",
                                      expect_login_failure=True)
    assert (row["policy"], row["login"], row["changed"]) == ("removed rdsiam-alice", "refused, as expected", "dropped")
    steps["login"]["logins"][0]["logged_in"] = True
    assert onboarding.target_report(TARGET, ["alice"], steps, expect_login_failure=True)[0]["login"] == "LOGGED IN (expected refusal)"


def test_summary_table_aligns_columns_under_a_header():
    rows = [{"target": "a", "engine": "postgres", "iam_auth": "on", "user": "alice", "policy": "p", "login": "yes",
             "changed": "nothing"},
            {"target": "longer-name", "engine": "mariadb", "iam_auth": "off", "user": "bob", "policy": "p", "login": "no",
             "changed": "created"}]
    lines = onboarding.summary_table(rows)
    assert lines[0].startswith("target      | engine   | IAM auth | user")
    assert set(lines[1]) <= {"-", "+"}
    assert [line.index("|") for line in lines if "|" in line] == [12, 12, 12]
    assert onboarding.summary_table([])[0].startswith("target")


def test_inventory_identifiers_and_unreported_rows():
    hosts = [{"identifier": "a", "inventory_hostname": "h1"}, {"db_cluster_identifier": "c", "inventory_hostname": "h2"},
             {"db_instance_identifier": "i", "inventory_hostname": "h3"}, {"inventory_hostname": "plain"}]
    assert onboarding.inventory_identifiers(hosts) == ["a", "c", "i", "plain"]
    row = onboarding.unreported_row(TARGET)
    assert row["failed"] and row["target"] == "orders"
    assert onboarding.failed_targets([row]) == ["orders: an unexpected step: the host stopped before reporting; see its failed task above"]
