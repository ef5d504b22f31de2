"""Stand-in for ansible-test's get-pip bootstrap script, for machines that reach only PyPI.

ansible-test bootstraps pip in each sanity virtualenv with a get-pip.py it downloads from its
own file host; it first looks in ~/.ansible/test/cache. This stand-in does the same job with
ensurepip and then installs the pinned packages it is given from PyPI.
"""
import ensurepip
import os
import subprocess
import sys

# get-pip's own switches that pip install does not know.
_GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main():
    ensurepip.bootstrap()
    args = [arg for arg in sys.argv[1:] if arg not in _GET_PIP_ONLY]
    ca_bundle = os.environ.get("RDSIAM_PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
    cert = ["--cert", ca_bundle] if os.path.exists(ca_bundle) else []
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *cert, *args]))


if __name__ == "__main__":
    main()
