"""moto shims that serve the verifier's refusals as RDS's IAM database authentication error log.

RDS keeps an `iam-db-auth-error` log file on every DB instance with IAM database authentication
and serves it through DescribeDBLogFiles / DownloadDBLogFilePortion; the login doctor reads a
failed login's lines from there. moto 5.2 lists one made-up engine log per instance (and fails on
any filter: FilenameContains, FileLastWritten, FileSize) and does not implement
DownloadDBLogFilePortion at all. The sandbox's verifier appends each refusal as one JSON record to
$RDSIAM_SANDBOX_STATE_DIR/iam-db-auth-error.log (sandbox/aws/credentials_api.py, log_refusal);
these shims render the records of one instance in RDS's line format. Log files are per instance:
a refusal at an Aurora cluster's endpoint lands in the log of each of its member instances.
Each shim has a test in sandbox/tests/test_rds_log_files.py that fails when moto closes the gap.
"""
import datetime
import json
import os

# The name RDS gives the file (the log type is `iam-db-auth-error`, as in EnableCloudwatchLogsExports).
LOG_FILE_NAME = "iam-db-auth-error.log"
RECORDS_FILE = "iam-db-auth-error.log"  # the verifier's JSON records in the sandbox state directory
MAX_LINES = 10000  # DownloadDBLogFilePortion without Marker and NumberOfLines: at most this many lines
MAX_BYTES = 1024 * 1024  # a portion is cut at 1 MB
_IAM_ENGINES = ("postgres", "mysql", "mariadb", "aurora-postgresql", "aurora-mysql", "aurora")

# (prefix of the verifier's reason, RDS's wording after "... for user 'U' ", status, error code)
_INVALID = ("Failed to authenticate", "because the provided token is malformed or otherwise invalid.", 400, "InvalidToken")
_EXPIRED = ("Failed to authenticate", "because the token age is longer than 15 minutes.", 400, "ExpiredToken")
_EXPIRED_PREFIXES = ("token expired", "temporary credentials")
_IAM_OFF = "IAM database authentication is disabled"


def _client_error(code, message):
    from moto.rds.exceptions import RDSClientError

    return RDSClientError(code, message)


# --- the records and their lines ---------------------------------------------------------------

def read_records(state_dir):
    """The verifier's refusal records, oldest first; [] when nothing was refused (or no state directory)."""
    if not state_dir:
        return []
    try:
        with open(os.path.join(state_dir, RECORDS_FILE), encoding="utf-8") as handle:
            lines = handle.readlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being appended right now
        if isinstance(record, dict):
            records.append(record)
    return records


def records_of_instance(records, instance_identifier, cluster_identifier=None):
    """The records an instance's log holds: refusals at the instance, and at its cluster for an Aurora member."""
    names = {instance_identifier, cluster_identifier} - {None}
    return [record for record in records if record.get("target") in names]


def _rds_time(iso_time):
    """'2026-12-07T16:51:33.123+00:00' -> '2026-12-07T16:51:33,123', the timestamp RDS writes."""
    moment = datetime.datetime.fromisoformat(iso_time).astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f",{moment.microsecond // 1000:03d}"


def _epoch_ms(iso_time):
    return int(datetime.datetime.fromisoformat(iso_time).timestamp() * 1000)


def render_line(record):
    """One record as an RDS iam-db-auth-error line; the verifier's own reason follows, since RDS's wording is coarser."""
    user, reason, principal = record.get("user"), record.get("reason") or "", record.get("principal")
    if reason.startswith(_EXPIRED_PREFIXES):
        verb, cause, status, code = _EXPIRED
    elif principal and reason.startswith((principal, _IAM_OFF)):
        # A decision about this principal (its policies, its account, the target's IAM flag): RDS says "not authorized".
        verb, status, code = "Failed to authorize", 403, "NotAuthorized"
        cause = f"because the IAM policy assumed by the caller '{principal}' is not authorized to perform `rds-db:connect` on the DB instance."
    else:
        verb, cause, status, code = _INVALID
    return (f"{_rds_time(record['time'])} [ERROR] {verb} the connection request for user '{user}' {cause} "
            f"(Status Code: {status}, Error Code: {code}) Reason: {reason}")


# --- describe / download -----------------------------------------------------------------------

def log_file_entry(records):
    """The DescribeDBLogFiles entry of an instance's IAM auth error log (LastWritten in ms, as RDS reports it)."""
    size = sum(len(render_line(record).encode("utf-8")) + 1 for record in records)
    last_written = _epoch_ms(records[-1]["time"]) if records else 0
    return {"LogFileName": LOG_FILE_NAME, "LastWritten": last_written, "Size": size}


