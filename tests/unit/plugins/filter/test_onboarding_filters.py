"""The filters behind the onboard/offboard roles: grants per engine, policy entries, report rows and the table."""
import random
import re
import string

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.rdsiam.auth.plugins.filter import onboarding_inputs as inputs
from ansible_collections.rdsiam.auth.plugins.filter import onboarding_report as report

ARN_PG = "arn:aws:rds:us-east-1:123456789012:db:orders"
ARN_AURORA = "arn:aws:rds:us-east-1:123456789012:cluster:ledger"
GRANTS = {"postgres": {"roles": ["app_ro"]}, "mysql": {"privileges": "shop.*:SELECT"}}


def test_every_filter_is_exported_and_documented():
    import importlib
    import os

    here = os.path.dirname(inputs.__file__)
    plugins = sorted(name[:-3] for name in os.listdir(here) if name.endswith(".py") and name != "__init__.py")
    # Each filter registered once across the plugin files (a name in two files would be listed twice here).
    names = [name for plugin in plugins
             for name in importlib.import_module("%s.%s" % (inputs.__package__, plugin)).FilterModule().filters()]
    assert sorted(names) == sorted(name[:-4] for name in os.listdir(here) if name.endswith(".yml"))


def test_shared_grants_apply_per_engine_and_mariadb_falls_back_to_mysql():
    users = ["alice", {"name": "bob", "connection_limit": 3}]
    assert inputs.db_user_specs(users, "postgres", GRANTS) == [
        {"name": "alice", "state": "present", "roles": ["app_ro"]},
        {"name": "bob", "state": "present", "roles": ["app_ro"], "connection_limit": 3},
    ]
    assert inputs.db_user_specs(["alice"], "mariadb", GRANTS) == [
        {"name": "alice", "state": "present", "privileges": "shop.*:SELECT"}]
    own = dict(GRANTS, mariadb={"roles": ["reader"]})
    assert inputs.db_user_specs(["alice"], "mariadb", own) == [{"name": "alice", "state": "present", "roles": ["reader"]}]


def test_users_by_dialect_has_the_specs_of_each_engine_among_the_targets_once():
    targets = [{"identifier": "a", "dialect": "postgres"}, {"identifier": "b", "dialect": "mariadb"}, {"identifier": "c", "dialect": "postgres"}]
    assert inputs.users_by_dialect(["alice"], targets, GRANTS) == {
        "postgres": inputs.db_user_specs(["alice"], "postgres", GRANTS),
        "mariadb": [{"name": "alice", "state": "present", "privileges": "shop.*:SELECT"}]}
    assert inputs.users_by_dialect(["alice"], targets[:1], GRANTS, "absent") == {"postgres": [{"name": "alice", "state": "absent"}]}
    assert inputs.users_by_dialect(["alice"], []) == {}
    with pytest.raises(AnsibleFilterError, match="no IAM database users"):
        inputs.users_by_dialect(["alice"], [{"identifier": "d", "dialect": "oracle"}])


def test_hardening_settings_are_the_recommended_ones_unless_given():
    assert inputs.hardening_settings(None) == {"force_ssl": True, "log_connections": True, "restrict_password_commands": None,
                                               "audit_logging": None}
    # A dict given replaces them: what it leaves out is left as it is on the server.
    given = {"force_ssl": False, "log_connections": None, "restrict_password_commands": None, "audit_logging": None}
    assert inputs.hardening_settings({"force_ssl": False}) == given
    assert inputs.hardening_settings(None) is not inputs.RECOMMENDED_HARDENING
    with pytest.raises(AnsibleFilterError, match=r"hardening settings \{'force_tls': True\}: give a dict with any of force_ssl, "):
        inputs.hardening_settings({"force_tls": True})


def test_a_users_own_grants_replace_the_shared_ones_for_that_engine_only():
    users = [{"name": "carol", "grants": {"postgres": {"roles": ["app_rw"]}}}]
    assert inputs.db_user_specs(users, "postgres", GRANTS)[0]["roles"] == ["app_rw"]
    # Her grants say nothing for MySQL, so she gets no grant there rather than the shared ones.
    assert inputs.db_user_specs(users, "mysql", GRANTS) == [{"name": "carol", "state": "present"}]


def test_absent_and_locked_users_carry_no_grants_and_host_is_mysql_only():
    users = [{"name": "dave", "host": "10.%"}]
    assert inputs.db_user_specs(users, "mysql", GRANTS, "locked") == [{"name": "dave", "state": "locked", "host": "10.%"}]
    assert inputs.db_user_specs(users, "postgres", GRANTS, "absent") == [{"name": "dave", "state": "absent"}]


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
        inputs.db_user_specs(users, engine, grants)


