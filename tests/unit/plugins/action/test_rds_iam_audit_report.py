"""The rds_iam_audit_report action in-process: the join, the three reports and their modes, the summary, the CI gate list."""
import csv
import io
import json
import os
import stat
from unittest.mock import MagicMock

import pytest
import yaml
from ansible.errors import AnsibleActionFail

from ansible_collections.rdsiam.auth.plugins.action import rds_iam_audit_report as action
from ansible_collections.rdsiam.auth.plugins.modules import rds_iam_audit_report as doc
from ansible_collections.rdsiam.auth.plugins.module_utils import _audit_report as report

TARGETS = [
    {"identifier": "orders", "kind": "instance", "engine": "postgres", "dialect": "postgres", "region": "us-east-1",
     "resource_id": "db-ORDERS", "account_id": "123456789012", "iam_auth_enabled": True, "log_exports": ["iam-db-auth-error"]},
    {"identifier": "ledger", "kind": "instance", "engine": "mariadb", "dialect": "mariadb", "region": "us-east-1",
     "resource_id": "db-LEDGER", "account_id": "123456789012", "iam_auth_enabled": True, "log_exports": ["iam-db-auth-error"]},
]
DB_INFO = {"changed": False, "results": [
    {"identifier": "orders", "accounts": [{"name": "alice", "iam": True, "can_login": True, "iam_via": ["rds_iam"]}]},
    {"identifier": "ledger", "failed": True, "msg": "connection refused"},
]}
APP = "arn:aws:iam::123456789012:role/app"
GRANTS = {"changed": False, "principals": [{"arn": APP, "kind": "role", "name": "app", "readable": True}], "grants": [],
          "access": [{"principal": APP, "principal_kind": "role", "target": "orders", "db_users": ["alice"], "decision": "allowed",
                      "how": "explicit", "reason": "allowed by app-connect"}],
          "scps": {"status": "not_readable", "msg": "denied"}}
HARDENING = {"changed": False, "results": [
    {"identifier": "orders", "changes": [{"name": "rds.force_ssl", "before": "0", "after": "1"}]}]}


def run(tmp_path, check_mode=False, **args):
    args = dict(dict(targets=TARGETS, db_user_info=DB_INFO, grants_info=GRANTS, dest=str(tmp_path / "audit"),
                     generated_at="2026-12-07T00:00:00+00:00"), **args)
    task = MagicMock(args=args, async_val=0, check_mode=check_mode, diff=False)
    plugin = action.ActionModule(task, MagicMock(), MagicMock(check_mode=check_mode), loader=None, templar=None, shared_loader_obj=None)
    return plugin.run(task_vars={})


def test_the_reports_are_the_renderings_of_one_joined_document(tmp_path):
    result = run(tmp_path, hardening=HARDENING)
    directory = tmp_path / "audit"
    assert result["reports"] == dict(json=str(directory / "audit.json"), csv=str(directory / "access.csv"),
                                     html=str(directory / "audit.html"))
    audit = json.loads((directory / "audit.json").read_text())
    assert audit["generated_at"] == "2026-12-07T00:00:00+00:00" and audit["schema"] == "rdsiam.auth/audit/1"
    assert (directory / "audit.json").read_text() == json.dumps(audit, indent=4, sort_keys=True) + "\n"
    csv_text = (directory / "access.csv").read_bytes().decode()
    assert csv_text == report.to_csv(audit)
    assert (directory / "audit.html").read_text() == report.to_html(audit)
    rows = list(csv.DictReader(io.StringIO(csv_text, newline="")))
    assert [(row["principal"], row["target"], row["db_user"], row["can_connect"]) for row in rows] == [(APP, "orders", "alice", "true")]
    assert result["counts"] == audit["summary"] and result["counts"]["unreadable_targets"] == 1
    assert result["summary"] == report.to_console(audit)
    rules = set(finding["rule"] for finding in audit["findings"])
    assert {"unreadable_target", "hardening_missing", "scps_not_readable"} <= rules
    assert result["changed"] is False and not result.get("failed")


