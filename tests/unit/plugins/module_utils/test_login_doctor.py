"""The login doctor's checks: pure functions over facts, with the collection's evaluator deciding the IAM side."""
import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _login_doctor as doctor
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_eval import statements_of
from ansible_collections.rdsiam.auth.plugins.module_utils._login_doctor_reads import (
    login_aws_options,
    pick_account,
    principal_of_caller,
)

ACCOUNT = "123456789012"
RID = "db-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
OTHER_RID = "db-ZYXWVUTSRQPONMLKJIHGFEDCBA"
ROLE = "arn:aws:iam::%s:role/app" % ACCOUNT
ENDPOINT = "orders.abc123.eu-west-1.rds.amazonaws.com"


def arn(user="alice", rid=RID, region="eu-west-1", account=ACCOUNT):
    return "arn:aws:rds-db:%s:%s:dbuser:%s/%s" % (region, account, rid, user)


def statements(*items, kind="inline", policy="rds-connect"):
    return statements_of({"Version": "2012-10-17", "Statement": list(items)},
                         {"policy": policy, "policy_arn": None, "kind": kind, "holder": ROLE})


def allow(*resources, action="rds-db:connect", effect="Allow", **extra):
    return dict(Effect=effect, Action=action, Resource=list(resources), **extra)


def target(**changes):
    base = dict(kind="instance", identifier="orders", arn="arn:aws:rds:eu-west-1:%s:db:orders" % ACCOUNT, engine="postgres",
                dialect="postgres", engine_version="15.7", endpoint=ENDPOINT, port=5432, reader_endpoint=None, resource_id=RID,
                iam_auth_enabled=True, region="eu-west-1", account_id=ACCOUNT)
    base.update(changes)
    return base


def facts(identity=(), account="default", session_tags=None, principal=None, boundary=None, **changes):
    principal = principal or dict(arn=ROLE, kind="role", name="app", id="AROA1", account=ACCOUNT, tags={}, readable=True)
    base, full = doctor.principal_context(principal, session_tags, identity)
    the_target = changes.pop("target", None) or target()
    found = dict(target=the_target, iam_target=the_target, endpoint_names=[ENDPOINT], endpoint=ENDPOINT, endpoint_port=5432,
                 signing_region="eu-west-1", signing_region_error=None, principal=principal, identity=list(identity),
                 boundary=boundary, scps=None, scps_status="not_in_organization: no SCP applies", session_tags=session_tags,
                 base_context=base, context=full, db_user="alice", dialect="postgres", client_tls=True, server_tls=None,
                 account_error=None, login=None,
                 account=dict(name="alice", host=None, can_login=True, iam=True, iam_via=["rds_iam"], auth_plugin=None,
                              locked=False, expired=False, require_ssl=None) if account == "default" else account)
    found.update(changes)
    return found


def by_name(result):
    return {entry["name"]: entry for entry in result["checks"]}


# ---- everything in order ----

def test_all_ok_has_no_cause_and_every_check_in_order():
    result = doctor.run_checks(facts(statements(allow(arn()))))
    assert [entry["name"] for entry in result["checks"]] == list(doctor.CHECK_NAMES[:-1])
    assert result["cause"] is None and result["ok"] is True
    assert all(entry["status"] == "ok" and entry["fix"] is None for entry in result["checks"])
    assert "explicit ARN" in by_name(result)["policy_allows"]["evidence"]


def test_the_cause_is_the_first_failure_and_the_login_comes_last():
    found = facts(statements(allow(arn())), target=target(iam_auth_enabled=False),
                  login=dict(status="fail", evidence="the login failed: PAM authentication failed", fix="see above"))
    found["account"]["iam"] = False
    result = doctor.run_checks(found)
    assert result["cause"] == "iam_auth_enabled" and result["ok"] is False
    assert result["checks"][-1] == dict(name="login", status="fail", evidence="the login failed: PAM authentication failed", fix="see above")
    assert by_name(result)["user_is_iam"]["status"] == "fail"
    assert "rds_iam_auth" in by_name(result)["iam_auth_enabled"]["fix"]


# ---- AWS side ----

@pytest.mark.parametrize("engine, version, status", [
    ("postgres", "15.7", "ok"), ("postgres", "9.5.4", "fail"), ("mysql", "5.6.10", "fail"), ("mysql", "8.0.39", "ok"),
    ("mariadb", "10.5.20", "fail"), ("mariadb", "10.11.9", "ok"), ("aurora-mysql", "5.7.mysql_aurora.2.11.2", "ok"),
    ("sqlserver-ee", "15.00", "fail"),
])
def test_engine_and_version(engine, version, status):
    dialect = {"postgres": "postgres", "mysql": "mysql", "mariadb": "mariadb", "aurora-mysql": "mysql"}.get(engine)
    found = facts(target=target(engine=engine, engine_version=version, dialect=dialect))
    assert doctor.check_engine(found)["status"] == status


