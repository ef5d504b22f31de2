"""audit.yml on the sandbox fleet: its access matrix checked against real token logins, its findings, and bad input.

A planted mix of grants, written with plain boto3: an IAM user with explicit ARNs (plus a grant naming the instance
identifier instead of its resource id, and one for a user that does not exist), a role whose tag feeds an ABAC policy, a
role with a wildcard over one instance and an explicit Deny, and an administrator role. Every (principal, database
user, target) cell of the matrix must say what a real login with that principal's token does.
"""
import csv
import io
import json

import psycopg2
import pymysql
import pytest

from sandbox import iam_login
from tests.integration.support import browser
from tests.integration.support.browser import dom_elements, outside_requests, render
from tests.integration.support.harness import run_playbook
from tests.integration.support.onboard import FLEET

chromium = browser.chromium  # the session fixture that installs Chromium when missing; pytest finds it here

USERS = ("au_alice", "au_bob", "au_orphan")  # created on every target; au_ghost is only granted
GHOST = "au_ghost"
PRINCIPAL_GLOBS = ["arn:aws:iam::*:user/au-*", "arn:aws:iam::*:role/au-*"]


def _arn(sandbox, identifier, user):
    return iam_login.connect_arn(sandbox, identifier, user)


@pytest.fixture(scope="module")
def planted(sandbox):
    """The principals (name -> credentials) and database users the audit must find; removed afterwards."""
    restore = [iam_login.enable_iam_auth(sandbox, identifier) for identifier in FLEET]
    for identifier in FLEET:
        for user in USERS:
            iam_login.create_db_user(sandbox, identifier, user)
    account = sandbox.state["operator"]["account_id"]
    pg = sandbox.target("sbx-postgres")
    explicit = iam_login.iam_user_with_policy(sandbox, "au-explicit", [
        iam_login.allow_connect(_arn(sandbox, "sbx-postgres", "au_alice"), _arn(sandbox, "sbx-mariadb", "au_alice"),
                                _arn(sandbox, "sbx-postgres", GHOST), _arn(sandbox, "sbx-mysql", "au_bob"),
                                f"arn:aws:rds-db:{sandbox.region}:{account}:dbuser:sbx-postgres/au_bob"),
    ])
    abac_arn = iam_login.role_with_policy(sandbox, "au-abac", [iam_login.allow_connect(
        f"arn:aws:rds-db:{sandbox.region}:{account}:dbuser:*/${{aws:PrincipalTag/au_db_user}}")], tags={"au_db_user": "au_bob"})
    wild_arn = iam_login.role_with_policy(sandbox, "au-wild", [
        iam_login.allow_connect(f"arn:aws:rds-db:{sandbox.region}:{account}:dbuser:{pg['resource_id']}/*"),
        iam_login.allow_connect(_arn(sandbox, "sbx-postgres", "au_alice"), effect="Deny"),
    ])
    admin_arn = iam_login.role_with_policy(sandbox, "au-admin", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])
    # ABAC through session tags: the role has no tag, its sessions are tagged when assumed (see the conditional test).
    iam_login.role_with_policy(sandbox, "au-session", [iam_login.allow_connect(
        f"arn:aws:rds-db:{sandbox.region}:{account}:dbuser:{pg['resource_id']}/${{aws:PrincipalTag/au_db_user}}")])
    principals = {
        explicit["arn"]: explicit,
        abac_arn: iam_login.assume_role(sandbox, abac_arn, "audit-abac"),
        wild_arn: iam_login.assume_role(sandbox, wild_arn, "audit-wild"),
        admin_arn: iam_login.assume_role(sandbox, admin_arn, "audit-admin"),
    }
    yield principals
    iam_login.delete_iam_user(sandbox, "au-explicit")
    for name in ("au-abac", "au-wild", "au-admin", "au-session"):
        iam_login.delete_role(sandbox, name)
    for identifier in FLEET:
        for user in USERS:
            iam_login.drop_db_user(sandbox, identifier, user)
    for undo in restore:
        undo()


def _audit_vars(sandbox, tmp_path, **extra):
    values = {
        "rdsiam_aws": {"region": sandbox.region, "endpoint_url": sandbox.moto_url},
        "rdsiam_ca_cert": sandbox.ca_cert,
        "rdsiam_login_overrides": {t["identifier"]: {"login_host": t["login_host"], "login_port": t["login_port"]}
                                   for t in sandbox.state["targets"]},
        "rdsiam_targets": {"identifiers": list(FLEET)},
        "rdsiam_audit_principals": PRINCIPAL_GLOBS,
        "rdsiam_audit_dir": str(tmp_path / "audit"),
    }
    values.update(extra)
    return values


