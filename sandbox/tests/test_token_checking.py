"""Refusals: the sandbox's databases accept exactly the IAM tokens RDS would.

Every case logs in through the real server (PostgreSQL via PAM, MariaDB via its
AWSAuthenticationPlugin), both of which ask the one verifier on the moto server; each refusal
must show up in the sandbox's iam-db-auth-error.log with its reason and without the token.
"""
import concurrent.futures
import datetime
import urllib.parse

import pytest

from sandbox.iam_login import (allow_connect, assert_login, assume_role, auth_error_log, connect_arn, create_db_user, delete_iam_user, delete_role,
                               drop_db_user, enable_iam_auth, iam_auth_set, iam_user_with_policy, login, login_error, mint_token,
                               policy_document, refusals_for, role_with_policy, server_log, verify_over_http)

TARGETS = ("sbx-postgres", "sbx-mariadb")
# A second target of the same engine: its tokens must not open the first.
OTHER_TARGET = {"sbx-postgres": "sbx-aurora-pg", "sbx-mariadb": "sbx-mysql"}
ALICE, BOB, CAROL = "tc_alice", "tc_bob", "tc_carol"  # database users (also the ABAC tag values)
DB_USERS = (ALICE, BOB, CAROL)


@pytest.fixture(scope="module")
def iam_on(sandbox):
    """IAM auth on for the targets under test, and back to what it was afterwards."""
    with iam_auth_set(sandbox, (*TARGETS, "sbx-aurora-pg")):
        yield sandbox


@pytest.fixture(scope="module")
def db_users(iam_on):
    sandbox = iam_on
    for identifier in TARGETS:
        for user in DB_USERS:
            create_db_user(sandbox, identifier, user)
    yield sandbox
    for identifier in TARGETS:
        for user in DB_USERS:
            drop_db_user(sandbox, identifier, user)


@pytest.fixture(scope="module")
def principals(db_users):
    """The IAM side: who may connect as whom on both targets."""
    sandbox = db_users

    def arns(user):
        return [connect_arn(sandbox, identifier, user) for identifier in TARGETS]

    made = {
        "alice": iam_user_with_policy(sandbox, "tc-alice", allow_connect(*arns(ALICE))),
        "bob-only": iam_user_with_policy(sandbox, "tc-bob-only", allow_connect(*arns(BOB))),
        "denied": iam_user_with_policy(sandbox, "tc-denied", [allow_connect("*"), allow_connect(*arns(ALICE), effect="Deny")],
                                       policy_name="deny-alice"),
        # one policy for everyone, the user part is the IAM user's own name
        "username": iam_user_with_policy(sandbox, CAROL, allow_connect("arn:aws:rds-db:*:*:dbuser:*/${aws:username}")),
    }
    # one role, the session tag says which database user the session may be
    abac_role = role_with_policy(sandbox, "tc-abac", allow_connect(
        *[f"arn:aws:rds-db:{sandbox.region}:{sandbox.state['operator']['account_id']}:dbuser:{sandbox.target(t)['resource_id']}"
          "/${aws:PrincipalTag/userName}" for t in TARGETS]))
    made["abac-alice"] = assume_role(sandbox, abac_role, "tc-alice-session", session_tags={"userName": ALICE})
    made["role"] = assume_role(sandbox, role_with_policy(sandbox, "tc-role", allow_connect(*arns(ALICE))), "tc-role-session")
    yield made
    for name in ("tc-alice", "tc-bob-only", "tc-denied", CAROL):
        delete_iam_user(sandbox, name)
    delete_role(sandbox, "tc-abac")
    delete_role(sandbox, "tc-role")


def _refused(sandbox, identifier, db_user, token, expected_reason):
    """Log in with token, expect the server to refuse, and find the verifier's reason in its log."""
    before = len(auth_error_log(sandbox))
    error = login_error(sandbox, identifier, db_user, token)
    assert token not in error
    entries = refusals_for(sandbox, identifier, db_user, since=before)
    assert entries, f"no refusal logged for {db_user}@{identifier}; the driver said: {error}"
    assert expected_reason in entries[-1]["reason"], entries[-1]
    log_text = "\n".join(map(str, auth_error_log(sandbox)))
    signature = urllib.parse.unquote(token.rsplit("X-Amz-Signature=", 1)[1])
    assert token not in log_text and signature not in log_text
    return entries[-1]


