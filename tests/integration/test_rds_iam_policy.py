"""rds_iam_policy against the sandbox's moto: resource ids, idempotence, versions, splitting, check mode, diff, errors."""
import json

import pytest

from tests.integration.support.harness import run_module, run_playbook
from tests.integration.support.policy import (PREFIX, PROXY, connect_arn, create_role, default_document, iam, local_policy_names, ok, policy,
                                              versions)
from tests.integration.support import policy as policy_support

aws, proxy, env = policy_support.aws, policy_support.proxy, policy_support.env  # module fixtures, shared with the other policy tests


# --- end to end ---------------------------------------------------------------------------------

def test_three_kinds_resolve_to_the_resource_ids_moto_reports_and_rerun_changes_nothing(env, proxy):
    role = PREFIX + "three-kinds"
    create_role(env, role)
    grants = [{"db_users": ["fleet_alice"], "targets": ["sbx-postgres", "sbx-aurora-pg", PROXY]}]
    first = ok(policy(PREFIX + "three-kinds", grants, attach_to={"roles": [role]}))
    assert first["changed"] is True and len(first["policies"]) == 1
    resource_ids = (env.target("sbx-postgres")["resource_id"], env.target("sbx-aurora-pg")["resource_id"], proxy["resource_id"])
    expected = sorted(connect_arn(env, rid, "fleet_alice") for rid in resource_ids)
    assert first["resource_arns"] == expected
    arn = first["policies"][0]["arn"]
    assert sorted(default_document(env, arn)["Statement"][0]["Resource"]) == expected
    assert [r["RoleName"] for r in iam(env).list_entities_for_policy(PolicyArn=arn)["PolicyRoles"]] == [role]
    again = ok(policy(PREFIX + "three-kinds", grants, attach_to={"roles": [role]}))
    assert again["changed"] is False and again["policies"][0]["version"] == "v1"
    assert versions(env, arn) == [("v1", True)]
    assert again["policies"] == first["policies"] and again["resource_arns"] == expected


def test_six_changes_leave_five_versions_and_the_last_as_default(env):
    name = PREFIX + "versions"
    arn = ok(policy(name, [{"db_users": ["fleet_v0"], "targets": ["sbx-postgres"]}]))["policies"][0]["arn"]
    for number in range(1, 7):
        result = ok(policy(name, [{"db_users": [f"fleet_v{number}"], "targets": ["sbx-postgres"]}]))
        assert result["changed"] is True and result["policies"][0]["version"] == f"v{number + 1}"
    assert versions(env, arn) == [("v3", False), ("v4", False), ("v5", False), ("v6", False), ("v7", True)]
    assert default_document(env, arn)["Statement"][0]["Resource"] == [connect_arn(env, env.target("sbx-postgres")["resource_id"], "fleet_v6")]


def test_an_aurora_member_is_granted_on_its_cluster_with_a_warning(env):
    result = ok(policy(PREFIX + "member", [{"db_users": ["fleet_m"], "targets": ["sbx-aurora-pg-1"]}]))
    assert result["resource_arns"] == [connect_arn(env, env.target("sbx-aurora-pg")["resource_id"], "fleet_m")]
    assert any("member of cluster 'sbx-aurora-pg'" in str(warning) for warning in result.get("warnings", []))


def big_grants(count):
    return [{"db_users": [f"fleet_split_user_{number:03d}" for number in range(count)], "targets": ["sbx-postgres", "sbx-aurora-pg"]}]