def filter_log_files(entries, filename_contains=None, file_last_written=None, file_size=None):
    """RDS's filters: the name contains a string, written since a time (ms), larger than a size (bytes)."""
    return [entry for entry in entries
            if (not filename_contains or filename_contains in entry["LogFileName"])
            and (file_last_written is None or entry["LastWritten"] >= int(file_last_written))
            and (file_size is None or entry["Size"] >= int(file_size))]


def _parse_marker(marker, line_count):
    """An opaque Marker this shim handed out ('L<line number>'), or '0' for the start of the file."""
    if marker == "0":
        return 0
    if isinstance(marker, str) and marker.startswith("L") and marker[1:].isdigit() and int(marker[1:]) <= line_count:
        return int(marker[1:])
    raise _client_error("InvalidParameterValue", f"Invalid Marker: {marker}")


def _take(lines, start, count):
    """Lines from start on, at most count of them and at most MAX_BYTES; returns (lines, where the next portion starts)."""
    taken, size = [], 0
    for line in lines[start:start + count]:
        size += len(line.encode("utf-8")) + 1
        if taken and size > MAX_BYTES:
            break
        taken.append(line)
    return taken, start + len(taken)


def log_portion(lines, marker=None, number_of_lines=None):
    """DownloadDBLogFilePortion over lines, as RDS pages it.

    Marker '0' (or one this returned): from there on, NumberOfLines (default all) lines, AdditionalDataPending
    while lines remain. No Marker: the last NumberOfLines lines (default the last MAX_LINES), nothing pending.
    """
    if number_of_lines is not None and int(number_of_lines) < 1:
        raise _client_error("InvalidParameterValue", f"NumberOfLines must be at least 1, not {number_of_lines}")
    count = int(number_of_lines) if number_of_lines is not None else MAX_LINES
    if marker is None:
        start = max(0, len(lines) - count)
        taken, end = _take(lines, start, count)
        pending = False
    else:
        start = _parse_marker(marker, len(lines))
        taken, end = _take(lines, start, count)
        pending = end < len(lines)
    data = "".join(line + "\n" for line in taken)
    return {"LogFileData": data, "Marker": f"L{end}", "AdditionalDataPending": pending}


# --- the shims ---------------------------------------------------------------------------------

def _instance(backend, identifier):
    from moto.rds.exceptions import DBInstanceNotFoundError

    db = backend.databases.get(identifier) if identifier else None
    if db is None:
        raise DBInstanceNotFoundError(identifier)
    return db


def _instance_records(db):
    records = read_records(os.environ.get("RDSIAM_SANDBOX_STATE_DIR"))
    return records_of_instance(records, db.db_instance_identifier, getattr(db, "db_cluster_identifier", None))


def _has_iam_log(db):
    return (db.engine or "").lower() in _IAM_ENGINES


def _shim_describe_db_log_files():
    # moto lists one engine log with a LastWritten in seconds and fails on every filter; RDS also
    # lists the IAM auth error log, reports LastWritten in milliseconds and filters.
    from moto.core.responses import ActionResult
    from moto.rds.responses import RDSResponse

    def describe_db_log_files(self):
        db = _instance(self.backend, self.params.get("DBInstanceIdentifier"))
        entries = [{"LogFileName": log.log_file_name, "LastWritten": int(log.last_written) * 1000, "Size": log.size}
                   for log in db.log_file_manager.files]
        if _has_iam_log(db):
            entries.append(log_file_entry(_instance_records(db)))
        entries = filter_log_files(entries, self.params.get("FilenameContains"), self.params.get("FileLastWritten"),
                                   self.params.get("FileSize"))
        return ActionResult({"DescribeDBLogFiles": entries})

    RDSResponse.describe_db_log_files = describe_db_log_files


def _shim_download_db_log_file_portion():
    # moto: "The download_db_log_file_portion action has not been implemented". RDS returns the file's
    # lines a portion at a time; here the IAM auth error log (moto's made-up engine log is empty).
    from moto.core.responses import ActionResult
    from moto.rds.responses import RDSResponse

    def download_db_log_file_portion(self):
        db = _instance(self.backend, self.params.get("DBInstanceIdentifier"))
        name = self.params.get("LogFileName")
        if name == LOG_FILE_NAME and _has_iam_log(db):
            lines = [render_line(record) for record in _instance_records(db)]
        elif name in {log.log_file_name for log in db.log_file_manager.files}:
            lines = []
        else:
            raise _client_error("DBLogFileNotFoundFault", f"DBLog File: {name}, is not found on the DB instance")
        return ActionResult(log_portion(lines, self.params.get("Marker"), self.params.get("NumberOfLines")))

    RDSResponse.download_db_log_file_portion = download_db_log_file_portion


SHIMS = (_shim_describe_db_log_files, _shim_download_db_log_file_portion)
