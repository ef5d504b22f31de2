"""The token verifier against in-process moto: what RDS accepts is accepted, everything else refused
with a reason that names the cause and never holds the token."""
import datetime
import json

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.test import Client

from sandbox import fleet
from sandbox.aws import credentials_api, iam_verifier
from sandbox.tests.verifier_world import ACCOUNT, NOW, REGION, TRUST_ACCOUNT, allow, document, mint, refusal, verify


def presign(credentials, host_port, user, *, service="rds-db", region=REGION, expires=900):
    """A token signed the way botocore does, with a service or expiry generate_db_auth_token never uses."""
    auth = SigV4QueryAuth(credentials, service, region, expires=expires)
    request = AWSRequest(method="GET", url=f"https://{host_port}/", data={"Action": "connect", "DBUser": user})
    auth.add_auth(request)
    return request.url[len("https://"):]


# --- parsing and signatures --------------------------------------------------------------------

@pytest.mark.parametrize("user", ["alice", "Bob_2", "al ice", "o'neil+x@corp.example", "ünï", "a/b?c=d&e"])
def test_parse_and_signature_round_trip_for_any_user_name(user):
    creds = Credentials("AKIAEXAMPLEEXAMPLE12", "secret/with+chars", "session/token+=")
    token = mint(creds, {"host": "db.example.us-east-1.rds.amazonaws.com", "port": 5432}, user)
    parsed = iam_verifier.parse_token(token)
    assert (parsed.host, parsed.port, parsed.db_user, parsed.access_key_id) == (
        "db.example.us-east-1.rds.amazonaws.com", 5432, user, "AKIAEXAMPLEEXAMPLE12")
    assert (parsed.region, parsed.service, parsed.expires, parsed.session_token) == (REGION, "rds-db", 900, "session/token+=")
    assert iam_verifier.expected_signature(parsed, "secret/with+chars") == parsed.signature
    assert iam_verifier.expected_signature(parsed, "another-secret") != parsed.signature


@pytest.mark.parametrize("text, reason", [
    ("hunter2", "it is not HOST:PORT/?Action=connect"),
    ("db:5432/?Action=connect", "missing DBUser"),
    ("db/?Action=connect&DBUser=a", "does not start with HOST:PORT/"),
    ("db:99999/?Action=connect", "does not start with HOST:PORT/"),
])
def test_passwords_and_broken_tokens_are_malformed(text, reason):
    with pytest.raises(iam_verifier.Refused, match="malformed token") as refused:
        iam_verifier.parse_token(text)
    assert reason in str(refused.value)


def _edit(token, name, value=None, drop=False):
    head, _, query = token.partition("/?")
    pairs = [pair.split("=", 1) for pair in query.split("&")]
    kept = [(k, value if k == name and value is not None else v) for k, v in pairs if not (drop and k == name)]
    return head + "/?" + "&".join(f"{k}={v}" for k, v in kept)


@pytest.mark.parametrize("change, reason", [
    (lambda t: _edit(t, "Action", "login"), "Action is not connect"),
    (lambda t: _edit(t, "X-Amz-Algorithm", "AWS4-HMAC-SHA1"), "X-Amz-Algorithm is not AWS4-HMAC-SHA256"),
    (lambda t: _edit(t, "X-Amz-SignedHeaders", "host%3Bx-amz-date"), "X-Amz-SignedHeaders must be 'host'"),
    (lambda t: _edit(t, "X-Amz-Credential", "AKIA%2F20200101%2Fus-east-1"), "X-Amz-Credential is not"),
    (lambda t: _edit(t, "X-Amz-Date", "yesterday"), "X-Amz-Date or X-Amz-Expires is not valid"),
    (lambda t: _edit(t, "X-Amz-Signature", drop=True), "missing X-Amz-Signature"),
    (lambda t: t + "&DBUser=bob", "parameter DBUser is repeated"),
    (lambda t: t + "&secretpart=1", "parameter(s) a token does not have"),
])
def test_tokens_of_the_wrong_shape_say_what_is_wrong_without_echoing_it(change, reason):
    token = change(mint(Credentials("AKIAEXAMPLEEXAMPLE12", "s"), {"host": "h.example", "port": 5432}, "alice"))
    with pytest.raises(iam_verifier.Refused) as refused:
        iam_verifier.parse_token(token)
    assert reason in str(refused.value)
    assert "secretpart" not in str(refused.value) and "login" not in str(refused.value)