def test_grants_too_large_for_one_document_are_split_and_shrink_back(env):
    name, role = PREFIX + "split", PREFIX + "split-role"
    create_role(env, role)
    result = ok(policy(name, big_grants(150), attach_to={"roles": [role]}))
    parts = [entry["name"] for entry in result["policies"]]
    assert len(parts) > 1 and parts == [f"{name}-{number}" for number in range(1, len(parts) + 1)]
    assert local_policy_names(env, name) == sorted(parts)
    stored = []
    for entry in result["policies"]:
        document = default_document(env, entry["arn"])
        assert len(json.dumps(document, separators=(",", ":"))) <= 6144
        stored.extend(arn for statement in document["Statement"] for arn in statement["Resource"])
        assert [r["RoleName"] for r in iam(env).list_entities_for_policy(PolicyArn=entry["arn"])["PolicyRoles"]] == [role]
    assert sorted(stored) == result["resource_arns"] and len(stored) == 300
    assert ok(policy(name, big_grants(150), attach_to={"roles": [role]}))["changed"] is False
    fewer = ok(policy(name, big_grants(100), attach_to={"roles": [role]}))
    assert fewer["changed"] is True and len(fewer["policies"]) < len(parts)
    assert local_policy_names(env, name) == sorted(entry["name"] for entry in fewer["policies"])
    single = ok(policy(name, big_grants(2), attach_to={"roles": [role]}))
    assert [entry["name"] for entry in single["policies"]] == [name] and local_policy_names(env, name) == [name]
    attached = iam(env).list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [entry["PolicyName"] for entry in attached] == [name]


def test_check_mode_writes_nothing_and_diff_shows_the_change(env):
    name = PREFIX + "check"
    created = policy(name, [{"db_users": ["fleet_c1"], "targets": ["sbx-mariadb"]}], check=True, diff=True)
    assert ok(created)["changed"] is True and local_policy_names(env, name) == []
    assert created["diff"]["before"] == {} and name in created["diff"]["after"]
    arn = ok(policy(name, [{"db_users": ["fleet_c1"], "targets": ["sbx-mariadb"]}]))["policies"][0]["arn"]
    assert created["policies"][0]["arn"] == arn and created["policies"][0]["version"] is None  # as RETURN documents it
    changed = ok(policy(name, [{"db_users": ["fleet_c2"], "targets": ["sbx-mariadb"]}], check=True, diff=True))
    assert changed["changed"] is True and versions(env, arn) == [("v1", True)]
    before, after = changed["diff"]["before"][name]["document"], changed["diff"]["after"][name]["document"]
    assert "fleet_c1" in json.dumps(before) and "fleet_c2" in json.dumps(after) and "fleet_c1" not in json.dumps(after)
    removed = ok(run_module("rds_iam_policy", {"name": name, "state": "absent"}, check=True))
    assert removed["changed"] is True and local_policy_names(env, name) == [name]


def test_inline_policy_on_a_role(env):
    name, role = PREFIX + "inline", PREFIX + "inline-role"
    create_role(env, role)
    args = dict(policy_type="inline", attach_to={"roles": [role]})
    grants = [{"db_users": ["fleet_i"], "targets": ["sbx-mysql"]}]
    assert ok(policy(name, grants, **args))["changed"] is True
    stored = iam(env).get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    assert stored["Statement"][0]["Resource"] == [connect_arn(env, env.target("sbx-mysql")["resource_id"], "fleet_i")]
    assert ok(policy(name, grants, **args))["changed"] is False
    assert ok(run_module("rds_iam_policy", dict(name=name, state="absent", **args)))["changed"] is True
    assert iam(env).list_role_policies(RoleName=role)["PolicyNames"] == []


def test_inline_user_policy_that_does_not_fit_fails_before_writing(env):
    user = PREFIX + "inline-user"
    iam(env).create_user(UserName=user)
    result = policy(PREFIX + "inline-big", big_grants(30), policy_type="inline", attach_to={"users": [user]})
    assert result.get("failed") and "2048 characters" in result["msg"] and "policy_type managed" in result["msg"]
    assert iam(env).list_user_policies(UserName=user)["PolicyNames"] == []


def test_attachments_tags_and_purge(env):
    name, first, second = PREFIX + "attach", PREFIX + "attach-a", PREFIX + "attach-b"
    create_role(env, first)
    create_role(env, second)
    grants = [{"db_users": ["fleet_a"], "targets": ["sbx-postgres"]}]
    arn = ok(policy(name, grants, attach_to={"roles": [first]}, tags={"owner": "fleet"}))["policies"][0]["arn"]
    kept = ok(policy(name, grants, attach_to={"roles": [second]}, tags={"owner": "fleet"}))
    assert kept["changed"] is True
    assert sorted(r["RoleName"] for r in iam(env).list_entities_for_policy(PolicyArn=arn)["PolicyRoles"]) == [first, second]
    purged = ok(policy(name, grants, attach_to={"roles": [second]}, purge_attachments=True, tags={"owner": "ops"}))
    assert purged["changed"] is True
    assert [r["RoleName"] for r in iam(env).list_entities_for_policy(PolicyArn=arn)["PolicyRoles"]] == [second]
    assert iam(env).get_policy(PolicyArn=arn)["Policy"]["Tags"] == [{"Key": "owner", "Value": "ops"}]
    assert ok(policy(name, grants, attach_to={"roles": [second]}, purge_attachments=True, tags={"owner": "ops"}))["changed"] is False
    gone = ok(run_module("rds_iam_policy", {"name": name, "state": "absent"}))
    assert gone["changed"] is True and local_policy_names(env, name) == []
    assert ok(run_module("rds_iam_policy", {"name": name, "state": "absent"}))["changed"] is False


