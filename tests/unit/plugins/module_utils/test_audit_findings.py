"""The audit join: access rows with can_connect, and every finding rule, from what the audit modules return."""
import copy

import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _audit_findings as audit

ACCOUNT = "123456789012"
PG = dict(kind="instance", identifier="orders", engine="postgres", dialect="postgres", region="eu-west-1",
          resource_id="db-ORDERS0000000000000000", endpoint="orders.x.eu-west-1.rds.amazonaws.com", port=5432,
          iam_auth_enabled=True, account_id=ACCOUNT, log_exports=["iam-db-auth-error", "postgresql"])
MARIA = dict(kind="instance", identifier="shop", engine="mariadb", dialect="mariadb", region="eu-west-1",
             resource_id="db-SHOP00000000000000000", endpoint="shop.x.eu-west-1.rds.amazonaws.com", port=3306,
             iam_auth_enabled=False, account_id=ACCOUNT, log_exports=[])
DOWN = dict(kind="cluster", identifier="ledger", engine="aurora-postgresql", dialect="postgres", region="eu-west-1",
            resource_id="cluster-LEDGER00000000000000", endpoint="ledger.cluster-x.eu-west-1.rds.amazonaws.com", port=5432,
            iam_auth_enabled=True, account_id=ACCOUNT, log_exports=["iam-db-auth-error"])


def account(name, **fields):
    entry = dict(name=name, host=None, can_login=True, iam=True, iam_via=["rds_iam"], auth_plugin=None, has_password=False,
                 locked=False, expired=False, require_ssl=None, admin=False, roles=[], privileges={})
    entry.update(fields)
    return entry


DB_INFO = [
    dict(identifier="orders", kind="instance", region="eu-west-1", engine="postgres", accounts=[
        account("alice"), account("bob", locked=True, can_login=False), account("carol", has_password=True),
        account("dave", iam_via=["app_iam", "rds_iam"]), account("orphan"),
        account("postgres", iam=False, iam_via=[], has_password=None, admin=True)]),
    dict(identifier="shop", kind="instance", region="eu-west-1", engine="mariadb", accounts=[
        account("alice", host="%", iam_via=["AWSAuthenticationPlugin"], auth_plugin="AWSAuthenticationPlugin")]),
    dict(identifier="ledger", kind="cluster", region="eu-west-1", failed=True, msg="could not connect to ledger: timeout"),
]
ROLE = "arn:aws:iam::%s:role/app" % ACCOUNT
ADMIN = "arn:aws:iam::%s:role/admin" % ACCOUNT
USER = "arn:aws:iam::%s:user/erin" % ACCOUNT
HIDDEN = "arn:aws:iam::%s:role/hidden" % ACCOUNT


def grant(principal, db_user, resource_id, how="explicit", target=None, kind="resource_id", effect="allow", region="eu-west-1"):
    resource = "arn:aws:rds-db:%s:%s:dbuser:%s/%s" % (region, ACCOUNT, resource_id, db_user)
    return dict(principal=principal, principal_kind=principal.split(":")[5].split("/")[0], db_user=db_user, resource=resource,
                resource_id=resource_id, resource_id_kind=kind, region=region, account=ACCOUNT, target=target, effect=effect,
                how=how, conditional=False, conditions=[], policy="rds-connect", policy_arn=None, kind="inline", statement=0)


def access(principal, target, db_user, decision, how="explicit"):
    """An access entry as rds_iam_grants_info returns it, for one database user."""
    return dict(principal=principal, principal_kind="role", target=target, db_users=[db_user], decision=decision, how=how,
                reason="r", statements=[], conditions=[], blocked_by=None)


