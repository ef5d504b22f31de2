"""rds_iam_policy runs writing the same policy at the same moment, against the sandbox's moto.

Two onboardings in ABAC mode, or two job slices, create the same policy at once: the run whose CreatePolicy comes second
must treat the policy as existing, not fail. Pairs of real module processes race for real here (moto is a threaded server;
without the fix, about one pair in ten failed with EntityAlreadyExists), but whether a given pair interleaves is chance, so
the in-process tests below also force the interleaving, deterministically, by planning two runs before either applies.
IAM state is checked with a plain boto3 client, never through the collection.
"""
import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _aws, _iam_policy as docs
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_sync import PolicySync
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_resources import resolve_targets
from tests.integration.support.harness import run_module

PREFIX = "fleet-cc-"  # every IAM name this file creates
PAIRS = 10
ABAC_GRANTS = [{"db_users": ["${aws:PrincipalTag/userName}"], "targets": ["sbx-postgres", "sbx-aurora-pg"]}]
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                                 "Action": ["sts:AssumeRole", "sts:TagSession"]}]}


def iam(sandbox):
    return sandbox.moto().client("iam")


def unique(label):
    return f"{PREFIX}{label}-{secrets.token_hex(3)}"


def create_role(sandbox, name):
    iam(sandbox).create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))


def delete_leftovers(sandbox):
    """Delete every policy and role this file created, attached or not."""
    client = iam(sandbox)
    pages = client.get_paginator("list_policies").paginate(Scope="Local")
    for policy in [policy for page in pages for policy in page["Policies"] if policy["PolicyName"].startswith(PREFIX)]:
        for role in client.list_entities_for_policy(PolicyArn=policy["Arn"])["PolicyRoles"]:
            client.detach_role_policy(RoleName=role["RoleName"], PolicyArn=policy["Arn"])
        for version in client.list_policy_versions(PolicyArn=policy["Arn"])["Versions"]:
            if not version["IsDefaultVersion"]:
                client.delete_policy_version(PolicyArn=policy["Arn"], VersionId=version["VersionId"])
        client.delete_policy(PolicyArn=policy["Arn"])
    for role in client.get_paginator("list_roles").paginate().build_full_result()["Roles"]:
        if role["RoleName"].startswith(PREFIX):
            client.delete_role(RoleName=role["RoleName"])


@pytest.fixture(scope="module")
def aws(sandbox):
    yield sandbox
    delete_leftovers(sandbox)


@pytest.fixture
def env(aws, sandbox_env):
    return aws


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def policies_named(sandbox, name):
    """The customer managed policies called name, under any path, as IAM lists them."""
    pages = iam(sandbox).get_paginator("list_policies").paginate(Scope="Local")
    return [policy for page in pages for policy in page["Policies"] if policy["PolicyName"] == name]


def default_document(sandbox, arn):
    client = iam(sandbox)
    default = client.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return client.get_policy_version(PolicyArn=arn, VersionId=default)["PolicyVersion"]["Document"]


def version_ids(sandbox, arn):
    return sorted((version["VersionId"], version["IsDefaultVersion"]) for version in iam(sandbox).list_policy_versions(PolicyArn=arn)["Versions"])


def attached_roles(sandbox, arn):
    return sorted(role["RoleName"] for role in iam(sandbox).list_entities_for_policy(PolicyArn=arn)["PolicyRoles"])


def run_pair(args):
    """Two rds_iam_policy processes with the same arguments, released together, so their reads and writes overlap."""
    start = threading.Barrier(2)

    def one():
        start.wait()
        return run_module("rds_iam_policy", args)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(one), pool.submit(one)]
        return [run.result() for run in runs]


def test_ten_pairs_of_runs_creating_the_same_policy_at_once_all_succeed_with_one_policy_and_one_version(env):
    for pair in range(PAIRS):
        name, role = unique(f"pair{pair:02d}"), unique(f"pair{pair:02d}-role")
        create_role(env, role)
        results = run_pair(dict(name=name, grants=ABAC_GRANTS, attach_to={"roles": [role]}))
        for result in results:
            ok(result)
        assert any(result["changed"] for result in results), (name, results)
        first, second = [result["policies"] for result in results]
        assert len(first) == len(second) == 1 and first[0]["arn"] == second[0]["arn"] and first[0]["document"] == second[0]["document"]
        found = policies_named(env, name)
        assert [policy["Arn"] for policy in found] == [first[0]["arn"]], found
        assert version_ids(env, first[0]["arn"]) == [("v1", True)]
        assert docs.normalise(default_document(env, first[0]["arn"])) == docs.normalise(first[0]["document"])
        assert attached_roles(env, first[0]["arn"]) == [role]


# --- the same races, interleaved deterministically ---------------------------------------------------

def module_options(sandbox, **params):
    """rds_iam_policy's options, as AnsibleModule would hand them to the sync, pointing at the sandbox."""
    aws_env = sandbox.aws_env()
    options = dict.fromkeys(_aws.AWS_ARGUMENT_SPEC)
    options.update(validate_certs=True, credential_cache=True, region=sandbox.region, endpoint_url=aws_env["AWS_ENDPOINT_URL"],
                   access_key=aws_env["AWS_ACCESS_KEY_ID"], secret_key=aws_env["AWS_SECRET_ACCESS_KEY"])
    options.update(name=None, state="present", policy_type="managed", path="/", description=None, tags=None, grants=ABAC_GRANTS,
                   attach_to=None, purge_attachments=False, allow_wildcard_users=False, policies=None)
    options.update(params)
    return options


