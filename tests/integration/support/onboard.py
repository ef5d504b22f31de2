"""Helpers for the onboard_user / offboard_user playbook tests: the fleet they run on and the vars file they pass.

(No tests live here.)
"""
import contextlib
import secrets

from sandbox.iam_login import admin_connection, delete_role, engine_of, role_with_policy

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


@contextlib.contextmanager
def onboarding_person(sandbox, prefix):
    """A fresh IAM role (the person, as with SSO) and two database users of their own, named from prefix; afterwards the
    role, the users' policies and the users on every target of FLEET are removed."""
    suffix = secrets.token_hex(3)
    role = f"{prefix}-people-{suffix}"
    arn = role_with_policy(sandbox, role, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rds:DescribeDBInstances", "Resource": "*"}]})
    users = [f"{prefix}_ann_{suffix}", f"{prefix}_ben_{suffix}"]
    try:
        yield {"role": role, "role_arn": arn, "users": users}
    finally:
        iam = sandbox.moto().client("iam")
        delete_role(sandbox, role)
        for user in users:
            try:
                iam.delete_policy(PolicyArn=f"arn:aws:iam::{sandbox.state['operator']['account_id']}:policy/rdsiam-{user}")
            except iam.exceptions.NoSuchEntityException:
                pass
        for identifier in FLEET:
            drop_everywhere(sandbox, identifier, users)


def drop_everywhere(sandbox, identifier, users):
    """Drop the database users from one target, whichever engine it runs."""
    conn = admin_connection(sandbox, identifier)
    try:
        with conn.cursor() as cur:
            for user in users:
                if engine_of(sandbox.target(identifier)) == "postgres":
                    cur.execute('DROP ROLE IF EXISTS "%s"' % user)
                else:
                    cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
    finally:
        conn.close()