GRANTS = dict(
    principals=[
        dict(arn=ROLE, kind="role", name="app", readable=True, tags={},
             assumable_by=[dict(principal="arn:aws:iam::%s:root" % ACCOUNT, type="account", conditions={}, tag_session=True)]),
        dict(arn=ADMIN, kind="role", name="admin", readable=True, tags={}),
        dict(arn=USER, kind="user", name="erin", readable=True, tags={"team": "x"}),
        dict(arn=HIDDEN, kind="role", name="hidden", readable=False, tags={}),
    ],
    grants=[
        grant(ROLE, "alice", PG["resource_id"], target="orders"),
        grant(ROLE, "ghost", PG["resource_id"], target="orders"),
        grant(ROLE, "alice", "orders", kind="identifier"),
        grant(ROLE, "alice", "db-GONE0000000000000000000"),
        grant(ROLE, "alice", "db-ELSEWHERE00000000000000", region="us-west-2"),
        grant(ROLE, "*", PG["resource_id"], how="wildcard", target="orders"),
        grant(ADMIN, "*", "*", how="administrator", kind="pattern"),
        grant(ADMIN, "*", "*", how="administrator", kind="pattern"),
        grant(USER, "${aws:PrincipalTag/db_user}", "*", how="abac", kind="pattern"),
        grant(ROLE, "${aws:PrincipalTag/db_user}", "*", how="abac", kind="pattern"),
        grant(ROLE, "bob", PG["resource_id"], target="orders", effect="deny"),
    ],
    access=[
        access(ROLE, "orders", "alice", "allowed"),
        access(ROLE, "orders", "bob", "allowed"),
        access(ROLE, "orders", "carol", "conditional"),
        access(ROLE, "shop", "alice", "allowed"),
        access(ADMIN, "ledger", "alice", "allowed"),
        access(ROLE, "ledger", "alice", "not_allowed"),
        access(HIDDEN, "orders", "alice", "unknown"),
        access(ROLE, "orders", "dave", "not_allowed"),
        access(ADMIN, "orders", "orphan", "allowed", how="administrator"),
    ],
    scps=dict(status="not_readable", msg="AccessDenied", policies=[]),
)
HARDENING = [
    dict(identifier="orders", changes=[dict(name="rds.force_ssl", before="0", after="1"),
                                       dict(name="rds.restrict_password_commands", before=None, after="1")]),
    dict(identifier="shop", changes=[]),
    dict(identifier="ledger", failed=True, msg="ledger: DBClusterParameterGroupNotFound"),
]


def build(**overrides):
    args = dict(targets=[PG, MARIA, DOWN], db_info=DB_INFO, grants_info=GRANTS, hardening=HARDENING, generated_at="2026-12-07T00:00:00Z")
    args.update(overrides)
    return audit.build_audit(**copy.deepcopy(args))


def by_rule(document, rule):
    return sorted((f["target"], f["db_user"], f["principal"], f["severity"]) for f in document["findings"] if f["rule"] == rule)


def test_can_connect_needs_the_grant_a_usable_iam_user_and_the_flag():
    cells = dict(((row["principal"], row["target"], row["db_user"]), row) for row in build()["access"])
    assert cells[(ROLE, "orders", "alice")]["can_connect"] is True
    assert cells[(ROLE, "orders", "bob")]["can_connect"] is False  # locked
    assert cells[(ROLE, "orders", "carol")]["can_connect"] is None  # conditional
    assert cells[(ROLE, "shop", "alice")]["can_connect"] is False  # IAM flag off on shop
    assert cells[(ADMIN, "ledger", "alice")]["can_connect"] is None  # ledger unreadable: unknown, never "no"
    assert cells[(ROLE, "ledger", "alice")]["can_connect"] is False  # ... unless IAM says no
    assert cells[(ADMIN, "ledger", "alice")]["db_user_exists"] is None
    assert cells[(HIDDEN, "orders", "alice")]["can_connect"] is None  # principal unreadable
    assert cells[(ROLE, "orders", "dave")]["can_connect"] is False
    assert cells[(ROLE, "orders", "alice")]["db_user_exists"] is True and cells[(ROLE, "orders", "alice")]["db_user_iam"] is True
    assert [row["principal"] for row in build()["access"]] == sorted(row["principal"] for row in build()["access"])


def test_an_entry_for_many_users_is_one_row_per_user():
    grouped = dict(GRANTS, access=[dict(access(ROLE, "orders", "alice", "allowed"), db_users=["alice", "bob", "dave"])])
    rows = build(grants_info=grouped)["access"]
    assert [(row["db_user"], row["can_connect"]) for row in rows] == [("alice", True), ("bob", False), ("dave", True)]
    assert all("db_users" not in row for row in rows)


def test_target_findings():
    document = build()
    assert by_rule(document, "unreadable_target") == [("ledger", None, None, "high")]
    assert "timeout" in next(f["evidence"] for f in document["findings"] if f["rule"] == "unreadable_target")
    assert by_rule(document, "iam_users_flag_off") == [("shop", None, None, "high")]
    assert by_rule(document, "iam_user_with_password") == [("orders", "carol", None, "high")]
    assert by_rule(document, "inherited_rds_iam") == [("orders", "dave", None, "high")]
    assert by_rule(document, "auth_error_log_not_exported") == [("shop", None, None, "low")]
    assert by_rule(document, "hardening_missing") == [("orders", None, None, "high"), ("orders", None, None, "medium")]
    assert by_rule(document, "hardening_unknown") == [("ledger", None, None, "low")]
    ids = [f["id"] for f in document["findings"] if f["rule"] == "hardening_missing"]
    assert sorted(ids) == ["hardening_missing:orders:rds.force_ssl", "hardening_missing:orders:rds.restrict_password_commands"]