@pytest.fixture
def iam_errors(env):
    """Runs in this process, and the AWS error codes their IAM calls met, by operation (botocore's after-call event)."""
    errors, hooked = [], []

    def record(parsed, model, **_):
        if "Error" in parsed:
            errors.append((model.name, parsed["Error"]["Code"]))

    def planned(**params):
        """A run that has read IAM and queued its writes, as the module does before its first write."""
        options = module_options(env, **params)
        session = _aws.aws_session(options)  # cached: every run of the test shares it, and its hook
        if session not in hooked:
            session.register("after-call.iam", record)
            hooked.append(session)
        run = PolicySync(options, False, lambda _msg: None)
        wanted = []
        if options["state"] == "present":
            targets = sorted({target for grant in options["grants"] for target in grant["targets"]})
            wanted = run.documents(resolve_targets(options, targets, env.region)[0])
        run.plan(wanted)
        return run

    _aws.clear_session_cache()
    yield planned, errors
    _aws.clear_session_cache()


def test_a_run_that_planned_before_the_other_created_the_policy_adopts_it(env, iam_errors):
    planned, errors = iam_errors
    name, role = unique("adopt"), unique("adopt-role")
    create_role(env, role)
    first, second = planned(name=name, attach_to={"roles": [role]}), planned(name=name, attach_to={"roles": [role]})
    first.apply()
    second.apply()
    assert ("CreatePolicy", "EntityAlreadyExists") in errors  # the race was met, not avoided
    assert (first.result()["changed"], second.result()["changed"]) == (True, False)
    assert first.result()["policies"] == second.result()["policies"]
    arn = first.result()["policies"][0]["arn"]
    assert [policy["Arn"] for policy in policies_named(env, name)] == [arn]
    assert version_ids(env, arn) == [("v1", True)] and attached_roles(env, arn) == [role]


def test_a_run_that_planned_before_the_other_created_the_policy_writes_its_own_document_as_a_new_version(env, iam_errors):
    planned, errors = iam_errors
    name = unique("adopt-other")
    theirs = [{"db_users": ["fleet_cc_theirs"], "targets": ["sbx-postgres"]}]
    first, second = planned(name=name, grants=theirs), planned(name=name)
    first.apply()
    second.apply()
    assert ("CreatePolicy", "EntityAlreadyExists") in errors
    assert first.result()["changed"] is True and second.result()["changed"] is True
    arn = second.result()["policies"][0]["arn"]
    assert version_ids(env, arn) == [("v1", False), ("v2", True)] and second.result()["policies"][0]["version"] == "v2"
    assert docs.normalise(default_document(env, arn)) == docs.normalise(second.result()["policies"][0]["document"])


def test_two_runs_updating_a_full_policy_at_once_write_one_version(env, iam_errors):
    """Five versions, two runs with the same new grants read it together: one prunes and writes, the other keeps that."""
    planned, errors = iam_errors
    name = unique("versions")
    for number in range(5):
        ok(run_module("rds_iam_policy", dict(name=name, grants=[{"db_users": [f"fleet_cc_v{number}"], "targets": ["sbx-postgres"]}])))
    arn = policies_named(env, name)[0]["Arn"]
    assert len(version_ids(env, arn)) == 5
    first, second = planned(name=name), planned(name=name)
    first.apply()
    second.apply()
    assert (first.result()["changed"], second.result()["changed"]) == (True, False)
    assert version_ids(env, arn) == [("v2", False), ("v3", False), ("v4", False), ("v5", False), ("v6", True)]
    assert first.result()["policies"] == second.result()["policies"]
    assert errors == []


def test_two_runs_detaching_the_same_principal_at_once_both_succeed(env, iam_errors):
    planned, errors = iam_errors
    name, keep, old = unique("detach"), unique("detach-keep"), unique("detach-old")
    create_role(env, keep)
    create_role(env, old)
    ok(run_module("rds_iam_policy", dict(name=name, grants=ABAC_GRANTS, attach_to={"roles": [keep, old]})))
    first, second = (planned(name=name, attach_to={"roles": [keep]}, purge_attachments=True),
                     planned(name=name, attach_to={"roles": [keep]}, purge_attachments=True))
    first.apply()
    second.apply()
    assert ("DetachRolePolicy", "NoSuchEntity") in errors
    assert (first.result()["changed"], second.result()["changed"]) == (True, False)
    assert attached_roles(env, policies_named(env, name)[0]["Arn"]) == [keep]


def test_two_runs_deleting_the_same_policy_at_once_both_succeed(env, iam_errors):
    planned, errors = iam_errors
    name, role = unique("delete"), unique("delete-role")
    create_role(env, role)
    ok(run_module("rds_iam_policy", dict(name=name, grants=[{"db_users": ["fleet_cc_d1"], "targets": ["sbx-postgres"]}],
                                         attach_to={"roles": [role]})))
    ok(run_module("rds_iam_policy", dict(name=name, grants=[{"db_users": ["fleet_cc_d2"], "targets": ["sbx-postgres"]}])))
    first, second = planned(name=name, state="absent", grants=None), planned(name=name, state="absent", grants=None)
    first.apply()
    second.apply()
    assert ("DeletePolicy", "NoSuchEntity") in errors
    assert (first.result()["changed"], second.result()["changed"]) == (True, False)
    assert policies_named(env, name) == []