# --- the whole check against moto -----------------------------------------------------------------

def test_a_token_for_the_right_user_target_and_policy_is_accepted(aws):
    creds = aws.user("alice", allow(aws.arn(aws.pg, "alice")))
    verdict = verify(aws.pg, "alice", mint(creds, aws.pg, "alice"))
    assert verdict == iam_verifier.Verdict(True, "allowed by inline policy 'connect' of user alice",
                                           f"arn:aws:iam::{ACCOUNT}:user/alice")


def test_aurora_accepts_cluster_reader_and_member_endpoints_with_the_cluster_resource_id(aws):
    creds = aws.user("alice", allow(aws.arn(aws.aurora, "alice")))
    for host in (aws.aurora["host"], aws.aurora["reader"], aws.aurora["member"], aws.aurora["host"].upper()):
        verdict = verify(aws.aurora, "alice", mint(creds, aws.aurora, "alice", host=host))
        assert verdict.allow, (host, verdict.reason)
    member_target = dict(aws.aurora, id="aurora-1")  # asked by member identifier: still the cluster's ARN
    assert verify(member_target, "alice", mint(creds, aws.aurora, "alice")).allow


def test_tampered_signature(aws):
    creds = aws.user("alice", allow("*"))
    token = mint(creds, aws.pg, "alice")
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert refusal(aws.pg, "alice", tampered) == f"signature mismatch for access key {creds.access_key}"


def test_changed_claim_breaks_the_signature(aws):
    creds = aws.user("alice", allow("*"))
    token = _edit(mint(creds, aws.pg, "alice"), "DBUser", "bob")
    assert refusal(aws.pg, "bob", token) == f"signature mismatch for access key {creds.access_key}"


def test_expired_token_signed_16_minutes_back(aws):
    creds = aws.user("alice", allow("*"))
    signed = NOW - datetime.timedelta(minutes=16)
    reason = refusal(aws.pg, "alice", mint(creds, aws.pg, "alice", signed_at=signed), now=NOW)
    assert reason.startswith("token expired at ") and "valid 900 s" in reason


def test_clock_skew_allowance_is_one_minute_ahead_and_none_after_expiry(aws):
    creds = aws.user("alice", allow("*"))
    assert verify(aws.pg, "alice", mint(creds, aws.pg, "alice", signed_at=NOW + datetime.timedelta(seconds=50)), now=NOW).allow
    ahead = mint(creds, aws.pg, "alice", signed_at=NOW + datetime.timedelta(seconds=90))
    assert "in the future" in refusal(aws.pg, "alice", ahead, now=NOW)
    edge = mint(creds, aws.pg, "alice", signed_at=NOW - datetime.timedelta(seconds=900))
    assert verify(aws.pg, "alice", edge, now=NOW.replace(microsecond=0)).allow
    assert "expired" in refusal(aws.pg, "alice", edge, now=NOW.replace(microsecond=0) + datetime.timedelta(seconds=1))


def test_expires_over_900_seconds_is_refused_even_when_signed(aws):
    creds = aws.user("alice", allow("*"))
    token = presign(creds, f"{aws.pg['host']}:{aws.pg['port']}", "alice", expires=3600)
    assert refusal(aws.pg, "alice", token) == "X-Amz-Expires 3600 is outside 1..900 seconds"


def test_another_service_is_refused(aws):
    creds = aws.user("alice", allow("*"))
    token = presign(creds, f"{aws.pg['host']}:{aws.pg['port']}", "alice", service="rds")
    assert refusal(aws.pg, "alice", token) == "token is signed for service 'rds', not rds-db"