def test_an_unsupported_engine_skips_the_flag():
    result = doctor.run_checks(facts(statements(allow(arn())), target=target(engine="oracle-ee", dialect=None)))
    assert result["cause"] == "engine" and by_name(result)["iam_auth_enabled"]["status"] == "skipped"


def test_the_flag_of_an_aurora_member_is_its_clusters():
    member = target(cluster_identifier="shop", iam_auth_enabled=True)
    cluster = target(kind="cluster", identifier="shop", resource_id="cluster-ABCDEFGHIJKLMNOPQRSTUV", iam_auth_enabled=False)
    check = doctor.check_iam_flag(facts(target=member, iam_target=cluster))
    assert check["status"] == "fail" and "cluster shop (the cluster of instance orders" in check["evidence"]
    assert "db_cluster_identifier: shop" in check["fix"]


def test_a_cname_is_not_an_endpoint():
    check = doctor.check_endpoint(facts(endpoint="db.example.com"))
    assert check["status"] == "fail" and "db.example.com is not an RDS endpoint of orders" in check["evidence"]
    assert ENDPOINT in check["fix"]
    assert doctor.check_endpoint(facts(endpoint=ENDPOINT.upper() + "."))["status"] == "ok"


def test_region_and_port():
    assert doctor.check_region_port(facts())["status"] == "ok"
    wrong = doctor.check_region_port(facts(signing_region="us-east-1", endpoint_port=5433))
    assert wrong["status"] == "fail"
    assert "region us-east-1, but orders is in eu-west-1" in wrong["evidence"] and "port 5433" in wrong["evidence"]
    missing = doctor.check_region_port(facts(signing_region=None, signing_region_error="no region to sign the IAM token"))
    assert missing["status"] == "fail" and "no region" in missing["evidence"]


@pytest.mark.parametrize("resource, kind, phrase", [
    (arn(user="bob"), "wrong user", "database user bob, not alice"),
    (arn(rid=OTHER_RID), "another target", "resource id %s is not the resource id of orders (%s)" % (OTHER_RID, RID)),
    (arn(region="us-east-1"), "wrong region", "region us-east-1, the target is in eu-west-1"),
    (arn(rid="orders"), "identifier instead of resource id", "it grants nothing"),
    (arn(rid="ORDERS"), "identifier instead of resource id", "the grant names ORDERS"),
    (arn(account="210987654321"), "wrong account", "account 210987654321"),
    (arn(user="bob", rid=OTHER_RID), "several differences", "resource id, user"),
])
def test_each_near_miss_is_named(resource, kind, phrase):
    check = doctor.check_policy(facts(statements(allow(resource))))
    assert check["status"] == "fail"
    assert check["evidence"].startswith(kind + ": inline policy rds-connect statement 0 allows rds-db:connect on " + resource)
    assert phrase in check["evidence"]
    assert check["fix"].startswith("allow rds-db:connect on %s in a policy of %s" % (arn(), ROLE))


def test_the_most_specific_near_miss_comes_first_and_the_others_are_listed():
    check = doctor.check_policy(facts(statements(allow(arn(user="bob"), arn(rid="orders")))))
    assert check["evidence"].startswith("identifier instead of resource id:")
    assert "also: wrong user (%s)" % arn(user="bob") in check["evidence"]


def test_a_statement_naming_the_arn_with_another_action():
    check = doctor.check_policy(facts(statements(allow(arn(), action="rds:DescribeDBInstances"))))
    assert check["evidence"].startswith("wrong action:") and "rds:DescribeDBInstances" in check["evidence"]


def test_no_grant_at_all_is_a_policy_without_the_arn():
    check = doctor.check_policy(facts(statements(allow("*", action="s3:GetObject"), policy="s3-read")))
    assert check["evidence"].startswith("policy without the ARN: no policy of %s allows rds-db:connect on %s" % (ROLE, arn()))
    assert "policies read: s3-read" in check["evidence"]


def test_wildcards_and_administrators_allow():
    assert "wildcard" in doctor.check_policy(facts(statements(allow("arn:aws:rds-db:*:*:dbuser:%s/*" % RID))))["evidence"]
    admin = doctor.check_policy(facts(statements(allow("*", action="*"))))
    assert admin["status"] == "ok" and "administrator" in admin["evidence"]


