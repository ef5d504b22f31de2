"""The sandbox's own endpoints on the moto server, answered from moto's in-process backends.

- GET /_sandbox/credentials/<access key id>: who a key belongs to, its secret and session tags.
  moto's own /moto-api/data.json fails with HTTP 500 as soon as an RDS instance exists (some
  RDS model properties raise on read), so the sandbox answers this question itself.
- POST /_sandbox/verify {"target", "user", "token"}: the RDS IAM token check both sandbox
  databases call (sandbox/aws/iam_verifier.py). 200 {"allow": true, "principal"} or 403
  {"allow": false, "reason"}; 400 for a malformed request or an unknown target. Each refusal
  is appended as one JSON line to $RDSIAM_SANDBOX_STATE_DIR/iam-db-auth-error.log, the way RDS
  writes its iam-db-auth-error log: time, target, user, reason and principal, never the token.
- GET / DELETE /_sandbox/calls: the AWS calls received so far, by operation (sandbox/aws/call_counter.py).
- PUT / GET / DELETE /_sandbox/throttle: refuse a share of the AWS calls with throttling errors (sandbox/aws/throttling.py).
"""
import datetime
import json
import os
import socket
import threading

from moto.iam.models import iam_backends
from moto.rds.models import rds_backends
from moto.sts.models import sts_backends

from sandbox.aws import call_counter, iam_changes, iam_verifier, throttling
from sandbox.aws.iam_policy_eval import Policy

PREFIX = "/_sandbox/credentials/"
VERIFY_PATH = "/_sandbox/verify"
AUTH_ERROR_LOG = "iam-db-auth-error.log"
_MAX_BODY = 64 * 1024


def _user_key(access_key_id):
    for account_id, partitions in list(iam_backends.items()):
        for user in list(partitions["aws"].users.values()):
            for key in user.access_keys:
                if key.access_key_id == access_key_id:
                    return {"type": "user", "account_id": account_id, "arn": user.arn, "user_name": user.name,
                            "user_id": user.id, "secret_access_key": key.secret_access_key,
                            "status": key.status, "session_token": None, "session_tags": {}}
    return None


def _assumed_role_key(access_key_id):
    for account_id, partitions in list(sts_backends.items()):
        for role in list(partitions["aws"].assumed_roles):
            if role.access_key_id == access_key_id:
                return {"type": "assumed-role", "account_id": account_id, "arn": role.arn, "role_arn": role.role_arn,
                        "user_id": role.user_id, "session_name": role.session_name,
                        "secret_access_key": role.secret_access_key, "session_token": role.session_token,
                        "expiration": role.expiration.isoformat(), "status": "Active",
                        "session_tags": dict(getattr(role, "session_tags", {})),
                        "transitive_tag_keys": list(getattr(role, "transitive_tag_keys", []))}
    return None


def describe_access_key(access_key_id):
    """The principal behind access_key_id, its secret and session tags; None if moto never issued it."""
    return _user_key(access_key_id) or _assumed_role_key(access_key_id)


# --- the verifier's view of moto ---------------------------------------------------------

def _aware(moment):
    return moment.replace(tzinfo=datetime.timezone.utc) if moment.tzinfo is None else moment


