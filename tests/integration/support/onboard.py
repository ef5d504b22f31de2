"""Helpers for the onboard_user / offboard_user playbook tests: the fleet they run on and the vars file they pass.

(No tests live here.)
"""
import secrets

FLEET = ("sbx-postgres", "sbx-aurora-pg", "sbx-mariadb", "sbx-mysql")
GRANTS = {"postgres": {"roles": ["pg_read_all_data"]}, "mysql": {"privileges": "*.*:SELECT"}}


def playbook_vars(sandbox, person, tmp_path, **extra):
    """(extra vars onboarding `person` onto FLEET of the sandbox, the path of the JSON report they ask for); extra on top."""
    report = tmp_path / f"report-{secrets.token_hex(3)}.json"
    values = {
        "rdsiam_aws": {"region": sandbox.region, "endpoint_url": sandbox.moto_url},
        "rdsiam_ca_cert": sandbox.ca_cert,
        "rdsiam_login_overrides": {t["identifier"]: {"login_host": t["login_host"], "login_port": t["login_port"]}
                                   for t in sandbox.state["targets"]},
        "rdsiam_users": person["users"],
        "rdsiam_grants": GRANTS,
        "rdsiam_principals": {"roles": [person["role"]]},
        "rdsiam_targets": {"identifiers": list(FLEET)},
        "rdsiam_verify_role_arn": person["role_arn"],
        "rdsiam_verify_retries": 0,
        "rdsiam_report_path": str(report),
    }
    values.update(extra)
    return values, report
