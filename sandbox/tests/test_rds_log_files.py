"""The IAM auth error log served the RDS way (sandbox/aws/shims_rds_logs.py): describe_db_log_files lists
`iam-db-auth-error.log` per instance and download_db_log_file_portion pages its lines, rendered from the
verifier's refusals of that instance (and of its cluster for an Aurora member), never with a token.
Gap tests fail once moto closes the gap itself (the signal to delete the shim). Names start with rdslog."""
import json
import subprocess
import sys
import textwrap

import pytest
from botocore.exceptions import ClientError

from sandbox.aws import shims_rds_logs
from sandbox.iam_login import (allow_connect, connect_arn, create_db_user, delete_iam_user, drop_db_user, enable_iam_auth,
                               iam_user_with_policy, login_error, mint_token, verify_over_http)

LOG = shims_rds_logs.LOG_FILE_NAME
_PRELUDE = """
rds = boto3.client("rds", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
rds.create_db_instance(DBInstanceIdentifier="a", DBInstanceClass="db.t4g.micro", Engine="postgres", EngineVersion="15.7",
                       MasterUsername="u", MasterUserPassword="p4ssword!", AllocatedStorage=20)
"""


def _unpatched(snippet):
    """Run snippet under mock_aws in a fresh interpreter without the shims; it prints JSON."""
    body = textwrap.dedent(_PRELUDE) + textwrap.dedent(snippet)
    program = "import json, boto3\nfrom moto import mock_aws\nwith mock_aws():\n" + textwrap.indent(body, "    ")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


# --- moto's gaps ---------------------------------------------------------------------------------

def test_moto_still_lacks_download_db_log_file_portion():
    outcome = _unpatched("""
        try:
            rds.download_db_log_file_portion(DBInstanceIdentifier="a", LogFileName="error/postgresql.log", Marker="0")
            print(json.dumps("implemented"))
        except NotImplementedError:
            print(json.dumps("not implemented"))
    """)
    assert outcome == "not implemented", "moto now implements download_db_log_file_portion: check _shim_download_db_log_file_portion"


def test_moto_still_lists_no_iam_auth_error_log_and_fails_on_filters():
    outcome = _unpatched("""
        names = [f["LogFileName"] for f in rds.describe_db_log_files(DBInstanceIdentifier="a")["DescribeDBLogFiles"]]
        try:
            rds.describe_db_log_files(DBInstanceIdentifier="a", FilenameContains="error")
            filtered = "accepted"
        except TypeError:
            filtered = "fails"
        print(json.dumps([names, filtered]))
    """)
    names, filtered = outcome
    assert not any("iam-db-auth-error" in name for name in names), "moto now lists the IAM auth error log: check the shim"
    assert filtered == "fails", "moto now filters describe_db_log_files: check _shim_describe_db_log_files"


# --- the rendering and paging, without a sandbox --------------------------------------------------

def _record(user, reason, principal=None, time="2026-12-07T16:51:33.123+00:00", target="t"):
    entry = {"time": time, "target": target, "user": user, "reason": reason}
    if principal:
        entry["principal"] = principal
    return entry


@pytest.mark.parametrize("reason, principal, expected", [
    ("malformed token: missing X-Amz-Signature", None, "Failed to authenticate the connection request for user 'u' because the "
     "provided token is malformed or otherwise invalid. (Status Code: 400, Error Code: InvalidToken)"),
    ("token expired at 2026-12-07T16:00:00Z (signed 2026-12-07T15:45:00Z, valid 900 s)", "arn:aws:iam::1:user/p",
     "because the token age is longer than 15 minutes. (Status Code: 400, Error Code: ExpiredToken)"),
    ("arn:aws:iam::1:user/p: no statement allows rds-db:connect", "arn:aws:iam::1:user/p",
     "Failed to authorize the connection request for user 'u' because the IAM policy assumed by the caller "
     "'arn:aws:iam::1:user/p' is not authorized to perform `rds-db:connect` on the DB instance. (Status Code: 403, Error Code: NotAuthorized)"),
    ("IAM database authentication is disabled on t", "arn:aws:iam::1:user/p", "(Status Code: 403, Error Code: NotAuthorized)"),
    ("signature mismatch for access key AKIA1", "arn:aws:iam::1:user/p", "(Status Code: 400, Error Code: InvalidToken)"),
])
def test_lines_follow_the_rds_format_and_keep_the_verifiers_reason(reason, principal, expected):
    line = shims_rds_logs.render_line(_record("u", reason, principal))
    assert line.startswith("2026-12-07T16:51:33,123 [ERROR] ")
    assert expected in line
    assert line.endswith(f" Reason: {reason}")