def test_another_users_token(aws):
    creds = aws.user("alice", allow("*"))
    assert refusal(aws.pg, "bob", mint(creds, aws.pg, "alice")) == "DBUser 'alice' does not match login user 'bob'"
    assert refusal(aws.pg, "Alice", mint(creds, aws.pg, "alice")) == "DBUser 'alice' does not match login user 'Alice'"


def test_token_for_another_target(aws):
    creds = aws.user("alice", allow("*"))
    token = mint(creds, aws.aurora, "alice")
    assert refusal(aws.pg, "alice", token) == f"token host {aws.aurora['host']} is not an endpoint of target pg"
    wrong_port = mint(creds, aws.pg, "alice", port=5432)
    assert refusal(aws.pg, "alice", wrong_port) == "token port 5432 is not the port of target pg (15432)"


def test_wrong_region(aws):
    creds = aws.user("alice", allow("*"))
    reason = refusal(aws.pg, "alice", mint(creds, aws.pg, "alice", region="eu-west-1"))
    assert reason == "token is signed for region eu-west-1 but pg is in region us-east-1"


def test_iam_auth_disabled_on_the_target(aws):
    creds = aws.user("alice", allow("*"))
    aws.rds.modify_db_instance(DBInstanceIdentifier="pg", EnableIAMDatabaseAuthentication=False, ApplyImmediately=True)
    assert refusal(aws.pg, "alice", mint(creds, aws.pg, "alice")) == "IAM database authentication is disabled on pg"
    aws.rds.modify_db_cluster(DBClusterIdentifier="aurora", EnableIAMDatabaseAuthentication=False, ApplyImmediately=True)
    assert refusal(aws.aurora, "alice", mint(creds, aws.aurora, "alice")) == "IAM database authentication is disabled on aurora"


def test_unknown_deleted_and_inactive_keys(aws):
    creds = aws.user("alice", allow("*"))
    token = mint(creds, aws.pg, "alice")
    forged = mint(Credentials("AKIAIOSFODNN7EXAMPLE", "whatever"), aws.pg, "alice")
    assert refusal(aws.pg, "alice", forged) == "access key AKIAIOSFODNN7EXAMPLE is unknown (never issued, or deleted)"
    aws.iam.update_access_key(UserName="alice", AccessKeyId=creds.access_key, Status="Inactive")
    assert refusal(aws.pg, "alice", token) == f"access key {creds.access_key} of arn:aws:iam::{ACCOUNT}:user/alice is Inactive"
    aws.iam.update_access_key(UserName="alice", AccessKeyId=creds.access_key, Status="Active")
    assert verify(aws.pg, "alice", token).allow
    aws.iam.delete_access_key(UserName="alice", AccessKeyId=creds.access_key)
    assert refusal(aws.pg, "alice", token) == f"access key {creds.access_key} is unknown (never issued, or deleted)"


def test_long_term_key_with_a_security_token_is_refused(aws):
    creds = aws.user("alice", allow("*"))
    token = mint(Credentials(creds.access_key, creds.secret_key, "made-up-session"), aws.pg, "alice")
    assert "long-term key but the token carries a security token" in refusal(aws.pg, "alice", token)


def test_temporary_credentials_need_their_own_unexpired_session_token(aws):
    creds = aws.role_session("dba", allow("*"))
    token = mint(creds, aws.pg, "alice")
    verdict = verify(aws.pg, "alice", token)
    assert verdict == iam_verifier.Verdict(True, "allowed by inline policy 'connect' of role dba",
                                           f"arn:aws:sts::{ACCOUNT}:assumed-role/dba/sess")
    other = mint(Credentials(creds.access_key, creds.secret_key, "not-the-session-token"), aws.pg, "alice")
    assert refusal(aws.pg, "alice", other) == f"the security token does not belong to temporary access key {creds.access_key}"
    bare = mint(Credentials(creds.access_key, creds.secret_key), aws.pg, "alice")
    assert refusal(aws.pg, "alice", bare) == f"temporary access key {creds.access_key} needs its X-Amz-Security-Token"
    # From the clock now, not NOW (the module's import time): the session was issued just above, for 15 minutes, and
    # other tests may have run for minutes in between.
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=16)
    fresh_but_late = mint(creds, aws.pg, "alice", signed_at=later)
    reason = refusal(aws.pg, "alice", fresh_but_late, now=later)
    assert reason.startswith(f"temporary credentials {creds.access_key} of arn:aws:sts::{ACCOUNT}:assumed-role/dba/sess expired at")