def test_grant_findings():
    document = build()
    assert by_rule(document, "dangling_grant") == [("orders", "ghost", ROLE, "medium")]
    assert by_rule(document, "identifier_not_resource_id") == [("orders", "alice", ROLE, "high")]
    fix = next(f["fix"] for f in document["findings"] if f["rule"] == "identifier_not_resource_id")
    assert PG["resource_id"] in fix
    # Only the audited regions: a resource id in another region may belong to a target the audit did not select.
    assert by_rule(document, "deleted_target_grant") == [("db-GONE0000000000000000000", "alice", ROLE, "medium")]
    assert by_rule(document, "wildcard_grant") == [("orders", "*", ROLE, "medium")]
    assert by_rule(document, "any_user_principal") == [(None, "*", ADMIN, "high")]  # once per principal


def test_abac_grant_whose_tag_nobody_carries():
    # erin (a user) has no db_user tag; the app role's sessions may be tagged (tag_session true).
    assert by_rule(build(), "abac_tag_uncarried") == [(None, "${aws:PrincipalTag/db_user}", USER, "medium")]
    grants = copy.deepcopy(GRANTS)
    grants["principals"][0]["assumable_by"][0]["tag_session"] = False
    assert len(by_rule(build(grants_info=grants), "abac_tag_uncarried")) == 2
    grants["principals"][2]["tags"] = {"db_user": "erin"}
    assert by_rule(build(grants_info=grants), "abac_tag_uncarried") == [(None, "${aws:PrincipalTag/db_user}", ROLE, "medium")]


def test_orphans_are_iam_users_nobody_may_connect_as():
    document = build()
    # alice, bob (allowed, if locked), carol (conditional) have principals; dave is not_allowed, and orphan only has the
    # administrator, who may connect as anyone and so owns no user.
    # One principal could not be read, so an orphan is only likely: low, and the evidence says why.
    assert by_rule(document, "orphan_user") == [("orders", "dave", None, "low"), ("orders", "orphan", None, "low")]
    assert "1 principal(s) could not be read" in next(f["evidence"] for f in document["findings"] if f["rule"] == "orphan_user")
    grants = copy.deepcopy(GRANTS)
    grants["principals"] = grants["principals"][:3]
    assert by_rule(build(grants_info=grants), "orphan_user") == [("orders", "dave", None, "medium"), ("orders", "orphan", None, "medium")]


def test_principal_findings_and_scps():
    document = build()
    assert by_rule(document, "unknown_principal") == [(None, None, HIDDEN, "medium")]
    assert by_rule(document, "scps_not_readable") == [(None, None, None, "info")]


def test_findings_are_unique_sorted_by_severity_and_summarised():
    document = build()
    ids = [f["id"] for f in document["findings"]]
    assert len(ids) == len(set(ids))
    ranks = [audit.severity_rank(f["severity"]) for f in document["findings"]]
    assert ranks == sorted(ranks)
    assert all(set(f) == {"id", "rule", "severity", "target", "db_user", "principal", "evidence", "fix"} for f in document["findings"])
    summary = document["summary"]
    assert summary["targets"] == 3 and summary["unreadable_targets"] == 1 and summary["principals"] == 4
    assert summary["db_users"] == 7 and summary["can_connect"] == 2
    assert sum(summary["findings"].values()) == len(document["findings"])
    assert document["schema"] == "rdsiam.auth/audit/1" and document["account"] == ACCOUNT and document["regions"] == ["eu-west-1"]
    assert [t["identifier"] for t in document["targets"]] == ["ledger", "orders", "shop"]
    assert all("tags" not in principal for principal in document["principals"])


def test_the_same_input_gives_the_same_document():
    assert build() == build()


def test_a_target_without_a_db_info_entry_is_unreadable_not_empty():
    document = build(db_info=DB_INFO[:2])
    entry = next(t for t in document["targets"] if t["identifier"] == "ledger")
    assert entry["readable"] is False and "no rds_iam_db_user_info result" in entry["error"]


@pytest.mark.parametrize("fail_on, rules", [
    ("never", set()), (None, set()),
    ("high", {"unreadable_target", "iam_users_flag_off", "iam_user_with_password", "inherited_rds_iam",
              "identifier_not_resource_id", "any_user_principal", "hardening_missing"}),
])
def test_failing_findings(fail_on, rules):
    assert set(f["rule"] for f in audit.failing_findings(build(), fail_on)) == rules