def test_check_users_validates_for_every_engine():
    assert inputs.check_users(["alice", {"name": "bob"}], GRANTS) == ["alice", "bob"]
    with pytest.raises(AnsibleFilterError, match="for mariadb have unknown keys"):
        inputs.check_users(["alice"], {"mariadb": {"privilege": "x"}})


def test_per_user_policies_cover_every_target_once():
    targets = [{"arn": ARN_PG}, ARN_AURORA, ARN_PG]
    assert inputs.policy_specs(["alice", {"name": "bob"}], targets) == [
        {"name": "rdsiam-alice", "state": "present", "grants": [{"db_users": ["alice"], "targets": [ARN_AURORA, ARN_PG]}]},
        {"name": "rdsiam-bob", "state": "present", "grants": [{"db_users": ["bob"], "targets": [ARN_AURORA, ARN_PG]}]},
    ]
    assert inputs.policy_specs(["alice"], [], state="absent") == [{"name": "rdsiam-alice", "state": "absent"}]


def test_abac_policy_names_the_user_by_principal_tag():
    assert inputs.policy_specs(["alice"], [ARN_PG], mode="abac", abac_tag="db_user") == [
        {"name": "rdsiam-abac", "state": "present",
         "grants": [{"db_users": ["${aws:PrincipalTag/db_user}"], "targets": [ARN_PG]}]}]


@pytest.mark.parametrize("kwargs, message", [
    ({"users": ["alice"], "targets": []}, "no targets"),
    ({"users": ["alice"], "targets": [ARN_PG], "mode": "shared"}, "policy mode 'shared'"),
    ({"users": ["a" * 130], "targets": [ARN_PG]}, "more than the 80 characters a user name can have on any RDS engine"),
    ({"users": ["al ice"], "targets": [ARN_PG]}, "whitespace or a control character, which no IAM token can name"),
    ({"users": ["${aws:username}"], "targets": [ARN_PG]}, "IAM reads as a policy variable"),
    ({"users": ["a*"], "targets": [ARN_PG]}, "is a wildcard"),
    ({"users": ["alice"], "targets": [ARN_PG], "prefix": "rds iam-"}, "not a valid IAM policy name start"),
    ({"users": ["alice"], "targets": [ARN_PG], "prefix": "p" * 120}, "not a valid IAM policy name start"),
    ({"users": ["alice"], "targets": [ARN_PG], "mode": "abac", "abac_tag": "bad tag"}, "not a valid IAM tag key"),
    ({"users": ["alice"], "targets": [{"identifier": "x"}]}, "must be an ARN"),
])
def test_bad_policy_input_fails_before_any_write(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        inputs.policy_specs(kwargs.pop("users"), kwargs.pop("targets"), **kwargs)


TARGET = {"identifier": "orders", "engine": "postgres", "dialect": "postgres", "iam_auth_enabled": False}


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
    alice, bob = report.target_report(TARGET, ["alice", "bob"], steps)
    assert alice == {"target": "orders", "engine": "postgres", "iam_auth": "on", "user": "alice",
                     "policy": "rdsiam-alice (changed)", "login": "yes (TLS TLSv1.3)", "failed": False, "error": "",
                     "changed": "IAM auth turned on, parameter group rdsiam-postgres15-orders, reboot pending, created, +app_ro"}
    assert bob["policy"] == "rdsiam-bob (in place)"
    assert bob["changed"] == "IAM auth turned on, parameter group rdsiam-postgres15-orders, reboot pending"


def test_report_rows_of_a_failed_target_name_the_step_and_reason():
    steps = {"failure": {"step": "Create and grant the database users", "msg": "connection refused"},
             "policy": {"skipped": True}}
    (row,) = report.target_report(TARGET, ["alice"], steps)
    assert row["failed"] and row["changed"] == "FAILED at Create and grant the database users"
    assert row["error"] == "connection refused" and row["login"] == "not checked" and row["policy"] == "not managed"
    assert report.failed_targets([row, dict(row, user="bob")]) == [
        "orders: Create and grant the database users: connection refused"]


def test_offboard_rows_expect_refusals():
    steps = {"db_users": {"users": [{"name": "alice", "changed": True, "dropped": True}]},
             "policy": {"policies": [{"name": "rdsiam-alice", "changed": True}]},
             "login": {"logins": [{"db_user": "alice", "logged_in": False, "error": "PAM authentication failed"}]}}
    (row,) = report.target_report(dict(TARGET, iam_auth_enabled=True), ["alice"], steps, policy_state="absent",
                                  expect_login_failure=True)
    assert (row["policy"], row["login"], row["changed"]) == ("removed rdsiam-alice", "refused, as expected", "dropped")
    steps["login"]["logins"][0]["logged_in"] = True
    assert report.target_report(TARGET, ["alice"], steps, expect_login_failure=True)[0]["login"] == "LOGGED IN (expected refusal)"


def test_summary_table_aligns_columns_under_a_header():
    rows = [{"target": "a", "engine": "postgres", "iam_auth": "on", "user": "alice", "policy": "p", "login": "yes",
             "changed": "nothing"},
            {"target": "longer-name", "engine": "mariadb", "iam_auth": "off", "user": "bob", "policy": "p", "login": "no",
             "changed": "created"}]
    lines = report.summary_table(rows)
    assert lines[0].startswith("target      | engine   | IAM auth | user")
    assert set(lines[1]) <= {"-", "+"}
    assert [line.index("|") for line in lines if "|" in line] == [12, 12, 12]
    assert report.summary_table([])[0].startswith("target")


def test_inventory_identifiers_and_unreported_rows():
    hosts = [{"identifier": "a", "inventory_hostname": "h1"}, {"db_cluster_identifier": "c", "inventory_hostname": "h2"},
             {"db_instance_identifier": "i", "inventory_hostname": "h3"}, {"inventory_hostname": "plain"}]
    assert inputs.inventory_identifiers(hosts) == ["a", "c", "i", "plain"]
    row = report.unreported_row(TARGET)
    assert row["failed"] and row["target"] == "orders"
    assert report.failed_targets([row]) == ["orders: an unexpected step: the host stopped before reporting; see its failed task above"]


# --- policy names: one derivation for onboarding and offboarding ------------------------------------------------------

IAM_POLICY_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,128}\Z")  # IAM's [\w+=,.@-]{1,128}, \w being ASCII there