def test_every_session_of_a_role_resolves_old_and_new(aws):
    first = aws.role_session("multi", allow("*"))
    assert verify(aws.pg, "alice", mint(first, aws.pg, "alice")).allow  # indexes the sessions issued so far
    sts = aws.sts()
    later = [sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/multi", RoleSessionName=f"s{n}")["Credentials"]
             for n in range(3)]
    for issued in reversed(later):
        creds = Credentials(issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"])
        assert verify(aws.pg, "alice", mint(creds, aws.pg, "alice")).allow
    assert verify(aws.pg, "alice", mint(first, aws.pg, "alice")).allow


def test_a_principal_of_another_account_is_refused(aws):
    # moto issues the session in the role's account; RDS has no resource policy that could let
    # account 222222222222 in, whatever its own policies say.
    in_other = fleet.in_account(aws.session.client("iam"), "222222222222")
    in_other.create_role(RoleName="elsewhere", AssumeRolePolicyDocument=document(TRUST_ACCOUNT))
    in_other.put_role_policy(RoleName="elsewhere", PolicyName="connect", PolicyDocument=document(allow("*")))
    issued = aws.sts().assume_role(RoleArn="arn:aws:iam::222222222222:role/elsewhere", RoleSessionName="cross")["Credentials"]
    creds = Credentials(issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"])
    reason = refusal(aws.pg, "alice", mint(creds, aws.pg, "alice"))
    assert reason == (f"arn:aws:sts::222222222222:assumed-role/elsewhere/cross is in account 222222222222, "
                      f"not the account of pg ({ACCOUNT})")


def test_policy_that_does_not_allow_this_arn(aws):
    creds = aws.user("alice", allow(aws.arn(aws.aurora, "alice"), aws.arn(aws.pg, "bob")))
    reason = refusal(aws.pg, "alice", mint(creds, aws.pg, "alice"))
    assert reason == f"arn:aws:iam::{ACCOUNT}:user/alice: no policy allows rds-db:connect on {aws.arn(aws.pg, 'alice')}"


def test_explicit_deny_from_a_group_managed_policy(aws):
    creds = aws.user("alice", allow("*"))
    deny = aws.iam.create_policy(PolicyName="no-pg", PolicyDocument=document(
        {"Effect": "Deny", "Action": "rds-db:*", "Resource": f"arn:aws:rds-db:*:*:dbuser:{aws.pg['resource']}/*"}))["Policy"]
    aws.iam.create_group(GroupName="contractors")
    aws.iam.add_user_to_group(GroupName="contractors", UserName="alice")
    aws.iam.attach_group_policy(GroupName="contractors", PolicyArn=deny["Arn"])
    reason = refusal(aws.pg, "alice", mint(creds, aws.pg, "alice"))
    assert reason == f"arn:aws:iam::{ACCOUNT}:user/alice: explicitly denied by managed policy {deny['Arn']}"
    assert verify(aws.aurora, "alice", mint(creds, aws.aurora, "alice")).allow


def test_group_inline_and_managed_default_version_allow(aws):
    creds = aws.user("alice")
    aws.iam.create_group(GroupName="dbas")
    aws.iam.add_user_to_group(GroupName="dbas", UserName="alice")
    aws.iam.put_group_policy(GroupName="dbas", PolicyName="pg", PolicyDocument=document(allow(aws.arn(aws.pg, "alice"))))
    assert verify(aws.pg, "alice", mint(creds, aws.pg, "alice")).reason == "allowed by inline policy 'pg' of group dbas"
    policy = aws.iam.create_policy(PolicyName="aurora", PolicyDocument=document(allow(aws.arn(aws.aurora, "bob"))))["Policy"]
    aws.iam.attach_user_policy(UserName="alice", PolicyArn=policy["Arn"])
    aws.iam.create_policy_version(PolicyArn=policy["Arn"], PolicyDocument=document(allow(aws.arn(aws.aurora, "alice"))),
                                  SetAsDefault=False)
    assert not verify(aws.aurora, "alice", mint(creds, aws.aurora, "alice")).allow  # v2 is not the default yet
    aws.iam.set_default_policy_version(PolicyArn=policy["Arn"], VersionId="v2")
    assert verify(aws.aurora, "alice", mint(creds, aws.aurora, "alice")).reason == f"allowed by managed policy {policy['Arn']}"


def test_abac_session_tag_lets_alice_in_as_alice_only(aws):
    statement = allow(f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{aws.pg['resource']}/${{aws:PrincipalTag/userName}}")
    creds = aws.role_session("abac", statement, session_tags={"userName": "alice"}, role_tags={"userName": "bob"})
    assert verify(aws.pg, "alice", mint(creds, aws.pg, "alice")).allow
    assert "no policy allows rds-db:connect" in refusal(aws.pg, "bob", mint(creds, aws.pg, "bob"))


def test_abac_role_tag_applies_without_a_session_tag(aws):
    statement = allow(f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:*/${{aws:PrincipalTag/userName}}")
    creds = aws.role_session("tagged", statement, role_tags={"userName": "carol"})
    assert verify(aws.pg, "carol", mint(creds, aws.pg, "carol")).allow
    assert not verify(aws.pg, "alice", mint(creds, aws.pg, "alice")).allow


def test_aws_username_variable_for_iam_users(aws):
    statement = allow(f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{aws.pg['resource']}/${{aws:username}}")
    creds = aws.user("dave", statement, tags={"userName": "eve"})
    assert verify(aws.pg, "dave", mint(creds, aws.pg, "dave")).allow
    assert "no policy allows" in refusal(aws.pg, "eve", mint(creds, aws.pg, "eve"))
    role_creds = aws.role_session("no-username", statement)  # sessions have no aws:username
    assert not verify(aws.pg, "dave", mint(role_creds, aws.pg, "dave")).allow


def test_principal_tag_of_an_iam_user(aws):
    statement = allow(f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:*/${{aws:PrincipalTag/dbUser}}")
    creds = aws.user("frank", statement, tags={"dbUser": "frank_ro"})
    assert verify(aws.pg, "frank_ro", mint(creds, aws.pg, "frank_ro")).allow
    assert not verify(aws.pg, "frank", mint(creds, aws.pg, "frank")).allow


def test_session_policy_narrows_the_role(aws):
    creds = aws.role_session("wide", allow("*"), policy=document(allow(aws.arn(aws.pg, "alice"))))
    assert verify(aws.pg, "alice", mint(creds, aws.pg, "alice")).allow
    assert "session policy does not" in refusal(aws.pg, "bob", mint(creds, aws.pg, "bob"))


def test_role_permissions_boundary_limits_the_session(aws):
    boundary = aws.iam.create_policy(PolicyName="only-pg", PolicyDocument=document(
        allow(f"arn:aws:rds-db:*:*:dbuser:{aws.pg['resource']}/*")))["Policy"]["Arn"]
    creds = aws.role_session("bounded", allow("*"))
    aws.iam.put_role_permissions_boundary(RoleName="bounded", PermissionsBoundary=boundary)
    assert verify(aws.pg, "alice", mint(creds, aws.pg, "alice")).allow
    assert "but the permissions boundary does not" in refusal(aws.aurora, "alice", mint(creds, aws.aurora, "alice"))
    aws.iam.delete_role_permissions_boundary(RoleName="bounded")
    assert verify(aws.aurora, "alice", mint(creds, aws.aurora, "alice")).allow


@pytest.mark.usefixtures("aws")
def test_unknown_target_and_bad_requests_are_not_refusals():
    with pytest.raises(iam_verifier.BadRequest, match="unknown target 'nope'"):
        iam_verifier.verify(credentials_api.DIRECTORY, "nope", "alice", "x")
    with pytest.raises(iam_verifier.BadRequest):
        iam_verifier.verify(credentials_api.DIRECTORY, "pg", None, "x")


# --- the HTTP endpoint and its log -------------------------------------------------------------

def _not_moto(environ, start_response):
    start_response("418 I'm a teapot", [])
    return [b"moto"]


@pytest.fixture
def endpoint(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("RDSIAM_SANDBOX_STATE_DIR", str(tmp_path))
    return Client(credentials_api.SandboxApp(_not_moto))


def _log(tmp_path):
    path = tmp_path / credentials_api.AUTH_ERROR_LOG
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_endpoint_allows_refuses_and_logs_refusals_only(aws, endpoint, tmp_path):
    creds = aws.user("alice", allow(aws.arn(aws.pg, "alice")))
    token = mint(creds, aws.pg, "alice")
    allowed = endpoint.post("/_sandbox/verify", json={"target": "pg", "user": "alice", "token": token})
    assert (allowed.status_code, allowed.json) == (200, {"allow": True, "principal": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    assert _log(tmp_path) == []
    refused = endpoint.post("/_sandbox/verify", json={"target": "pg", "user": "bob", "token": token})
    assert (refused.status_code, refused.json) == (403, {"allow": False, "reason": "DBUser 'alice' does not match login user 'bob'"})
    password = endpoint.post("/_sandbox/verify", json={"target": "pg", "user": "bob", "token": "S3cret-pa55word"})
    assert password.status_code == 403
    entries = _log(tmp_path)
    assert [(e["target"], e["user"], e["reason"]) for e in entries] == [
        ("pg", "bob", "DBUser 'alice' does not match login user 'bob'"),
        ("pg", "bob", "malformed token: it is not HOST:PORT/?Action=connect&..."),
    ]
    assert entries[0]["principal"] == f"arn:aws:iam::{ACCOUNT}:user/alice" and "principal" not in entries[1]
    assert all(set(e) <= {"time", "target", "user", "reason", "principal"} for e in entries)
    text = (tmp_path / credentials_api.AUTH_ERROR_LOG).read_text()
    for secret in (token, token.rsplit("=", 1)[1], creds.secret_key, "S3cret-pa55word"):
        assert secret not in text


def test_endpoint_rejects_malformed_requests_with_400(endpoint, tmp_path):
    assert endpoint.post("/_sandbox/verify", json={"target": "nope", "user": "a", "token": "t"}).status_code == 400
    assert endpoint.post("/_sandbox/verify", data="not json").status_code == 400
    assert endpoint.post("/_sandbox/verify", json=["pg"]).status_code == 400
    assert endpoint.post("/_sandbox/verify", json={"target": "pg", "token": "t"}).status_code == 400
    assert endpoint.get("/_sandbox/verify").status_code == 405
    assert _log(tmp_path) == []


def test_endpoint_takes_undecodable_bytes_as_a_bad_password(endpoint):
    body = b'{"target": "pg", "user": "bob", "token": "\xff\xfe"}'
    answer = endpoint.post("/_sandbox/verify", data=body, content_type="application/json")
    assert answer.status_code == 403 and answer.json["reason"].startswith("malformed token")


def test_other_paths_still_reach_moto(endpoint):
    assert endpoint.get("/").status_code == 418


@pytest.mark.parametrize("region, partition", [("us-east-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")])
def test_connect_arn_partition_follows_the_region(region, partition):
    target = iam_verifier.Target("t", region, ACCOUNT, 5432, ("h",), "db-X", True)
    assert iam_verifier.connect_arn(target, "alice") == f"arn:{partition}:rds-db:{region}:{ACCOUNT}:dbuser:db-X/alice"


@pytest.mark.parametrize("module", ["sandbox/aws/iam_verifier.py", "sandbox/aws/iam_policy_eval.py", "sandbox/aws/credentials_api.py",
                                    "sandbox/aws/iam_changes.py", "sandbox/reference_client.py"])
def test_the_oracle_shares_no_code_with_the_collection(module):
    import ast
    import pathlib

    tree = ast.parse((pathlib.Path(__file__).parents[2] / module).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported, module
    assert not [name for name in imported if name.startswith(("ansible_collections", "plugins", "ansible"))]