def test_absent_without_the_path_of_the_policy_says_so_instead_of_ok(env):
    name, grants = PREFIX + "pathed", [{"db_users": ["fleet_p"], "targets": ["sbx-postgres"]}]
    arn = ok(policy(name, grants, path="/fleet-t/"))["policies"][0]["arn"]
    assert arn.endswith(":policy/fleet-t/" + name)
    missed = run_module("rds_iam_policy", {"name": name, "state": "absent"})
    assert missed.get("failed") and "/fleet-t/" in missed["msg"] and "set path" in missed["msg"], missed
    assert local_policy_names(env, name) == [name]
    gone = ok(run_module("rds_iam_policy", {"name": name, "state": "absent", "path": "/fleet-t/"}))
    assert gone["changed"] is True and local_policy_names(env, name) == []
    assert ok(run_module("rds_iam_policy", {"name": name, "state": "absent"}))["changed"] is False


def test_a_policy_that_only_looks_like_a_numbered_part_is_never_touched(env):
    """Someone's own policy NAME-1 (not an rds-db:connect document) is neither deleted nor overwritten."""
    name, role = PREFIX + "lookalike", PREFIX + "lookalike-role"
    create_role(env, role)
    s3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    theirs = iam(env).create_policy(PolicyName=name + "-1", PolicyDocument=json.dumps(s3))["Policy"]["Arn"]
    iam(env).attach_role_policy(RoleName=role, PolicyArn=theirs)
    result = ok(policy(name, [{"db_users": ["fleet_l"], "targets": ["sbx-postgres"]}]))
    assert [entry["name"] for entry in result["policies"]] == [name] and name + "-1" not in json.dumps(result)
    assert local_policy_names(env, name) == sorted([name, name + "-1"]) and default_document(env, theirs) == s3
    assert [r["RoleName"] for r in iam(env).list_entities_for_policy(PolicyArn=theirs)["PolicyRoles"]] == [role]
    split = policy(name, big_grants(150))
    assert split.get("failed") and f"'{name}-1' exists and is not an rds-db:connect policy" in split["msg"], split.get("msg")
    assert default_document(env, theirs) == s3 and local_policy_names(env, name) == sorted([name, name + "-1"])
    assert ok(run_module("rds_iam_policy", {"name": name, "state": "absent"}))["changed"] is True
    assert local_policy_names(env, name) == [name + "-1"] and default_document(env, theirs) == s3
    assert ok(run_module("rds_iam_policy", {"name": name, "state": "absent"}))["changed"] is False