def test_a_condition_leaves_the_policy_unknown_with_the_condition_shown():
    check = doctor.check_policy(facts(statements(allow(arn(), Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))))
    assert check["status"] == "unknown" and "10.0.0.0/8" in check["evidence"] and check["fix"]


def test_explicit_deny_blocks_while_the_policy_allows():
    identity = statements(allow(arn()), allow(arn(), effect="Deny", Sid="NoOrders"))
    result = doctor.run_checks(facts(identity))
    assert by_name(result)["policy_allows"]["status"] == "ok"
    assert result["cause"] == "not_blocked"
    assert by_name(result)["not_blocked"]["evidence"].startswith("blocked by an explicit Deny: denied by role/app inline policy rds-connect statement NoOrders")
    assert "NoOrders" in by_name(result)["not_blocked"]["fix"]


def test_a_permissions_boundary_blocks():
    boundary = statements(allow("*", action="s3:*"), kind="boundary", policy="only-s3")
    check = doctor.check_not_blocked(facts(statements(allow(arn())), boundary=boundary))
    assert check["status"] == "fail" and check["evidence"].startswith("blocked by the permissions boundary")
    assert "permissions boundary of %s" % ROLE in check["fix"]


def test_an_scp_blocks():
    found = facts(statements(allow(arn())))
    found["scps"] = [statements(allow("*", action="*", effect="Deny"), kind="scp", policy="deny-all")]
    check = doctor.check_not_blocked(found)
    assert check["status"] == "fail" and check["evidence"].startswith("blocked by a service control policy")


ABAC = arn(user="${aws:PrincipalTag/db_user}")


def test_abac_without_known_session_tags_is_unknown_not_a_cause():
    result = doctor.run_checks(facts(statements(allow(ABAC))))
    assert by_name(result)["policy_allows"]["status"] == "ok"
    assert "any session tagged db_user=alice" in by_name(result)["policy_allows"]["evidence"]
    assert by_name(result)["session_tags"]["status"] == "unknown" and result["cause"] is None and result["ok"] is False


def test_abac_with_the_session_tags():
    assert doctor.check_session_tags(facts(statements(allow(ABAC)), session_tags={"db_user": "alice"}))["status"] == "ok"
    wrong = doctor.check_session_tags(facts(statements(allow(ABAC)), session_tags={"db_user": "bob"}))
    assert wrong["status"] == "fail" and "the session carries db_user=bob" in wrong["evidence"]
    untagged = doctor.check_session_tags(facts(statements(allow(ABAC)), session_tags={"team": "x"}))
    assert untagged["status"] == "fail" and "team=x" in untagged["evidence"]


def test_abac_from_a_users_own_tags():
    user = dict(arn="arn:aws:iam::%s:user/alice" % ACCOUNT, kind="user", name="alice", id="AIDA1", account=ACCOUNT,
                tags={"db_user": "alice"}, readable=True)
    result = doctor.run_checks(facts(statements(allow(ABAC)), principal=user))
    assert result["ok"] is True
    by_username = doctor.run_checks(facts(statements(allow(arn(user="${aws:username}"))), principal=user))
    assert by_username["ok"] is True


def test_unreadable_or_missing_principals():
    unreadable = dict(arn=ROLE, kind="role", readable=False, error="AccessDenied")
    result = doctor.run_checks(facts(principal=unreadable))
    assert [by_name(result)[name]["status"] for name in ("policy_allows", "not_blocked", "session_tags")] == ["unknown"] * 3
    assert result["cause"] is None
    missing = dict(arn=ROLE, kind="role", readable=False, missing=True, error="%s is not a user or role of account %s" % (ROLE, ACCOUNT))
    result = doctor.run_checks(facts(principal=missing))
    assert result["cause"] == "policy_allows" and "is not a user or role of account" in by_name(result)["policy_allows"]["evidence"]
    assert by_name(result)["not_blocked"]["status"] == by_name(result)["session_tags"]["status"] == "skipped"


# ---- database side ----

def test_a_missing_user_skips_the_account_checks():
    result = doctor.run_checks(facts(statements(allow(arn())), account=None))
    assert result["cause"] == "user_exists" and "rds_iam_db_user" in by_name(result)["user_exists"]["fix"]
    assert [by_name(result)[name]["status"] for name in ("user_not_locked", "user_can_login", "user_is_iam")] == ["skipped"] * 3