@pytest.mark.parametrize("user, name", [
    ("ada", "rdsiam-ada"),
    ("report_reader", "rdsiam-report_reader"),
    ("ada.lovelace@corp.example", "rdsiam-ada.lovelace@corp.example"),
    # Stable across releases: offboarding must find what an earlier onboarding wrote.
    ("o'brien", "rdsiam-o-brien--65b87174"),
    ('ab"c', "rdsiam-ab-c--befc96b0"),
])
def test_valid_names_are_kept_and_others_get_their_valid_characters_and_a_digest(user, name):
    assert inputs.policy_name(user) == name


def test_a_name_shaped_like_a_derived_one_is_derived_too_so_it_cannot_take_that_policy():
    derived = inputs.policy_name("o'brien")
    impostor = derived[len("rdsiam-"):]
    assert inputs.policy_name(impostor) != derived
    assert IAM_POLICY_NAME.match(inputs.policy_name(impostor))


def _user_name_corpus():
    rng = random.Random(20240607)
    alphabet = string.ascii_letters + string.digits + "_+=,.@-" + "'\"`;:/\\ $#!%&*()[]{}<>?|~^" + "éßØ日本語ü"
    names = {"".join(rng.choices(alphabet, k=length)) for length in rng.choices(range(1, 81), k=3000)}
    names |= {"x" * length for length in range(1, 81)}
    names |= {"o'brien", "o\"brien", "o brien", "o-brien", "o--brien", "'", "''", "日本", "本日", "a'", "'a", "é", "e"}
    return sorted(names)


@pytest.mark.parametrize("prefix", ["rdsiam-", "", "team.payments@", "p" * 100])
def test_distinct_users_get_distinct_valid_policy_names_for_any_prefix(prefix):
    names = _user_name_corpus()
    # Every derived name, taken as a user name, must not land on the policy it was derived for.
    names += [inputs.policy_name(name, prefix)[len(prefix):] for name in names[:500]]
    policies = {}
    for name in set(names):
        policy = inputs.policy_name(name, prefix)
        assert IAM_POLICY_NAME.match(policy), (name, policy)
        assert policy.startswith(prefix)
        assert policies.setdefault(policy, name) == name, "%r and %r share %s" % (policies[policy], name, policy)
        if policy != prefix + name:  # derived: room left for rds_iam_policy's numbered parts (NAME-1, ...)
            assert len(policy) <= 124, policy


