"""The verifier keeps each principal it has built until IAM changes, and serves logins side by side.

A kept principal must never let in a login that IAM, as it is once a change has answered, would
refuse: each case below is allowed twice from one build, then IAM takes the grant away, and the very
next login must be refused from a fresh build. The HTTP cases run the moto server the sandbox runs
(a thread per request) in this process.
"""
import concurrent.futures
import threading

import pytest
from moto.iam.models import IAMBackend

from sandbox.aws import credentials_api, iam_changes, moto_server
from sandbox.iam_login import verify_as_the_databases_do
from sandbox.network import free_port
from sandbox.tests.verifier_world import ACCOUNT, REGION, allow, document, mint, refusal, verify


@pytest.fixture
def builds(monkeypatch):
    """How many times the verifier has read a principal out of IAM (rather than from what it kept)."""
    count = {"n": 0}
    read = credentials_api.MotoDirectory._read_principal

    def counted(directory, access_key_id):
        count["n"] += 1
        return read(directory, access_key_id)

    monkeypatch.setattr(credentials_api.MotoDirectory, "_read_principal", counted)
    return count


def _deny(*resources):
    return dict(allow(*resources), Effect="Deny")


def _managed(aws, name, *statements):
    return aws.iam.create_policy(PolicyName=name, PolicyDocument=document(*statements))["Policy"]["Arn"]


def _inline_user_policy_deleted(aws):
    creds = aws.user("alice", allow(aws.arn(aws.pg, "alice")))
    return creds, lambda: aws.iam.delete_user_policy(UserName="alice", PolicyName="connect")


def _explicit_deny_added(aws):
    creds = aws.user("alice", allow("*"))
    return creds, lambda: aws.iam.put_user_policy(UserName="alice", PolicyName="deny", PolicyDocument=document(_deny("*")))


def _managed_policy_detached_from_the_role(aws):
    creds = aws.role_session("dba", allow(aws.arn(aws.aurora, "alice")))
    arn = _managed(aws, "pg-alice", allow(aws.arn(aws.pg, "alice")))
    aws.iam.attach_role_policy(RoleName="dba", PolicyArn=arn)
    return creds, lambda: aws.iam.detach_role_policy(RoleName="dba", PolicyArn=arn)


def _new_default_version_without_the_grant(aws):
    creds = aws.user("alice")
    arn = _managed(aws, "pg-users", allow(aws.arn(aws.pg, "alice")))
    aws.iam.attach_user_policy(UserName="alice", PolicyArn=arn)
    return creds, lambda: aws.iam.create_policy_version(PolicyArn=arn, PolicyDocument=document(allow(aws.arn(aws.pg, "bob"))),
                                                        SetAsDefault=True)


def _removed_from_the_group(aws):
    creds = aws.user("alice")
    aws.iam.create_group(GroupName="dbas")
    aws.iam.put_group_policy(GroupName="dbas", PolicyName="pg", PolicyDocument=document(allow(aws.arn(aws.pg, "alice"))))
    aws.iam.add_user_to_group(GroupName="dbas", UserName="alice")
    return creds, lambda: aws.iam.remove_user_from_group(GroupName="dbas", UserName="alice")


def _access_key_deactivated(aws):
    creds = aws.user("alice", allow("*"))
    return creds, lambda: aws.iam.update_access_key(UserName="alice", AccessKeyId=creds.access_key, Status="Inactive")


def _role_deleted(aws):
    creds = aws.role_session("dba", allow("*"))

    def delete_role():
        aws.iam.delete_role_policy(RoleName="dba", PolicyName="connect")
        aws.iam.delete_role(RoleName="dba")
    return creds, delete_role


