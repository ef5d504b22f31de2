"""rds_iam_login_doctor against the sandbox: one test per refusal reason the sandbox verifier knows, each asserting the
cause the doctor names and its evidence; the all-ok case proven by a real token login; a failing login with the lines of
the target's iam-db-auth-error log served the RDS way.

Principals, policies and database users are set up with sandbox/iam_login.py and plain drivers (never the collection);
where a test also logs in for real, the verifier's refusal log says independently that the doctor named the right cause.
"""
import pytest

from sandbox import iam_login
from sandbox.iam_login import allow_connect, connect_arn, create_db_user, delete_role, drop_db_user, role_with_policy
from tests.integration.support.db_user import login_args, my_execute, pg_execute, unique

MODULE = "rds_iam_login_doctor"
PG, MARIADB = "sbx-postgres", "sbx-mariadb"
CHECK_ORDER = ["engine", "iam_auth_enabled", "endpoint", "region_port", "policy_allows", "not_blocked", "session_tags",
               "user_exists", "user_not_locked", "user_can_login", "user_is_iam", "tls"]


@pytest.fixture(scope="module")
def iam_on(sandbox):
    restores = [iam_login.enable_iam_auth(sandbox, identifier) for identifier in (PG, MARIADB)]
    yield
    for restore in restores:
        restore()


@pytest.fixture
def made(sandbox, iam_on):
    """make.role(statements) -> ARN and make.user(identifier) -> db user name; all deleted afterwards."""
    roles, users = [], []

    class Make:
        @staticmethod
        def role(statements, tags=None):
            name = unique("doc-role").replace("_", "-")
            roles.append(name)
            return role_with_policy(sandbox, name, statements, tags=tags)

        @staticmethod
        def user(identifier, iam=True):
            name = unique("doc_user")
            users.append((identifier, name))
            if iam:
                create_db_user(sandbox, identifier, name)
            return name

    yield Make
    for name in roles:
        delete_role(sandbox, name)
    for identifier, name in users:
        drop_db_user(sandbox, identifier, name)


@pytest.fixture
def doctor(sandbox, module_runner):
    """doctor(identifier, db_user, principal_arn, **options): the module's result, checked for leaks and for its shape."""

    def run(identifier, db_user, principal_arn=None, **options):
        target = sandbox.target(identifier)
        args = login_args(sandbox, identifier, db_user=db_user, **options)
        args.pop("endpoint")
        option = "db_cluster_identifier" if target["kind"] == "cluster" else "db_instance_identifier"
        args[option] = identifier
        if principal_arn:
            args["principal_arn"] = principal_arn
        result = module_runner(MODULE, args, env=sandbox.aws_env(), check=True)
        assert "failed" not in result, result
        text = repr({key: value for key, value in result.items() if key != "_stderr"}) + result["_stderr"]
        for secret in (target["master_password"], sandbox.state["operator"]["secret_access_key"], "X-Amz-Signature=",
                       "X-Amz-Security-Token="):
            assert secret not in text
        assert result["changed"] is False
        names = [entry["name"] for entry in result["checks"]]
        assert names == CHECK_ORDER + (["login"] if options.get("login") else [])
        assert all(set(entry) == {"name", "status", "evidence", "fix"} for entry in result["checks"])
        failing = [entry["name"] for entry in result["checks"] if entry["status"] == "fail"]
        assert result["cause"] == (failing[0] if failing else None)
        return result

    return run


def check_of(result, name):
    return next(entry for entry in result["checks"] if entry["name"] == name)


def assert_cause(result, name, *phrases):
    assert result["cause"] == name, result["checks"]
    assert result["ok"] is False
    cause = check_of(result, name)
    assert cause["fix"], cause
    for phrase in phrases:
        assert phrase in cause["evidence"], cause["evidence"]
    return cause


# ---- all ok, and a login that fails with the log's lines ----

@pytest.mark.parametrize("identifier", [PG, MARIADB])
def test_everything_ok_and_the_real_login_works(sandbox, made, doctor, identifier):
    user = made.user(identifier)
    role = made.role([allow_connect(connect_arn(sandbox, identifier, user))])

    result = doctor(identifier, user, role, login=True)

    assert result["ok"] is True and result["cause"] is None, result["checks"]
    assert all(entry["status"] == "ok" and entry["fix"] is None for entry in result["checks"])
    assert result["principal"] == role and result["connect_arn"] == connect_arn(sandbox, identifier, user)
    assert "log_lines" not in result
    assert check_of(result, "login")["evidence"].startswith("logged in as %s" % user)
    assert "is an IAM user" in check_of(result, "user_is_iam")["evidence"]