def test_long_valid_names_past_128_characters_with_the_prefix_are_shortened_with_a_digest():
    prefix = "p" * 60 + "-"
    short, long_a, long_b = "a" * 67, "a" * 70 + "b", "a" * 70 + "c"
    assert inputs.policy_name(short, prefix) == prefix + short
    assert inputs.policy_name(long_a, prefix) != inputs.policy_name(long_b, prefix)
    assert all(len(inputs.policy_name(name, prefix)) <= 124 for name in (long_a, long_b))


def test_offboarding_names_the_policies_onboarding_wrote_and_derived_ones_say_whose_they_are():
    users = ["ada", "o'brien", 'ab"c']
    present = inputs.policy_specs(users, [ARN_PG])
    absent = inputs.policy_specs(users, [], state="absent")
    assert [spec["name"] for spec in present] == [spec["name"] for spec in absent]
    assert [spec["grants"][0]["db_users"] for spec in present] == [["ada"], ["o'brien"], ['ab"c']]
    # A kept name says whose policy it is (and existing policies, created without a description, keep theirs).
    assert "description" not in present[0]
    assert present[1]["description"] == "rds-db:connect as database user \"o'brien\" (rdsiam.auth)"
    assert present[2]["description"] == 'rds-db:connect as database user "ab\\"c" (rdsiam.auth)'
    assert all("description" not in spec for spec in absent)
    written = {"policy": {"policies": [{"name": spec["name"], "changed": True} for spec in present]}}
    rows = report.target_report(TARGET, users, written)
    assert [row["policy"] for row in rows] == ["%s (changed)" % spec["name"] for spec in present]


# --- every user checked against every engine of the run -----------------------------------------------------------

FLEET = [{"identifier": "pg1", "engine": "postgres", "dialect": "postgres"}, {"identifier": "aurora1", "engine": "aurora-postgresql", "dialect": "postgres"},
         {"identifier": "my1", "engine": "mysql", "dialect": "mysql"}, {"identifier": "maria1", "engine": "mariadb", "dialect": "mariadb"}]


def test_users_are_checked_against_the_engines_of_the_targets_found():
    name = "u" * 70
    assert inputs.check_users([name], GRANTS, [FLEET[3]]) == [name]  # MariaDB keeps 80 characters
    with pytest.raises(AnsibleFilterError) as failure:
        inputs.check_users([name, "ok"], GRANTS, FLEET)
    message = str(failure.value)
    assert message.startswith("2 problem(s) with the users, so nothing was changed")
    assert "on postgres (aurora1, pg1): user '%s' is 70 bytes long" % name in message
    assert "on mysql (my1): user '%s' is 70 characters long, more than the 32 characters a user name can have on mysql" % name in message
    assert "mariadb" not in message


@pytest.mark.parametrize("users, grants, message", [
    (["o'brien", 'ab"c', "ada.lovelace@corp.example"], GRANTS, None),
    (["al ice"], GRANTS, "whitespace or a control character"),
    (["${aws:username}"], GRANTS, "policy variable"),
    (["pg_reader"], GRANTS, "on postgres (aurora1, pg1): user 'pg_reader' is reserved by PostgreSQL"),
    (["ada"], {"mysql": {"privileges": "shop.*:SELEKT"}}, "on mysql (my1): user 'ada': privileges: 'SELEKT' is not a MySQL privilege"),
    (["ada"], {"mysql": {"privileges": "shop.*"}}, "has no ':' between the object and its privileges"),
    (["ada"], {"postgres": {"roles": ["r" * 64]}}, "role 'rrrr"),
    ([{"name": "ada", "privileges": "*.*:SELECT"}], {}, "on postgres (aurora1, pg1): user 'ada': privileges apply to MySQL"),
    ([{"name": "ada", "host": "h" * 256}], {}, "the limit here is 255"),
])
def test_bad_users_and_grants_fail_before_any_change_naming_engine_and_targets(users, grants, message):
    if message is None:
        assert inputs.check_users(users, grants, FLEET) == inputs.user_names(users)
        return
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        inputs.check_users(users, grants, FLEET)


# --- the table in check mode and after a failure -------------------------------------------------------------------

