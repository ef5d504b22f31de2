"""rds_iam_policy's sync with botocore's Stubber, both forms: defaults, checks before any call, one read of each shared thing,
the AWS calls of the single form, and numbered parts told from look-alikes."""
import botocore.session
import pytest
from botocore.stub import ANY, Stubber

from ansible_collections.rdsiam.auth.plugins.module_utils import _aws, _iam_policy as docs, _iam_policy_entries as entries, _rds_describe as _fleet
from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_policy_sync as sync, _iam_policy_resources as resolve
from tests.unit.support.rds_items import ACCOUNT, cluster, instance

REGION = "us-east-1"
ROLE = "app-servers"
CALLER = {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/operator", "UserId": "AIDA"}


def params(policies, **top):
    values = dict.fromkeys(_aws.AWS_ARGUMENT_SPEC)
    values.update(region=REGION, name=None, state="present", policy_type="managed", path="/", description=None, tags=None,
                  grants=None, attach_to={"roles": [ROLE]}, purge_attachments=False, allow_wildcard_users=False, policies=policies)
    values.update(top)
    return values


def entry(name, users, targets=("app-pg",), **options):
    values = dict.fromkeys(entries.PER_POLICY_OPTIONS)
    values.update(name=name, grants=[{"db_users": list(users), "targets": list(targets)}], **options)
    return values


def policy_arn(name):
    return f"arn:aws:iam::{ACCOUNT}:policy/{name}"


def document_text(user, target="app-pg"):
    arn = docs.connect_arn("aws", REGION, ACCOUNT, instance(target)["DbiResourceId"], user)
    return docs.serialise(docs.build_documents([[arn]], docs.SIZE_LIMITS["managed"])[0])


@pytest.fixture
def stubs(monkeypatch):
    monkeypatch.setattr(_aws, "_DECLARED_RETRY_BACKOFF", 0)
    session = botocore.session.get_session()
    clients = {service: session.create_client(service, region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")
               for service in ("rds", "sts", "iam")}
    stubbers = {service: Stubber(client) for service, client in clients.items()}
    for target in (_fleet, resolve, sync):
        monkeypatch.setattr(target, "aws_client", lambda options, service: clients[service])
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()  # every expected call made, and (Stubber) no other


def stub_reads(stubs, attached=(), listed=()):
    """The reads a run shares: one describe per kind, one GetCallerIdentity, one attachment list, one policy list."""
    stubs["rds"].add_response("describe_db_instances", {"DBInstances": [instance("app-pg"), instance("app-my", "mysql")]}, {})
    stubs["rds"].add_response("describe_db_clusters", {"DBClusters": [cluster("app-aurora")]}, {})
    stubs["sts"].add_response("get_caller_identity", CALLER, {})
    stubs["iam"].add_response("list_attached_role_policies", {"AttachedPolicies": [{"PolicyName": name, "PolicyArn": policy_arn(name)}
                                                                                   for name in attached]},
                              {"RoleName": ROLE, "PathPrefix": "/"})
    stubs["iam"].add_response("list_policies", {"Policies": [{"PolicyName": name, "Arn": policy_arn(name), "Path": "/",
                                                              "DefaultVersionId": "v1", "AttachmentCount": 1} for name in listed]},
                              {"Scope": "Local", "PathPrefix": "/", "MaxItems": 1000})


def test_entries_take_the_top_level_values_as_defaults():
    top = params([], policy_type="inline", path="/rdsiam/", tags={"team": "data"})
    merged = entries.entry_params(top, entry("p", ["alice"], path="/own/", attach_to={"users": ["alice"]}))
    assert (merged["name"], merged["policy_type"], merged["path"], merged["tags"]) == ("p", "inline", "/own/", {"team": "data"})
    assert merged["attach_to"] == {"users": ["alice"]}  # replaced, not merged with the top-level roles
    assert merged["state"] == "present" and merged["region"] == REGION and "policies" not in merged


def test_every_bad_entry_is_named_before_any_aws_call(stubs):
    bad = [entry("ok", ["alice"]), entry("ok", ["bob"]), entry("app-1", ["carol"]), entry("app", ["dave"]),
           entry("two", ["erin"], policy_type="inline", attach_to={"roles": ["a", "b"]}), entry("bad-target", ["f"], targets=["x_!"]),
           entry("bad name", ["g"]), dict(entry("empty", []), grants=None)]
    problems = entries.PolicyEntries(params(bad)).problems()
    text = "\n".join(problems)
    assert "policy 'ok' (policies[1]): the name is used by an earlier entry" in text
    assert "policy 'app-1' (policies[2]): the name is what policy 'app' calls its numbered part" in text
    assert "policy 'two' (policies[4]): policy_type inline needs exactly one principal" in text
    assert "policy 'bad-target' (policies[5]): grant target 'x_!' is not an instance or cluster identifier" in text
    assert "policy 'bad name' (policies[6]): policy name 'bad name' is not valid" in text
    assert "policy 'empty' (policies[7]): state present needs grants" in text
    assert len(problems) == 6
    with pytest.raises(entries.PolicyEntriesError, match="no policy was written, because of 6 problems"):
        sync.sync_policies(params(bad), False, lambda _msg: None)


def test_a_first_run_reads_once_for_all_policies_then_creates_and_attaches_each(stubs):
    stub_reads(stubs)
    for name in ("rdsiam-alice", "rdsiam-bob", "rdsiam-carol"):
        stubs["iam"].add_response("create_policy", {"Policy": {"Arn": policy_arn(name), "DefaultVersionId": "v1"}},
                                  {"PolicyName": name, "Path": "/", "PolicyDocument": ANY})
        stubs["iam"].add_response("attach_role_policy", {}, {"PolicyArn": policy_arn(name), "RoleName": ROLE})
    three = [entry("rdsiam-alice", ["alice"]), entry("rdsiam-bob", ["bob"], targets=["app-pg", "app-aurora"]),
             entry("rdsiam-carol", ["carol"], targets=["app-my"])]
    result = sync.sync_policies(params(three), False, lambda _msg: None)
    assert result["changed"] is True
    assert [item["name"] for item in result["policies"]] == ["rdsiam-alice", "rdsiam-bob", "rdsiam-carol"]
    alice = result["policies"][0]
    assert sorted(alice) == ["changed", "name", "policies", "resource_arns"]
    assert alice["policies"][0]["arn"] == policy_arn("rdsiam-alice") and alice["policies"][0]["version"] == "v1"
    assert alice["resource_arns"] == [f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{instance('app-pg')['DbiResourceId']}/alice"]
    assert len(result["policies"][1]["resource_arns"]) == 2
    assert sorted(result["diff"]["after"]) == ["rdsiam-alice", "rdsiam-bob", "rdsiam-carol"] and result["diff"]["before"] == {}


def test_a_rerun_reads_one_version_per_policy_and_writes_nothing(stubs):
    names = ["rdsiam-alice", "rdsiam-bob"]
    stub_reads(stubs, attached=names, listed=names)
    for name, user in zip(names, ("alice", "bob")):
        stubs["iam"].add_response("get_policy_version", {"PolicyVersion": {"Document": document_text(user), "VersionId": "v1"}},
                                  {"PolicyArn": policy_arn(name), "VersionId": "v1"})
    result = sync.sync_policies(params([entry(names[0], ["alice"]), entry(names[1], ["bob"])]), False, lambda _msg: None)
    assert result["changed"] is False and [item["changed"] for item in result["policies"]] == [False, False]
    assert result["diff"]["before"] == result["diff"]["after"]


def test_check_mode_reads_and_writes_nothing(stubs):
    stub_reads(stubs)
    result = sync.sync_policies(params([entry("rdsiam-alice", ["alice"])]), True, lambda _msg: None)
    assert result["changed"] is True and result["policies"][0]["policies"][0]["version"] is None


def test_a_missing_target_names_each_entry_that_uses_it_and_nothing_is_read_from_iam(stubs):
    stubs["rds"].add_response("describe_db_instances", {"DBInstances": [instance("app-pg")]}, {})
    stubs["rds"].add_response("describe_db_clusters", {"DBClusters": []}, {})
    stubs["rds"].add_response("describe_db_proxies", {"DBProxies": []}, {})
    three = [entry("a", ["alice"]), entry("b", ["bob"], targets=["app-pg", "gone"]), entry("c", ["carol"], targets=["gone"])]
    with pytest.raises(entries.PolicyEntriesError) as error:
        sync.sync_policies(params(three), False, lambda _msg: None)
    message = str(error.value)
    assert "policy 'b' (policies[1]): grant targets not found: 'gone' (us-east-1)" in message
    assert "policy 'c' (policies[2]): grant targets not found" in message and "policy 'a'" not in message


def test_a_missing_principal_fails_before_any_write(stubs):
    stubs["rds"].add_response("describe_db_instances", {"DBInstances": [instance("app-pg")]}, {})
    stubs["rds"].add_response("describe_db_clusters", {"DBClusters": []}, {})
    stubs["sts"].add_response("get_caller_identity", CALLER, {})
    stubs["iam"].add_response("list_attached_role_policies", {"AttachedPolicies": []}, {"RoleName": ROLE, "PathPrefix": "/"})
    stubs["iam"].add_response("list_policies", {"Policies": []}, {"Scope": "Local", "PathPrefix": "/", "MaxItems": 1000})
    stubs["iam"].add_client_error("list_attached_user_policies", "NoSuchEntity", "no user", expected_params={"UserName": "ghost",
                                                                                                             "PathPrefix": "/"})
    two = [entry("a", ["alice"]), entry("b", ["bob"], attach_to={"users": ["ghost"]})]
    with pytest.raises(entries.PolicyEntriesError, match=r"policy 'b' \(policies\[1\]\): user 'ghost' do not exist in IAM"):
        sync.sync_policies(params(two), False, lambda _msg: None)


def test_a_failed_write_names_the_entry_and_the_policies_written_before_it(stubs):
    stub_reads(stubs)
    stubs["iam"].add_response("create_policy", {"Policy": {"Arn": policy_arn("a"), "DefaultVersionId": "v1"}},
                              {"PolicyName": "a", "Path": "/", "PolicyDocument": ANY})
    stubs["iam"].add_response("attach_role_policy", {}, {"PolicyArn": policy_arn("a"), "RoleName": ROLE})
    stubs["iam"].add_client_error("create_policy", "LimitExceeded", "too many")
    with pytest.raises(entries.PolicyEntriesError) as error:
        sync.sync_policies(params([entry("a", ["alice"]), entry("b", ["bob"])]), False, lambda _msg: None)
    message = str(error.value)
    assert message.startswith("policy 'b' (policies[1]): iam:CreatePolicy on policy 'b'") and "LimitExceeded: too many" in message
    assert "the policies before it: a" in message


def test_a_policy_another_run_created_since_the_reads_is_compared_not_failed(stubs):
    """Two job slices: the other slice created rdsiam-alice, same document and attachment, after this run listed IAM."""
    stub_reads(stubs)
    stubs["iam"].add_client_error("create_policy", "EntityAlreadyExists", "exists",
                                  expected_params={"PolicyName": "rdsiam-alice", "Path": "/", "PolicyDocument": ANY})
    stubs["iam"].add_response("list_policies", {"Policies": [{"PolicyName": "rdsiam-alice", "Path": "/"}]}, {"Scope": "Local"})
    stubs["iam"].add_response("get_policy", {"Policy": {"PolicyName": "rdsiam-alice", "Arn": policy_arn("rdsiam-alice"),
                                                        "DefaultVersionId": "v1", "AttachmentCount": 1}}, {"PolicyArn": policy_arn("rdsiam-alice")})
    stubs["iam"].add_response("get_policy_version", {"PolicyVersion": {"Document": document_text("alice"), "VersionId": "v1"}},
                              {"PolicyArn": policy_arn("rdsiam-alice"), "VersionId": "v1"})
    stubs["iam"].add_response("list_entities_for_policy", {"PolicyRoles": [{"RoleName": ROLE}], "PolicyUsers": [], "PolicyGroups": []},
                              {"PolicyArn": policy_arn("rdsiam-alice")})
    stubs["iam"].add_response("create_policy", {"Policy": {"Arn": policy_arn("rdsiam-bob"), "DefaultVersionId": "v1"}},
                              {"PolicyName": "rdsiam-bob", "Path": "/", "PolicyDocument": ANY})
    stubs["iam"].add_response("attach_role_policy", {}, {"PolicyArn": policy_arn("rdsiam-bob"), "RoleName": ROLE})
    result = sync.sync_policies(params([entry("rdsiam-alice", ["alice"]), entry("rdsiam-bob", ["bob"])]), False, lambda _msg: None)
    assert result["changed"] is True and [item["changed"] for item in result["policies"]] == [False, True]
    assert [item["policies"][0]["version"] for item in result["policies"]] == ["v1", "v1"]


def common_path(paths):
    return entries.PolicyEntries(params([entry(f"p{number}", ["u"], path=path) for number, path in enumerate(paths)])).managed_path_prefix()


def test_paths_are_listed_under_their_common_prefix():
    assert common_path(["/rdsiam/app/", "/rdsiam/ops/"]) == "/rdsiam/"
    assert common_path(["/rdsiam/", "/rdsiamx/"]) == "/"
    assert common_path([]) == "/"


# --- the single form: a one-entry call, its result unwrapped --------------------------------------

def single(**options):
    return params(None, **dict(dict(name="rdsiam-alice", grants=[{"db_users": ["alice"], "targets": ["app-pg"]}]), **options))


def listed(name, attachments=1):
    return {"PolicyName": name, "Arn": policy_arn(name), "Path": "/", "DefaultVersionId": "v1", "AttachmentCount": attachments}


def stub_single_reads(stubs, attached=(), policies=()):
    """What the single form reads before planning: as a one-entry call does (see stub_reads), the policies under its path."""
    stubs["rds"].add_response("describe_db_instances", {"DBInstances": [instance("app-pg")]}, {})
    stubs["rds"].add_response("describe_db_clusters", {"DBClusters": []}, {})
    stubs["sts"].add_response("get_caller_identity", CALLER, {})
    stubs["iam"].add_response("list_attached_role_policies", {"AttachedPolicies": [{"PolicyName": name, "PolicyArn": policy_arn(name)}
                                                                                   for name in attached]},
                              {"RoleName": ROLE, "PathPrefix": "/"})
    stubs["iam"].add_response("list_policies", {"Policies": list(policies)}, {"Scope": "Local", "PathPrefix": "/", "MaxItems": 1000})


def stub_document(stubs, name, text):
    stubs["iam"].add_response("get_policy_version", {"PolicyVersion": {"Document": text, "VersionId": "v1"}},
                              {"PolicyArn": policy_arn(name), "VersionId": "v1"})


def stub_described(stubs, name, text, tags=None, attachments=1):
    """A policy named like a numbered part: iam:GetPolicy for its tags, then its document."""
    policy = dict(listed(name, attachments), Tags=[{"Key": key, "Value": value} for key, value in (tags or {}).items()])
    stubs["iam"].add_response("get_policy", {"Policy": policy}, {"PolicyArn": policy_arn(name)})
    stub_document(stubs, name, text)


def test_the_single_form_creates_with_five_reads_and_returns_its_documented_keys(stubs):
    """Before one form: the same run made six reads (two iam:GetPolicy probes, NAME and NAME-1, instead of one list)."""
    stub_single_reads(stubs)
    stubs["iam"].add_response("create_policy", {"Policy": {"Arn": policy_arn("rdsiam-alice"), "DefaultVersionId": "v1"}},
                              {"PolicyName": "rdsiam-alice", "Path": "/", "PolicyDocument": document_text("alice")})
    stubs["iam"].add_response("attach_role_policy", {}, {"PolicyArn": policy_arn("rdsiam-alice"), "RoleName": ROLE})
    result = sync.sync_policies(single(), False, lambda _msg: None)
    assert sorted(result) == ["changed", "diff", "policies", "resource_arns"] and result["changed"] is True
    assert result["policies"] == [dict(arn=policy_arn("rdsiam-alice"), name="rdsiam-alice", version="v1",
                                       document=docs.build_documents([[json_arn("alice")]], docs.SIZE_LIMITS["managed"])[0])]
    assert result["resource_arns"] == [json_arn("alice")] and list(result["diff"]["after"]) == ["rdsiam-alice"]


def json_arn(user):
    return docs.connect_arn("aws", REGION, ACCOUNT, instance("app-pg")["DbiResourceId"], user)


def test_the_single_form_rerun_reads_six_times_and_writes_nothing(stubs):
    """Before one form: seven reads (iam:GetPolicy of NAME and of NAME-1, then the document)."""
    stub_single_reads(stubs, attached=["rdsiam-alice"], policies=[listed("rdsiam-alice")])
    stub_document(stubs, "rdsiam-alice", document_text("alice"))
    result = sync.sync_policies(single(), False, lambda _msg: None)
    assert result["changed"] is False and result["diff"]["before"] == result["diff"]["after"]


def test_the_single_form_absent_when_gone_reads_three_times(stubs):
    """Before one form: five reads (GetCallerIdentity, the attachments, two iam:GetPolicy probes, then the list of all policies)."""
    stubs["sts"].add_response("get_caller_identity", CALLER, {})
    stubs["iam"].add_response("list_attached_role_policies", {"AttachedPolicies": []}, {"RoleName": ROLE, "PathPrefix": "/"})
    stubs["iam"].add_response("list_policies", {"Policies": [listed("other")]}, {"Scope": "Local", "PathPrefix": "/", "MaxItems": 1000})
    result = sync.sync_policies(single(state="absent", grants=None), False, lambda _msg: None)
    assert result["changed"] is False and result["policies"] == [] and result["resource_arns"] == []


def test_the_single_form_words_its_problems_without_an_entry_label(stubs):
    with pytest.raises(entries.PolicyEntriesError) as error:
        sync.sync_policies(single(grants=None, path="no-slash"), False, lambda _msg: None)
    assert str(error.value) == ("path 'no-slash' is not an IAM path: start and end it with / (for example /rdsiam/); "
                                "state present needs grants: list at least one {db_users, targets} entry")


# --- numbered parts and look-alikes ---------------------------------------------------------------

def test_an_unrelated_policy_named_like_a_part_survives_a_write_and_a_delete(stubs):
    """rdsiam-app-1 is the policy of database user app-1, written by this module too: not a part of rdsiam-app."""
    theirs = document_text("app_1")
    stub_single_reads(stubs, attached=["rdsiam-app", "rdsiam-app-1"], policies=[listed("rdsiam-app"), listed("rdsiam-app-1")])
    stub_document(stubs, "rdsiam-app", document_text("old"))
    stub_described(stubs, "rdsiam-app-1", theirs)
    stubs["iam"].add_response("list_policy_versions", {"Versions": [{"VersionId": "v1", "IsDefaultVersion": True, "CreateDate": "2026-01-01"}]},
                              {"PolicyArn": policy_arn("rdsiam-app")})
    stubs["iam"].add_response("create_policy_version", {"PolicyVersion": {"VersionId": "v2"}},
                              {"PolicyArn": policy_arn("rdsiam-app"), "PolicyDocument": document_text("app"), "SetAsDefault": True})
    written = sync.sync_policies(single(name="rdsiam-app", grants=[{"db_users": ["app"], "targets": ["app-pg"]}]), False, lambda _msg: None)
    assert [policy["name"] for policy in written["policies"]] == ["rdsiam-app"] and "rdsiam-app-1" not in written["diff"]["before"]

    stubs["sts"].add_response("get_caller_identity", CALLER, {})
    stubs["iam"].add_response("list_policies", {"Policies": [listed("rdsiam-app", 0), listed("rdsiam-app-1")]},
                              {"Scope": "Local", "PathPrefix": "/", "MaxItems": 1000})
    stub_document(stubs, "rdsiam-app", document_text("app"))
    stub_described(stubs, "rdsiam-app-1", theirs)
    stubs["iam"].add_response("list_policy_versions", {"Versions": []}, {"PolicyArn": policy_arn("rdsiam-app")})
    stubs["iam"].add_response("delete_policy", {}, {"PolicyArn": policy_arn("rdsiam-app")})
    deleted = sync.sync_policies(single(name="rdsiam-app", state="absent", grants=None, attach_to=None), False, lambda _msg: None)
    assert deleted["changed"] is True and list(deleted["diff"]["before"]) == ["rdsiam-app"]  # and no call touched rdsiam-app-1


def big_grants(count=150):
    return [{"db_users": [f"fleet_split_user_{number:03d}" for number in range(count)], "targets": ["app-pg"]}]


def split_documents(count=150):
    arns = [json_arn(f"fleet_split_user_{number:03d}") for number in range(count)]
    return [docs.serialise(doc) for doc in docs.build_documents([arns], docs.SIZE_LIMITS["managed"])]


def test_split_grants_that_need_an_unrelated_name_fail_naming_it(stubs):
    stub_single_reads(stubs, policies=[listed("rdsiam-app-1", 0)])
    stub_described(stubs, "rdsiam-app-1", document_text("app_1"), attachments=0)
    with pytest.raises(entries.PolicyEntriesError) as error:
        sync.sync_policies(single(name="rdsiam-app", grants=big_grants()), False, lambda _msg: None)
    assert "but 'rdsiam-app-1' exists and is not a part of policy 'rdsiam-app' (it has no tag rdsiam:part-of=rdsiam-app)" in str(error.value)


def test_new_parts_carry_the_tag_naming_their_policy(stubs):
    parts = split_documents()
    stub_single_reads(stubs)
    for number, text in enumerate(parts, 1):
        name = f"rdsiam-app-{number}"
        stubs["iam"].add_response("create_policy", {"Policy": {"Arn": policy_arn(name), "DefaultVersionId": "v1"}},
                                  {"PolicyName": name, "Path": "/", "PolicyDocument": text,
                                   "Tags": [{"Key": "rdsiam:part-of", "Value": "rdsiam-app"}]})
        stubs["iam"].add_response("attach_role_policy", {}, {"PolicyArn": policy_arn(name), "RoleName": ROLE})
    result = sync.sync_policies(single(name="rdsiam-app", grants=big_grants()), False, lambda _msg: None)
    assert len(parts) > 1 and [policy["name"] for policy in result["policies"]] == [f"rdsiam-app-{n}" for n in range(1, len(parts) + 1)]


def test_parts_written_before_the_tag_existed_are_recognised_and_get_it(stubs):
    parts = split_documents()
    names = [f"rdsiam-app-{number}" for number in range(1, len(parts) + 1)]
    stub_single_reads(stubs, attached=names, policies=[listed(name) for name in names])
    for name, text in zip(names, parts):
        stub_described(stubs, name, text)
    for name in names:
        stubs["iam"].add_response("tag_policy", {}, {"PolicyArn": policy_arn(name), "Tags": [{"Key": "rdsiam:part-of", "Value": "rdsiam-app"}]})
    result = sync.sync_policies(single(name="rdsiam-app", grants=big_grants()), False, lambda _msg: None)
    assert result["changed"] is True and [policy["name"] for policy in result["policies"]] == names


def test_tagged_parts_rerun_without_a_write(stubs):
    parts = split_documents()
    names = [f"rdsiam-app-{number}" for number in range(1, len(parts) + 1)]
    stub_single_reads(stubs, attached=names, policies=[listed(name) for name in names])
    for name, text in zip(names, parts):
        stub_described(stubs, name, text, tags={"rdsiam:part-of": "rdsiam-app"})
    result = sync.sync_policies(single(name="rdsiam-app", grants=big_grants()), False, lambda _msg: None)
    assert result["changed"] is False
