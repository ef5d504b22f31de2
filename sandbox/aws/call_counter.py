"""AWS calls counted by operation, as the moto server receives them: GET /_sandbox/calls answers the counts so far,
DELETE /_sandbox/calls starts again. The benchmarks read it to show which AWS calls a playbook run made (across every
module process of the run), and that they do not grow with the number of targets or principals.

An operation is `service:Action`: the service from the request's SigV4 credential scope, the action from the Query
protocol's Action parameter (IAM, STS, RDS, ...) or from X-Amz-Target (JSON protocols, such as Secrets Manager).
"""
import collections
import io
import json
import re
import threading
from urllib.parse import parse_qs

CALLS_PATH = "/_sandbox/calls"
_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_COUNTS = collections.Counter()
_LOCK = threading.Lock()
_MAX_BODY = 1 << 20


def _operation(environ):
    scope = _SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = scope.group(1) if scope else "unsigned"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return "%s:%s" % (service, target.rsplit(".", 1)[-1])
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if not action and environ.get("REQUEST_METHOD") == "POST" and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if 0 < length <= _MAX_BODY:
            body = environ["wsgi.input"].read(length)
            # moto reads the body after us: hand it the same bytes.
            environ["wsgi.input"] = io.BytesIO(body)
            action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return "%s:%s" % (service, action[0] if action else environ.get("PATH_INFO", "/"))


def count(environ):
    """Count the AWS request environ carries and return its operation (None for the sandbox's own endpoints)."""
    if environ.get("PATH_INFO", "").startswith("/_sandbox/") or environ.get("PATH_INFO", "").startswith("/moto-api"):
        return None
    operation = _operation(environ)
    with _LOCK:
        _COUNTS[operation] += 1
    return operation


def calls_request(environ):
    """(HTTP status, JSON answer) for GET or DELETE /_sandbox/calls."""
    with _LOCK:
        answer = dict(sorted(_COUNTS.items()))
        if environ.get("REQUEST_METHOD") == "DELETE":
            _COUNTS.clear()
    return "200 OK", json.dumps(answer).encode()
