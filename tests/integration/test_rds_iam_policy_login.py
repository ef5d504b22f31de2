"""End to end: what rds_iam_policy writes lets exactly the granted logins into the sandbox's databases.

Tokens are minted by botocore (iam_login.mint_token) with the credentials of a session on the
role the module attached its policy to; the sandbox's verifier evaluates that role's policies.
"""
import pytest

from sandbox.iam_login import assume_role, create_db_user, drop_db_user, enable_iam_auth, login, login_error, mint_token
from tests.integration.support import policy as policy_support
from tests.integration.support.policy import PREFIX, create_role, ok, policy

aws, proxy = policy_support.aws, policy_support.proxy  # module fixtures shared with the module tests

GRANTED = ("sbx-postgres", "sbx-aurora-pg")
FOURTH = "sbx-mariadb"  # a database the policy does not name
ALICE, BOB = "fleet_e2e_alice", "fleet_e2e_bob"
SPLIT_USERS = [f"fleet_split_user_{number:03d}" for number in range(150)]
SPLIT_LOGINS = (SPLIT_USERS[0], SPLIT_USERS[75], SPLIT_USERS[-1])  # in the first, a middle and the last part
CAROL, DAVE = "fleet_e2e_carol", "fleet_e2e_dave"


@pytest.fixture(scope="module")
def databases(aws):
    """IAM auth on and the database users created, all undone afterwards."""
    sandbox = aws
    restores = [enable_iam_auth(sandbox, identifier) for identifier in (*GRANTED, FOURTH)]
    users = {identifier: [ALICE, BOB] for identifier in (*GRANTED, FOURTH)}
    users["sbx-postgres"] += [*SPLIT_LOGINS, CAROL, DAVE]
    for identifier, names in users.items():
        for name in names:
            create_db_user(sandbox, identifier, name)
    yield sandbox
    for identifier, names in users.items():
        for name in names:
            drop_db_user(sandbox, identifier, name)
    for restore in restores:
        restore()


def role_arn(sandbox, role):
    return f"arn:aws:iam::{sandbox.state['operator']['account_id']}:role/{role}"


def test_a_role_logs_in_as_its_user_on_each_granted_target_only(databases, sandbox_env, proxy):
    sandbox, role = databases, PREFIX + "e2e-role"
    create_role(sandbox, role)
    ok(policy(PREFIX + "e2e", [{"db_users": [ALICE], "targets": [*GRANTED, proxy["name"]]}], attach_to={"roles": [role]}))
    creds = assume_role(sandbox, role_arn(sandbox, role), "fleet-e2e")
    for identifier in GRANTED:
        assert login(sandbox, identifier, ALICE, mint_token(creds, sandbox.target(identifier), ALICE)) == ALICE
        login_error(sandbox, identifier, BOB, mint_token(creds, sandbox.target(identifier), BOB))
    login_error(sandbox, FOURTH, ALICE, mint_token(creds, sandbox.target(FOURTH), ALICE))


def test_split_policies_still_let_every_listed_user_in(databases, sandbox_env):
    sandbox, role = databases, PREFIX + "e2e-split-role"
    create_role(sandbox, role)
    result = ok(policy(PREFIX + "e2e-split", [{"db_users": SPLIT_USERS, "targets": ["sbx-postgres"]}], attach_to={"roles": [role]}))
    assert len(result["policies"]) > 1
    creds = assume_role(sandbox, role_arn(sandbox, role), "fleet-e2e-split")
    target = sandbox.target("sbx-postgres")
    for user in SPLIT_LOGINS:
        assert login(sandbox, "sbx-postgres", user, mint_token(creds, target, user)) == user
    login_error(sandbox, "sbx-postgres", ALICE, mint_token(creds, target, ALICE))


def test_abac_principal_tag_lets_the_tagged_session_in_and_not_an_untagged_one(databases, sandbox_env):
    sandbox, role = databases, PREFIX + "e2e-abac-role"
    create_role(sandbox, role)
    ok(policy(PREFIX + "e2e-abac", [{"db_users": ["${aws:PrincipalTag/userName}"], "targets": ["sbx-postgres"]}],
              attach_to={"roles": [role]}))
    target = sandbox.target("sbx-postgres")
    carol = assume_role(sandbox, role_arn(sandbox, role), "fleet-carol", session_tags={"userName": CAROL})
    assert login(sandbox, "sbx-postgres", CAROL, mint_token(carol, target, CAROL)) == CAROL
    login_error(sandbox, "sbx-postgres", DAVE, mint_token(carol, target, DAVE))
    untagged = assume_role(sandbox, role_arn(sandbox, role), "fleet-untagged")
    login_error(sandbox, "sbx-postgres", CAROL, mint_token(untagged, target, CAROL))