@pytest.mark.parametrize("identifier", TARGETS)
def test_a_token_logs_in_over_verify_full_tls(principals, sandbox, identifier):
    token = mint_token(principals["alice"], sandbox.target(identifier), ALICE)
    assert_login(sandbox, identifier, ALICE, token)


@pytest.mark.parametrize("identifier", TARGETS)
def test_tampered_signature_is_refused(principals, sandbox, identifier):
    token = mint_token(principals["alice"], sandbox.target(identifier), ALICE)
    tampered = token[:-6] + ("000000" if not token.endswith("000000") else "111111")
    entry = _refused(sandbox, identifier, ALICE, tampered, "signature mismatch")
    assert entry["principal"] == principals["alice"]["arn"]


@pytest.mark.parametrize("identifier", TARGETS)
def test_expired_token_is_refused(principals, sandbox, identifier):
    sixteen_minutes_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=16)
    token = mint_token(principals["alice"], sandbox.target(identifier), ALICE, signed_at=sixteen_minutes_ago)
    _refused(sandbox, identifier, ALICE, token, "token expired at")


@pytest.mark.parametrize("identifier", TARGETS)
def test_another_users_token_is_refused(principals, sandbox, identifier):
    token = mint_token(principals["alice"], sandbox.target(identifier), ALICE)
    _refused(sandbox, identifier, BOB, token, f"DBUser '{ALICE}' does not match login user '{BOB}'")


@pytest.mark.parametrize("identifier", TARGETS)
def test_token_for_another_target_is_refused(principals, sandbox, identifier):
    other = sandbox.target(OTHER_TARGET[identifier])
    token = mint_token(principals["alice"], other, ALICE)
    _refused(sandbox, identifier, ALICE, token, f"token host {other['endpoint']} is not an endpoint of target {identifier}")


@pytest.mark.parametrize("identifier", TARGETS)
def test_wrong_region_is_refused(principals, sandbox, identifier):
    token = mint_token(principals["alice"], sandbox.target(identifier), ALICE, region="eu-west-1")
    _refused(sandbox, identifier, ALICE, token, f"token is signed for region eu-west-1 but {identifier} is in region {sandbox.region}")


@pytest.mark.parametrize("identifier", TARGETS)
def test_key_whose_policy_does_not_allow_that_arn_is_refused(principals, sandbox, identifier):
    token = mint_token(principals["bob-only"], sandbox.target(identifier), ALICE)
    _refused(sandbox, identifier, ALICE, token, f"no policy allows rds-db:connect on {connect_arn(sandbox, identifier, ALICE)}")
    assert_login(sandbox, identifier, BOB, mint_token(principals["bob-only"], sandbox.target(identifier), BOB))


@pytest.mark.parametrize("identifier", TARGETS)
def test_explicit_deny_is_refused(principals, sandbox, identifier):
    token = mint_token(principals["denied"], sandbox.target(identifier), ALICE)
    _refused(sandbox, identifier, ALICE, token, "explicitly denied by inline policy 'deny-alice' of user tc-denied")
    assert_login(sandbox, identifier, BOB, mint_token(principals["denied"], sandbox.target(identifier), BOB))


@pytest.mark.parametrize("identifier", TARGETS)
def test_deleted_access_key_is_refused(principals, sandbox, identifier):
    name = f"tc-deleted-{identifier}"
    creds = iam_user_with_policy(sandbox, name, allow_connect("*"))
    try:
        token = mint_token(creds, sandbox.target(identifier), ALICE)
        assert_login(sandbox, identifier, ALICE, token)
        sandbox.moto().client("iam").delete_access_key(UserName=name, AccessKeyId=creds["access_key_id"])
        _refused(sandbox, identifier, ALICE, token, f"access key {creds['access_key_id']} is unknown")
    finally:
        delete_iam_user(sandbox, name)