def test_a_failed_login_shows_the_log_lines_of_the_refusal(sandbox, made, doctor):
    user, other = made.user(PG), made.user(PG)
    role = made.role([allow_connect(connect_arn(sandbox, PG, other))])

    result = doctor(PG, user, role, login=True, log_lines=5)

    assert_cause(result, "policy_allows", "wrong user")
    login = check_of(result, "login")
    assert login["status"] == "fail" and "PAM authentication failed" in login["evidence"]
    assert 1 <= len(result["log_lines"]) <= 5
    newest = result["log_lines"][-1]
    assert "Failed to authorize the connection request for user '%s'" % user in newest
    assert role.split("/")[-1] in newest and "no policy allows rds-db:connect" in newest
    # The verifier refused the doctor's login for the reason the doctor named.
    assert any("no policy allows" in entry["reason"] for entry in iam_login.refusals_for(sandbox, PG, user))


# ---- the IAM side: which near miss ----

def test_wrong_user(sandbox, made, doctor):
    user, other = made.user(PG), made.user(PG)
    role = made.role([allow_connect(connect_arn(sandbox, PG, other))])

    cause = assert_cause(doctor(PG, user, role), "policy_allows", "wrong user:", "database user %s, not %s" % (other, user))
    assert cause["evidence"].startswith("wrong user:")
    assert connect_arn(sandbox, PG, user) in cause["fix"] and role in cause["fix"]


def test_another_target(sandbox, made, doctor):
    user = made.user(PG)
    role = made.role([allow_connect(connect_arn(sandbox, MARIADB, user))])

    cause = assert_cause(doctor(PG, user, role), "policy_allows", "another target:")
    assert sandbox.target(MARIADB)["resource_id"] in cause["evidence"] and sandbox.target(PG)["resource_id"] in cause["evidence"]


def test_wrong_region(sandbox, made, doctor):
    user = made.user(PG)
    arn = connect_arn(sandbox, PG, user).replace(":%s:" % sandbox.region, ":eu-west-3:")
    role = made.role([allow_connect(arn)])

    assert_cause(doctor(PG, user, role), "policy_allows", "wrong region:", "region eu-west-3, the target is in %s" % sandbox.region)


def test_policy_without_the_arn(sandbox, made, doctor):
    user = made.user(PG)
    role = made.role([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])

    cause = assert_cause(doctor(PG, user, role), "policy_allows", "policy without the ARN:")
    assert connect_arn(sandbox, PG, user) in cause["evidence"]


def test_identifier_instead_of_resource_id(sandbox, made, doctor):
    user = made.user(PG)
    role = made.role([allow_connect(connect_arn(sandbox, PG, user).replace(sandbox.target(PG)["resource_id"], PG))])

    cause = assert_cause(doctor(PG, user, role), "policy_allows", "identifier instead of resource id:")
    assert "grants nothing" in cause["evidence"] and sandbox.target(PG)["resource_id"] in cause["evidence"]


def test_explicit_deny(sandbox, made, doctor):
    user = made.user(MARIADB)
    arn = connect_arn(sandbox, MARIADB, user)
    role = made.role([allow_connect(arn), dict(allow_connect(arn, effect="Deny"), Sid="NoAccess")])

    result = doctor(MARIADB, user, role, login=True)

    assert check_of(result, "policy_allows")["status"] == "ok"
    assert_cause(result, "not_blocked", "blocked by an explicit Deny", "NoAccess")
    assert check_of(result, "login")["status"] == "fail"
    assert any("explicit deny" in line.lower() or "denied" in line.lower() for line in result["log_lines"]), result["log_lines"]


def test_iam_flag_off(sandbox, made, doctor):
    user = made.user(PG)
    role = made.role([allow_connect(connect_arn(sandbox, PG, user))])
    restore = iam_login.enable_iam_auth(sandbox, PG, enabled=False)
    try:
        result = doctor(PG, user, role, login=True)
    finally:
        restore()

    assert_cause(result, "iam_auth_enabled", "IAM database authentication is off for instance %s" % PG)
    assert check_of(result, "policy_allows")["status"] == "ok"
    assert any("IAM database authentication is disabled on %s" % PG in line for line in result["log_lines"]), result["log_lines"]


# ---- the database side ----

def test_user_not_in_rds_iam_on_postgres(sandbox, made, doctor):
    user = made.user(PG, iam=False)
    pg_execute(sandbox, PG, 'CREATE ROLE "%s" LOGIN' % user)
    role = made.role([allow_connect(connect_arn(sandbox, PG, user))])

    result = doctor(PG, user, role)

    assert_cause(result, "user_is_iam", "not a member of rds_iam")
    assert check_of(result, "user_exists")["status"] == "ok"


def test_user_without_the_plugin_on_mariadb(sandbox, made, doctor):
    user = made.user(MARIADB, iam=False)
    my_execute(sandbox, MARIADB, "CREATE USER %s@'%%' IDENTIFIED BY 'only-a-test-password-1'", (user,))
    role = made.role([allow_connect(connect_arn(sandbox, MARIADB, user))])

    result = doctor(MARIADB, user, role)

    assert_cause(result, "user_is_iam", "not AWSAuthenticationPlugin")
    assert "only-a-test-password-1" not in repr(result)


