"""The reference IAM login: a token from botocore's own generate_db_auth_token, a login with psycopg2 or PyMySQL.

Whatever checks rdsiam.auth against the sandbox gets its tokens and logs in through here: the
sandbox's and the integration tests (sandbox/iam_login.py), molecule's verify steps
(extensions/molecule/shared/probe.py) and `make demo` (sandbox/demo.py, which hands the token to
psql). None of it is the collection's code, so a check cannot agree with a bug it shares with
what it checks: the signature is botocore's, the TLS check is the driver's and Python's.

A target is a dict with `engine`, `endpoint`, `port`, `login_host` and `login_port`, as both the
sandbox's state and its inventory.yml describe one. Logins connect to login_host:login_port (the
local server) and check the certificate against the RDS endpoint name, as a client behind a
tunnel does; tokens are signed for endpoint:port, as RDS expects.
"""
import datetime
import functools
import ssl
from unittest import mock

import boto3
import botocore.auth


def credentials(access_key_id, secret_access_key, session_token=None):
    """The credentials dict every function here takes (session_token only for temporary credentials)."""
    return {"access_key_id": access_key_id, "secret_access_key": secret_access_key, "session_token": session_token}


def session_credentials(session):
    """The credentials a boto3 session resolves (from the environment, a profile, ...)."""
    frozen = session.get_credentials().get_frozen_credentials()
    return credentials(frozen.access_key, frozen.secret_key, frozen.token)


def assume_role(sts, role_arn, session_name, *, session_tags=None, duration=None):
    """Temporary credentials for role_arn from an STS client, with session tags when given.

    The credentials dict also carries the session's `arn` and `user_id` (aws:userid), which
    refusals and ABAC policies name.
    """
    extra = {"Tags": [{"Key": key, "Value": value} for key, value in session_tags.items()]} if session_tags else {}
    if duration:
        extra["DurationSeconds"] = duration
    issued = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name, **extra)
    issued_keys = issued["Credentials"]
    return dict(credentials(issued_keys["AccessKeyId"], issued_keys["SecretAccessKey"], issued_keys["SessionToken"]),
                arn=issued["AssumedRoleUser"]["Arn"], user_id=issued["AssumedRoleUser"]["AssumedRoleId"])


def region_of(endpoint):
    """The region in an RDS endpoint name (NAME.ID.REGION.rds.amazonaws.com)."""
    return endpoint.split(".")[-4]


@functools.lru_cache(maxsize=None)
def _signing_session():
    """One boto3 session for every token: its loader keeps the RDS model between clients."""
    return boto3.Session()


def mint_token(keys, endpoint, port, db_user, *, region=None, signed_at=None):
    """An RDS auth token for db_user@endpoint:port from botocore's generate_db_auth_token.

    keys is a credentials dict; region defaults to the endpoint's; signed_at (an aware datetime)
    signs with that clock instead of now.
    """
    rds = _signing_session().client("rds", region_name=region or region_of(endpoint), aws_access_key_id=keys["access_key_id"],
                                    aws_secret_access_key=keys["secret_access_key"], aws_session_token=keys.get("session_token"))
    if signed_at is None:
        return rds.generate_db_auth_token(endpoint, port, db_user)
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda: signed_at.astimezone(datetime.timezone.utc)):
        return rds.generate_db_auth_token(endpoint, port, db_user)


def is_postgres(target):
    return "postgres" in target["engine"]


class _EndpointSSLContext(ssl.SSLContext):
    """Checks the certificate against the RDS endpoint name while PyMySQL connects to the local address."""

    endpoint = None

    def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):  # pylint: disable=arguments-differ
        del server_hostname
        return super().wrap_socket(sock, *args, server_hostname=self.endpoint, **kwargs)


def _mysql_tls(ca_cert, endpoint):
    context = _EndpointSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca_cert)
    context.endpoint = endpoint
    return context


def connect(target, user, password, ca_cert, *, tls=True, autocommit=False, connect_timeout=10):
    """A driver connection to the target over verify-full TLS (tls=False: plaintext, to prove it is refused).

    Raises the driver's error (psycopg2.OperationalError, pymysql.err.OperationalError) when the server refuses.
    """
    if is_postgres(target):
        import psycopg2  # pylint: disable=import-outside-toplevel

        tls_args = {"sslmode": "verify-full", "sslrootcert": ca_cert} if tls else {"sslmode": "disable"}
        conn = psycopg2.connect(host=target["endpoint"], hostaddr=target["login_host"], port=target["login_port"], user=user,
                                password=password, dbname="postgres", connect_timeout=connect_timeout, **tls_args)
        conn.autocommit = autocommit
        return conn
    import pymysql  # pylint: disable=import-outside-toplevel

    # PyMySQL negotiates unverified TLS unless told not to: plaintext must be asked for explicitly.
    tls_args = {"ssl": _mysql_tls(ca_cert, target["endpoint"])} if tls else {"ssl_disabled": True}
    return pymysql.connect(host=target["login_host"], port=target["login_port"], user=user, password=password,
                           connect_timeout=connect_timeout, autocommit=autocommit, **tls_args)


def current_user(conn, target):
    """The user the server says this connection is (MySQL's user part only)."""
    with conn.cursor() as cur:
        cur.execute("SELECT current_user" if is_postgres(target) else "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)")
        return cur.fetchone()[0]


def login(target, db_user, token, ca_cert, *, tls=True):
    """Log in as db_user with token, return the server's current user and close; the driver's error when refused."""
    conn = connect(target, db_user, token, ca_cert, tls=tls)
    try:
        return current_user(conn, target)
    finally:
        conn.close()
