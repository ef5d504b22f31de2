"""The sandbox's RDS IAM auth-token verifier: accept exactly the tokens RDS would accept.

Both sandbox databases (PostgreSQL through PAM, MariaDB through its AWSAuthenticationPlugin)
hand the password a client sent to POST /_sandbox/verify on the moto server, which calls
`verify()`. A token is what botocore's generate_db_auth_token makes:

    HOST:PORT/?Action=connect&DBUser=U&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID/DATE/REGION/rds-db/aws4_request
        &X-Amz-Date=...&X-Amz-Expires=900&X-Amz-SignedHeaders=host[&X-Amz-Security-Token=...]&X-Amz-Signature=...

Checked, in order: the shape; IAM auth enabled on the target; the access key (known to moto,
Active; for temporary credentials the session token matches and has not expired); the SigV4
signature, recomputed with botocore's SigV4QueryAuth (the oracle shares no code with the
collection's signer); service rds-db; the target's region; X-Amz-Expires <= 900 and now
inside [X-Amz-Date - CLOCK_SKEW, X-Amz-Date + X-Amz-Expires]; HOST:PORT one of the target's
names and its port; DBUser equal to the login name; the principal in the target's account
(rds-db:connect has no resource policy, so another account gets in only by assuming a role
there); then the principal's IAM policies for rds-db:connect on the target's dbuser ARN
(sandbox/aws/iam_policy_eval.py).

Clock skew: a token dated up to CLOCK_SKEW seconds in the future is accepted (a client clock a
little ahead of ours); expiry has no allowance, so a token is never good for more than 15 min.
Reasons never contain the token, its signature or any secret.

Not modelled: GetSessionToken/GetFederationToken credentials (moto answers them with a fixed
key it keeps no secret for, so they are refused as unknown), permissions boundaries on IAM
users (moto has none; a role's boundary is applied), and organisation SCPs.
"""
import dataclasses
import datetime
import hmac
from urllib.parse import unquote

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sandbox.aws import iam_policy_eval

MAX_EXPIRES = 900
CLOCK_SKEW = datetime.timedelta(seconds=60)
ACTION = "rds-db:connect"
_REQUIRED = ("Action", "DBUser", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
             "X-Amz-SignedHeaders", "X-Amz-Signature")
_KNOWN = frozenset(_REQUIRED + ("X-Amz-Security-Token",))
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


class Refused(Exception):
    """The token is not accepted; str() is the reason, safe to log."""


class BadRequest(Exception):
    """The request itself is wrong (unknown target, missing field): HTTP 400, not a refusal."""


