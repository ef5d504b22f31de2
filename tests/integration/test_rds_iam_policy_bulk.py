"""rds_iam_policy's bulk form (`policies`) against the sandbox's moto: many policies in one run, AWS reads shared by all."""
import collections

import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _aws
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_entries import PER_POLICY_OPTIONS
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_sync import sync_policies
from tests.integration.support.harness import run_module
from tests.integration.support import policy as policy_support
from tests.integration.support.policy import PREFIX, connect_arn, create_role, default_document, iam, local_policy_names, ok

aws, proxy, env = policy_support.aws, policy_support.proxy, policy_support.env  # fixtures shared with the module tests (and their cleanup)

BULK = PREFIX + "bulk-"
TARGETS = ["sbx-postgres", "sbx-aurora-pg"]
PER_POLICY_WRITES = ("CreatePolicy", "AttachRolePolicy")


def entries(prefix, count, **options):
    return [dict(name=f"{prefix}{number:02d}", grants=[{"db_users": [f"fleet_bulk_{number:02d}"], "targets": TARGETS}], **options)
            for number in range(count)]


def bulk(policies, check=False, diff=False, **args):
    return run_module("rds_iam_policy", dict(policies=policies, **args), check=check, diff=diff)


def attached_names(sandbox, role):
    pages = iam(sandbox).get_paginator("list_attached_role_policies").paginate(RoleName=role)
    return sorted(policy["PolicyName"] for page in pages for policy in page["AttachedPolicies"])


def counted_bulk(sandbox, policies, role, check=False):
    """Run the bulk form in this process and count its AWS operations with botocore's before-call event."""
    return counted(sandbox, check, attach_to={"roles": [role]},
                   policies=[dict(dict.fromkeys(PER_POLICY_OPTIONS), **entry) for entry in policies])