def _principal_tag_changed(aws):
    creds = aws.user("alice", allow(f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:*/${{aws:PrincipalTag/dbUser}}"), tags={"dbUser": "alice"})
    return creds, lambda: aws.iam.tag_user(UserName="alice", Tags=[{"Key": "dbUser", "Value": "bob"}])


def _boundary_put_on_the_role(aws):
    creds = aws.role_session("dba", allow("*"))
    boundary = _managed(aws, "aurora-only", allow(f"arn:aws:rds-db:*:*:dbuser:{aws.aurora['resource']}/*"))
    return creds, lambda: aws.iam.put_role_permissions_boundary(RoleName="dba", PermissionsBoundary=boundary)


REVOCATIONS = (_inline_user_policy_deleted, _explicit_deny_added, _managed_policy_detached_from_the_role,
               _new_default_version_without_the_grant, _removed_from_the_group, _access_key_deactivated, _role_deleted,
               _principal_tag_changed, _boundary_put_on_the_role)


@pytest.mark.parametrize("revocation", REVOCATIONS, ids=lambda revocation: revocation.__name__.strip("_"))
def test_a_grant_iam_takes_away_refuses_the_next_login(aws, builds, revocation):
    creds, revoke = revocation(aws)
    builds["n"] = 0  # AssumeRole reads its caller the way the verifier reads a principal: count the logins' reads only
    token = mint(creds, aws.pg, "alice")
    assert verify(aws.pg, "alice", token).allow
    assert verify(aws.pg, "alice", token).allow
    assert builds["n"] == 1  # the second login was decided on what the first one read
    revoke()
    refusal(aws.pg, "alice", token)
    assert builds["n"] == 2


def test_a_grant_iam_adds_lets_the_next_login_in(aws):
    creds = aws.user("alice", allow(aws.arn(aws.pg, "bob")))
    token = mint(creds, aws.pg, "alice")
    assert "no policy allows" in refusal(aws.pg, "alice", token)
    aws.iam.put_user_policy(UserName="alice", PolicyName="connect", PolicyDocument=document(allow(aws.arn(aws.pg, "alice"))))
    assert verify(aws.pg, "alice", token).allow


def test_a_principal_read_while_iam_changes_is_not_kept_past_the_change(aws, monkeypatch):
    """The generation is taken before IAM is read: a principal read just before a write lands is not served after it."""
    creds = aws.user("alice", allow("*"))
    token = mint(creds, aws.pg, "alice")
    read = credentials_api.MotoDirectory._read_principal

    def read_then_revoke(directory, access_key_id):
        found = read(directory, access_key_id)  # what IAM held a moment ago
        aws.iam.delete_user_policy(UserName="alice", PolicyName="connect")  # the write lands before the read is kept
        monkeypatch.setattr(credentials_api.MotoDirectory, "_read_principal", read)
        return found

    monkeypatch.setattr(credentials_api.MotoDirectory, "_read_principal", read_then_revoke)
    assert verify(aws.pg, "alice", token).allow  # decided alongside the write, as on AWS
    assert "no policy allows" in refusal(aws.pg, "alice", token)


def test_every_iam_write_moves_the_generation_and_reads_do_not(aws):
    wrapped = [name for name in iam_changes._writes(IAMBackend) if getattr(getattr(IAMBackend, name), "moves_iam_generation", False)]
    assert wrapped == list(iam_changes._writes(IAMBackend)) and "put_user_policy" in wrapped and "reset" in wrapped
    aws.user("alice", allow("*"))
    before = iam_changes.generation()
    aws.iam.get_user(UserName="alice")
    aws.iam.list_user_policies(UserName="alice")
    assert iam_changes.generation() == before
    aws.iam.tag_user(UserName="alice", Tags=[{"Key": "team", "Value": "data"}])
    assert iam_changes.generation() > before


def test_session_tags_reach_a_principal_read_before_them(aws):
    """The session-tag shim sets the tags after moto issued the session: it moves the generation too."""
    before = iam_changes.generation()
    creds = aws.role_session("abac", allow(f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:*/${{aws:PrincipalTag/userName}}"),
                             session_tags={"userName": "alice"})
    assert iam_changes.generation() > before
    assert verify(aws.pg, "alice", mint(creds, aws.pg, "alice")).allow


# --- logins side by side, over HTTP ----------------------------------------------------------

@pytest.fixture
def server(aws, monkeypatch, tmp_path):
    """The sandbox's moto server (its verifier in front) on a free port in this process; yields (World, its URL)."""
    monkeypatch.setenv("RDSIAM_SANDBOX_STATE_DIR", str(tmp_path))
    host, port = "127.0.0.1", free_port("127.0.0.1")
    running = moto_server.make_sandbox_server(host, port)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield aws, f"http://{host}:{port}"
    running.shutdown()
    running.server_close()


def test_many_logins_at_once_each_get_their_own_answer(server):
    aws, url = server
    alice = aws.user("alice", allow(aws.arn(aws.pg, "alice"), aws.arn(aws.aurora, "alice")))
    bob = aws.role_session("bob-role", allow(aws.arn(aws.pg, "bob")))
    cases = [(target, user, creds, user == "alice" or (user == "bob" and target is aws.pg))
             for target in (aws.pg, aws.aurora) for user, creds in (("alice", alice), ("bob", bob)) for _ in range(6)]
    cases += [(aws.pg, "carol", alice, False)] * 4  # alice's key, signed for another user
    tokens = [mint(creds, target, user) for target, user, creds, _ in cases]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(cases)) as pool:
        answers = list(pool.map(lambda case, token: verify_as_the_databases_do(url, case[0]["id"], case[1], token), cases, tokens))
    assert [status for status, _ in answers] == [200 if allowed else 403 for *_, allowed in cases]
    assert all(answer["allow"] is allowed for (_, answer), (*_, allowed) in zip(answers, cases))


def test_a_login_the_verifier_is_still_deciding_holds_up_no_other(server, monkeypatch):
    aws, url = server
    creds = aws.user("alice", allow("*"))
    entered, release = threading.Event(), threading.Event()
    target = credentials_api.MotoDirectory.target

    def slow_for_one(directory, identifier):
        if identifier == "aurora":
            entered.set()
            release.wait(10)
        return target(directory, identifier)

    monkeypatch.setattr(credentials_api.MotoDirectory, "target", slow_for_one)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(verify_as_the_databases_do, url, "aurora", "alice", mint(creds, aws.aurora, "alice"))
        assert entered.wait(10)
        try:
            assert verify_as_the_databases_do(url, "pg", "alice", mint(creds, aws.pg, "alice"))[0] == 200  # aurora's still waits
            assert not held.done()
        finally:
            release.set()
        assert held.result(timeout=10)[0] == 200