def test_the_policy_of_another_db_user_named_like_a_part_survives_a_write_and_a_delete(env):
    """NAME-1 written by this module for database user app-1 (an rds-db:connect document, attached like NAME) is not NAME's part."""
    name, role = PREFIX + "app", PREFIX + "app-role"
    create_role(env, role)
    theirs_grants = [{"db_users": ["fleet_app_1"], "targets": ["sbx-mysql"]}]
    theirs = ok(policy(name + "-1", theirs_grants, attach_to={"roles": [role]}))["policies"][0]
    written = ok(policy(name, [{"db_users": ["fleet_app"], "targets": ["sbx-postgres"]}], attach_to={"roles": [role]}))
    assert [entry["name"] for entry in written["policies"]] == [name] and name + "-1" not in json.dumps(written)
    changed = ok(policy(name, [{"db_users": ["fleet_app_v2"], "targets": ["sbx-postgres"]}], attach_to={"roles": [role]}, diff=True))
    assert changed["changed"] is True and sorted(changed["diff"]["before"]) == [name]
    assert local_policy_names(env, name) == sorted([name, name + "-1"])
    assert default_document(env, theirs["arn"]) == theirs["document"] and versions(env, theirs["arn"]) == [("v1", True)]
    split = policy(name, big_grants(150), attach_to={"roles": [role]})
    assert split.get("failed") and f"'{name}-1' exists and is not a part of policy '{name}'" in split["msg"], split.get("msg")
    assert ok(run_module("rds_iam_policy", {"name": name, "state": "absent"}))["changed"] is True
    assert local_policy_names(env, name) == [name + "-1"] and default_document(env, theirs["arn"]) == theirs["document"]
    assert [r["RoleName"] for r in iam(env).list_entities_for_policy(PolicyArn=theirs["arn"])["PolicyRoles"]] == [role]
    assert ok(run_module("rds_iam_policy", {"name": name, "state": "absent"}))["changed"] is False
    assert ok(policy(name + "-1", theirs_grants, attach_to={"roles": [role]}))["changed"] is False


def test_parts_are_tagged_and_parts_written_before_the_tag_are_recognised(env):
    name, role = PREFIX + "legacy", PREFIX + "legacy-role"
    create_role(env, role)
    parts = ok(policy(name, big_grants(150), attach_to={"roles": [role]}))["policies"]
    assert len(parts) > 1
    for entry in parts:
        assert iam(env).get_policy(PolicyArn=entry["arn"])["Policy"]["Tags"] == [{"Key": "rdsiam:part-of", "Value": name}]
        iam(env).untag_policy(PolicyArn=entry["arn"], TagKeys=["rdsiam:part-of"])  # as an earlier version wrote them
    upgraded = ok(policy(name, big_grants(150), attach_to={"roles": [role]}))
    assert upgraded["changed"] is True and upgraded["policies"] == parts
    assert all(iam(env).get_policy(PolicyArn=entry["arn"])["Policy"]["Tags"] == [{"Key": "rdsiam:part-of", "Value": name}]
               for entry in parts)
    assert ok(policy(name, big_grants(150), attach_to={"roles": [role]}))["changed"] is False
    assert ok(run_module("rds_iam_policy", {"name": name, "state": "absent"}))["changed"] is True
    assert local_policy_names(env, name) == []


def test_numeric_tag_values_are_written_as_strings_and_stay_idempotent(env):
    name, grants = PREFIX + "tags", [{"db_users": ["fleet_t"], "targets": ["sbx-postgres"]}]
    arn = ok(policy(name, grants, tags={"cost": 42, "on": True}))["policies"][0]["arn"]
    assert sorted((tag["Key"], tag["Value"]) for tag in iam(env).get_policy(PolicyArn=arn)["Policy"]["Tags"]) == [("cost", "42"), ("on", "True")]
    assert ok(policy(name, grants, tags={"cost": 42, "on": True}))["changed"] is False


def test_wildcard_target_names_every_target_of_the_region(env):
    result = ok(policy(PREFIX + "wild", [{"db_users": ["fleet_w"], "targets": ["*"]}], check=True))
    assert result["resource_arns"] == [connect_arn(env, "*", "fleet_w")]


def test_abac_variable_is_written_verbatim(env):
    result = ok(policy(PREFIX + "abac-doc", [{"db_users": ["${aws:PrincipalTag/userName}"], "targets": ["sbx-postgres"]}], check=True))
    assert result["resource_arns"] == [connect_arn(env, env.target("sbx-postgres")["resource_id"], "${aws:PrincipalTag/userName}")]


# --- bad input ----------------------------------------------------------------------------------

def test_unknown_targets_are_all_listed_and_nothing_is_written(env):
    name = PREFIX + "unknown"
    result = policy(name, [{"db_users": ["fleet_u"], "targets": ["sbx-postgres", "fleet-nope-1"]},
                           {"db_users": ["fleet_u"], "targets": ["fleet-nope-2"]}])
    assert result.get("failed")
    assert "'fleet-nope-1' (us-east-1)" in result["msg"] and "'fleet-nope-2' (us-east-1)" in result["msg"]
    assert "sbx-postgres" not in result["msg"] and local_policy_names(env, name) == []