def test_user_that_does_not_exist(sandbox, made, doctor):
    role = made.role([allow_connect(connect_arn(sandbox, PG, "doc_nobody"))])

    result = doctor(PG, "doc_nobody", role)

    assert_cause(result, "user_exists", "there is no login account doc_nobody")
    assert [check_of(result, name)["status"] for name in ("user_not_locked", "user_can_login", "user_is_iam")] == ["skipped"] * 3


@pytest.mark.parametrize("identifier", [PG, MARIADB])
def test_locked_user(sandbox, made, doctor, identifier):
    user = made.user(identifier)
    if identifier == PG:
        pg_execute(sandbox, PG, 'ALTER ROLE "%s" NOLOGIN' % user)
    else:
        my_execute(sandbox, MARIADB, "ALTER USER %s@'%%' ACCOUNT LOCK", (user,))
    role = made.role([allow_connect(connect_arn(sandbox, identifier, user))])

    result = doctor(identifier, user, role, login=True)

    assert_cause(result, "user_not_locked", "is locked")
    assert check_of(result, "login")["status"] == "fail"


def test_no_tls(sandbox, made, doctor):
    user = made.user(MARIADB)
    role = made.role([allow_connect(connect_arn(sandbox, MARIADB, user))])

    result = doctor(MARIADB, user, role, client_tls=False)

    assert_cause(result, "tls", "without TLS", "REQUIRE SSL")
    # The verifier agrees: the server refuses this user in clear text before any token is checked.
    token = iam_login.mint_token(iam_login.assume_role(sandbox, role, "doc-no-tls"), sandbox.target(MARIADB), user)
    assert "Access denied" in iam_login.login_error(sandbox, MARIADB, user, token, tls=False)


# ---- the caller, and ABAC ----

def test_the_caller_is_the_principal_by_default(sandbox, made, doctor):
    user = made.user(PG)
    result = doctor(PG, user)
    operator = "arn:aws:iam::%s:user/sandbox-operator" % sandbox.state["operator"]["account_id"]
    assert result["principal"] == operator
    # The operator's Action * on Resource * allows every login: an administrator grant.
    assert check_of(result, "policy_allows")["status"] == "ok" and "administrator" in check_of(result, "policy_allows")["evidence"]


def test_abac_grant_needs_the_session_tag(sandbox, made, doctor):
    user = made.user(PG)
    abac = connect_arn(sandbox, PG, "${aws:PrincipalTag/db_user}")
    role = made.role([allow_connect(abac)])

    unknown = doctor(PG, user, role)
    assert check_of(unknown, "session_tags")["status"] == "unknown" and unknown["cause"] is None and unknown["ok"] is False

    wrong = doctor(PG, user, role, principal_session_tags={"db_user": "someone_else"}, login=True)
    assert_cause(wrong, "session_tags", "session tagged db_user=%s" % user, "db_user=someone_else")

    right = doctor(PG, user, role, principal_session_tags={"db_user": user}, login=True)
    assert right["ok"] is True, right["checks"]


def test_the_caller_as_an_assumed_role_with_its_session_tags(sandbox, made, module_runner):
    user = made.user(MARIADB)
    role = made.role([allow_connect(connect_arn(sandbox, MARIADB, "${aws:PrincipalTag/db_user}"))])
    args = login_args(sandbox, MARIADB, db_user=user, db_instance_identifier=MARIADB, assume_role_arn=role,
                      session_tags={"db_user": user}, login=True)
    args.pop("endpoint")

    result = module_runner(MODULE, args, env=sandbox.aws_env())

    assert result["principal"] == role and result["ok"] is True, result
    assert "the session carries db_user=%s" % user in check_of(result, "session_tags")["evidence"]


def test_another_iam_user_is_checked_but_cannot_be_logged_in_as(sandbox, made, doctor):
    user = made.user(PG)
    name = unique("doc-iam-user").replace("_", "-")
    keys = iam_login.iam_user_with_policy(sandbox, name, [allow_connect(connect_arn(sandbox, PG, "${aws:username}"))])
    try:
        result = doctor(PG, user, keys["arn"], login=True)
    finally:
        iam_login.delete_iam_user(sandbox, name)

    # ${aws:username} is the IAM user's own name, not the database user's.
    assert_cause(result, "policy_allows", "wrong user:", "database user ${aws:username}")
    login = check_of(result, "login")
    assert login["status"] == "unknown" and "an IAM user other than the caller" in login["evidence"]
    assert "log_lines" not in result and keys["secret_access_key"] not in repr(result)


def test_bad_input_fails_with_the_object_and_the_fix(sandbox, module_runner):
    args = login_args(sandbox, PG, db_user="alice", db_instance_identifier="doc-no-such-db")
    args.pop("endpoint")
    missing = module_runner(MODULE, args, env=sandbox.aws_env())
    assert missing["failed"] is True and "'doc-no-such-db' does not exist in region %s" % sandbox.region in missing["msg"]

    many = module_runner(MODULE, {"db_user": "alice", "db_instance_identifier": PG, "targets": [{"kind": "instance", "identifier": PG}]},
                         env=sandbox.aws_env())
    assert many["failed"] is True and "one login on one target" in many["msg"]
