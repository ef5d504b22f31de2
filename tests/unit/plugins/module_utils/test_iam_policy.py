"""rds-db:connect documents: validation, deterministic building, splitting to IAM's limits, normalisation."""
import json
import re

import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_policy as docs

RID = "db-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CID = "cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def arn(resource_id, user):
    return docs.connect_arn("aws", "us-east-1", "123456789012", resource_id, user)


def groups_for(user_targets):
    return [[arn(target, user) for target in targets for user in users] for targets, users in docs.group_by_target_set(user_targets)]


def test_connect_arn_uses_the_resource_id():
    assert arn(RID, "alice") == "arn:aws:rds-db:us-east-1:123456789012:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXYZ/alice"


def test_one_statement_per_target_set_whatever_the_grant_order():
    first = docs.build_documents(groups_for({"alice": {RID, CID}, "bob": {RID, CID}, "carol": {RID}}), 6144)
    second = docs.build_documents(groups_for({"carol": {RID}, "bob": {CID, RID}, "alice": {CID, RID}}), 6144)
    assert first == second and len(first) == 1
    statements = first[0]["Statement"]
    assert len(statements) == 2
    assert [len(stmt["Resource"]) for stmt in statements] in ([4, 1], [1, 4])
    assert all(stmt["Resource"] == sorted(stmt["Resource"]) for stmt in statements)
    assert [stmt["Sid"] for stmt in statements] == sorted(stmt["Sid"] for stmt in statements)


def test_sid_is_derived_from_content_and_alphanumeric():
    one, other = docs.statement([arn(RID, "alice")]), docs.statement([arn(RID, "bob")])
    assert one["Sid"] != other["Sid"]
    assert docs.statement([arn(RID, "alice")])["Sid"] == one["Sid"]
    assert re.fullmatch(r"[A-Za-z0-9]+", one["Sid"])


def test_serialised_document_has_no_whitespace_and_sorted_keys():
    text = docs.serialise(docs.build_documents([[arn(RID, "alice")]], 6144)[0])
    assert not re.search(r"\s", text)
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("limit", [6144, 10240, 2048, 5120])
def test_grants_too_large_for_one_document_are_split_and_each_part_fits(limit):
    users = ["user_%03d" % number for number in range(120)]
    wanted = {user: {RID, CID} for user in users}
    documents = docs.build_documents(groups_for(wanted), limit)
    assert len(documents) > 1
    assert all(docs.document_size(doc) <= limit for doc in documents)
    assert docs.arns_of(documents) == sorted(arn(target, user) for user in users for target in (RID, CID))
    assert docs.build_documents(groups_for(wanted), limit) == documents  # deterministic


def test_grants_that_fit_stay_in_one_document_at_the_exact_limit():
    groups = groups_for({"alice": {RID}})
    size = docs.document_size(docs.build_documents(groups, 6144)[0])
    assert len(docs.build_documents(groups, size)) == 1
    groups = groups_for({"alice": {RID}, "bob": {CID}})
    size = docs.document_size(docs.build_documents(groups, 6144)[0])
    assert len(docs.build_documents(groups, size - 1)) == 2


def test_an_arn_longer_than_a_document_is_refused():
    with pytest.raises(docs.PolicyInputError, match="does not fit"):
        docs.build_documents([[arn(RID, "u" * 300)]], 200)


def test_part_names():
    assert docs.part_names("p", 1) == ["p"]
    assert docs.part_names("p", 3) == ["p-1", "p-2", "p-3"]


@pytest.mark.parametrize("name, parts, ok", [("rdsiam-alice", 1, True), ("a" * 128, 1, True), ("a" * 127, 2, False),
                                             ("bad name", 1, False), ("", 1, False)])
def test_policy_names(name, parts, ok):
    if ok:
        docs.check_policy_name(name, parts)
    else:
        with pytest.raises(docs.PolicyInputError):
            docs.check_policy_name(name, parts)


@pytest.mark.parametrize("user", ["alice", "${aws:username}", "${aws:userid}", "${aws:PrincipalTag/userName}", "app_${aws:username}"])
def test_db_users_and_policy_variables_accepted(user):
    assert docs.db_user_problems(user, engines={"postgres", "mysql"}) == []


