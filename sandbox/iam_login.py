"""Helpers for tests that log in to a running sandbox's databases with IAM tokens (`sandbox` is the pytest fixture's Sandbox).

The whole IAM-auth chain, built from plain parts so a test can check the collection against it:
moto IAM principals and policies (boto3 against the sandbox's moto server), database users
created over the master login, and tokens and logins from the reference client
(sandbox/reference_client.py: botocore's own `generate_db_auth_token`, verify-full TLS with
psycopg2 / PyMySQL, never the collection's code). The sandbox's verifier
(sandbox/aws/iam_verifier.py) decides each login; refusals land in `auth_error_log(sandbox)`
with their reason, never with the token.

Typical use::

    restore = enable_iam_auth(sandbox, "sbx-postgres")          # call restore() in a finalizer
    creds = iam_user_with_policy(sandbox, "t-alice", [allow_connect(connect_arn(sandbox, "sbx-postgres", "alice"))])
    create_db_user(sandbox, "sbx-postgres", "alice")
    token = mint_token(creds, sandbox.target("sbx-postgres"), "alice")
    assert login(sandbox, "sbx-postgres", "alice", token) == "alice"

Names must be unique per test file (tests share one sandbox per session); delete what you
create with `delete_iam_user`, `delete_role` and `drop_db_user`.
"""
import contextlib
import json
import socket
import urllib.error
import urllib.request

import boto3

from sandbox import reference_client

POLICY_VERSION = "2012-10-17"


# --- moto side ------------------------------------------------------------------------------

def _client(sandbox, service):
    return sandbox.moto().client(service)


def is_cluster(sandbox, identifier):
    return sandbox.target(identifier)["kind"] == "cluster"


def enable_iam_auth(sandbox, identifier, enabled=True):
    """Set the IAM-auth flag of a target in moto; returns a function that restores the old value."""
    rds = _client(sandbox, "rds")
    if is_cluster(sandbox, identifier):
        before = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]["IAMDatabaseAuthenticationEnabled"]

        def set_flag(value):
            rds.modify_db_cluster(DBClusterIdentifier=identifier, EnableIAMDatabaseAuthentication=value, ApplyImmediately=True)
    else:
        before = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["IAMDatabaseAuthenticationEnabled"]

        def set_flag(value):
            rds.modify_db_instance(DBInstanceIdentifier=identifier, EnableIAMDatabaseAuthentication=value, ApplyImmediately=True)
    set_flag(enabled)
    return lambda: set_flag(before)


@contextlib.contextmanager
def iam_auth_set(sandbox, identifiers, enabled=True):
    """IAM auth on (or off) for these targets inside the block; every flag goes back to what it was after it."""
    restores = [enable_iam_auth(sandbox, identifier, enabled) for identifier in identifiers]
    try:
        yield sandbox
    finally:
        for restore in restores:
            restore()


def connect_arn(sandbox, target_identifier, db_user):
    """arn:aws:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/DB_USER for a sandbox target."""
    target = sandbox.target(target_identifier)
    return f"arn:aws:rds-db:{sandbox.region}:{sandbox.state['operator']['account_id']}:dbuser:{target['resource_id']}/{db_user}"


def allow_connect(*resources, effect="Allow"):
    """One policy statement for rds-db:connect on the given resources."""
    return {"Effect": effect, "Action": "rds-db:connect", "Resource": list(resources)}


def policy_document(statements_or_document):
    """A JSON policy document from a list of statements, a statement, or a whole document."""
    if isinstance(statements_or_document, str):
        return statements_or_document
    if isinstance(statements_or_document, dict) and "Statement" in statements_or_document:
        return json.dumps(statements_or_document)
    if isinstance(statements_or_document, dict):
        statements_or_document = [statements_or_document]
    return json.dumps({"Version": POLICY_VERSION, "Statement": list(statements_or_document)})