@pytest.fixture(scope="module")
def audited(sandbox, planted, tmp_path_factory):
    """One audit run of the planted fleet: (the run, audit.json, the report directory)."""
    tmp_path = tmp_path_factory.mktemp("audit")
    run = run_playbook("rdsiam.auth.audit", tmp_path, extra_vars=_audit_vars(sandbox, tmp_path), env=sandbox.aws_env())
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = tmp_path / "audit"
    return run, json.loads((report / "audit.json").read_text()), report


def _logs_in(sandbox, credentials, identifier, user):
    token = iam_login.mint_token(credentials, sandbox.target(identifier), user)
    try:
        return iam_login.login(sandbox, identifier, user, token) == user
    except (psycopg2.Error, pymysql.err.MySQLError):
        return False


def test_every_matrix_cell_equals_a_real_login(sandbox, planted, audited):
    _run, audit, _report = audited
    cells = dict(((row["principal"], row["target"], row["db_user"]), row) for row in audit["access"])
    checked, mismatches = 0, []
    for principal, credentials in planted.items():
        for identifier in FLEET:
            for user in USERS + (GHOST,):
                row = cells.get((principal, identifier, user))
                predicted = row["can_connect"] if row else False
                actual = _logs_in(sandbox, credentials, identifier, user)
                checked += 1
                if predicted is not actual:
                    mismatches.append((principal.rsplit("/", 1)[1], identifier, user, predicted, actual, row and row["reason"]))
    assert checked == len(planted) * len(FLEET) * (len(USERS) + 1) == 64
    assert not mismatches, "\n".join(map(str, mismatches))
    # The matrix is not trivially empty or full: the planted grants give a mix.
    allowed = [row for row in audit["access"] if row["can_connect"]]
    assert 0 < len(allowed) < 64


def test_a_grant_that_depends_on_session_tags_is_conditional_and_holds_for_a_session_so_tagged(sandbox, planted, audited):
    _run, audit, _report = audited
    role = next(row["principal"] for row in audit["access"] if row["principal"].endswith(":role/au-session"))
    cells = dict(((row["target"], row["db_user"]), row) for row in audit["access"] if row["principal"] == role)
    sessions = dict((user, iam_login.assume_role(sandbox, role, "audit-" + user, session_tags={"au_db_user": user}))
                    for user in USERS + (GHOST,))
    checked = 0
    for identifier in FLEET:
        for user in USERS + (GHOST,):
            row = cells.get((identifier, user))
            usable = identifier == "sbx-postgres" and user != GHOST
            if identifier == "sbx-postgres":  # the only resource id the role's policy names
                # Conditional: a session tagged for the user gets in, when the user is there to log in as.
                assert row["decision"] == "conditional" and row["can_connect"] is (None if usable else False), row
                assert "any session tagged au_db_user=" + user in json.dumps(row["conditions"]), row
            elif row is not None:
                assert row["decision"] == "not_allowed" and row["can_connect"] is False, row
            other = next(name for name in USERS if name != user)
            assert _logs_in(sandbox, sessions[user], identifier, user) is usable, (identifier, user, row)
            assert _logs_in(sandbox, sessions[other], identifier, user) is False, (identifier, user, other)
            checked += 1
    assert checked == len(FLEET) * (len(USERS) + 1)
    # Only where the policy names a resource id: every IAM user of sbx-postgres, and the ghost a grant names there.
    assert sorted(cells) == [("sbx-postgres", user) for user in sorted(USERS + (GHOST,))]


def _findings(audit, rule):
    return sorted((f["target"], f["db_user"], (f["principal"] or "").rsplit("/", 1)[-1]) for f in audit["findings"] if f["rule"] == rule)


def test_the_planted_mistakes_are_findings(sandbox, audited):
    _run, audit, _report = audited
    pg = sandbox.target("sbx-postgres")
    assert _findings(audit, "identifier_not_resource_id") == [("sbx-postgres", "au_bob", "au-explicit")]
    assert _findings(audit, "dangling_grant") == [("sbx-postgres", GHOST, "au-explicit")]
    assert _findings(audit, "wildcard_grant") == [("sbx-postgres", "*", "au-wild")]
    assert _findings(audit, "any_user_principal") == [(None, "*", "au-admin")]
    # The administrator does not make a user owned: au_orphan is granted only on sbx-postgres (by the wildcard), au_alice
    # explicitly on sbx-postgres and sbx-mariadb, au_bob everywhere (ABAC, the role's tag).
    assert _findings(audit, "orphan_user") == sorted(
        [(identifier, "au_orphan", "") for identifier in FLEET if identifier != "sbx-postgres"]
        + [(identifier, "au_alice", "") for identifier in FLEET if identifier not in ("sbx-postgres", "sbx-mariadb")])
    denied = [row for row in audit["access"] if row["decision"] == "denied"]
    assert [(row["principal"].rsplit("/", 1)[1], row["target"], row["db_user"]) for row in denied] == [("au-wild", "sbx-postgres", "au_alice")]
    assert next(t for t in audit["targets"] if t["identifier"] == "sbx-postgres")["resource_id"] == pg["resource_id"]


