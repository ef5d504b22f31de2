"""audit.html in a real browser (headless Chromium): it renders, the matrix and the finding counts read back from the
DOM equal the audit it was made from, a hostile principal name stays text, and the page asks for nothing outside itself."""
from ansible_collections.rdsiam.auth.plugins.module_utils._audit_report import SEVERITIES, cell_text, to_html

from tests.integration.support import browser
from tests.integration.support.browser import dom_elements, outside_requests, png_size, render

chromium = browser.chromium  # the session fixture that installs Chromium when missing; pytest finds it here

HOSTILE = "arn:aws:iam::123456789012:role/<script>document.title='pwned'</script><img src=x onerror=alert(1)>&\"'"
PRINCIPALS = ("arn:aws:iam::123456789012:role/app", "arn:aws:iam::123456789012:role/ops", "arn:aws:iam::123456789012:user/alice",
              HOSTILE)
TARGETS = ("sbx-postgres", "sbx-mariadb")
DB_USERS = ("app_user", "report_user")
TITLE = "rdsiam.auth audit 123456789012"
FINDING_COUNTS = {"critical": 1, "high": 2, "medium": 0, "low": 1, "info": 3}


def _decision(index):
    """A spread of decisions and can_connect values over the 16 cells."""
    return [("allowed", True), ("allowed", False), ("conditional", False), ("unknown", None), ("denied", False),
            ("not_allowed", False), ("allowed", None)][index % 7]


def sample_audit():
    access, index = [], 0
    for principal in PRINCIPALS:
        for target in TARGETS:
            for user in DB_USERS:
                decision, can_connect = _decision(index)
                index += 1
                access.append({"principal": principal, "principal_kind": "user" if ":user/" in principal else "role",
                               "target": target, "db_user": user, "decision": decision, "how": "explicit",
                               "reason": f"<b>{decision}</b> by policy \"p&q\"", "db_user_exists": True, "db_user_iam": True,
                               "can_connect": can_connect})
    findings = [{"id": f"RDSIAM-TEST:{severity}:{n}", "rule": "wildcard_grant", "severity": severity, "target": "sbx-postgres",
                 "db_user": "app_user", "principal": HOSTILE, "evidence": "<i>evidence</i> & more", "fix": "narrow the grant"}
                for severity, count in FINDING_COUNTS.items() for n in range(count)]
    summary = {"targets": 2, "unreadable_targets": 0, "principals": 4, "db_users": 4,
               "can_connect": sum(entry["can_connect"] is True for entry in access), "findings": dict(FINDING_COUNTS)}
    return {"schema": "rdsiam.auth/audit/1", "generated_at": "2026-12-07T12:00:00Z", "account": "123456789012",
            "regions": ["us-east-1"], "targets": [], "principals": [], "access": access, "findings": findings, "summary": summary}


def test_audit_html_renders_in_chromium_with_the_matrix_findings_and_no_request_outside(chromium, tmp_path):
    audit = sample_audit()
    page = tmp_path / "audit.html"
    page.write_text(to_html(audit), encoding="utf-8")
    rendered = render(chromium, page, tmp_path)

    assert png_size(rendered.screenshot) == (1400, 1000)
    assert (tmp_path / "page.png").stat().st_size > 10000, "the screenshot is (nearly) blank"

    elements = dom_elements(rendered.dom)
    body = next(element for element in elements if element["tag"] == "body")
    assert body["attrs"].get("data-script") == "ran", "the page's inline script did not run"

    cells = [element for element in elements if element["tag"] == "td" and "data-decision" in element["attrs"]]
    seen = {(c["attrs"]["data-principal"], c["attrs"]["data-target"], c["attrs"]["data-db-user"]): (c["attrs"]["data-decision"], c["text"])
            for c in cells}
    expected = {(e["principal"], e["target"], e["db_user"]): (e["decision"], cell_text(e)) for e in audit["access"]}
    assert len(cells) == 16 and seen == expected
    assert {text for _decision, text in seen.values()} == {"yes", "?", "unknown", ""}

    for severity in SEVERITIES:
        rows = [e for e in elements if e["attrs"].get("class") == "finding" and e["attrs"].get("data-severity") == severity]
        shown = next(e for e in elements if e["attrs"].get("data-severity-count") == severity)
        assert len(rows) == FINDING_COUNTS[severity] == int(shown["text"])
        assert next(e for e in elements if e["attrs"].get("data-summary") == f"findings-{severity}")["text"] == str(FINDING_COUNTS[severity])

    # The hostile name is text wherever it appears: no element of its own, nothing it carried ran.
    assert [e["tag"] for e in elements].count("script") == 1 and "img" not in [e["tag"] for e in elements]
    assert next(e for e in elements if e["tag"] == "title")["text"] == TITLE
    row_heads = [e["text"] for e in elements if e["tag"] == "th" and e["text"].startswith("arn:")]
    assert HOSTILE in row_heads
    assert all(e["attrs"]["data-principal"] == HOSTILE for e in elements if e["tag"] == "tr" and "pwned" in e["attrs"].get("data-principal", ""))

    outside, blocked = outside_requests(rendered)
    assert rendered.events > 0  # the net logs were written and read
    assert outside == [] and blocked == [], (outside, blocked)


def test_the_no_request_check_catches_an_external_script(chromium, tmp_path):
    """The check above would fail for a page that referenced anything outside: without a CSP the net log shows the
    request, with one the browser reports the blocked load."""
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "page.html").write_text('<!DOCTYPE html><html><head><script src="https://cdn.example.com/lib.js"></script></head>'
                                    '<body><p>x</p></body></html>', encoding="utf-8")
    outside, _blocked = outside_requests(render(chromium, bare / "page.html", bare))
    assert "https://cdn.example.com/lib.js" in outside

    guarded = tmp_path / "guarded"
    guarded.mkdir()
    page = to_html(sample_audit()).replace("</head>", '<script src="https://cdn.example.com/lib.js"></script></head>', 1)
    (guarded / "page.html").write_text(page, encoding="utf-8")
    outside, blocked = outside_requests(render(chromium, guarded / "page.html", guarded))
    assert "https://cdn.example.com/lib.js" in outside or any("https://cdn.example.com/lib.js" in line for line in blocked), \
        "an external script in the report went unnoticed"