def test_plaintext_login_is_refused_by_postgresql_itself(principals, sandbox):
    token = mint_token(principals["alice"], sandbox.target("sbx-postgres"), ALICE)
    before = len(auth_error_log(sandbox))
    error = login_error(sandbox, "sbx-postgres", ALICE, token, tls=False)
    assert "no encryption" in error and token not in error
    assert f'user "{ALICE}", database "postgres", no encryption' in server_log(sandbox, "sbx-postgres")
    assert refusals_for(sandbox, "sbx-postgres", ALICE, since=before) == []  # pg_hba refused it before PAM
    assert_login(sandbox, "sbx-postgres", ALICE, token)  # the same token over TLS


def test_plaintext_login_is_refused_by_mariadb_require_ssl(principals, sandbox):
    token = mint_token(principals["alice"], sandbox.target("sbx-mariadb"), ALICE)
    before = len(auth_error_log(sandbox))
    denied_before = server_log(sandbox, "sbx-mariadb").count(f"Access denied for user '{ALICE}'@")
    error = login_error(sandbox, "sbx-mariadb", ALICE, token, tls=False)
    assert "Access denied" in error and token not in error
    # MariaDB logs a REQUIRE SSL refusal as a plain "Access denied"; the verifier logged nothing,
    # so the token was good and the account's TLS rule is what refused it.
    log = server_log(sandbox, "sbx-mariadb")
    assert log.count(f"Access denied for user '{ALICE}'@") == denied_before + 1 and token not in log
    assert refusals_for(sandbox, "sbx-mariadb", ALICE, since=before) == []
    assert_login(sandbox, "sbx-mariadb", ALICE, token)  # the same token over TLS


@pytest.mark.parametrize("identifier", TARGETS)
def test_temporary_credentials_token_logs_in(principals, sandbox, identifier):
    # Tokens signed with STS credentials carry X-Amz-Security-Token: 700+ bytes here, 1000+ on AWS.
    token = mint_token(principals["role"], sandbox.target(identifier), ALICE)
    assert len(token) > 700
    assert_login(sandbox, identifier, ALICE, token)


@pytest.mark.parametrize("identifier", TARGETS)
def test_abac_session_tag_lets_alice_in_as_alice_not_bob(principals, sandbox, identifier):
    creds = principals["abac-alice"]
    assert_login(sandbox, identifier, ALICE, mint_token(creds, sandbox.target(identifier), ALICE))
    entry = _refused(sandbox, identifier, BOB, mint_token(creds, sandbox.target(identifier), BOB),
                     f"no policy allows rds-db:connect on {connect_arn(sandbox, identifier, BOB)}")
    assert entry["principal"] == creds["arn"]


@pytest.mark.parametrize("identifier", TARGETS)
def test_aws_username_lets_an_iam_user_in_as_itself_only(principals, sandbox, identifier):
    creds = principals["username"]
    assert_login(sandbox, identifier, CAROL, mint_token(creds, sandbox.target(identifier), CAROL))
    _refused(sandbox, identifier, ALICE, mint_token(creds, sandbox.target(identifier), ALICE),
             f"no policy allows rds-db:connect on {connect_arn(sandbox, identifier, ALICE)}")


@pytest.mark.parametrize("identifier", TARGETS)
def test_tokens_appear_in_no_sandbox_log(principals, sandbox, identifier):
    good = mint_token(principals["alice"], sandbox.target(identifier), ALICE)
    assert_login(sandbox, identifier, ALICE, good)
    bad = mint_token(principals["alice"], sandbox.target(identifier), BOB)
    login_error(sandbox, identifier, ALICE, bad)
    server_dir = sandbox.server(identifier)["directory"]
    logs = [f"{sandbox.state_dir}/moto.log", f"{sandbox.state_dir}/iam-db-auth-error.log", f"{server_dir}/server.log",
            f"{server_dir}/verify_errors.log"]
    for path in logs:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except FileNotFoundError:
            continue
        for token in (good, bad):
            signature = urllib.parse.unquote(token.rsplit("X-Amz-Signature=", 1)[1])
            assert signature not in text and "X-Amz-Signature" not in text, path


# --- the endpoint the databases call, asked directly --------------------------------------------

def test_verify_endpoint_answers_over_http(principals, sandbox):
    target = sandbox.target("sbx-postgres")
    token = mint_token(principals["alice"], target, ALICE)
    assert verify_over_http(sandbox, "sbx-postgres", ALICE, token) == (200, {"allow": True, "principal": principals["alice"]["arn"]})
    status, answer = verify_over_http(sandbox, "sbx-postgres", BOB, token)
    assert (status, answer["allow"]) == (403, False) and "does not match login user" in answer["reason"]
    status, answer = verify_over_http(sandbox, "no-such-target", ALICE, token)
    assert status == 400 and "unknown target" in answer["error"]