def test_the_reports_are_written_and_hold_no_secret(sandbox, audited):
    run, audit, report = audited
    assert sorted(path.name for path in report.iterdir()) == ["access.csv", "audit.html", "audit.json"]
    rows = list(csv.DictReader(io.StringIO((report / "access.csv").read_text())))
    assert len(rows) == len(audit["access"])
    assert set(row["principal"] for row in rows) == set(row["principal"] for row in audit["access"])
    assert "<table" in (report / "audit.html").read_text()
    everything = run.stdout + run.stderr + "".join(path.read_text() for path in report.iterdir())
    for target in sandbox.state["targets"]:
        assert target["master_password"] not in everything
    assert "X-Amz-Signature" not in everything
    assert "report: " + str(report.resolve()) + "/audit.html" in run.stdout
    assert audit["summary"]["targets"] == len(FLEET) and audit["summary"]["unreadable_targets"] == 0


def test_the_html_report_of_the_run_shows_its_matrix_and_findings_in_a_browser(chromium, audited, tmp_path):
    _run, audit, report = audited
    rendered = render(chromium, report / "audit.html", tmp_path)
    elements = dom_elements(rendered.dom)
    cells = dict(((e["attrs"]["data-principal"], e["attrs"]["data-target"], e["attrs"]["data-db-user"]), e["attrs"]["data-decision"])
                 for e in elements if e["tag"] == "td" and "data-decision" in e["attrs"])
    # Every access row is its cell; the rest of the grid (no row: nothing allows it) is a bare, empty cell.
    assert cells == dict(((row["principal"], row["target"], row["db_user"]), row["decision"]) for row in audit["access"])
    shown = [e for e in elements if e["attrs"].get("class") == "finding"]
    assert len(shown) == len(audit["findings"]) > 0
    assert sorted(e["attrs"]["data-severity"] for e in shown) == sorted(f["severity"] for f in audit["findings"])
    assert outside_requests(rendered) == ([], [])


def test_a_target_that_is_down_is_a_finding_and_fail_on_gates(sandbox, planted, tmp_path, playbook_runner):
    with sandbox.stopped("sbx-mysql"):
        run = playbook_runner("rdsiam.auth.audit", extra_vars=_audit_vars(sandbox, tmp_path), env=sandbox.aws_env())
        gated = playbook_runner("rdsiam.auth.audit", extra_vars=_audit_vars(sandbox, tmp_path, rdsiam_audit_fail_on="high"),
                                env=sandbox.aws_env())
    assert run.rc == 0, run.stdout[-3000:]
    audit = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert _findings(audit, "unreadable_target") == [("sbx-mysql", None, "")]
    entry = next(t for t in audit["targets"] if t["identifier"] == "sbx-mysql")
    assert entry["readable"] is False and entry["error"]
    # Its users could not be read: where IAM allows, the cell is unknown, never "cannot connect" (where IAM does not,
    # there is no row, as everywhere).
    mysql_cells = [(row["principal"].rsplit("/", 1)[1], row["db_user"], row["can_connect"]) for row in audit["access"]
                   if row["target"] == "sbx-mysql"]
    assert sorted(mysql_cells) == [("au-abac", "au_bob", None), ("au-admin", "au_bob", None), ("au-explicit", "au_bob", None)]
    assert gated.rc != 0
    assert "finding(s) at high or worse" in gated.stdout and "unreadable_target:sbx-mysql" in gated.stdout


def test_check_mode_changes_nothing_and_verbose_output_holds_no_secret(sandbox, planted, tmp_path, playbook_runner):
    rds = sandbox.moto().client("rds")
    before = [rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBParameterGroups"]
              for identifier in FLEET if identifier != "sbx-aurora-pg"]
    run = playbook_runner("rdsiam.auth.audit", extra_vars=_audit_vars(sandbox, tmp_path), env=sandbox.aws_env(), check=True,
                          verbosity=4)
    assert run.rc == 0, run.stdout[-3000:]
    assert "changed=0" in run.stdout
    after = [rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBParameterGroups"]
             for identifier in FLEET if identifier != "sbx-aurora-pg"]
    assert after == before
    for target in sandbox.state["targets"]:
        assert target["master_password"] not in run.stdout + run.stderr
    assert (tmp_path / "audit" / "audit.json").exists()