@pytest.mark.parametrize("user, reason", [
    ("*", "wildcard"), ("app_*", "wildcard"), ("a?c", "wildcard"), ("${aws:SourceIp}", "policy variable"),
    ("", "empty"), ("al ice", "whitespace"), ("bob\n", "whitespace"),
])
def test_db_users_refused_with_the_reason(user, reason):
    problems = docs.db_user_problems(user)
    assert problems and reason in " ".join(problems)


def test_wildcard_users_only_when_allowed():
    assert docs.db_user_problems("*", allow_wildcard_users=True) == []


def test_db_users_longer_than_the_engine_accepts_are_refused():
    assert docs.db_user_problems("u" * 63, engines={"postgres"}) == []
    assert "more than the 63 bytes a user name can have on postgres" in docs.db_user_problems("u" * 64, engines={"postgres"})[0]
    assert "more than the 32 characters a user name can have on mysql" in docs.db_user_problems("u" * 33, engines={"mysql"})[0]
    assert docs.db_user_problems("u" * 33, engines={"mariadb"}) == []
    assert docs.db_user_problems("é" * 32, engines={"postgres"})  # 64 bytes


def test_normalise_treats_equivalent_documents_as_equal():
    ours = docs.build_documents([[arn(RID, "alice"), arn(CID, "alice")]], 6144)[0]
    theirs = {"Version": "2012-10-17", "Statement": {"Sid": ours["Statement"][0]["Sid"], "Effect": "Allow",
                                                     "Action": ["rds-db:connect"], "Resource": [arn(CID, "alice"), arn(RID, "alice")]}}
    assert docs.same_document(ours, theirs)
    assert docs.same_document(docs.serialise(ours), json.dumps(theirs, indent=2))
    changed = dict(theirs, Statement=dict(theirs["Statement"], Resource=[arn(RID, "alice")]))
    assert not docs.same_document(ours, changed)


def test_only_documents_this_module_writes_count_as_its_own():
    ours = docs.build_documents([[arn(RID, "alice")]], 6144)[0]
    assert docs.is_connect_document(ours) and docs.is_connect_document(docs.serialise(ours))
    s3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    hand_written = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds-db:connect", "Resource": "*"}]}
    mixed = dict(ours, Statement=ours["Statement"] + s3["Statement"])
    for doc in (s3, hand_written, mixed, {"Version": "2012-10-17", "Statement": []}, "not json"):
        assert not docs.is_connect_document(doc)


def connect_doc(users):
    arns = [docs.connect_arn("aws", "us-east-1", "123456789012", "db-ABC", user) for user in users]
    return docs.build_documents([arns], docs.SIZE_LIMITS["managed"])


def test_part_numbers_are_the_ones_part_names_writes():
    assert [docs.part_number("app", name) for name in ("app-1", "app-12", "app-01", "app-", "app-x", "app", "apps-1")] == [
        1, 12, None, None, None, None, None]


def test_a_tagged_part_is_a_part_and_a_lookalike_is_not():
    tagged = ({docs.PART_TAG: "app"}, connect_doc(["a"])[0])
    other = ({docs.PART_TAG: "apps"}, connect_doc(["b"])[0])
    assert docs.own_parts("app", {"app-1": tagged, "app-2": other, "app-3": ({}, connect_doc(["c"])[0])}) == {"app-1"}
    s3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    assert docs.own_parts("app", {"app-1": ({docs.PART_TAG: "app"}, s3)}) == set()


def test_untagged_parts_count_only_as_a_run_too_large_for_one_policy():
    split = connect_doc([f"user_{number:03d}" for number in range(150)])
    assert len(split) >= 2
    legacy = {f"app-{number}": ({}, doc) for number, doc in enumerate(split, 1)}
    assert docs.own_parts("app", legacy) == set(legacy)
    small = {"app-1": ({}, connect_doc(["u1"])[0]), "app-2": ({}, connect_doc(["u2"])[0])}
    assert docs.own_parts("app", small) == set()  # one policy per database user app-1, app-2: not parts
    assert docs.own_parts("app", {"app-2": legacy["app-2"]}) == set()  # not a run from 1
    half_tagged = dict(legacy, **{"app-1": ({docs.PART_TAG: "app"}, split[0])})
    assert docs.own_parts("app", half_tagged) == set(legacy)  # a run interrupted while tagging