@dataclasses.dataclass(frozen=True)
class Target:
    """What RDS knows about a login target: its names, port, region and IAM resource id."""

    identifier: str
    region: str
    account_id: str
    port: int
    names: tuple  # endpoint first; for Aurora also the reader and member endpoints
    resource_id: str  # db-... for an instance, cluster-... for a cluster
    iam_enabled: bool


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who an access key belongs to, its secret, and the policies and context IAM evaluates."""

    arn: str
    access_key_id: str
    secret_access_key: str
    status: str  # Active | Inactive
    policies: tuple  # iam_policy_eval.Policy
    context: dict  # aws:username, aws:userid, aws:PrincipalTag/KEY, ...
    account_id: str = None
    session_token: str = None  # temporary credentials only
    expiration: datetime.datetime = None
    session_policies: tuple = None
    boundary_policies: tuple = None  # a role's permissions boundary
    # Decisions already made from these policies and this context, by resource ARN: a principal is never changed
    # once built (a change in IAM builds a new one), so each answer holds for as long as the principal is used.
    decisions: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class Token:
    host: str
    port: int
    db_user: str
    access_key_id: str
    scope_date: str
    region: str
    service: str
    signed_at: datetime.datetime
    expires: int
    session_token: str
    signature: str
    unsigned_query: str  # the query string as sent, without X-Amz-Signature


@dataclasses.dataclass(frozen=True)
class Verdict:
    allow: bool
    reason: str
    principal: str = None


def _parse_query(query):
    params, unsigned = {}, []
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        name = unquote(key)
        if not sep or name in params:
            # Name only parameters a token has: anything else may be part of a mistyped password.
            shown = name if name in _KNOWN else "(unknown)"
            raise Refused(f"malformed token: parameter {shown} is {'repeated' if sep else 'without a value'}")
        params[name] = unquote(value)
        if name != "X-Amz-Signature":
            unsigned.append(pair)
    return params, "&".join(unsigned)


def _parse_host_port(netloc):
    host, sep, port = netloc.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Refused("malformed token: it does not start with HOST:PORT/")
    return host, int(port)


def parse_token(text):
    """Split a token into its claims; Refused('malformed token: ...') when it is not one."""
    netloc, sep, query = text.partition("/?")
    if not sep or "/" in netloc:
        raise Refused("malformed token: it is not HOST:PORT/?Action=connect&...")
    host, port = _parse_host_port(netloc)
    params, unsigned = _parse_query(query)
    missing = [name for name in _REQUIRED if not params.get(name)]
    if missing:
        raise Refused(f"malformed token: missing {', '.join(missing)}")
    if set(params) - _KNOWN:
        raise Refused(f"malformed token: {len(set(params) - _KNOWN)} parameter(s) a token does not have")
    if params["Action"] != "connect":
        raise Refused("malformed token: Action is not connect")
    if params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
        raise Refused("malformed token: X-Amz-Algorithm is not AWS4-HMAC-SHA256")
    if params["X-Amz-SignedHeaders"] != "host":
        raise Refused("malformed token: X-Amz-SignedHeaders must be 'host'")
    scope = params["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise Refused("malformed token: X-Amz-Credential is not AKID/DATE/REGION/SERVICE/aws4_request")
    try:
        signed_at = datetime.datetime.strptime(params["X-Amz-Date"], _AMZ_DATE).replace(tzinfo=datetime.timezone.utc)
        expires = int(params["X-Amz-Expires"])
    except ValueError:
        raise Refused("malformed token: X-Amz-Date or X-Amz-Expires is not valid") from None
    if scope[1] != params["X-Amz-Date"][:8]:
        raise Refused(f"malformed token: credential scope date {scope[1][:8]} differs from X-Amz-Date")
    return Token(host=host, port=port, db_user=params["DBUser"], access_key_id=scope[0], scope_date=scope[1],
                 region=scope[2], service=scope[3], signed_at=signed_at, expires=expires,
                 session_token=params.get("X-Amz-Security-Token"), signature=params["X-Amz-Signature"],
                 unsigned_query=unsigned)


def expected_signature(token, secret_access_key):
    """The SigV4 query signature botocore computes for this token's claims with this secret."""
    auth = SigV4QueryAuth(Credentials(token.access_key_id, secret_access_key, token.session_token), token.service,
                          token.region, expires=token.expires)
    request = AWSRequest(method="GET", url=f"https://{token.host}:{token.port}/?{token.unsigned_query}")
    request.context["timestamp"] = token.signed_at.strftime(_AMZ_DATE)
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request)


def _check_credentials(token, principal, now):
    if principal is None:
        raise Refused(f"access key {token.access_key_id} is unknown (never issued, or deleted)")
    if principal.status != "Active":
        raise Refused(f"access key {token.access_key_id} of {principal.arn} is {principal.status}")
    if principal.session_token is None and token.session_token is not None:
        raise Refused(f"access key {token.access_key_id} is a long-term key but the token carries a security token")
    if principal.session_token is not None:
        if token.session_token is None:
            raise Refused(f"temporary access key {token.access_key_id} needs its X-Amz-Security-Token")
        if not hmac.compare_digest(token.session_token.encode(), principal.session_token.encode()):
            raise Refused(f"the security token does not belong to temporary access key {token.access_key_id}")
        if principal.expiration is not None and now > principal.expiration:
            raise Refused(f"temporary credentials {token.access_key_id} of {principal.arn} expired at {_iso(principal.expiration)}")
    expected = expected_signature(token, principal.secret_access_key)
    if not hmac.compare_digest(expected.encode(), token.signature.encode()):
        raise Refused(f"signature mismatch for access key {token.access_key_id}")