@pytest.mark.parametrize("args, message", [
    ({"grants": [{"db_users": ["*"], "targets": ["sbx-postgres"]}]}, "wildcard"),
    ({"grants": [{"db_users": ["u" * 64], "targets": ["sbx-postgres"]}]}, "64 bytes long, more than the 63 bytes a user name can have on postgres"),
    ({"grants": [{"db_users": ["u" * 33], "targets": ["sbx-mysql"]}]}, "33 characters long, more than the 32 characters a user name can have on mysql"),
    ({"grants": [{"db_users": ["${aws:SourceIp}"], "targets": ["sbx-postgres"]}]}, "policy variable"),
    ({"grants": [{"db_users": ["a"], "targets": ["bad_target!"]}]}, "is not an instance or cluster identifier"),
    ({"grants": [{"db_users": ["a"], "targets": ["sbx-postgres"]}], "policy_type": "inline",
      "attach_to": {"roles": ["fleet-t-x", "fleet-t-y"]}}, "exactly one principal"),
    ({"grants": [{"db_users": ["a"], "targets": ["sbx-postgres"]}], "path": "no-slash"}, "is not an IAM path"),
    ({"state": "present"}, "grants"),
])
def test_bad_input_is_refused_with_the_reason(env, args, message):
    result = run_module("rds_iam_policy", dict(name=PREFIX + "bad", **args))
    assert result.get("failed") and message in result["msg"], result.get("msg")
    assert local_policy_names(env, PREFIX + "bad") == []


def test_wildcard_user_is_accepted_when_allowed(env):
    result = ok(policy(PREFIX + "anyone", [{"db_users": ["*"], "targets": ["sbx-postgres"]}], allow_wildcard_users=True, check=True))
    assert result["resource_arns"] == [connect_arn(env, env.target("sbx-postgres")["resource_id"], "*")]


def test_missing_principals_are_all_listed_before_any_write(env):
    name = PREFIX + "norole"
    result = policy(name, [{"db_users": ["fleet_n"], "targets": ["sbx-postgres"]}],
                    attach_to={"roles": [PREFIX + "ghost"], "users": [PREFIX + "nobody"]})
    assert result.get("failed") and name in result["msg"]
    assert f"role '{PREFIX}ghost'" in result["msg"] and f"user '{PREFIX}nobody'" in result["msg"] and "nothing was changed" in result["msg"]
    assert local_policy_names(env, name) == []
    checked = policy(name, [{"db_users": ["fleet_n"], "targets": ["sbx-postgres"]}], attach_to={"roles": [PREFIX + "ghost"]}, check=True)
    assert checked.get("failed") and f"role '{PREFIX}ghost'" in checked["msg"]


def test_credentials_never_reach_the_output(env):
    secret = env.aws_env()["AWS_SECRET_ACCESS_KEY"]
    result = policy(PREFIX + "leak", [{"db_users": ["fleet_l"], "targets": ["sbx-postgres"]}], check=True, diff=True, secret_key=secret,
                    access_key=env.aws_env()["AWS_ACCESS_KEY_ID"])
    assert ok(result) and secret not in json.dumps(result)


def test_no_secret_in_vvvv_output_or_diff(env, tmp_path):
    """ansible-playbook -vvvv --diff --check with the keys as module options: the secret key appears nowhere."""
    aws_env = env.aws_env()
    plays = [{"name": "policy", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"name": "write", "rdsiam.auth.rds_iam_policy": {
            "name": PREFIX + "vvvv", "grants": [{"db_users": ["fleet_v"], "targets": ["sbx-postgres"]}],
            "access_key": aws_env["AWS_ACCESS_KEY_ID"], "secret_key": aws_env["AWS_SECRET_ACCESS_KEY"]}},
    ]}]
    run = run_playbook(plays, tmp_path, check=True, diff=True, verbosity=4,
                       env={"AWS_SECRET_ACCESS_KEY": ""})
    assert run.rc == 0, run.stdout + run.stderr
    assert run.task("write")["result"]["changed"] is True and "+++ after" in run.stdout  # the diff was shown
    assert aws_env["AWS_SECRET_ACCESS_KEY"] not in run.stdout + run.stderr + json.dumps(run.results)