def test_aurora_reader_and_member_endpoint_tokens_open_the_cluster(principals, sandbox):
    target = sandbox.target("sbx-aurora-pg")
    creds = iam_user_with_policy(sandbox, "tc-aurora", allow_connect(connect_arn(sandbox, "sbx-aurora-pg", ALICE)))
    create_db_user(sandbox, "sbx-aurora-pg", ALICE)
    try:
        for host in (target["endpoint"], *target["extra_names"]):
            assert_login(sandbox, "sbx-aurora-pg", ALICE, mint_token(creds, target, ALICE, host=host))
        wrong = mint_token(creds, target, ALICE, host=sandbox.target("sbx-postgres")["endpoint"])
        _refused(sandbox, "sbx-aurora-pg", ALICE, wrong, "is not an endpoint of target sbx-aurora-pg")
    finally:
        drop_db_user(sandbox, "sbx-aurora-pg", ALICE)
        delete_iam_user(sandbox, "tc-aurora")


def test_disabled_iam_auth_refuses_every_token(principals, sandbox):
    token = mint_token(principals["alice"], sandbox.target("sbx-mysql"), ALICE)
    restore = enable_iam_auth(sandbox, "sbx-mysql", False)
    try:
        status, answer = verify_over_http(sandbox, "sbx-mysql", ALICE, token)
    finally:
        restore()
    assert (status, answer["reason"]) == (403, "IAM database authentication is disabled on sbx-mysql")


# --- what the verifier keeps between logins, and logins at once -----------------------------------

@pytest.mark.parametrize("identifier", TARGETS)
def test_a_grant_taken_away_in_iam_refuses_the_next_login(principals, sandbox, identifier):
    """The verifier keeps the principal it read for the next logins: an IAM change must reach the very next one."""
    name = f"tc-revoked-{identifier}"
    creds = iam_user_with_policy(sandbox, name, allow_connect(connect_arn(sandbox, identifier, ALICE)))
    iam = sandbox.moto().client("iam")
    try:
        token = mint_token(creds, sandbox.target(identifier), ALICE)
        assert_login(sandbox, identifier, ALICE, token)
        assert_login(sandbox, identifier, ALICE, token)
        iam.delete_user_policy(UserName=name, PolicyName="rds-connect")
        _refused(sandbox, identifier, ALICE, token, f"no policy allows rds-db:connect on {connect_arn(sandbox, identifier, ALICE)}")
        iam.put_user_policy(UserName=name, PolicyName="rds-connect", PolicyDocument=policy_document(allow_connect("*")))
        assert_login(sandbox, identifier, ALICE, token)
    finally:
        delete_iam_user(sandbox, name)


def test_logins_at_once_each_get_their_own_verdict(principals, sandbox):
    """Both engines' logins reach the verifier side by side; each is decided on its own principal and user."""
    cases = [(identifier, principal, user, allowed) for identifier in TARGETS
             for principal, user, allowed in (("alice", ALICE, True), ("role", ALICE, True), ("bob-only", BOB, True),
                                              ("bob-only", ALICE, False), ("denied", ALICE, False), ("username", CAROL, True))]
    tokens = [mint_token(principals[principal], sandbox.target(identifier), user) for identifier, principal, user, _ in cases]

    def attempt(case, token):
        identifier, _, user, allowed = case
        if allowed:
            return login(sandbox, identifier, user, token)
        return login_error(sandbox, identifier, user, token)

    before = len(auth_error_log(sandbox))
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(cases)) as pool:
        outcomes = list(pool.map(attempt, cases, tokens))
    for (identifier, principal, user, allowed), token, outcome in zip(cases, tokens, outcomes):
        if allowed:
            assert outcome == user, (identifier, principal, user, outcome)
        else:
            assert token not in outcome
            refusals = refusals_for(sandbox, identifier, user, since=before)
            assert any(entry["principal"] == principals[principal]["arn"] for entry in refusals), (identifier, principal, refusals)