class MotoDirectory:
    """Targets and principals as moto's backends hold them now, read without scanning per request.

    IAM keeps every access key in a dict per account; assumed-role sessions live in STS lists
    that only grow, so they are indexed by access key once and the index is refreshed on a miss.
    A principal (its policies, tags and key status) is built once per IAM generation
    (sandbox/aws/iam_changes.py) and kept, with the decisions made from it, until IAM changes:
    logins come in bursts (a fleet's worth per playbook run) and IAM changes far less often.
    Targets are read each time: the IAM flag must be current, and reading it costs nothing.
    """

    def __init__(self):
        iam_changes.track_iam_writes()  # the cache below is only safe while every IAM write moves the generation
        self._principals = (iam_changes.generation(), {})
        self._reading = threading.Lock()
        self._sessions = {}
        self._indexed = {}  # id(STS assumed_roles list) -> (that list, how many of its entries are in _sessions)
        self._sessions_lock = threading.Lock()

    # Targets -----------------------------------------------------------------------------
    def target(self, identifier):
        for _account_id, regions in list(rds_backends.items()):
            for _region, backend in list(regions.items()):
                cluster = backend.clusters.get(identifier)
                instance = None if cluster else backend.databases.get(identifier)
                if instance is not None and getattr(instance, "db_cluster_identifier", None):
                    cluster = backend.clusters.get(instance.db_cluster_identifier)  # an Aurora member: the cluster's ARN
                if cluster is not None:
                    return self._cluster_target(identifier, backend, cluster)
                if instance is not None:
                    return iam_verifier.Target(identifier, instance.region, instance.account_id, int(instance.port),
                                               (instance.address.lower(),), instance.dbi_resource_id,
                                               bool(instance.iam_database_authentication_enabled))
        return None

    @staticmethod
    def _cluster_target(identifier, backend, cluster):
        members = [db.address for db in list(backend.databases.values())
                   if getattr(db, "db_cluster_identifier", None) == cluster.db_cluster_identifier]
        names = tuple(name.lower() for name in (cluster.endpoint, cluster.reader_endpoint, *members))
        return iam_verifier.Target(identifier, cluster.region, cluster.account_id, int(cluster.port), names,
                                   cluster.db_cluster_resource_id, bool(cluster.iam_auth))

    # Principals --------------------------------------------------------------------------
    def principal(self, access_key_id):
        """Who access_key_id belongs to, as IAM holds it now; None when moto never issued it (or it was deleted)."""
        generation = iam_changes.generation()  # before reading IAM: a write under way leaves this entry behind
        cached_generation, principals = self._principals
        if generation != cached_generation:
            if generation < cached_generation:  # read before a write that another login has already seen: keep nothing
                return self._read_principal(access_key_id)
            principals = {}
            self._principals = (generation, principals)
        found = principals.get(access_key_id)
        if found is None:
            # A burst of logins by one principal reads it once: the others wait and take what the first one read
            # (reads are CPU-bound, so waiting costs them nothing they could have done meanwhile).
            with self._reading:
                found = principals.get(access_key_id)
                if found is None:
                    found = self._read_principal(access_key_id)
                    if found is not None:
                        principals[access_key_id] = found
        return found

    def _read_principal(self, access_key_id):
        for _account_id, partitions in list(iam_backends.items()):
            iam = partitions["aws"]
            key = iam.access_keys.get(access_key_id)
            if key is None:
                continue
            if key.user_name is not None:
                user = iam.users.get(key.user_name)
                return self._user_principal(iam, user, key) if user is not None else None
            session = self._assumed_role(access_key_id)
            return self._session_principal(iam, session, key) if session is not None else None
        return None

    def _assumed_role(self, access_key_id):
        session = self._sessions.get(access_key_id)
        if session is None:
            with self._sessions_lock:
                for _account, partitions in list(sts_backends.items()):
                    issued = partitions["aws"].assumed_roles
                    # The lists only grow: index just the sessions issued since the last look. The
                    # list itself is kept with its count, so a new list reusing its id() starts at 0.
                    seen, count = self._indexed.get(id(issued), (None, 0))
                    start = count if seen is issued else 0
                    for role in list(issued[start:]):
                        self._sessions[role.access_key_id] = role
                    self._indexed[id(issued)] = (issued, len(issued))
                session = self._sessions.get(access_key_id)
        return session

    @staticmethod
    def _user_principal(iam, user, key):
        policies = [Policy(f"inline policy '{name}' of user {user.name}", doc) for name, doc in list(user.policies.items())]
        policies += [_managed(policy) for policy in list(user.managed_policies.values())]
        for group in list(iam.groups.values()):
            if user in group.users:
                policies += [Policy(f"inline policy '{name}' of group {group.name}", doc) for name, doc in list(group.policies.items())]
                policies += [_managed(policy) for policy in list(group.managed_policies.values())]
        tags = {tag["Key"]: tag["Value"] for tag in iam.tagger.list_tags_for_resource(user.arn)["Tags"]}
        context = {"aws:username": user.name, "aws:userid": user.id, "aws:PrincipalArn": user.arn,
                   "aws:PrincipalType": "User", "aws:PrincipalAccount": user.account_id}
        context.update({f"aws:PrincipalTag/{k}": v for k, v in tags.items()})
        return iam_verifier.Principal(arn=user.arn, access_key_id=key.access_key_id, secret_access_key=key.secret_access_key,
                                      status=key.status, policies=tuple(policies), context=context, account_id=user.account_id)

    @staticmethod
    def _session_principal(iam, session, key):
        role = next((r for r in list(iam.roles.values()) if r.arn == session.role_arn), None)
        policies, tags, boundary = [], {}, None
        if role is not None:  # a role deleted after AssumeRole grants nothing any more
            policies = [Policy(f"inline policy '{name}' of role {role.name}", doc) for name, doc in list(role.policies.items())]
            policies += [_managed(policy) for policy in list(role.managed_policies.values())]
            tags = _tag_dict(role.tags)
            boundary = _boundary(iam, role.permissions_boundary_arn)
        tags.update(getattr(session, "session_tags", {}))  # session tags override the role's tags
        context = {"aws:userid": session.user_id, "aws:PrincipalArn": session.role_arn, "aws:PrincipalType": "AssumedRole",
                   "aws:PrincipalAccount": session.account_id, "aws:RoleSessionName": session.session_name}
        context.update({f"aws:PrincipalTag/{k}": v for k, v in tags.items()})
        session_policies = (Policy(f"session policy of {session.arn}", session.policy),) if session.policy else None
        return iam_verifier.Principal(arn=session.arn, access_key_id=key.access_key_id,
                                      secret_access_key=session.secret_access_key, status=key.status,
                                      policies=tuple(policies), context=context, session_token=session.session_token,
                                      expiration=_aware(session.expiration), session_policies=session_policies,
                                      boundary_policies=boundary, account_id=session.account_id)


