"""Read a molecule scenario's sandbox back, independently of the collection, and print JSON.

Test-only (the scenarios' create, prepare and verify playbooks run it with the Python that runs
ansible-playbook, in the sandbox's AWS_* environment). It reads RDS and IAM with boto3 and logs
in through the sandbox's reference client (sandbox/reference_client.py of the repository the
scenarios run from: botocore's own generate_db_auth_token, psycopg2 and PyMySQL over verify-full
TLS), never through rdsiam.auth's code, so a verify step cannot agree with a bug it shares with
what it checks. Tokens and passwords are never printed.

  probe.py env STATE_DIR               the variables the sandbox's env file exports
  probe.py sql STATE_DIR QUERY --target T... [--arg A...]
                                       {T: rows of QUERY (%s placeholders) as the master user}
  probe.py login STATE_DIR --target T... --user U... [--role-arn ARN] [--tag KEY=VALUE...]
                                       {T: {U: {"user": current_user} or {"refused": driver error}}}
                                       after a login with a fresh IAM token, as the role when given
  probe.py rds STATE_DIR --target T...  {T: IAM flag, resource id, parameter group and its values}
  probe.py policy NAME...              {NAME: a managed policy's document and who it is attached to}
  probe.py role NAME [--create]        a role anyone in the account may assume (its ARN)
  probe.py group NAME [--create]       an IAM group

Targets are identifiers from <STATE_DIR>/inventory.yml (sbx-postgres, sbx-aurora-pg,
sbx-mariadb, sbx-mysql); one run reads many, since each run costs a Python start.
"""
import argparse
import json
import os
import shlex
import sys

import boto3
import yaml

# The scenarios run from the repository root (create.yml starts their sandbox there), three levels up.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, REPO_ROOT)

from sandbox import reference_client  # noqa: E402  pylint: disable=wrong-import-position


def sandbox_env(state_dir):
    """The `export NAME=VALUE` lines of <state_dir>/env, unquoted as the shell would."""
    variables = {}
    with open(os.path.join(state_dir, "env"), encoding="utf-8") as handle:
        for line in handle:
            words = shlex.split(line, comments=True)
            if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                name, value = words[1].split("=", 1)
                variables[name] = value
    return variables


def sandbox_target(state_dir, identifier):
    with open(os.path.join(state_dir, "inventory.yml"), encoding="utf-8") as handle:
        hosts = yaml.safe_load(handle)["all"]["children"]["sandbox"]["hosts"]
    if identifier not in hosts:
        raise SystemExit(f"probe: no target {identifier!r} in {state_dir}/inventory.yml (there are {', '.join(sorted(hosts))})")
    return hosts[identifier]


