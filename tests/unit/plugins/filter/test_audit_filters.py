"""The filters audit.yml uses around the audit join: IAM users by target, the console table, the CI gate."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.rdsiam.auth.plugins.filter import audit as filters

DB_INFO = {"results": [
    {"identifier": "orders", "accounts": [{"name": "bob", "iam": True}, {"name": "alice", "iam": True},
                                          {"name": "alice", "iam": True}, {"name": "postgres", "iam": False}]},
    {"identifier": "ledger", "failed": True, "msg": "down"},
]}
AUDIT = {
    "targets": [
        {"identifier": "orders", "engine": "postgres", "iam_auth_enabled": True, "readable": True,
         "accounts": [{"name": "alice", "iam": True}, {"name": "postgres", "iam": False}]},
        {"identifier": "ledger", "engine": "aurora-postgresql", "iam_auth_enabled": False, "readable": False, "accounts": None},
    ],
    "access": [{"target": "orders", "can_connect": True}, {"target": "orders", "can_connect": None},
               {"target": "ledger", "can_connect": None}],
    "findings": [
        {"id": "unreadable_target:ledger:*:*", "severity": "high", "target": "ledger", "evidence": "down"},
        {"id": "orphan_user:orders:alice:*", "severity": "medium", "target": "orders", "evidence": "nobody"},
        {"id": "scps_not_readable:*:*:*", "severity": "info", "target": None, "evidence": "denied"},
    ],
}


def test_audit_db_users_lists_each_readable_targets_iam_users_once():
    assert filters.audit_db_users(DB_INFO) == {"orders": ["alice", "bob"]}
    assert filters.audit_db_users(DB_INFO["results"]) == {"orders": ["alice", "bob"]}


def test_audit_table_has_a_row_per_target_and_the_account_wide_findings():
    lines = filters.audit_table(AUDIT)
    assert lines[0].split(" | ")[0].strip() == "target" and set(lines[1]) <= {"-", "+"}
    rows = [[cell.strip() for cell in line.split("|")] for line in lines[2:]]
    assert rows[0] == ["orders", "postgres", "on", "2", "1", "1", "1 medium"]
    assert rows[1] == ["ledger", "aurora-postgresql", "off", "UNREADABLE", "?", "0", "1 high"]
    assert rows[2][0] == "(account-wide)" and rows[2][-1] == "1 info"


def test_audit_failing_counts_the_given_severity_and_worse():
    assert filters.audit_failing(AUDIT, "high") == ["high unreadable_target:ledger:*:* - down"]
    assert len(filters.audit_failing(AUDIT, "info")) == 3
    assert filters.audit_failing(AUDIT, "never") == []


def test_audit_failing_names_the_valid_values():
    with pytest.raises(AnsibleFilterError, match="rdsiam_audit_fail_on is 'severe'.*critical, high, medium, low, info or never"):
        filters.audit_failing(AUDIT, "severe")