def _check_claims(token, target, login_user, now):
    if token.service != "rds-db":
        raise Refused(f"token is signed for service {token.service!r}, not rds-db")
    if token.region != target.region:
        raise Refused(f"token is signed for region {token.region} but {target.identifier} is in region {target.region}")
    if not 0 < token.expires <= MAX_EXPIRES:
        raise Refused(f"X-Amz-Expires {token.expires} is outside 1..{MAX_EXPIRES} seconds")
    if token.signed_at - CLOCK_SKEW > now:
        raise Refused(f"token is dated {_iso(token.signed_at)}, more than {CLOCK_SKEW.seconds} s in the future")
    expiry = token.signed_at + datetime.timedelta(seconds=token.expires)
    if now > expiry:
        raise Refused(f"token expired at {_iso(expiry)} (signed {_iso(token.signed_at)}, valid {token.expires} s)")
    if token.host.lower() not in target.names:
        raise Refused(f"token host {token.host} is not an endpoint of target {target.identifier}")
    if token.port != target.port:
        raise Refused(f"token port {token.port} is not the port of target {target.identifier} ({target.port})")
    if token.db_user != login_user:
        raise Refused(f"DBUser {token.db_user!r} does not match login user {login_user!r}")


def _partition(region):
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


def connect_arn(target, db_user):
    """The resource IAM authorises: arn:PARTITION:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/DB_USER."""
    return f"arn:{_partition(target.region)}:rds-db:{target.region}:{target.account_id}:dbuser:{target.resource_id}/{db_user}"


def _iso(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decide(principal, resource):
    """The principal's IAM decision for rds-db:connect on resource, evaluated once per principal and resource."""
    decision = principal.decisions.get(resource)
    if decision is None:
        decision = iam_policy_eval.evaluate(principal.policies, ACTION, resource, principal.context,
                                            principal.session_policies, principal.boundary_policies)
        principal.decisions[resource] = decision
    return decision


def verify(directory, target_identifier, login_user, token_text, now=None):
    """Decide one login. directory answers target(identifier) and principal(access_key_id).

    Returns a Verdict; raises BadRequest for an unknown target or a request without a user or token.
    """
    if not target_identifier or not isinstance(target_identifier, str):
        raise BadRequest("'target' is required")
    if not isinstance(login_user, str) or not isinstance(token_text, str):
        raise BadRequest("'user' and 'token' must be strings")
    target = directory.target(target_identifier)
    if target is None:
        raise BadRequest(f"unknown target {target_identifier!r}")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    principal = None
    try:
        token = parse_token(token_text)
        if not target.iam_enabled:
            raise Refused(f"IAM database authentication is disabled on {target.identifier}")
        principal = directory.principal(token.access_key_id)
        _check_credentials(token, principal, now)
        _check_claims(token, target, login_user, now)
        if principal.account_id and principal.account_id != target.account_id:
            # rds-db:connect has no resource policy to let another account in: assume a role in the target's account.
            raise Refused(f"{principal.arn} is in account {principal.account_id}, not the account of {target.identifier} "
                          f"({target.account_id})")
        decision = _decide(principal, connect_arn(target, login_user))
        if not decision.allowed:
            raise Refused(f"{principal.arn}: {decision.reason}")
    except Refused as refused:
        return Verdict(False, str(refused), principal.arn if principal else None)
    return Verdict(True, decision.reason, principal.arn)
