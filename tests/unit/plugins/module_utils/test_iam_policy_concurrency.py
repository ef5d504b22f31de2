"""Two rds_iam_policy runs writing the same policy at the same moment, with botocore's Stubber playing IAM.

The race is made deterministic: a run plans while the policy does not exist yet and applies after the other run created it,
so its CreatePolicy meets EntityAlreadyExists. Stubber fails the test on any call that is not stubbed in this order, so each
test also proves which path the run took.
"""
import datetime

import botocore.session
import pytest
from botocore.stub import ANY, Stubber

from ansible_collections.rdsiam.auth.plugins.module_utils import _aws, _iam_policy as docs
from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_policy_reads as reads
from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_policy_sync as sync
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError

ACCOUNT = "123456789012"
NAME = "rdsiam-alice"
ARN = f"arn:aws:iam::{ACCOUNT}:policy/{NAME}"
ROLE = "analysts"


def document(user):
    arn = docs.connect_arn("aws", "us-east-1", ACCOUNT, "db-ABCDEFGHIJKLMNOPQRSTUVWXY", user)
    return docs.build_documents([[arn]], docs.SIZE_LIMITS["managed"])[0]


def params(**options):
    values = dict.fromkeys(_aws.AWS_ARGUMENT_SPEC)
    values.update(region="us-east-1", name=NAME, state="present", policy_type="managed", path="/", description=None, tags=None,
                  grants=[{"db_users": ["alice"], "targets": ["app-pg"]}], attach_to={"roles": [ROLE]}, purge_attachments=False,
                  allow_wildcard_users=False)
    values.update(options)
    return values