def _tag_dict(tags):
    """moto keeps role tags as a list of {"Key", "Value"} (older releases: a dict of them)."""
    entries = list(tags.values()) if isinstance(tags, dict) else list(tags or [])
    return {tag["Key"]: tag["Value"] for tag in entries}


def _boundary(iam, policy_arn):
    """The permissions boundary as a one-policy tuple; None without one. A missing policy allows nothing."""
    if not policy_arn:
        return None
    policy = iam.managed_policies.get(policy_arn)
    return (_managed(policy),) if policy is not None else (Policy(f"missing boundary {policy_arn}", "{}"),)


def _managed(policy):
    version = next((v for v in policy.versions if v.version_id == policy.default_version_id), None)
    return Policy(f"managed policy {policy.arn}", version.document if version else "{}")


DIRECTORY = MotoDirectory()
_LOG_LOCK = threading.Lock()


def log_refusal(target, user, verdict):
    """Append one refusal to the state directory's iam-db-auth-error.log (no token, no secret)."""
    state_dir = os.environ.get("RDSIAM_SANDBOX_STATE_DIR")
    if not state_dir:
        return
    entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
             "target": target, "user": user, "reason": verdict.reason}
    if verdict.principal:
        entry["principal"] = verdict.principal
    line = json.dumps(entry, sort_keys=True) + "\n"
    with _LOG_LOCK, open(os.path.join(state_dir, AUTH_ERROR_LOG), "a", encoding="utf-8") as handle:
        handle.write(line)


def _read_json_body(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if not 0 < length <= _MAX_BODY:
        raise iam_verifier.BadRequest(f"a JSON body of 1..{_MAX_BODY} bytes is required")
    try:
        # A client may send any bytes as its password: undecodable ones make a malformed token (403), not a 400.
        request = json.loads(environ["wsgi.input"].read(length).decode("utf-8", "replace"))
    except ValueError:
        raise iam_verifier.BadRequest("the body is not JSON") from None
    if not isinstance(request, dict):
        raise iam_verifier.BadRequest('the body must be {"target", "user", "token"}')
    return request


def _stop_reading(environ):
    """Half-close the read side once the body is in.

    werkzeug's dev server waits 10 ms for stray request bytes before it closes a connection, and
    the databases' HTTP/1.0 clients read the answer until the close: 10 ms on every login.
    """
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass


def verify_request(environ):
    """(HTTP status, JSON answer) for one POST /_sandbox/verify."""
    if environ.get("REQUEST_METHOD") != "POST":
        return "405 Method Not Allowed", {"error": "use POST"}
    try:
        request = _read_json_body(environ)
        _stop_reading(environ)
        target, user = request.get("target"), request.get("user")
        verdict = iam_verifier.verify(DIRECTORY, target, user, request.get("token"))
    except iam_verifier.BadRequest as bad:
        return "400 Bad Request", {"allow": False, "error": str(bad)}
    if verdict.allow:
        return "200 OK", {"allow": True, "principal": verdict.principal}
    log_refusal(target, user, verdict)
    return "403 Forbidden", {"allow": False, "reason": verdict.reason}


class SandboxApp:
    """WSGI app: the sandbox endpoints, and everything else handed to moto."""

    def __init__(self, moto_app):
        self.moto_app = moto_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == call_counter.CALLS_PATH:
            status, body = call_counter.calls_request(environ)
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path == throttling.THROTTLE_PATH:
            status, body = throttling.throttle_request(environ)
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        operation = call_counter.count(environ)
        if operation and throttling.refuse(operation):
            status, headers, body = throttling.refusal(environ)
            start_response(status, headers)
            return [body]
        if path == VERIFY_PATH:
            status, answer = verify_request(environ)
        elif path.startswith(PREFIX):
            found = describe_access_key(path[len(PREFIX):])
            status, answer = ("200 OK", found) if found else ("404 Not Found", {"error": "unknown access key"})
        else:
            return self.moto_app(environ, start_response)
        body = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