def test_aurora_members_hold_their_clusters_refusals_and_only_those():
    records = [_record("a", "r", target="c1"), _record("b", "r", target="c1-a"), _record("c", "r", target="other")]
    assert [r["user"] for r in shims_rds_logs.records_of_instance(records, "c1-a", "c1")] == ["a", "b"]
    assert [r["user"] for r in shims_rds_logs.records_of_instance(records, "other")] == ["c"]


def test_portions_page_from_marker_zero_and_tail_without_a_marker():
    lines = [f"line {n}" for n in range(7)]
    first = shims_rds_logs.log_portion(lines, "0", 3)
    assert first["LogFileData"] == "line 0\nline 1\nline 2\n" and first["AdditionalDataPending"] is True
    second = shims_rds_logs.log_portion(lines, first["Marker"], 3)
    third = shims_rds_logs.log_portion(lines, second["Marker"], 3)
    assert third["LogFileData"] == "line 6\n" and third["AdditionalDataPending"] is False
    assert shims_rds_logs.log_portion(lines, None, 2) == {"LogFileData": "line 5\nline 6\n", "Marker": "L7", "AdditionalDataPending": False}
    assert shims_rds_logs.log_portion([], "0")["LogFileData"] == ""


# --- against the running sandbox ------------------------------------------------------------------

PG_USER, MARIA_USER, AURORA_USER = "rdslog_pg", "rdslog_maria", "rdslog_aurora"
PG_REFUSALS = 7


@pytest.fixture(scope="module")
def refused(sandbox):
    """Refusals of one IAM user (allowed only as someone else) at three targets; yields its ARN and the tokens used."""
    targets = ("sbx-postgres", "sbx-mariadb", "sbx-aurora-pg")
    restores = [enable_iam_auth(sandbox, identifier) for identifier in targets]
    creds = iam_user_with_policy(sandbox, "rdslog-bob", [allow_connect(connect_arn(sandbox, "sbx-postgres", "someone_else"))])
    create_db_user(sandbox, "sbx-postgres", PG_USER)
    tokens = []
    try:
        token = mint_token(creds, sandbox.target("sbx-postgres"), PG_USER)
        tokens.append(token)
        login_error(sandbox, "sbx-postgres", PG_USER, token)  # a real login through PAM to the verifier
        for identifier, user, count in (("sbx-postgres", PG_USER, PG_REFUSALS - 1), ("sbx-mariadb", MARIA_USER, 2),
                                        ("sbx-aurora-pg", AURORA_USER, 2)):
            for _ in range(count):
                token = mint_token(creds, sandbox.target(identifier), user)
                tokens.append(token)
                status, answer = verify_over_http(sandbox, identifier, user, token)
                assert status == 403, answer
        yield {"arn": creds["arn"], "tokens": tokens}
    finally:
        drop_db_user(sandbox, "sbx-postgres", PG_USER)
        delete_iam_user(sandbox, "rdslog-bob")
        for restore in restores:
            restore()


def _rds(sandbox):
    return sandbox.moto().client("rds")


def _files(sandbox, identifier, **filters):
    return {entry["LogFileName"]: entry for entry in _rds(sandbox).describe_db_log_files(DBInstanceIdentifier=identifier, **filters)["DescribeDBLogFiles"]}


def _all_lines(sandbox, identifier):
    portion = _rds(sandbox).download_db_log_file_portion(DBInstanceIdentifier=identifier, LogFileName=LOG, Marker="0")
    assert portion["AdditionalDataPending"] is False
    return portion["LogFileData"].splitlines()


def test_each_instance_lists_its_log_with_size_and_last_written(sandbox, refused):
    for identifier in ("sbx-postgres", "sbx-mariadb", "sbx-aurora-pg-1", "sbx-mysql"):
        entry = _files(sandbox, identifier)[LOG]
        data = "".join(line + "\n" for line in _all_lines(sandbox, identifier))
        assert entry["Size"] == len(data.encode())
    entry = _files(sandbox, "sbx-postgres")[LOG]
    last = _all_lines(sandbox, "sbx-postgres")[-1]
    assert entry["Size"] > 0 and last.startswith(_rds_stamp(entry["LastWritten"]))


def _rds_stamp(epoch_ms):
    import datetime

    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f",{epoch_ms % 1000:03d}"


