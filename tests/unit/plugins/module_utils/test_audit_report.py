"""access.csv and audit.html from an audit document: RFC 4180 quoting, formula neutralising, escaping, no external reference."""
import csv
import html.parser
import io
import re

import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _audit_report as report

HOSTILE = '<script>alert("x")</script>&\'"'


def _access(principal, target, db_user, decision, can_connect, reason="r", how="explicit"):
    return {"principal": principal, "principal_kind": "role", "target": target, "db_user": db_user, "decision": decision,
            "how": how, "reason": reason, "db_user_exists": True, "db_user_iam": True, "can_connect": can_connect}


def _audit(access=(), findings=()):
    return {"schema": "rdsiam.auth/audit/1", "generated_at": "2026-12-07T00:00:00Z", "account": "123456789012",
            "regions": ["us-east-1"], "targets": [], "principals": [], "access": list(access), "findings": list(findings),
            "summary": {"targets": 2, "unreadable_targets": 0, "principals": 1, "db_users": 2, "can_connect": 1,
                        "findings": {"critical": 1, "high": 0, "medium": 0, "low": 0, "info": 0}}}


# --- CSV -------------------------------------------------------------------------------------------

def test_csv_has_the_header_then_one_row_per_access_entry_with_crlf():
    text = report.to_csv(_audit([_access("arn:aws:iam::1:role/app", "db1", "alice", "allowed", True),
                                 _access("arn:aws:iam::1:role/app", "db1", "bob", "unknown", None)]))
    assert text.split("\r\n")[0] == "principal,principal_kind,target,db_user,decision,can_connect,how,reason"
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[1] == ["arn:aws:iam::1:role/app", "role", "db1", "alice", "allowed", "true", "explicit", "r"]
    assert rows[2][5] == "unknown" and len(rows) == 3


def test_csv_quotes_commas_quotes_and_newlines_as_rfc_4180_says():
    reason = 'denied by "deny-all", statement 0\nsee policy'
    text = report.to_csv(_audit([_access("p", "db1", "alice", "denied", False, reason=reason)]))
    assert '"denied by ""deny-all"", statement 0\nsee policy"' in text
    assert list(csv.reader(io.StringIO(text, newline="")))[1][7] == reason
    assert report.to_csv(_audit()) == "principal,principal_kind,target,db_user,decision,can_connect,how,reason\r\n"


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_neutralises_formula_cells(value):
    text = report.to_csv(_audit([_access(value, "db1", value, "allowed", True, reason=value)]))
    row = list(csv.reader(io.StringIO(text, newline="")))[1]
    assert row[0] == "'" + value and row[3] == "'" + value and row[7] == "'" + value


def test_csv_leaves_ordinary_cells_alone():
    assert report.safe_cell("arn:aws:iam::1:user/a-b") == "arn:aws:iam::1:user/a-b"
    assert report.safe_cell(None) == "" and report.safe_cell(False) == "false"


# --- HTML ------------------------------------------------------------------------------------------