def test_an_unreadable_database_is_unknown():
    result = doctor.run_checks(facts(statements(allow(arn())), account=None, account_error="could not connect"))
    assert all(by_name(result)[name]["status"] == "unknown" for name in ("user_exists", "user_not_locked", "user_can_login", "user_is_iam"))
    assert result["cause"] is None


def test_a_locked_postgres_user_is_locked_not_merely_unable_to_log_in():
    account = dict(name="alice", host=None, can_login=False, iam=True, iam_via=["rds_iam"], locked=True, expired=False)
    result = doctor.run_checks(facts(statements(allow(arn())), account=account))
    assert result["cause"] == "user_not_locked" and "locked (NOLOGIN)" in by_name(result)["user_not_locked"]["evidence"]
    assert by_name(result)["user_can_login"]["status"] == "skipped"


def test_mysql_accounts():
    account = dict(name="alice", host="%", can_login=True, iam=False, iam_via=[], auth_plugin="mysql_native_password",
                   locked=True, expired=False, require_ssl=True)
    result = doctor.run_checks(facts(statements(allow(arn())), account=account, dialect="mariadb"))
    assert result["cause"] == "user_not_locked" and "'alice'@'%' is locked (ACCOUNT LOCK)" in by_name(result)["user_not_locked"]["evidence"]
    assert "mysql_native_password, not AWSAuthenticationPlugin" in by_name(result)["user_is_iam"]["evidence"]


def test_an_inherited_rds_iam_is_shown_with_its_chain():
    account = dict(name="alice", host=None, can_login=True, iam=True, iam_via=["app_iam", "rds_iam"], locked=False, expired=False)
    assert "(app_iam -> rds_iam)" in doctor.check_user_is_iam(facts(account=account))["evidence"]


def test_tls():
    account = dict(name="alice", host="%", can_login=True, iam=True, iam_via=["AWSAuthenticationPlugin"], locked=False,
                   expired=False, require_ssl=True)
    found = facts(account=account, dialect="mariadb", server_tls=dict(name="require_secure_transport", value="ON", required=True))
    assert doctor.check_tls(found)["status"] == "ok"
    found["client_tls"] = False
    check = doctor.check_tls(found)
    assert check["status"] == "fail" and "'alice'@'%' is REQUIRE SSL and require_secure_transport=ON" in check["evidence"]


# ---- the context and the reads' pure parts ----

def test_principal_context():
    user = dict(kind="user", name="alice", id="AIDA1", account=ACCOUNT, tags={"team": "a"})
    base, full = doctor.principal_context(user)
    assert base == full == {"aws:PrincipalType": "User", "aws:PrincipalAccount": ACCOUNT, "aws:username": "alice",
                            "aws:userid": "AIDA1", "aws:PrincipalTag/team": "a"}
    role = dict(kind="role", name="app", account=ACCOUNT, tags={"team": "a"})
    base, full = doctor.principal_context(role, {"team": "b"}, statements(allow(ABAC)))
    assert base["aws:PrincipalType"] == "AssumedRole" and "aws:username" not in base
    assert full["aws:PrincipalTag/team"] == "b" and full["aws:PrincipalTag/db_user"] is None


def test_the_caller_maps_to_its_role_or_user():
    principals = [dict(kind="role", name="app", arn="arn:aws:iam::%s:role/path/app" % ACCOUNT),
                  dict(kind="user", name="alice", arn="arn:aws:iam::%s:user/alice" % ACCOUNT)]
    assert principal_of_caller("arn:aws:sts::%s:assumed-role/app/session-1" % ACCOUNT, principals) is principals[0]
    assert principal_of_caller("arn:aws:iam::%s:user/alice" % ACCOUNT, principals) is principals[1]
    assert principal_of_caller("arn:aws:iam::%s:user/bob" % ACCOUNT, principals) is None


def test_pick_account_prefers_any_host():
    assert pick_account([]) is None
    assert pick_account([dict(host="10.%"), dict(host="%")]) == dict(host="%")
    assert pick_account([dict(host=None)]) == dict(host=None)


def test_login_options():
    base = dict(region="eu-west-1", assume_role_arn=None, session_tags=None)
    role = dict(arn=ROLE, kind="role")
    assert login_aws_options(base, role, ROLE, None) == (base, None)
    options, why = login_aws_options(base, role, "arn:aws:iam::%s:user/me" % ACCOUNT, {"db_user": "alice"})
    assert why is None and options["assume_role_arn"] == ROLE and options["session_tags"] == {"db_user": "alice"}
    options, why = login_aws_options(base, dict(arn="arn:aws:iam::%s:user/bob" % ACCOUNT, kind="user"), ROLE, None)
    assert options is None and "an IAM user other than the caller" in why