def counted(sandbox, check=False, **params):
    """Run rds_iam_policy's sync (either form) in this process: its result and its AWS operations, counted."""
    env = sandbox.aws_env()
    options = dict.fromkeys(_aws.AWS_ARGUMENT_SPEC)
    options.update(validate_certs=True, region=sandbox.region, endpoint_url=env["AWS_ENDPOINT_URL"],
                   access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"])
    options.update(name=None, state="present", policy_type="managed", path="/", description=None, tags=None, grants=None,
                   attach_to=None, purge_attachments=False, allow_wildcard_users=False, policies=None)
    options.update(params)
    _aws.clear_session_cache()
    calls = collections.Counter()
    _aws.aws_session(options).register("before-call", lambda model, **_: calls.update([model.name]))
    result = sync_policies(options, check, lambda _msg: None)
    return result, dict(calls)


def test_twenty_policies_in_one_call_check_create_rerun_and_remove_one(env):
    role, prefix = PREFIX + "bulk-role", BULK + "u"
    create_role(env, role)
    policies = entries(prefix, 20)
    checked = ok(bulk(policies, check=True, diff=True, attach_to={"roles": [role]}))
    assert checked["changed"] is True and local_policy_names(env, prefix) == [] and attached_names(env, role) == []
    assert sorted(checked["diff"]["after"]) == [entry["name"] for entry in policies] and checked["diff"]["before"] == {}

    created = ok(bulk(policies, diff=True, attach_to={"roles": [role]}))
    assert created["changed"] is True and [item["name"] for item in created["policies"]] == [entry["name"] for entry in policies]
    assert all(item["changed"] for item in created["policies"])
    assert local_policy_names(env, prefix) == attached_names(env, role) == sorted(entry["name"] for entry in policies)
    resource_ids = [env.target("sbx-postgres")["resource_id"], env.target("sbx-aurora-pg")["resource_id"]]
    sixth = created["policies"][6]
    assert sixth["resource_arns"] == sorted(connect_arn(env, rid, "fleet_bulk_06") for rid in resource_ids)
    assert sorted(default_document(env, sixth["policies"][0]["arn"])["Statement"][0]["Resource"]) == sixth["resource_arns"]
    assert sorted(created["diff"]["after"]) == sorted(entry["name"] for entry in policies)

    again = ok(bulk(policies, diff=True, attach_to={"roles": [role]}))
    assert again["changed"] is False and not any(item["changed"] for item in again["policies"])
    assert again["diff"]["before"] == again["diff"]["after"]
    assert [item["policies"] for item in again["policies"]] == [item["policies"] for item in created["policies"]]

    policies[3] = {"name": policies[3]["name"], "state": "absent"}
    removed = ok(bulk(policies, attach_to={"roles": [role]}))
    assert removed["changed"] is True and [item["changed"] for item in removed["policies"]] == [number == 3 for number in range(20)]
    assert removed["policies"][3]["policies"] == []
    left = sorted(entry["name"] for number, entry in enumerate(policies) if number != 3)
    assert local_policy_names(env, prefix) == attached_names(env, role) == left
    assert ok(bulk(policies, attach_to={"roles": [role]}))["changed"] is False


def test_top_level_options_are_defaults_an_entry_can_override(env):
    role, user = PREFIX + "bulk-default-role", PREFIX + "bulk-user"
    create_role(env, role)
    iam(env).create_user(UserName=user)
    policies = [{"name": BULK + "d-managed"},
                {"name": BULK + "d-inline", "policy_type": "inline", "attach_to": {"users": [user]}}]
    result = ok(bulk(policies, attach_to={"roles": [role]}, path="/fleet-bulk/",
                     grants=[{"db_users": ["fleet_bulk_d"], "targets": ["sbx-mariadb"]}]))
    assert result["policies"][0]["policies"][0]["arn"].endswith(":policy/fleet-bulk/" + BULK + "d-managed")
    assert attached_names(env, role) == [BULK + "d-managed"]
    stored = iam(env).get_user_policy(UserName=user, PolicyName=BULK + "d-inline")["PolicyDocument"]
    assert stored["Statement"][0]["Resource"] == [connect_arn(env, env.target("sbx-mariadb")["resource_id"], "fleet_bulk_d")]


def test_bad_entries_fail_before_any_write_naming_each(env):
    role = PREFIX + "bulk-bad-role"
    create_role(env, role)
    policies = entries(BULK + "bad", 6)
    policies[2]["grants"] = [{"db_users": ["fleet_bulk_02"], "targets": ["sbx-postgres", "fleet-bulk-nope"]}]
    policies[4]["grants"] = [{"db_users": ["*"], "targets": ["sbx-postgres"]}]
    result = bulk(policies, attach_to={"roles": [role]})
    assert result.get("failed") and "no policy was written, because of 2 problems" in result["msg"], result.get("msg")
    assert f"policy '{BULK}bad02' (policies[2]): grant targets not found: 'fleet-bulk-nope' (us-east-1)" in result["msg"]
    assert f"policy '{BULK}bad04' (policies[4]): db user '*' is a wildcard" in result["msg"]
    assert f"'{BULK}bad00'" not in result["msg"]
    assert local_policy_names(env, BULK + "bad") == [] and attached_names(env, role) == []

    ghost = bulk(entries(BULK + "bad", 3)[:2] + [dict(entries(BULK + "bad", 3)[2], attach_to={"roles": [PREFIX + "bulk-ghost"]})],
                 attach_to={"roles": [role]})
    assert ghost.get("failed") and f"policy '{BULK}bad02' (policies[2]): role '{PREFIX}bulk-ghost' do not exist" in ghost["msg"]
    assert local_policy_names(env, BULK + "bad") == []


@pytest.mark.parametrize("policies, message", [
    ([{"name": BULK + "x", "grants": [{"db_users": ["a"], "targets": ["sbx-postgres"]}]}] * 2, "used by an earlier entry"),
    ([{"name": BULK + "x", "grants": [{"db_users": ["a"], "targets": ["sbx-postgres"]}]},
      {"name": BULK + "x-1", "grants": [{"db_users": ["b"], "targets": ["sbx-postgres"]}]}], "calls its numbered part"),
    ([{"name": BULK + "x"}], "state present needs grants"),
])
def test_entries_that_cannot_be_told_apart_are_refused(env, policies, message):
    result = bulk(policies)
    assert result.get("failed") and message in result["msg"], result.get("msg")
    assert local_policy_names(env, BULK + "x") == []


def test_name_and_policies_are_mutually_exclusive(env):
    result = run_module("rds_iam_policy", {"name": BULK + "both", "policies": [{"name": BULK + "other"}]})
    assert result.get("failed") and "mutually exclusive" in result["msg"]


def test_aws_reads_do_not_grow_with_the_number_of_policies(env):
    role = PREFIX + "bulk-count-role"
    create_role(env, role)
    counts = {}
    for size in (1, 20):
        policies = entries(f"{BULK}c{size}-", size)
        checked, check_calls = counted_bulk(env, policies, role, check=True)
        first, first_calls = counted_bulk(env, policies, role)
        rerun, rerun_calls = counted_bulk(env, policies, role)
        assert checked["changed"] and first["changed"] and not rerun["changed"]
        counts[size] = (check_calls, first_calls, rerun_calls)
        for operation in PER_POLICY_WRITES:
            assert first_calls[operation] == size
        assert rerun_calls["GetPolicyVersion"] == size
    shared = {"DescribeDBInstances": 1, "DescribeDBClusters": 1, "GetCallerIdentity": 1, "ListAttachedRolePolicies": 1, "ListPolicies": 1}
    for size, (check_calls, first_calls, rerun_calls) in counts.items():
        assert check_calls == shared, (size, check_calls)
        assert first_calls == dict(shared, CreatePolicy=size, AttachRolePolicy=size), (size, first_calls)
        assert rerun_calls == dict(shared, GetPolicyVersion=size), (size, rerun_calls)


def test_bulk_results_match_the_single_form(env):
    role = PREFIX + "bulk-same-role"
    create_role(env, role)
    grants = [{"db_users": ["fleet_bulk_same"], "targets": TARGETS}]
    args = {"name": BULK + "same", "grants": grants, "attach_to": {"roles": [role]}}
    single = ok(run_module("rds_iam_policy", args, check=True, diff=True))
    both = ok(bulk([{"name": BULK + "same", "grants": grants}], check=True, diff=True, attach_to={"roles": [role]}))
    item = both["policies"][0]
    keys = ("changed", "policies", "resource_arns")
    assert item["name"] == BULK + "same" and {key: item[key] for key in keys} == {key: single[key] for key in keys}
    assert sorted(both["diff"]["after"]) == sorted(single["diff"]["after"]) == [BULK + "same"]


# The single form's AWS operations before it became a one-entry call (counted on that code with the same runs): two
# iam:GetPolicy probes (NAME, NAME-1) where it now lists the policies under its path once, a second GetCallerIdentity for a
# '*' target, and a list of every policy (besides the probes) for an absent policy.
SINGLE_BEFORE = {
    "check-create": dict(DescribeDBInstances=1, DescribeDBClusters=1, GetCallerIdentity=1, ListAttachedRolePolicies=1, GetPolicy=2),
    "create": dict(DescribeDBInstances=1, DescribeDBClusters=1, GetCallerIdentity=1, ListAttachedRolePolicies=1, GetPolicy=2,
                   CreatePolicy=1, AttachRolePolicy=1),
    "rerun": dict(DescribeDBInstances=1, DescribeDBClusters=1, GetCallerIdentity=1, ListAttachedRolePolicies=1, GetPolicy=2,
                  GetPolicyVersion=1),
    "tags": dict(DescribeDBInstances=1, DescribeDBClusters=1, GetCallerIdentity=1, ListAttachedRolePolicies=1, GetPolicy=2,
                 GetPolicyVersion=1, TagPolicy=1),
    "absent": dict(GetCallerIdentity=1, ListAttachedRolePolicies=1, GetPolicy=2, GetPolicyVersion=1, DetachRolePolicy=1,
                   ListPolicyVersions=1, DeletePolicy=1),
    "absent-again": dict(GetCallerIdentity=1, ListAttachedRolePolicies=1, GetPolicy=2, ListPolicies=1),
    "wildcard": dict(GetCallerIdentity=2, ListAttachedRolePolicies=1, GetPolicy=2),
}


def test_the_single_form_costs_no_more_aws_calls_than_before_and_reads_as_one_entry(env):
    role, name = PREFIX + "bulk-single-role", BULK + "single"
    create_role(env, role)
    grants = [{"db_users": ["fleet_bulk_single"], "targets": TARGETS}]
    runs = [("check-create", True, {}), ("create", False, {}), ("rerun", False, {}), ("tags", False, {"tags": {"team": "a"}}),
            ("absent", False, {"state": "absent", "grants": None}), ("absent-again", False, {"state": "absent", "grants": None}),
            ("wildcard", True, {"grants": [{"db_users": ["fleet_bulk_single"], "targets": ["*"]}]})]
    for label, check, args in runs:
        result, calls = counted(env, check, **dict(dict(name=name, grants=grants, attach_to={"roles": [role]}), **args))
        assert sorted(result) == ["changed", "diff", "policies", "resource_arns"], label
        assert calls.get("GetCallerIdentity") == 1 and calls.get("ListPolicies") == 1, (label, calls)
        if "tags" in args:  # tags need iam:GetPolicy, so this run costs what it did
            assert calls == dict(SINGLE_BEFORE[label], GetPolicy=1, ListPolicies=1), (label, calls)
        else:
            assert "GetPolicy" not in calls and sum(calls.values()) < sum(SINGLE_BEFORE[label].values()), (label, calls)
        if check:  # one way of reading, whatever the form
            entry = dict(dict.fromkeys(PER_POLICY_OPTIONS), name=name, **args)
            _bulk_result, bulk_calls = counted(env, True, attach_to={"roles": [role]}, grants=grants, policies=[entry])
            assert calls == bulk_calls, (label, calls, bulk_calls)