class _Collector(html.parser.HTMLParser):
    """Start tags with their attributes, as a browser's parser would see them."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(page):
    collector = _Collector()
    collector.feed(page)
    return collector.tags


def test_html_escapes_hostile_names_reasons_and_evidence():
    finding = {"id": "RDSIAM-X:" + HOSTILE, "rule": "wildcard_grant", "severity": "critical", "target": HOSTILE,
               "db_user": HOSTILE, "principal": HOSTILE, "evidence": HOSTILE, "fix": HOSTILE}
    page = report.to_html(_audit([_access(HOSTILE, HOSTILE, HOSTILE, "allowed", True, reason=HOSTILE)], [finding]))
    assert HOSTILE not in page and "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#x27;&quot;" in page
    assert [tag for tag, _attrs in _tags(page)].count("script") == 1  # only the page's own script
    cell = next(attrs for tag, attrs in _tags(page) if attrs.get("class", "").startswith("cell"))
    assert cell["data-principal"] == HOSTILE and cell["data-target"] == HOSTILE and cell["data-db-user"] == HOSTILE


def test_html_has_the_csp_and_references_nothing_outside():
    page = report.to_html(_audit([_access("p", "db1", "alice", "allowed", True)]))
    meta = [attrs for tag, attrs in _tags(page) if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"]
    assert meta == [{"http-equiv": "Content-Security-Policy",
                     "content": "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"}]
    assert "http://" not in page and "https://" not in page and "//" not in re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    for tag, attrs in _tags(page):
        assert not ({"src", "href", "action", "srcset", "poster", "data"} & set(attrs)), (tag, attrs)
    assert "@import" not in page and "url(" not in page


def test_html_matrix_has_a_cell_per_principal_and_target_user_pair():
    access = [_access("a", "db1", "alice", "allowed", True), _access("a", "db2", "bob", "conditional", False),
              _access("b", "db1", "alice", "unknown", None), _access("b", "db2", "bob", "not_allowed", False),
              _access("c", "db1", "alice", "allowed", None)]
    page = report.to_html(_audit(access))
    cells = [attrs for tag, attrs in _tags(page) if tag == "td" and "data-decision" in attrs]
    assert [(c["data-principal"], c["data-target"], c["data-db-user"], c["data-decision"]) for c in cells] == [
        ("a", "db1", "alice", "allowed"), ("a", "db2", "bob", "conditional"), ("b", "db1", "alice", "unknown"),
        ("b", "db2", "bob", "not_allowed"), ("c", "db1", "alice", "allowed")]
    # c has no row for db2/bob: its cell is bare (a fleet's grid is mostly such cells), the last of c's row.
    row_c = page.split('<tr class="matrix-row" data-principal="c">', 1)[1].split("</tr>", 1)[0]
    assert row_c.endswith("<td></td>") and row_c.count("<td") == 2
    assert [report.cell_text(entry) for entry in access] == ["yes", "?", "unknown", "", "unknown"]
    assert report.cell_text({}) == ""


def test_html_groups_findings_by_severity_with_counts_and_filters():
    findings = [{"id": "f%d" % n, "rule": "r", "severity": severity, "target": "t", "db_user": "u", "principal": "p",
                 "evidence": "e", "fix": "x"} for n, severity in enumerate(["high", "critical", "high", "info"])]
    tags = _tags(report.to_html(_audit(findings=findings)))
    counted = {attrs["data-severity-count"] for tag, attrs in tags if "data-severity-count" in attrs}
    assert counted == set(report.SEVERITIES)
    rows = [attrs["data-severity"] for tag, attrs in tags if attrs.get("class") == "finding"]
    assert rows == ["critical", "high", "high", "info"]
    boxes = [attrs["value"] for tag, attrs in tags if attrs.get("class") == "severity-filter"]
    assert boxes == list(report.SEVERITIES)
    assert {attrs.get("id") for tag, attrs in tags if tag == "input"} >= {"finding-filter", "principal-filter"}


# --- console ---------------------------------------------------------------------------------------

CONSOLE_AUDIT = {
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


def test_console_has_a_row_per_target_and_the_account_wide_findings():
    lines = report.to_console(CONSOLE_AUDIT)
    assert lines[0].split(" | ")[0].strip() == "target" and set(lines[1]) <= {"-", "+"}
    rows = [[cell.strip() for cell in line.split("|")] for line in lines[2:]]
    assert rows[0] == ["orders", "postgres", "on", "2", "1", "1", "1 medium"]
    assert rows[1] == ["ledger", "aurora-postgresql", "off", "UNREADABLE", "?", "0", "1 high"]
    assert rows[2][0] == "(account-wide)" and rows[2][-1] == "1 info"
    assert len(rows) == 3


def test_console_says_none_for_a_target_without_findings():
    lines = report.to_console(dict(CONSOLE_AUDIT, findings=[]))
    assert [line.split("|")[-1].strip() for line in lines[2:]] == ["none", "none", "none"]
