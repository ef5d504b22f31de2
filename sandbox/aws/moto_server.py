"""Run a moto server with the sandbox shims applied: python -m sandbox.aws.moto_server HOST PORT [STATE_DIR]."""
import os
import signal
import sys
import threading

from sandbox.network import require_loopback
from sandbox.aws.shims import apply_shims

# Backends moto would otherwise load on the first request (1-4 s each on these machines).
_PRELOAD = ("rds", "iam", "sts", "secretsmanager", "kms", "ec2")


def _preload_backends():
    from moto.backends import get_backend

    for name in _PRELOAD:
        get_backend(name)


def make_sandbox_server(host, port):
    """moto with the sandbox's endpoints in front, a thread per request: the databases' logins are verified side by
    side (a playbook's forks log in at once), and one that waits never holds up the others."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from sandbox.aws.credentials_api import SandboxApp

    return make_server(host, port, SandboxApp(DomainDispatcherApplication(create_backend_app)), threaded=True,
                       request_handler=MotoRequestHandler)


def main(argv):
    host, port = require_loopback(argv[1]), int(argv[2])
    if len(argv) > 3:
        # Shims and the sandbox endpoints find the sandbox's state (servers, logs) here.
        os.environ["RDSIAM_SANDBOX_STATE_DIR"] = argv[3]
    apply_shims()
    _preload_backends()
    server = make_sandbox_server(host, port)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