def run_sql(state_dir, identifier, query, args):
    target = sandbox_target(state_dir, identifier)
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=target["master_user_secret_arn"])
    master = json.loads(secret["SecretString"])
    conn = reference_client.connect(target, master["username"], master["password"], target["ca_cert"], autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(query, args or None)
            rows = cur.fetchall() if cur.description else []
    finally:
        conn.close()
    return [list(row) for row in rows]


def token_login(state_dir, identifier, db_user, role_arn=None, tags=None):
    """Log in as db_user with a token botocore signs, as the role when given, else as the environment's principal."""
    target = sandbox_target(state_dir, identifier)
    session = boto3.Session()
    if role_arn:
        keys = reference_client.assume_role(session.client("sts"), role_arn, "molecule-verify", session_tags=tags)
    else:
        keys = reference_client.session_credentials(session)
    token = reference_client.mint_token(keys, target["endpoint"], target["port"], db_user, region=target["region"])
    try:
        conn = reference_client.connect(target, db_user, token, target["ca_cert"], autocommit=True)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        return {"refused": " ".join(str(exc).split())[:500]}
    try:
        return {"user": reference_client.current_user(conn, target)}
    finally:
        conn.close()


def _parameters(pages, key):
    """Every parameter that has a value, whoever set it (a default that already holds the wanted value is kept)."""
    return {parameter["ParameterName"]: parameter["ParameterValue"]
            for page in pages for parameter in page[key] if "ParameterValue" in parameter}


def rds_state(state_dir, identifier):
    target = sandbox_target(state_dir, identifier)
    rds = boto3.client("rds", region_name=target["region"])
    if target["kind"] == "cluster":
        cluster = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
        group = cluster["DBClusterParameterGroup"]
        pages = rds.get_paginator("describe_db_cluster_parameters").paginate(DBClusterParameterGroupName=group)
        return {"iam_auth": cluster["IAMDatabaseAuthenticationEnabled"], "resource_id": cluster["DbClusterResourceId"],
                "parameter_group": group, "parameters": _parameters(pages, "Parameters")}
    instance = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    group = instance["DBParameterGroups"][0]["DBParameterGroupName"]
    pages = rds.get_paginator("describe_db_parameters").paginate(DBParameterGroupName=group)
    return {"iam_auth": instance["IAMDatabaseAuthenticationEnabled"], "resource_id": instance["DbiResourceId"],
            "parameter_group": group, "parameters": _parameters(pages, "Parameters")}


def managed_policy(name):
    iam = boto3.client("iam")
    account = boto3.client("sts").get_caller_identity()["Account"]
    arn = f"arn:aws:iam::{account}:policy/{name}"
    try:
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
    except iam.exceptions.NoSuchEntityException:
        return {"exists": False, "arn": arn}
    version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
    document = version["Document"]
    entities = iam.list_entities_for_policy(PolicyArn=arn)
    return {"exists": True, "arn": arn, "document": json.loads(document) if isinstance(document, str) else document,
            "roles": sorted(entry["RoleName"] for entry in entities["PolicyRoles"]),
            "users": sorted(entry["UserName"] for entry in entities["PolicyUsers"]),
            "groups": sorted(entry["GroupName"] for entry in entities["PolicyGroups"])}


def iam_role(name, create):
    iam = boto3.client("iam")
    try:
        return {"arn": iam.get_role(RoleName=name)["Role"]["Arn"], "created": False}
    except iam.exceptions.NoSuchEntityException:
        if not create:
            return {"arn": None, "created": False}
    account = boto3.client("sts").get_caller_identity()["Account"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                                                     "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
    return {"arn": iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"], "created": True}


def iam_group(name, create):
    iam = boto3.client("iam")
    try:
        return {"arn": iam.get_group(GroupName=name)["Group"]["Arn"], "created": False}
    except iam.exceptions.NoSuchEntityException:
        if not create:
            return {"arn": None, "created": False}
    return {"arn": iam.create_group(GroupName=name)["Group"]["Arn"], "created": True}


def _tag(text):
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="probe.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("env").add_argument("state_dir")
    sql = commands.add_parser("sql")
    sql.add_argument("state_dir")
    sql.add_argument("query")
    sql.add_argument("--target", action="append", required=True)
    sql.add_argument("--arg", action="append", default=[])
    login = commands.add_parser("login")
    login.add_argument("state_dir")
    login.add_argument("--target", action="append", required=True)
    login.add_argument("--user", action="append", required=True)
    login.add_argument("--role-arn")
    login.add_argument("--tag", type=_tag, action="append", default=[])
    rds = commands.add_parser("rds")
    rds.add_argument("state_dir")
    rds.add_argument("--target", action="append", required=True)
    commands.add_parser("policy").add_argument("names", nargs="+")
    for kind in ("role", "group"):
        entity = commands.add_parser(kind)
        entity.add_argument("name")
        entity.add_argument("--create", action="store_true")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.command == "env":
        result = sandbox_env(args.state_dir)
    elif args.command == "sql":
        result = {target: run_sql(args.state_dir, target, args.query, args.arg) for target in args.target}
    elif args.command == "login":
        result = {target: {user: token_login(args.state_dir, target, user, args.role_arn, dict(args.tag)) for user in args.user}
                  for target in args.target}
    elif args.command == "rds":
        result = {target: rds_state(args.state_dir, target) for target in args.target}
    elif args.command == "policy":
        result = {name: managed_policy(name) for name in args.names}
    elif args.command == "role":
        result = iam_role(args.name, args.create)
    else:
        result = iam_group(args.name, args.create)
    json.dump(result, sys.stdout, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