def test_lines_name_user_and_principal_for_their_target_only_and_never_a_token(sandbox, refused):
    logs = {identifier: _all_lines(sandbox, identifier) for identifier in ("sbx-postgres", "sbx-mariadb", "sbx-aurora-pg-1", "sbx-mysql")}
    mine = {identifier: [line for line in lines if refused["arn"] in line] for identifier, lines in logs.items()}
    assert len(mine["sbx-postgres"]) == PG_REFUSALS and len(mine["sbx-mariadb"]) == 2 and len(mine["sbx-aurora-pg-1"]) == 2
    assert mine["sbx-mysql"] == []
    for identifier, user in (("sbx-postgres", PG_USER), ("sbx-mariadb", MARIA_USER), ("sbx-aurora-pg-1", AURORA_USER)):
        for line in mine[identifier]:
            assert f"[ERROR] Failed to authorize the connection request for user '{user}' because the IAM policy assumed by the caller " \
                   f"'{refused['arn']}' is not authorized to perform `rds-db:connect` on the DB instance. " \
                   "(Status Code: 403, Error Code: NotAuthorized) Reason: " in line
    everything = "\n".join(line for lines in logs.values() for line in lines)
    for other in (PG_USER, MARIA_USER, AURORA_USER):
        assert sum(f"user '{other}'" in line for line in everything.splitlines()) == {PG_USER: PG_REFUSALS}.get(other, 2)
    for token in refused["tokens"]:
        assert token not in everything and token.rsplit("X-Amz-Signature=", 1)[1] not in everything


def test_number_of_lines_pages_through_the_log_with_markers(sandbox, refused):
    rds, expected = _rds(sandbox), _all_lines(sandbox, "sbx-postgres")
    assert len(expected) >= PG_REFUSALS
    pages, marker, pending = [], "0", True
    while pending:
        portion = rds.download_db_log_file_portion(DBInstanceIdentifier="sbx-postgres", LogFileName=LOG, Marker=marker, NumberOfLines=2)
        pages.append(portion["LogFileData"].splitlines())
        marker, pending = portion["Marker"], portion["AdditionalDataPending"]
        assert len(pages) <= len(expected), "paging does not end"
    assert len(pages) >= 4 and all(len(page) == 2 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 2
    assert [line for page in pages for line in page] == expected
    tail = rds.download_db_log_file_portion(DBInstanceIdentifier="sbx-postgres", LogFileName=LOG, NumberOfLines=3)
    assert tail["LogFileData"].splitlines() == expected[-3:] and tail["AdditionalDataPending"] is False


def test_filters_select_by_name_last_written_and_size(sandbox, refused):
    entry = _files(sandbox, "sbx-postgres")[LOG]
    assert list(_files(sandbox, "sbx-postgres", FilenameContains="iam-db-auth")) == [LOG]
    assert _files(sandbox, "sbx-postgres", FilenameContains="no-such-log") == {}
    assert LOG in _files(sandbox, "sbx-postgres", FileLastWritten=entry["LastWritten"])
    assert LOG not in _files(sandbox, "sbx-postgres", FileLastWritten=entry["LastWritten"] + 1)
    assert LOG in _files(sandbox, "sbx-postgres", FileSize=entry["Size"])
    assert LOG not in _files(sandbox, "sbx-postgres", FileSize=entry["Size"] + 1)


@pytest.mark.parametrize("identifier", ["rdslog-no-such-db", "sbx-aurora-pg"])  # a cluster is not a DB instance
def test_unknown_instances_are_db_instance_not_found(sandbox, identifier):
    rds = _rds(sandbox)
    for call in (lambda: rds.describe_db_log_files(DBInstanceIdentifier=identifier),
                 lambda: rds.download_db_log_file_portion(DBInstanceIdentifier=identifier, LogFileName=LOG, Marker="0")):
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == "DBInstanceNotFound"
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_unknown_log_file_and_bad_marker_are_refused(sandbox):
    rds = _rds(sandbox)
    with pytest.raises(ClientError) as error:
        rds.download_db_log_file_portion(DBInstanceIdentifier="sbx-postgres", LogFileName="error/no-such.log")
    assert error.value.response["Error"]["Code"] == "DBLogFileNotFoundFault"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as error:
        rds.download_db_log_file_portion(DBInstanceIdentifier="sbx-postgres", LogFileName=LOG, Marker="garbage")
    assert error.value.response["Error"]["Code"] == "InvalidParameterValue"
