"""The collection's login_iam admin login against the sandbox: the token _db signs opens the server through its verifier."""
import pytest

from sandbox.iam_login import (admin_connection, allow_connect, connect_arn, delete_iam_user, drop_db_user, iam_auth_set, iam_user_with_policy,
                               refusals_for)

TARGETS = ("sbx-postgres", "sbx-mariadb")


@pytest.fixture(scope="module")
def iam_on(sandbox):
    """IAM auth on for the targets under test, and back to what it was afterwards."""
    with iam_auth_set(sandbox, TARGETS):
        yield sandbox


@pytest.mark.parametrize("identifier", TARGETS)
def test_a_module_logs_in_as_an_iam_admin_with_login_iam(iam_on, module_runner, identifier):
    """login_iam: the token _db signs (for the real endpoint, while connecting to login_host) opens the server."""
    sandbox = iam_on
    target = sandbox.target(identifier)
    admin, made, iam_name = "tc_iam_admin", "tc_made_by_iam_admin", f"tc-iam-admin-{identifier}"
    conn = admin_connection(sandbox, identifier)
    try:
        with conn.cursor() as cur:
            if "postgres" in target["engine"]:
                cur.execute(f"DROP ROLE IF EXISTS {admin}")
                cur.execute(f"CREATE ROLE {admin} LOGIN CREATEROLE")
                cur.execute(f"GRANT rds_iam TO {admin}")
            else:
                cur.execute(f"DROP USER IF EXISTS {admin}@'%'")
                cur.execute(f"CREATE USER {admin}@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL")
                cur.execute(f"GRANT SELECT, CREATE USER ON *.* TO {admin}@'%' WITH GRANT OPTION")
    finally:
        conn.close()
    keys = iam_user_with_policy(sandbox, iam_name, allow_connect(connect_arn(sandbox, identifier, admin)))
    env = dict(sandbox.aws_env(), AWS_ACCESS_KEY_ID=keys["access_key_id"], AWS_SECRET_ACCESS_KEY=keys["secret_access_key"])
    args = {"login_host": target["login_host"], "login_port": target["login_port"], "endpoint": target["endpoint"],
            "login_user": admin, "login_iam": True, "ca_cert": sandbox.ca_cert, "name": made}
    try:
        created = module_runner("rds_iam_db_user", args, env=env)
        assert created.get("failed") is not True and created["changed"] is True, created
        assert "X-Amz-Signature" not in str(created) and keys["secret_access_key"] not in str(created)
        # A principal without the policy signs a token the verifier refuses: the module fails, the token stays hidden.
        other = iam_user_with_policy(sandbox, iam_name + "-other")
        refused = module_runner("rds_iam_db_user", args, env=dict(env, AWS_ACCESS_KEY_ID=other["access_key_id"],
                                                                  AWS_SECRET_ACCESS_KEY=other["secret_access_key"]))
        assert refused.get("failed") is True and "X-Amz-Signature" not in str(refused), refused
        assert refusals_for(sandbox, identifier, admin)[-1]["reason"] == (
            f"{other['arn']}: no policy allows rds-db:connect on {connect_arn(sandbox, identifier, admin)}")
    finally:
        module_runner("rds_iam_db_user", dict(args, state="absent"), env=env)
        delete_iam_user(sandbox, iam_name)
        delete_iam_user(sandbox, iam_name + "-other")
        drop_db_user(sandbox, identifier, admin)