def test_check_mode_rows_say_what_would_change_and_that_no_login_was_proven():
    steps = {"iam_auth": {"changed": True, "iam_auth_enabled": True},
             "db_users": {"users": [{"name": "alice", "changed": True, "created": True, "roles_granted": ["app_ro"]}]},
             "policy": {"policies": [{"name": "rdsiam-alice", "changed": True}]},
             "login": {"skipped": True}, "failure": {}}
    (row,) = report.target_report(TARGET, ["alice"], steps, check_mode=True)
    assert (row["iam_auth"], row["policy"], row["login"], row["changed"], row["failed"]) == (
        "would be on", "rdsiam-alice (would change)", "not checked (check mode)",
        "would change: IAM auth turned on, created, +app_ro", False)
    (same,) = report.target_report(dict(TARGET, iam_auth_enabled=True), ["alice"],
                                   {"iam_auth": {"skipped": True}, "db_users": {"users": [{"name": "alice"}]},
                                    "policy": {"policies": [{"name": "rdsiam-alice", "changed": False}]},
                                    "login": {"skipped": True}}, check_mode=True)
    assert (same["iam_auth"], same["policy"], same["changed"]) == ("on", "rdsiam-alice (in place)", "nothing would change")
    (gone,) = report.target_report(TARGET, ["alice"], {"policy": {"policies": [{"name": "rdsiam-alice", "changed": True}]},
                                                       "db_users": {"users": [{"name": "alice", "dropped": True}]},
                                                       "login": {"skipped": True}},
                                   policy_state="absent", expect_login_failure=True, check_mode=True)
    assert (gone["policy"], gone["login"], gone["changed"]) == (
        "would remove rdsiam-alice", "not checked (check mode)", "would change: dropped")


def test_a_failure_after_changes_says_what_was_done_and_the_step():
    steps = {"iam_auth": {"changed": True, "iam_auth_enabled": True},
             "db_users": {"users": [{"name": "alice", "changed": True, "created": True}]},
             "policy": {"failed": True, "msg": "role 'gone' do not exist in IAM"},
             "failure": {"step": "Write the rds-db:connect policies", "msg": "role 'gone' do not exist in IAM"}}
    (row,) = report.target_report(TARGET, ["alice"], steps)
    assert row["failed"] and row["step"] == "Write the rds-db:connect policies"
    assert row["changed"] == "FAILED at Write the rds-db:connect policies (done: IAM auth turned on, created)"
    assert row["policy"] == "rdsiam-alice (not written)" and row["login"] == "not checked"
    assert report.failed_targets([row]) == ["orders: Write the rds-db:connect policies: role 'gone' do not exist in IAM"]


def test_the_module_accepts_every_derived_name_and_refuses_what_iam_refuses():
    from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy import PolicyInputError, check_policy_name

    for name in _user_name_corpus()[:300]:
        check_policy_name(inputs.policy_name(name), parts=9)  # room for numbered parts NAME-1 ... NAME-9
    for name in ("rdsiam-josé", "rdsiam-ada\n", "rdsiam-日本"):
        with pytest.raises(PolicyInputError, match="is not valid"):
            check_policy_name(name)


def test_target_entry_picks_this_targets_result_of_a_run_over_many():
    run = {"changed": True, "results": [{"identifier": "pg1", "region": "eu-west-1", "changed": True},
                                        {"identifier": "pg1", "region": "us-east-1", "failed": True, "msg": "boom"}]}
    assert report.target_entry(run, {"identifier": "pg1", "region": "us-east-1"}) == run["results"][1]
    assert report.target_entry(run, {"identifier": "pg2", "region": "us-east-1"}) == {}
    # A run that failed before any target (bad AWS options) fails every target; a skipped run is no entry at all.
    early = {"failed": True, "msg": "no region"}
    assert report.target_entry(early, {"identifier": "pg1"}) == early
    assert report.target_entry({"skipped": True, "changed": False}, {"identifier": "pg1"}) == {}
    assert report.target_entry(None, {"identifier": "pg1"}) == {}


def test_succeeded_targets_leaves_out_each_target_a_run_failed():
    pg1, pg2, my1 = ({"identifier": name, "region": "eu-west-1"} for name in ("pg1", "pg2", "my1"))
    flag = {"failed": True, "results": [dict(pg1, changed=True), dict(pg2, failed=True, msg="denied"), dict(my1)]}
    groups = {"changed": False, "results": [dict(pg1), dict(my1, failed=True, msg="no group")]}
    assert report.succeeded_targets([pg1, pg2, my1], [flag, groups]) == [pg1]
    assert report.succeeded_targets([pg1, pg2, my1], [{"skipped": True}, None]) == [pg1, pg2, my1]
    # A run that failed before reaching any target leaves none.
    assert report.succeeded_targets([pg1, pg2], [{"failed": True, "msg": "no region"}]) == []
    assert report.succeeded_targets(None, []) == []
