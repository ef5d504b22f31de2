"""A switch that makes the moto server refuse a share of the AWS calls to chosen services with AWS's throttling error,
so that a test can show a playbook converging through botocore's retry modes, as on a busy account.

    PUT    /_sandbox/throttle  {"rate": 0.2, "seed": 7, "services": ["rds", "iam", "sts"]}   turn it on
    GET    /_sandbox/throttle  the settings, and the calls refused so far by operation (each one a client retry)
    DELETE /_sandbox/throttle  turn it off and clear the counts

Which calls are refused is drawn from a random generator seeded by `seed`; with several clients at once the order of the
calls, and so which ones are refused, still varies from run to run. The refusal is the one each protocol uses: a Query
protocol service (RDS, IAM, STS) answers HTTP 400 with the error code Throttling, a JSON one (Secrets Manager, KMS)
ThrottlingException. The sandbox's own endpoints are never refused.
"""
import collections
import json
import random
import threading
import uuid

THROTTLE_PATH = "/_sandbox/throttle"
DEFAULT_SERVICES = ("rds", "iam", "sts")
_LOCK = threading.Lock()
_SETTINGS = {"rate": 0.0, "seed": None, "services": DEFAULT_SERVICES}
_RANDOM = random.Random()
_REFUSED = collections.Counter()


def refuse(operation):
    """Whether to answer this call (`service:Action`, as call_counter names it) with a throttling error."""
    service = operation.split(":", 1)[0]
    with _LOCK:
        if not _SETTINGS["rate"] or service not in _SETTINGS["services"]:
            return False
        if _RANDOM.random() >= _SETTINGS["rate"]:
            return False
        _REFUSED[operation] += 1
        return True


def refusal(environ):
    """(status, headers, body) of AWS's throttling error in the request's protocol."""
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", "ThrottlingException"),
                                   ("Content-Length", str(len(body)))], body
    body = ("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
            "<RequestId>%s</RequestId></ErrorResponse>" % uuid.uuid4()).encode()
    return "400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))], body


def _settings(request):
    rate = request.get("rate")
    services = request.get("services", list(DEFAULT_SERVICES))
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate <= 1:
        raise ValueError("rate must be a number from 0 to 1")
    if not isinstance(services, list) or not all(isinstance(service, str) and service for service in services):
        raise ValueError("services must be a list of service names such as rds, iam, sts")
    return dict(rate=float(rate), seed=request.get("seed"), services=tuple(services))


def throttle_request(environ):
    """(HTTP status, JSON answer) for PUT, GET or DELETE /_sandbox/throttle."""
    method = environ.get("REQUEST_METHOD")
    if method == "PUT":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            settings = _settings(json.loads(environ["wsgi.input"].read(length) or b"{}"))
        except ValueError as bad:
            return "400 Bad Request", json.dumps({"error": str(bad)}).encode()
        with _LOCK:
            _SETTINGS.update(settings)
            _RANDOM.seed(settings["seed"])
            _REFUSED.clear()
    elif method == "DELETE":
        with _LOCK:
            _SETTINGS.update(rate=0.0, seed=None, services=DEFAULT_SERVICES)
            _REFUSED.clear()
    elif method != "GET":
        return "405 Method Not Allowed", json.dumps({"error": "use PUT, GET or DELETE"}).encode()
    with _LOCK:
        answer = dict(_SETTINGS, services=list(_SETTINGS["services"]), refused=dict(sorted(_REFUSED.items())))
    return "200 OK", json.dumps(answer).encode()