def iam_user_with_policy(sandbox, name, statements_or_document=None, *, tags=None, policy_name="rds-connect"):
    """Create IAM user `name` (with an inline policy when given) and an access key.

    Returns {"access_key_id", "secret_access_key", "session_token": None, "user_name", "arn", "user_id"}.
    """
    iam = _client(sandbox, "iam")
    user = iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])["User"]
    if statements_or_document is not None:
        iam.put_user_policy(UserName=name, PolicyName=policy_name, PolicyDocument=policy_document(statements_or_document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"], "session_token": None,
            "user_name": name, "arn": user["Arn"], "user_id": user["UserId"]}


def delete_iam_user(sandbox, name):
    """Delete an IAM user with its keys, inline and attached policies and group memberships."""
    iam = _client(sandbox, "iam")
    try:
        for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for policy in iam.list_user_policies(UserName=name)["PolicyNames"]:
            iam.delete_user_policy(UserName=name, PolicyName=policy)
        for policy in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
            iam.detach_user_policy(UserName=name, PolicyArn=policy["PolicyArn"])
        for group in iam.list_groups_for_user(UserName=name)["Groups"]:
            iam.remove_user_from_group(UserName=name, GroupName=group["GroupName"])
        iam.delete_user(UserName=name)
    except iam.exceptions.NoSuchEntityException:
        pass


def role_with_policy(sandbox, name, statements_or_document, *, tags=None):
    """Create a role any principal of the sandbox account may assume, with an inline policy; returns its ARN."""
    iam = _client(sandbox, "iam")
    account = sandbox.state["operator"]["account_id"]
    trust = {"Version": POLICY_VERSION, "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                                                       "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                           Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])["Role"]
    iam.put_role_policy(RoleName=name, PolicyName="rds-connect", PolicyDocument=policy_document(statements_or_document))
    return role["Arn"]


def delete_role(sandbox, name):
    iam = _client(sandbox, "iam")
    try:
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        iam.delete_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        pass


def assume_role(sandbox, role_arn, session_name, *, session_tags=None, duration=900):
    """Temporary credentials for role_arn (as the sandbox operator), with session tags when given."""
    operator = sandbox.state["operator"]
    sts = boto3.Session(aws_access_key_id=operator["access_key_id"], aws_secret_access_key=operator["secret_access_key"],
                        region_name=sandbox.region).client("sts", endpoint_url=sandbox.moto_url)
    return reference_client.assume_role(sts, role_arn, session_name, session_tags=session_tags, duration=duration)


# --- tokens ---------------------------------------------------------------------------------

def mint_token(credentials, target, db_user, *, host=None, port=None, region=None, signed_at=None):
    """An RDS auth token from botocore's generate_db_auth_token (reference_client.mint_token).

    target is a sandbox target dict (sandbox.target(...)); host/port/region override what the
    token is signed for; signed_at (an aware datetime) signs with that clock instead of now.
    """
    return reference_client.mint_token(credentials, host or target["endpoint"], port or target["port"], db_user,
                                       region=region or reference_client.region_of(target["endpoint"]), signed_at=signed_at)


# --- the database side ----------------------------------------------------------------------

def engine_of(target):
    return "postgres" if "postgres" in target["engine"] else "mysql"


def admin_connection(sandbox, identifier):
    """The master login of a target over verify-full TLS (autocommit on PostgreSQL)."""
    target = sandbox.target(identifier)
    return reference_client.connect(target, target["master_username"], target["master_password"], sandbox.ca_cert,
                                    autocommit=engine_of(target) == "postgres")


def create_db_user(sandbox, identifier, db_user):
    """Create an IAM-authenticated database user the way RDS documents it (drops an old one first)."""
    drop_db_user(sandbox, identifier, db_user)
    conn = admin_connection(sandbox, identifier)
    try:
        with conn.cursor() as cur:
            if engine_of(sandbox.target(identifier)) == "postgres":
                from psycopg2 import sql

                cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(db_user)))
                cur.execute(sql.SQL("GRANT rds_iam TO {}").format(sql.Identifier(db_user)))
            else:
                cur.execute("CREATE USER %s@'%%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL", (db_user,))
    finally:
        conn.close()


