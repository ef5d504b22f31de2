"""The filter audit.yml uses between its reads: the IAM users of each target."""

from ansible_collections.rdsiam.auth.plugins.filter import audit as filters

DB_INFO = {"results": [
    {"identifier": "orders", "accounts": [{"name": "bob", "iam": True}, {"name": "alice", "iam": True},
                                          {"name": "alice", "iam": True}, {"name": "postgres", "iam": False}]},
    {"identifier": "ledger", "failed": True, "msg": "down"},
]}


def test_audit_db_users_lists_each_readable_targets_iam_users_once():
    assert filters.audit_db_users(DB_INFO) == {"orders": ["alice", "bob"]}
    assert filters.audit_db_users(DB_INFO["results"]) == {"orders": ["alice", "bob"]}


def test_audit_db_users_is_the_only_filter():
    assert set(filters.FilterModule().filters()) == {"audit_db_users"}
