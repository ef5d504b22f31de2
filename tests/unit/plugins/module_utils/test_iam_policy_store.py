"""IAM reads and writes of rds_iam_policy with botocore's Stubber: version pruning, retries, error messages."""
import datetime

import botocore.session
import pytest
from botocore.stub import Stubber

from ansible_collections.rdsiam.auth.plugins.module_utils import _aws, _iam_policy_store as store
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError

ARN = "arn:aws:iam::123456789012:policy/rdsiam-alice"
DOC = '{"Version":"2012-10-17","Statement":[]}'


@pytest.fixture
def iam(monkeypatch):
    monkeypatch.setattr(_aws, "_DECLARED_RETRY_BACKOFF", 0)
    client = botocore.session.get_session().create_client("iam", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    with Stubber(client) as stubber:
        yield store.IamStore(client, "policy 'rdsiam-alice' for role analysts"), stubber
        stubber.assert_no_pending_responses()


def version(number, default=False, day=1):
    return {"VersionId": f"v{number}", "IsDefaultVersion": default, "CreateDate": datetime.datetime(2026, 1, day)}


def test_five_versions_lose_the_oldest_non_default_one_first(iam):
    client, stubber = iam
    # v1 is the default and the oldest; v2 is the oldest non-default one.
    versions = [version(1, True, 1), version(4, False, 4), version(2, False, 2), version(5, False, 5), version(3, False, 3)]
    stubber.add_response("list_policy_versions", {"Versions": versions}, {"PolicyArn": ARN})
    stubber.add_response("delete_policy_version", {}, {"PolicyArn": ARN, "VersionId": "v2"})
    stubber.add_response("create_policy_version", {"PolicyVersion": {"VersionId": "v6", "IsDefaultVersion": True}},
                         {"PolicyArn": ARN, "PolicyDocument": DOC, "SetAsDefault": True})
    assert client.new_version(ARN, "rdsiam-alice", DOC) == ("v6", True)


def test_fewer_than_five_versions_delete_nothing(iam):
    client, stubber = iam
    stubber.add_response("list_policy_versions", {"Versions": [version(1, True)]}, {"PolicyArn": ARN})
    stubber.add_response("create_policy_version", {"PolicyVersion": {"VersionId": "v2"}},
                         {"PolicyArn": ARN, "PolicyDocument": DOC, "SetAsDefault": True})
    assert client.new_version(ARN, "rdsiam-alice", DOC) == ("v2", True)


def test_concurrent_modification_is_retried(iam):
    client, stubber = iam
    for _attempt in range(2):
        stubber.add_client_error("attach_role_policy", "ConcurrentModification", "busy")
    stubber.add_response("attach_role_policy", {}, {"PolicyArn": ARN, "RoleName": "analysts"})
    client.attach(ARN, "rdsiam-alice", "role", "analysts")


def test_concurrent_modification_gives_up_with_the_subject(iam):
    client, stubber = iam
    for _attempt in range(_aws._DECLARED_RETRY_ATTEMPTS):  # pylint: disable=protected-access
        stubber.add_client_error("attach_role_policy", "ConcurrentModification", "busy")
    with pytest.raises(AwsCallError, match="iam:AttachRolePolicy on policy 'rdsiam-alice' to role 'analysts' failed: "
                                           "ConcurrentModification: busy: another change"):
        client.attach(ARN, "rdsiam-alice", "role", "analysts")


def test_concurrent_modification_of_a_new_version_is_retried_then_succeeds(iam):
    client, stubber = iam
    stubber.add_response("list_policy_versions", {"Versions": [version(1, True)]}, {"PolicyArn": ARN})
    stubber.add_client_error("create_policy_version", "ConcurrentModification", "busy")
    stubber.add_response("create_policy_version", {"PolicyVersion": {"VersionId": "v2"}},
                         {"PolicyArn": ARN, "PolicyDocument": DOC, "SetAsDefault": True})
    assert client.new_version(ARN, "rdsiam-alice", DOC) == ("v2", True)


def test_declared_retries_pause_with_jitter_under_a_doubling_cap(iam, monkeypatch):
    client, stubber = iam
    pauses = []
    monkeypatch.setattr(_aws, "_DECLARED_RETRY_BACKOFF", 0.5)
    monkeypatch.setattr(_aws.time, "sleep", pauses.append)
    for _attempt in range(2):
        stubber.add_client_error("tag_policy", "ConcurrentModification", "busy")
    stubber.add_response("tag_policy", {}, {"PolicyArn": ARN, "Tags": [{"Key": "owner", "Value": "ops"}]})
    client.set_tags(ARN, "rdsiam-alice", {}, {"owner": "ops"})
    assert len(pauses) == 2 and 0 <= pauses[0] <= 0.5 and 0 <= pauses[1] <= 1.0


def test_a_code_the_call_does_not_declare_is_not_retried(iam):
    client, stubber = iam
    stubber.add_client_error("get_policy", "ConcurrentModification", "busy")
    with pytest.raises(AwsCallError, match="iam:GetPolicy on policy 'rdsiam-alice' failed: ConcurrentModification"):
        client.read_managed(ARN, "rdsiam-alice")


def test_a_version_another_run_pruned_first_counts_as_deleted(iam):
    client, stubber = iam
    versions = [version(1, True, 1), version(2, False, 2), version(3, False, 3), version(4, False, 4), version(5, False, 5)]
    stubber.add_response("list_policy_versions", {"Versions": versions}, {"PolicyArn": ARN})
    stubber.add_client_error("delete_policy_version", "NoSuchEntity", "no version v2", expected_params={"PolicyArn": ARN, "VersionId": "v2"})
    stubber.add_response("create_policy_version", {"PolicyVersion": {"VersionId": "v6"}},
                         {"PolicyArn": ARN, "PolicyDocument": DOC, "SetAsDefault": True})
    assert client.new_version(ARN, "rdsiam-alice", DOC) == ("v6", True)


OTHER_DOC = '{"Version":"2012-10-17","Statement":[{"Sid":"RdsIamConnectX","Effect":"Allow","Action":"rds-db:connect","Resource":"*"}]}'


def stub_version_limit_race(stubber, default_document):
    """Both runs saw four versions; the other run's create took the fifth place, so this run's create is refused."""
    stubber.add_response("list_policy_versions", {"Versions": [version(n, n == 1, n) for n in range(1, 5)]}, {"PolicyArn": ARN})
    stubber.add_client_error("create_policy_version", "LimitExceeded", "Cannot exceed quota for PolicyVersionsPerPolicy: 5")
    stubber.add_response("list_policy_versions", {"Versions": [version(n, n == 5, n) for n in range(1, 6)]}, {"PolicyArn": ARN})
    stubber.add_response("get_policy_version", {"PolicyVersion": {"Document": default_document, "VersionId": "v5"}},
                         {"PolicyArn": ARN, "VersionId": "v5"})


def test_the_version_limit_met_because_another_run_wrote_the_same_document_keeps_its_version(iam):
    client, stubber = iam
    stub_version_limit_race(stubber, ' { "Statement": [], "Version": "2012-10-17" } ')  # the same document, spelt otherwise
    assert client.new_version(ARN, "rdsiam-alice", DOC) == ("v5", False)


def test_the_version_limit_met_because_another_run_wrote_another_document_prunes_again(iam):
    client, stubber = iam
    stub_version_limit_race(stubber, OTHER_DOC)
    # The other run's v5 is the default now, so v1 is the oldest non-default version.
    stubber.add_response("delete_policy_version", {}, {"PolicyArn": ARN, "VersionId": "v1"})
    stubber.add_response("create_policy_version", {"PolicyVersion": {"VersionId": "v6"}},
                         {"PolicyArn": ARN, "PolicyDocument": DOC, "SetAsDefault": True})
    assert client.new_version(ARN, "rdsiam-alice", DOC) == ("v6", True)


def test_a_default_another_run_wrote_since_this_run_read_it_is_kept_when_it_is_the_same_document(iam):
    client, stubber = iam
    stubber.add_response("list_policy_versions", {"Versions": [version(1, False, 1), version(2, True, 2)]}, {"PolicyArn": ARN})
    stubber.add_response("get_policy_version", {"PolicyVersion": {"Document": DOC, "VersionId": "v2"}}, {"PolicyArn": ARN, "VersionId": "v2"})
    assert client.new_version(ARN, "rdsiam-alice", DOC, seen_default="v1") == ("v2", False)


def test_a_default_another_run_wrote_with_another_document_is_replaced(iam):
    client, stubber = iam
    stubber.add_response("list_policy_versions", {"Versions": [version(1, False, 1), version(2, True, 2)]}, {"PolicyArn": ARN})
    stubber.add_response("get_policy_version", {"PolicyVersion": {"Document": OTHER_DOC, "VersionId": "v2"}},
                         {"PolicyArn": ARN, "VersionId": "v2"})
    stubber.add_response("create_policy_version", {"PolicyVersion": {"VersionId": "v3"}},
                         {"PolicyArn": ARN, "PolicyDocument": DOC, "SetAsDefault": True})
    assert client.new_version(ARN, "rdsiam-alice", DOC, seen_default="v1") == ("v3", True)


def test_the_default_this_run_read_costs_no_extra_read(iam):
    client, stubber = iam
    stubber.add_response("list_policy_versions", {"Versions": [version(1, True, 1)]}, {"PolicyArn": ARN})
    stubber.add_response("create_policy_version", {"PolicyVersion": {"VersionId": "v2"}},
                         {"PolicyArn": ARN, "PolicyDocument": DOC, "SetAsDefault": True})
    assert client.new_version(ARN, "rdsiam-alice", DOC, seen_default="v1") == ("v2", True)


def test_the_version_limit_still_met_after_pruning_again_fails_naming_the_quota(iam):
    client, stubber = iam
    for attempt in range(store._VERSION_ATTEMPTS):  # pylint: disable=protected-access
        stubber.add_response("list_policy_versions", {"Versions": [version(n, n == 1, n) for n in range(1, 5)]}, {"PolicyArn": ARN})
        if attempt:
            stubber.add_response("get_policy_version", {"PolicyVersion": {"Document": OTHER_DOC, "VersionId": "v1"}},
                                 {"PolicyArn": ARN, "VersionId": "v1"})
        stubber.add_client_error("create_policy_version", "LimitExceeded", "quota")
    with pytest.raises(AwsCallError, match="iam:CreatePolicyVersion on policy 'rdsiam-alice' failed: LimitExceeded: quota: an IAM quota"):
        client.new_version(ARN, "rdsiam-alice", DOC)


def test_a_detach_another_run_made_first_counts_as_done(iam):
    client, stubber = iam
    stubber.add_client_error("detach_role_policy", "NoSuchEntity", "not attached", expected_params={"PolicyArn": ARN, "RoleName": "analysts"})
    assert client.detach(ARN, "rdsiam-alice", "role", "analysts") is False
    stubber.add_response("detach_role_policy", {}, {"PolicyArn": ARN, "RoleName": "analysts"})
    assert client.detach(ARN, "rdsiam-alice", "role", "analysts") is True


def test_a_delete_another_run_made_first_counts_as_done(iam):
    client, stubber = iam
    current = {"arn": ARN, "name": "rdsiam-alice", "attachments": {"role": ["analysts"], "user": [], "group": []}}
    stubber.add_client_error("detach_role_policy", "NoSuchEntity", "gone")
    stubber.add_response("list_policy_versions", {"Versions": [version(1, True), version(2)]}, {"PolicyArn": ARN})
    stubber.add_client_error("delete_policy_version", "NoSuchEntity", "gone", expected_params={"PolicyArn": ARN, "VersionId": "v2"})
    stubber.add_client_error("delete_policy", "NoSuchEntity", "gone", expected_params={"PolicyArn": ARN})
    assert client.delete_managed(current) is False
    stubber.add_client_error("detach_role_policy", "NoSuchEntity", "gone")
    stubber.add_client_error("list_policy_versions", "NoSuchEntity", "gone")
    stubber.add_response("delete_policy", {}, {"PolicyArn": ARN})
    assert client.delete_managed(current) is True


def test_a_create_that_finds_the_policy_under_its_own_path_reports_it_as_existing(iam):
    client, stubber = iam
    stubber.add_client_error("create_policy", "EntityAlreadyExists", "exists")
    stubber.add_response("list_policies", {"Policies": [{"PolicyName": "rdsiam-alice", "Path": "/"},
                                                        {"PolicyName": "rdsiam-alice-1", "Path": "/other/"}]}, {"Scope": "Local"})
    assert client.create_managed("rdsiam-alice", "/", DOC, None, None) is None


@pytest.mark.parametrize("code, fix", [
    ("NoSuchEntity", "create the principal first"),
    ("LimitExceeded", "quota"),
    ("MalformedPolicyDocument", "IAM refused the document"),
    ("AccessDenied", "grant the calling identity iam:CreatePolicy"),
    ("EntityAlreadyExists", "another path"),
])
def test_errors_name_the_code_policy_principal_and_fix(iam, code, fix):
    client, stubber = iam
    stubber.add_client_error("create_policy", code, "the AWS message")
    if code == "EntityAlreadyExists":  # the path hint needs the name to be taken under another path
        stubber.add_response("list_policies", {"Policies": [{"PolicyName": "rdsiam-alice", "Path": "/other/"}]}, {"Scope": "Local"})
    with pytest.raises(AwsCallError) as error:
        client.create_managed("rdsiam-alice", "/", DOC, None, None)
    message = str(error.value)
    assert message.startswith("iam:CreatePolicy on policy 'rdsiam-alice' (policy 'rdsiam-alice' for role analysts) failed: ")
    assert f"{code}: the AWS message" in message and fix in message


def test_a_missing_policy_reads_as_none(iam):
    client, stubber = iam
    stubber.add_client_error("get_policy", "NoSuchEntity", "not found")
    assert client.read_managed(ARN, "rdsiam-alice") is None


def test_a_missing_inline_policy_reads_as_none(iam):
    client, stubber = iam
    stubber.add_client_error("get_role_policy", "NoSuchEntity", "not found")
    assert client.read_inline("role", "analysts", "rdsiam-alice") is None


def test_tags_are_replaced_exactly(iam):
    client, stubber = iam
    stubber.add_response("untag_policy", {}, {"PolicyArn": ARN, "TagKeys": ["old"]})
    stubber.add_response("tag_policy", {}, {"PolicyArn": ARN, "Tags": [{"Key": "owner", "Value": "ops"}]})
    client.set_tags(ARN, "rdsiam-alice", {"old": "x", "owner": "dev"}, {"owner": "ops"})


def stub_policy(stubber, attachment_count):
    stubber.add_response("get_policy", {"Policy": {"PolicyName": "rdsiam-alice", "Arn": ARN, "DefaultVersionId": "v3",
                                                   "AttachmentCount": attachment_count}}, {"PolicyArn": ARN})
    stubber.add_response("get_policy_version", {"PolicyVersion": {"Document": DOC, "VersionId": "v3"}}, {"PolicyArn": ARN, "VersionId": "v3"})


def test_attachments_known_from_the_principals_save_listing_entities(iam):
    client, stubber = iam
    stub_policy(stubber, 1)
    current = client.read_managed(ARN, "rdsiam-alice", {"role": ["analysts"], "user": [], "group": []})
    assert current["attachments"] == {"role": ["analysts"], "user": [], "group": []} and current["version"] == "v3"


def test_other_attachments_are_listed_from_the_policy(iam):
    client, stubber = iam
    stub_policy(stubber, 2)
    stubber.add_response("list_entities_for_policy", {"PolicyRoles": [{"RoleName": "analysts"}, {"RoleName": "other"}],
                                                      "PolicyUsers": [], "PolicyGroups": []}, {"PolicyArn": ARN})
    current = client.read_managed(ARN, "rdsiam-alice", {"role": ["analysts"], "user": [], "group": []})
    assert current["attachments"] == {"role": ["analysts", "other"], "user": [], "group": []}


def test_a_missing_principal_has_no_attached_policies(iam):
    client, stubber = iam
    stubber.add_client_error("list_attached_role_policies", "NoSuchEntity", "no role")
    assert client.attached_policy_arns("role", "ghost", "/") is None


def test_paths_of_finds_the_policy_and_its_numbered_parts_under_any_path(iam):
    client, stubber = iam
    policies = [{"PolicyName": name, "Path": path} for name, path in (
        ("rdsiam-alice", "/rdsiam/"), ("rdsiam-alice-2", "/rdsiam/"), ("rdsiam-alice-old", "/"), ("rdsiam-alicex", "/"), ("other", "/"))]
    stubber.add_response("list_policies", {"Policies": policies}, {"Scope": "Local"})
    assert client.paths_of("rdsiam-alice") == {"rdsiam-alice": "/rdsiam/", "rdsiam-alice-2": "/rdsiam/"}
