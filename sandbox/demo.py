"""`make demo`'s two ends: the person being onboarded, and a psql login as that person afterwards.

python -m sandbox.demo prepare [--state-dir DIR]   writes <state>/demo-vars.yml (the playbook inputs) and prints its path
python -m sandbox.demo login [--state-dir DIR]     psql as the demo person, with a token botocore mints as their role
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys

import yaml

from sandbox import lifecycle, reference_client
from sandbox.network import SandboxError

DEMO_ROLE = "data-analysts"
DEMO_USER = "ada"


def _ensure_role(iam, account_id):
    """The IAM role the demo person works through (as with SSO): the operator may assume it."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"],
                                                      "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}}]}
    try:
        return iam.get_role(RoleName=DEMO_ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=DEMO_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _client_program(name):
    candidates = [shutil.which(name)] + sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


def demo_vars(state, role_arn):
    return {
        "rdsiam_users": [DEMO_USER],
        "rdsiam_grants": {"postgres": {"roles": ["pg_read_all_data"]}, "mysql": {"privileges": "*.*:SELECT"}},
        "rdsiam_principals": {"roles": [DEMO_ROLE]},
        "rdsiam_targets": {"all": True},
        "rdsiam_verify_role_arn": role_arn,
        "rdsiam_report_path": os.path.join(state["state_dir"], "onboard-report.json"),
    }


def login(state, session):
    """psql as the demo person. The token comes from the reference client (botocore, not this collection) for the
    role's session, and reaches psql through its environment only, so it is never on a command line or in the output."""
    import boto3

    target = next(target for target in state["targets"] if target["engine"] == "postgres")
    psql = _client_program("psql")
    if not psql:
        raise SandboxError("psql is not installed (Debian package postgresql-client)")
    operator = state["operator"]
    sts = boto3.client("sts", endpoint_url=state["moto"]["endpoint_url"], region_name=state["region"],
                       aws_access_key_id=operator["access_key_id"], aws_secret_access_key=operator["secret_access_key"])
    role_arn = session.client("iam").get_role(RoleName=DEMO_ROLE)["Role"]["Arn"]
    creds = reference_client.assume_role(sts, role_arn, DEMO_USER)
    token = reference_client.mint_token(creds, target["endpoint"], target["port"], DEMO_USER, region=state["region"])
    conninfo = (f"host={target['endpoint']} port={target['port']} dbname=postgres user={DEMO_USER} "
                f"sslmode=verify-full sslrootcert={state['ca_cert']}")
    print(f"$ psql \"{conninfo}\"   # as role {DEMO_ROLE}, password = a fresh IAM token")
    env = dict(os.environ, PGPASSWORD=token, PGHOSTADDR=target["login_host"], PGCONNECT_TIMEOUT="10")
    query = "SELECT current_user, ssl.version AS tls, ssl.cipher FROM pg_stat_ssl ssl WHERE ssl.pid = pg_backend_pid()"
    return subprocess.run([psql, "--no-psqlrc", conninfo, "--command", query], env=env, check=False).returncode


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__)
    parser.add_argument("command", choices=("prepare", "login"))
    parser.add_argument("--state-dir", default=None)
    args = parser.parse_args(argv)
    state_dir = args.state_dir or lifecycle.default_state_dir()
    state = lifecycle.load_state(state_dir)
    if not state:
        print("sandbox.demo: the sandbox is not up: run `make sandbox-up` first", file=sys.stderr)
        return 2
    session = lifecycle.MotoSession(state["moto"]["endpoint_url"])
    try:
        if args.command == "login":
            return login(state, session)
        role_arn = _ensure_role(session.client("iam"), state["operator"]["account_id"])
    except SandboxError as exc:
        print(f"sandbox.demo: error: {exc}", file=sys.stderr)
        return 2
    path = os.path.join(state_dir, "demo-vars.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(demo_vars(state, role_arn), handle, sort_keys=False, default_flow_style=False)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
