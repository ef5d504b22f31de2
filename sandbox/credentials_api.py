"""GET /_sandbox/credentials/<access key id> on the moto server: who a key belongs to.

The sandbox's token verifier needs the secret behind an access key (to check a SigV4
signature), the principal, and the session tags of assumed-role credentials. moto's own
/moto-api/data.json fails with HTTP 500 as soon as an RDS instance exists (some RDS model
properties raise on read), so the sandbox answers this one question itself, from moto's
in-process backends.
"""
import json

from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

PREFIX = "/_sandbox/credentials/"


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


class SandboxApp:
    """WSGI app: the credentials endpoint, and everything else handed to moto."""

    def __init__(self, moto_app):
        self.moto_app = moto_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return self.moto_app(environ, start_response)
        found = describe_access_key(path[len(PREFIX):])
        status = "200 OK" if found else "404 Not Found"
        body = json.dumps(found or {"error": "unknown access key"}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