def drop_db_user(sandbox, identifier, db_user):
    conn = admin_connection(sandbox, identifier)
    try:
        with conn.cursor() as cur:
            if engine_of(sandbox.target(identifier)) == "postgres":
                from psycopg2 import sql

                cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(db_user)))
            else:
                cur.execute("DROP USER IF EXISTS %s@'%%'", (db_user,))
    finally:
        conn.close()


def login(sandbox, target_identifier, db_user, token, *, tls=True):
    """Log in with token (verify-full TLS unless tls=False) and return the database's current user.

    Raises the driver's error (psycopg2.OperationalError / pymysql.err.OperationalError) when refused.
    """
    return reference_client.login(sandbox.target(target_identifier), db_user, token, sandbox.ca_cert, tls=tls)


def assert_login(sandbox, target_identifier, db_user, token):
    """login() that must succeed as db_user; on failure the message carries the verifier's reasons."""
    import psycopg2
    import pymysql

    before = len(auth_error_log(sandbox))
    try:
        user = login(sandbox, target_identifier, db_user, token)
    except (psycopg2.Error, pymysql.err.MySQLError) as exc:
        reasons = [entry["reason"] for entry in refusals_for(sandbox, target_identifier, db_user, since=before)]
        raise AssertionError(f"login as {db_user!r} to {target_identifier} refused with a {len(token)}-byte token; "
                             f"verifier: {reasons or 'no refusal logged'}; driver: {str(exc).strip()[:300]}") from None
    assert user == db_user, f"logged in as {user!r}, not {db_user!r}"
    return user


def login_error(sandbox, target_identifier, db_user, token, *, tls=True):
    """The driver's error text for a login that must fail; fails the test if it succeeds."""
    import psycopg2
    import pymysql

    try:
        user = login(sandbox, target_identifier, db_user, token, tls=tls)
    except (psycopg2.Error, pymysql.err.MySQLError) as exc:
        return str(exc)
    raise AssertionError(f"login as {db_user!r} to {target_identifier} succeeded (current user {user!r}); expected a refusal")


# --- the verifier's view ------------------------------------------------------------------------

def verify_over_http(sandbox, target_identifier, db_user, token):
    """Ask the verifier directly (POST /_sandbox/verify); returns (HTTP status, JSON answer)."""
    body = json.dumps({"target": target_identifier, "user": db_user, "token": token}).encode()
    request = urllib.request.Request(sandbox.moto_url + "/_sandbox/verify", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def verify_as_the_databases_do(moto_url, target_identifier, db_user, token, timeout=10):
    """POST /_sandbox/verify the way the PAM module and the MariaDB plugin call it (HTTP/1.0, the answer read until the
    server closes the connection); returns (HTTP status, JSON answer)."""
    host, port = moto_url.rsplit("/", 1)[1].rsplit(":", 1)
    body = json.dumps({"target": target_identifier, "user": db_user, "token": token}).encode()
    head = f"POST /_sandbox/verify HTTP/1.0\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(head + body)
        answer = b""
        while chunk := conn.recv(8192):
            answer += chunk
    status_line, _, payload = answer.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload)


def auth_error_log(sandbox):
    """The verifier's refusals so far (iam-db-auth-error.log), oldest first, one dict each."""
    try:
        with open(f"{sandbox.state_dir}/iam-db-auth-error.log", encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def refusals_for(sandbox, target_identifier, db_user, since=0):
    """Log entries for one target and user, from entry number `since` on (len(auth_error_log(...)) before)."""
    return [entry for entry in auth_error_log(sandbox)[since:]
            if entry.get("target") == target_identifier and entry.get("user") == db_user]


def server_log(sandbox, target_identifier):
    """The text of a target's database server log (PostgreSQL or MariaDB error log)."""
    with open(f"{sandbox.server(target_identifier)['directory']}/server.log", encoding="utf-8", errors="replace") as handle:
        return handle.read()