def test_reports_are_private_to_their_owner_and_replace_the_previous_ones(tmp_path):
    directory = tmp_path / "audit"
    directory.mkdir(mode=0o700)
    (directory / "audit.json").write_text("old")
    os.chmod(directory / "audit.json", 0o644)
    run(tmp_path)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert sorted(os.listdir(directory)) == ["access.csv", "audit.html", "audit.json"]
    for name in os.listdir(directory):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
    assert (directory / "audit.json").read_text() != "old"


def test_a_new_report_directory_is_created_0700(tmp_path):
    run(tmp_path, dest=str(tmp_path / "deep" / "audit"))
    assert stat.S_IMODE((tmp_path / "deep" / "audit").stat().st_mode) == 0o700


def test_check_mode_writes_the_reports_too_and_changes_nothing_else(tmp_path):
    result = run(tmp_path, check_mode=True)
    assert result["changed"] is False and (tmp_path / "audit" / "audit.html").is_file()


@pytest.mark.parametrize("fail_on, count", [("never", 0), ("critical", 0), ("high", 2), ("info", None)])
def test_failing_lists_the_findings_at_fail_on_or_worse(tmp_path, fail_on, count):
    result = run(tmp_path, fail_on=fail_on, hardening=HARDENING)
    audit = json.loads((tmp_path / "audit" / "audit.json").read_text())
    if count is None:
        count = len(audit["findings"])
    assert len(result["failing"]) == count
    if fail_on == "high":
        assert result["failing"] == ["high hardening_missing:orders:rds.force_ssl - rds.force_ssl is 0, not 1: clients may connect without TLS",
                                     "high unreadable_target:ledger:*:* - connection refused"]


def test_fail_on_names_the_valid_values(tmp_path):
    with pytest.raises(AnsibleActionFail, match="fail_on.*critical, high, medium, low, info, never.*severe"):
        run(tmp_path, fail_on="severe")


def test_a_skipped_hardening_run_makes_no_hardening_finding(tmp_path):
    run(tmp_path, hardening={"changed": False, "skipped": True, "skip_reason": "Conditional result was False"})
    audit = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert not [finding for finding in audit["findings"] if finding["rule"].startswith("hardening")]


def test_a_results_list_is_taken_as_well_as_the_registered_run(tmp_path):
    run(tmp_path, db_user_info=DB_INFO["results"])
    assert json.loads((tmp_path / "audit" / "audit.json").read_text())["summary"]["unreadable_targets"] == 1


@pytest.mark.parametrize("option, value, message", [
    ("db_user_info", {"failed": True, "msg": "boom"}, "db_user_info is a failed run \\(boom\\).*fix the failing task"),
    ("db_user_info", "orders", "db_user_info must be a registered result with results, or its results list of dicts; got str"),
    ("hardening", [1, 2], "hardening must be a registered result.*got list"),
])
def test_what_is_not_a_run_over_targets_is_refused_by_name(tmp_path, option, value, message):
    with pytest.raises(AnsibleActionFail, match=message):
        run(tmp_path, **{option: value})
    assert not (tmp_path / "audit").exists()


def test_a_dest_that_cannot_be_written_names_the_directory_and_the_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AnsibleActionFail, match="cannot write the audit reports to %s.*give a dest" % (blocker / "audit")):
        run(tmp_path, dest=str(blocker / "audit"))


def test_the_documented_options_are_the_argument_spec():
    options = yaml.safe_load(doc.DOCUMENTATION)["options"]
    assert set(options) == set(action.ARGUMENT_SPEC)
    for name, spec in action.ARGUMENT_SPEC.items():
        assert options[name]["type"] == spec["type"], name
        assert options[name].get("required", False) == spec.get("required", False), name
        assert options[name].get("default") == spec.get("default"), name
        assert options[name].get("choices") == spec.get("choices"), name