@pytest.fixture
def iam(monkeypatch):
    monkeypatch.setattr(_aws, "_DECLARED_RETRY_BACKOFF", 0)
    monkeypatch.setattr(reads, "caller_account", lambda _options: ("aws", ACCOUNT))
    client = botocore.session.get_session().create_client("iam", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()  # every stubbed call made, in order, and no other


def planned(client, stubber, check_mode=False, **options):
    """A run that read IAM while the policy did not exist (its plan queues the create)."""
    stubber.add_response("list_attached_role_policies", {"AttachedPolicies": []}, {"RoleName": ROLE, "PathPrefix": "/"})
    stubber.add_response("list_policies", {"Policies": []}, {"Scope": "Local", "PathPrefix": "/", "MaxItems": 1000})
    run_params = params(**options)
    run = sync.PolicySync(run_params, check_mode, lambda _msg: None, reads.IamReads(run_params, client, "/"))
    run.plan([document("alice")])
    return run


def other_run_created(stubber, user="alice", attached=(), path="/", listed=True):
    """What IAM answers once the other run's policy exists: CreatePolicy refuses, then the reads of the existing policy."""
    stubber.add_client_error("create_policy", "EntityAlreadyExists", f"A policy called {NAME} already exists.",
                             expected_params={"PolicyName": NAME, "Path": "/", "PolicyDocument": ANY})
    stubber.add_response("list_policies", {"Policies": [{"PolicyName": NAME, "Path": path, "Arn": ARN}] if listed else []},
                         {"Scope": "Local"})
    if path != "/":
        return
    stubber.add_response("get_policy", {"Policy": {"PolicyName": NAME, "Arn": ARN, "Path": "/", "DefaultVersionId": "v1",
                                                   "AttachmentCount": len(attached)}}, {"PolicyArn": ARN})
    stubber.add_response("get_policy_version", {"PolicyVersion": {"Document": docs.serialise(document(user)), "VersionId": "v1"}},
                         {"PolicyArn": ARN, "VersionId": "v1"})
    if attached:
        stubber.add_response("list_entities_for_policy", {"PolicyRoles": [{"RoleName": role} for role in attached], "PolicyUsers": [],
                                                          "PolicyGroups": []}, {"PolicyArn": ARN})


def test_the_same_policy_created_a_moment_earlier_is_read_and_left_as_it_is(iam):
    client, stubber = iam
    run = planned(client, stubber)
    other_run_created(stubber, attached=[ROLE])
    run.apply()
    result = run.result()
    assert result["changed"] is False  # the other run did it all
    assert result["policies"] == [dict(arn=ARN, name=NAME, version="v1", document=document("alice"))]
    assert result["diff"]["before"] == result["diff"]["after"]


def test_a_policy_created_a_moment_earlier_but_not_yet_attached_is_only_attached(iam):
    client, stubber = iam
    run = planned(client, stubber)
    other_run_created(stubber, listed=False)  # IAM's list does not show it yet: it was created a moment ago
    stubber.add_response("attach_role_policy", {}, {"PolicyArn": ARN, "RoleName": ROLE})
    run.apply()
    assert run.result()["changed"] is True and run.result()["policies"][0]["version"] == "v1"


def test_a_policy_created_a_moment_earlier_with_another_document_gets_a_new_version(iam):
    client, stubber = iam
    run = planned(client, stubber)
    other_run_created(stubber, user="bob", attached=[ROLE])
    stubber.add_response("list_policy_versions", {"Versions": [{"VersionId": "v1", "IsDefaultVersion": True,
                                                                "CreateDate": datetime.datetime(2026, 1, 1)}]}, {"PolicyArn": ARN})
    stubber.add_response("create_policy_version", {"PolicyVersion": {"VersionId": "v2", "IsDefaultVersion": True}},
                         {"PolicyArn": ARN, "PolicyDocument": docs.serialise(document("alice")), "SetAsDefault": True})
    run.apply()
    result = run.result()
    assert result["changed"] is True and result["policies"][0]["version"] == "v2"
    assert "bob" in str(result["diff"]["before"][NAME]["document"]) and "alice" in str(result["diff"]["after"][NAME]["document"])


def test_a_policy_just_created_is_read_again_while_iam_does_not_show_it_yet(iam):
    client, stubber = iam
    run = planned(client, stubber)
    stubber.add_client_error("create_policy", "EntityAlreadyExists", "exists")
    stubber.add_response("list_policies", {"Policies": []}, {"Scope": "Local"})
    stubber.add_client_error("get_policy", "NoSuchEntity", "not yet", expected_params={"PolicyArn": ARN})
    stubber.add_response("get_policy", {"Policy": {"PolicyName": NAME, "Arn": ARN, "DefaultVersionId": "v1", "AttachmentCount": 1}},
                         {"PolicyArn": ARN})
    stubber.add_response("get_policy_version", {"PolicyVersion": {"Document": docs.serialise(document("alice")), "VersionId": "v1"}},
                         {"PolicyArn": ARN, "VersionId": "v1"})
    stubber.add_response("list_entities_for_policy", {"PolicyRoles": [{"RoleName": ROLE}], "PolicyUsers": [], "PolicyGroups": []},
                         {"PolicyArn": ARN})
    run.apply()
    assert run.result()["changed"] is False


def test_a_name_taken_under_another_path_fails_naming_that_path(iam):
    client, stubber = iam
    run = planned(client, stubber)
    other_run_created(stubber, path="/team/")
    with pytest.raises(AwsCallError) as error:
        run.apply()
    message = str(error.value)
    assert message.startswith(f"iam:CreatePolicy on policy '{NAME}' (policy '{NAME}' for role {ROLE}) failed: EntityAlreadyExists")
    assert "already exists under another path, /team/ (this run writes under /)" in message and "set path to /team/" in message


def test_a_name_taken_under_the_same_path_never_blames_the_path(iam):
    client, stubber = iam
    run = planned(client, stubber)
    stubber.add_client_error("create_policy", "EntityAlreadyExists", "exists")
    stubber.add_response("list_policies", {"Policies": [{"PolicyName": NAME, "Path": "/", "Arn": ARN}]}, {"Scope": "Local"})
    for _attempt in range(_aws._DECLARED_RETRY_ATTEMPTS):  # pylint: disable=protected-access
        stubber.add_client_error("get_policy", "NoSuchEntity", "deleted again", expected_params={"PolicyArn": ARN})
    with pytest.raises(AwsCallError) as error:
        run.apply()
    message = str(error.value)
    assert f"policy '{NAME}' exists under path /, but it cannot be read there" in message and "run again" in message
    assert "another path" not in message and "set path" not in message


def test_two_runs_planned_together_leave_one_policy_one_version_and_one_change(iam):
    """Both runs read IAM before either writes (the race of two onboardings): the first creates and attaches, the second
    meets EntityAlreadyExists, finds the same document attached, and writes nothing."""
    client, stubber = iam
    first, second = planned(client, stubber), planned(client, stubber)
    stubber.add_response("create_policy", {"Policy": {"PolicyName": NAME, "Arn": ARN, "DefaultVersionId": "v1"}},
                         {"PolicyName": NAME, "Path": "/", "PolicyDocument": docs.serialise(document("alice"))})
    stubber.add_response("attach_role_policy", {}, {"PolicyArn": ARN, "RoleName": ROLE})
    first.apply()
    other_run_created(stubber, attached=[ROLE])
    second.apply()
    assert (first.result()["changed"], second.result()["changed"]) == (True, False)
    assert first.result()["policies"] == second.result()["policies"]


def test_check_mode_plans_the_create_and_writes_nothing(iam):
    client, stubber = iam
    run = planned(client, stubber, check_mode=True)
    run.apply()
    assert run.result()["changed"] is True


def test_a_detach_another_run_made_first_is_no_change(iam):
    client, stubber = iam
    stubber.add_response("list_attached_role_policies", {"AttachedPolicies": []}, {"RoleName": ROLE, "PathPrefix": "/"})
    stubber.add_response("list_policies", {"Policies": [{"PolicyName": NAME, "Arn": ARN, "Path": "/", "DefaultVersionId": "v1",
                                                         "AttachmentCount": 1}]}, {"Scope": "Local", "PathPrefix": "/", "MaxItems": 1000})
    stubber.add_response("get_policy_version", {"PolicyVersion": {"Document": docs.serialise(document("alice")), "VersionId": "v1"}},
                         {"PolicyArn": ARN, "VersionId": "v1"})
    stubber.add_response("list_entities_for_policy", {"PolicyRoles": [], "PolicyUsers": [{"UserName": "old"}], "PolicyGroups": []},
                         {"PolicyArn": ARN})
    stubber.add_response("attach_role_policy", {}, {"PolicyArn": ARN, "RoleName": ROLE})
    stubber.add_client_error("detach_user_policy", "NoSuchEntity", "not attached", expected_params={"PolicyArn": ARN, "UserName": "old"})
    run_params = params(purge_attachments=True)
    run = sync.PolicySync(run_params, False, lambda _msg: None, reads.IamReads(run_params, client, "/"))
    run.plan([document("alice")])
    run.apply()
    assert run.result()["changed"] is True  # the attach is this run's; the detach was the other run's and is no error


def test_a_run_whose_only_write_another_run_made_first_reports_no_change(iam):
    client, stubber = iam
    stubber.add_response("get_role_policy", {"RoleName": ROLE, "PolicyName": NAME, "PolicyDocument": docs.serialise(document("alice"))},
                         {"RoleName": ROLE, "PolicyName": NAME})
    stubber.add_client_error("delete_role_policy", "NoSuchEntity", "gone", expected_params={"RoleName": ROLE, "PolicyName": NAME})
    run_params = params(state="absent", policy_type="inline", grants=None)
    run = sync.PolicySync(run_params, False, lambda _msg: None, reads.IamReads(run_params, client, "/"))
    run.plan([])
    assert run.changed is True  # planned: the policy was there when this run read it
    run.apply()
    assert run.result()["changed"] is False  # but the other run deleted it first
