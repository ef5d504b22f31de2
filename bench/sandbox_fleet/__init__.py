"""A fleet of real database servers in a private sandbox, for bench/fleet: 10 targets, the two playbooks that onboard users
onto it (rdsiam.auth's onboard_user and the same job with the community modules), resetting the fleet between them,
checking what each left behind, and timing (module runs counted by callback_plugins/module_run_count.py)."""
import json
import os
import subprocess
import tempfile
import time

import yaml

from community_venv import BENCH_VENV
from sandbox import fleet, lifecycle
from sandbox.pytest_plugin import Sandbox, private_state_dir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("RDSIAM_BUILD") or os.path.join(ROOT, ".build")
COLLECTIONS = os.path.join(BUILD, "collections")
CALLBACKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")

PG_GRANT_ROLE = "pg_read_all_data"
MARIADB_PRIV = "*.*:SELECT"
ROLE_NAME = "bench-fleet-app"
POLICY_PREFIX = "bench-connect-"
TAGS = {"bench": "fleet"}


def fleet_specs(per_engine=5):
    """per_engine PostgreSQL 15 instances and as many MariaDB instances."""
    pg = [fleet.TargetSpec("bench-pg-%d" % number, "instance", "postgres", "15.7", "postgres", dict(TAGS, team="pg"))
          for number in range(1, per_engine + 1)]
    maria = [fleet.TargetSpec("bench-maria-%d" % number, "instance", "mariadb", "10.11.9", "admin", dict(TAGS, team="maria"))
             for number in range(1, per_engine + 1)]
    return tuple(pg + maria)


def user_names(count):
    return ["bench_u%03d" % number for number in range(1, count + 1)]


class BenchFleet:
    """The sandbox fleet this bench starts, and what it creates and removes in it."""

    def __init__(self, state_dir=None, per_engine=5):
        self.own = not state_dir
        self.state_dir = state_dir or private_state_dir("rdsiam-bench-fleet-")
        self.specs = fleet_specs(per_engine)
        self.sandbox = None

    def __enter__(self):
        state = lifecycle.up(self.state_dir, specs=self.specs) if self.own else lifecycle.load_state(self.state_dir)
        if not state:
            raise SystemExit("no sandbox state in %s" % self.state_dir)
        self.sandbox = Sandbox(state)
        return self

    def __exit__(self, *exc):
        if self.own:
            lifecycle.down(self.state_dir, quiet=True)

    @property
    def targets(self):
        return self.sandbox.state["targets"]

    def engine_targets(self, kind):
        return [target for target in self.targets if ("postgres" in target["engine"]) == (kind == "postgres")]

    @property
    def account_id(self):
        return self.sandbox.state["operator"]["account_id"]

    def aws(self, service):
        import boto3

        return boto3.Session(region_name=self.sandbox.region, **self._keys()).client(service, endpoint_url=self.sandbox.moto_url)

    def _keys(self):
        operator = self.sandbox.state["operator"]
        return {"aws_access_key_id": operator["access_key_id"], "aws_secret_access_key": operator["secret_access_key"]}

    def trust_policy(self):
        return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"],
                                                        "Principal": {"AWS": "arn:aws:iam::%s:root" % self.account_id}}]}

    def add_subnet_group(self):
        """Every real RDS instance reports a DBSubnetGroup, and amazon.aws.rds_instance reads it; the sandbox registers
        its instances without one, which moto then leaves out, so the bench puts them in one (moto only)."""
        ec2, rds = self.aws("ec2"), self.aws("rds")
        if not rds.describe_db_subnet_groups()["DBSubnetGroups"]:
            vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
            subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.%d.0/24" % number, AvailabilityZone=self.sandbox.region + zone)
                       ["Subnet"]["SubnetId"] for number, zone in ((1, "a"), (2, "b"))]
            rds.create_db_subnet_group(DBSubnetGroupName="bench-fleet", DBSubnetGroupDescription="bench/fleet", SubnetIds=subnets)
        for target in self.targets:
            rds.modify_db_instance(DBInstanceIdentifier=target["identifier"], DBSubnetGroupName="bench-fleet", ApplyImmediately=True)

    def create_role(self):
        """The one IAM role every user's connect policy is attached to (and that proves the logins)."""
        iam = self.aws("iam")
        try:
            return iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(self.trust_policy()))["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:  # a sandbox given with --state-dir, used before
            return iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]

    # ---- admin connections (master password from the sandbox state, TLS verified with the sandbox CA) ----

    def pg_connect(self, target):
        import psycopg2

        conn = psycopg2.connect(host=target["login_host"], port=target["login_port"], user=target["master_username"],
                                password=target["master_password"], dbname="postgres", sslmode="verify-full",
                                sslrootcert=self.sandbox.ca_cert)
        conn.autocommit = True
        return conn

    def my_connect(self, target):
        import pymysql

        return pymysql.connect(host=target["login_host"], port=target["login_port"], user=target["master_username"],
                               password=target["master_password"], autocommit=True,
                               ssl={"ca": self.sandbox.ca_cert, "check_hostname": True})

    # ---- back to the starting point: no users, no policies, IAM authentication off ----

    def reset(self, names):
        for target in self.engine_targets("postgres"):
            conn = self.pg_connect(target)
            with conn.cursor() as cur:
                for name in names:
                    cur.execute('DROP ROLE IF EXISTS "%s"' % name)
            conn.close()
        for target in self.engine_targets("mariadb"):
            conn = self.my_connect(target)
            with conn.cursor() as cur:
                for name in names:
                    cur.execute("DROP USER IF EXISTS %s@'%%'", (name,))
            conn.close()
        iam = self.aws("iam")
        arns = [policy["Arn"] for page in iam.get_paginator("list_policies").paginate(Scope="Local") for policy in page["Policies"]]
        for arn in arns:
            self._delete_policy(iam, arn)
        rds = self.aws("rds")
        for target in self.targets:
            rds.modify_db_instance(DBInstanceIdentifier=target["identifier"], EnableIAMDatabaseAuthentication=False, ApplyImmediately=True)

    @staticmethod
    def _delete_policy(iam, arn):
        entities = iam.list_entities_for_policy(PolicyArn=arn)
        for role in entities["PolicyRoles"]:
            iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=arn)
        for user in entities["PolicyUsers"]:
            iam.detach_user_policy(UserName=user["UserName"], PolicyArn=arn)
        for group in entities["PolicyGroups"]:
            iam.detach_group_policy(GroupName=group["GroupName"], PolicyArn=arn)
        for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
            if not version["IsDefaultVersion"]:
                iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
        iam.delete_policy(PolicyArn=arn)

    # ---- what a run must have left behind ----

    def check(self, names):
        """Problems with the onboarded state (empty when every target and the role are as both playbooks should leave them)."""
        problems = []
        rds = self.aws("rds")
        for target in self.targets:
            db = rds.describe_db_instances(DBInstanceIdentifier=target["identifier"])["DBInstances"][0]
            if not db["IAMDatabaseAuthenticationEnabled"]:
                problems.append("%s: IAM database authentication is off" % target["identifier"])
        for target in self.engine_targets("postgres"):
            conn = self.pg_connect(target)
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_roles r WHERE r.rolname = ANY(%s) AND r.rolcanlogin"
                            " AND pg_has_role(r.oid, 'rds_iam', 'MEMBER') AND pg_has_role(r.oid, %s, 'MEMBER')", (names, PG_GRANT_ROLE))
                found = cur.fetchone()[0]
            conn.close()
            if found != len(names):
                problems.append("%s: %d of %d users log in, are in rds_iam and in %s" % (target["identifier"], found, len(names), PG_GRANT_ROLE))
        for target in self.engine_targets("mariadb"):
            conn = self.my_connect(target)
            with conn.cursor() as cur:
                cur.execute("SELECT User FROM mysql.user WHERE Host = %s AND plugin = 'AWSAuthenticationPlugin'", ("%",))
                users = {row[0] for row in cur.fetchall()} & set(names)
                selectable = 0
                for name in users:
                    cur.execute("SHOW GRANTS FOR %s@'%%'", (name,))
                    grants = " ".join(row[0] for row in cur.fetchall())
                    selectable += "GRANT SELECT ON *.*" in grants or "GRANT SELECT ON `" in grants
            conn.close()
            if len(users) != len(names) or selectable != len(names):
                problems.append("%s: %d of %d IAM users, %d with SELECT" % (target["identifier"], len(users), len(names), selectable))
        problems += self._check_policies(names)
        return problems

    def _check_policies(self, names):
        """Every user may connect to every target through the role's attached policies."""
        iam = self.aws("iam")
        allowed = set()
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=ROLE_NAME):
            for attached in page["AttachedPolicies"]:
                policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
                document = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
                if isinstance(document, str):
                    document = json.loads(document)
                statements = document["Statement"]
                for statement in statements if isinstance(statements, list) else [statements]:
                    resources = statement.get("Resource", [])
                    allowed.update([resources] if isinstance(resources, str) else resources)
        missing = ["%s@%s" % (name, target["identifier"]) for target in self.targets for name in names
                   if "arn:aws:rds-db:%s:%s:dbuser:%s/%s" % (self.sandbox.region, self.account_id, target["resource_id"], name) not in allowed]
        return ["role %s: no rds-db:connect for %d user@target pairs (first: %s)" % (ROLE_NAME, len(missing), missing[0])] if missing else []


# ---- the playbooks ----

def community_inventory(bench):
    """The 10 targets as hosts (connection local), with the admin login each community module needs."""
    groups = {}
    for target in bench.targets:
        kind = "postgres" if "postgres" in target["engine"] else "mariadb"
        groups.setdefault("fleet_" + kind, {"hosts": {}})["hosts"][target["identifier"]] = {
            "ansible_connection": "local",
            "db_login_host": target["login_host"], "db_login_port": target["login_port"],
            "db_login_user": target["master_username"], "db_login_password": target["master_password"],
        }
    return {"all": {"children": {"fleet": {"children": groups}}}}


def community_playbook(bench, names):
    """The same onboarding with the modules of the `ansible` 14.x package, one task per host and user."""
    aws_defaults = {"group/amazon.aws.aws": {"endpoint_url": bench.sandbox.moto_url, "region": bench.sandbox.region}}
    ca = bench.sandbox.ca_cert
    pg_login = {"login_host": "{{ db_login_host }}", "port": "{{ db_login_port }}", "login_user": "{{ db_login_user }}",
                "login_password": "{{ db_login_password }}", "login_db": "postgres", "ssl_mode": "verify-full", "ca_cert": ca}
    my_login = {"login_host": "{{ db_login_host }}", "login_port": "{{ db_login_port }}", "login_user": "{{ db_login_user }}",
                "login_password": "{{ db_login_password }}", "ca_cert": ca, "check_hostname": True}
    arn_prefix = "arn:aws:rds-db:%s:%s:dbuser:" % (bench.sandbox.region, bench.account_id)
    return [
        {"name": "IAM database authentication on every instance", "hosts": "fleet", "gather_facts": False,
         "module_defaults": aws_defaults,
         "tasks": [{"name": "IAM authentication", "amazon.aws.rds_instance": {
             "db_instance_identifier": "{{ inventory_hostname }}", "enable_iam_database_authentication": True,
             "apply_immediately": True}, "register": "bench_instance"}]},
        {"name": "PostgreSQL IAM users", "hosts": "fleet_postgres", "gather_facts": False, "vars": {"bench_users": names},
         "tasks": [
             {"name": "user", "community.postgresql.postgresql_user": dict(pg_login, name="{{ item }}", role_attr_flags="LOGIN"),
              "loop": "{{ bench_users }}"},
             {"name": "rds_iam and %s" % PG_GRANT_ROLE, "community.postgresql.postgresql_membership": dict(
                 pg_login, groups=["rds_iam", PG_GRANT_ROLE], target_roles=["{{ item }}"]), "loop": "{{ bench_users }}"},
         ]},
        {"name": "MariaDB IAM users", "hosts": "fleet_mariadb", "gather_facts": False, "vars": {"bench_users": names},
         "tasks": [
             # community.mysql.mysql_user in ansible 14 is a redirect to this module.
             {"name": "user", "ansible.mysql.mysql_user": dict(
                 my_login, name="{{ item }}", host="%", plugin="AWSAuthenticationPlugin", plugin_hash_string="RDS",
                 tls_requires={"SSL": None}, priv=MARIADB_PRIV), "loop": "{{ bench_users }}"},
         ]},
        {"name": "rds-db:connect policies", "hosts": "localhost", "gather_facts": False, "module_defaults": aws_defaults,
         "vars": {"bench_users": names,
                  "bench_arn_prefixes": "{{ groups['fleet'] | map('extract', hostvars, ['bench_instance', 'dbi_resource_id'])"
                                        " | map('regex_replace', '^', '%s') | list }}" % arn_prefix},
         "tasks": [
             {"name": "policy per user", "amazon.aws.iam_managed_policy": {
                 "name": POLICY_PREFIX + "{{ item }}",
                 "policy": {"Version": "2012-10-17", "Statement": [{
                     "Effect": "Allow", "Action": "rds-db:connect",
                     "Resource": "{{ bench_arn_prefixes | product(['/' ~ item]) | map('join') | list }}"}]}},
              "loop": "{{ bench_users }}"},
             {"name": "attach to the role", "amazon.aws.iam_role": {
                 "name": ROLE_NAME, "assume_role_policy_document": json.dumps(bench.trust_policy()),
                 "managed_policies": "{{ bench_users | map('regex_replace', '^', '%s') | list }}" % POLICY_PREFIX,
                 "purge_policies": False, "create_instance_profile": False}},
         ]},
    ]


def ours_vars(bench, names, role_arn, verify):
    """<state>/vars.yml (AWS endpoint, login overrides, CA) plus the users, grants and principals."""
    with open(os.path.join(bench.state_dir, "vars.yml"), encoding="utf-8") as handle:
        values = yaml.safe_load(handle)
    values.update(
        rdsiam_users=list(names),
        rdsiam_grants={"postgres": {"roles": [PG_GRANT_ROLE]}, "mariadb": {"privileges": MARIADB_PRIV}},
        rdsiam_principals={"roles": [ROLE_NAME]},
        rdsiam_targets={"identifiers": [target["identifier"] for target in bench.targets]},
        rdsiam_verify=verify,
    )
    if verify:
        values["rdsiam_verify_role_arn"] = role_arn
    return values


# ---- running and timing ----

def write_yaml(directory, name, data):
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path


def playbook_env(bench, python, directory):
    """ansible-playbook's environment: the private build, the bench venv's interpreter, the operator's AWS keys."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_PYTHON_INTERPRETER=python, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
               ANSIBLE_CALLBACK_PLUGINS=CALLBACKS, ANSIBLE_CALLBACKS_ENABLED="module_run_count",
               ANSIBLE_DEPRECATION_WARNINGS="False", XDG_CACHE_HOME=os.path.join(directory, "xdg-cache"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(name, None)
    env.update(bench.sandbox.aws_env())
    return env


class Run:
    """One timed ansible-playbook run: wall seconds, module runs, changed module runs, recap."""

    def __init__(self, seconds, counts, recap):
        self.seconds = seconds
        self.modules = counts.get("modules", 0)
        self.changed = counts.get("modules_changed", 0)
        self.controller = counts.get("controller", 0)
        self.by_task = counts.get("by_task", {})
        self.seconds_by_task = counts.get("seconds_by_task", {})
        self.recap = recap


def run_playbook(args, env, directory, label, forks):
    counts_path = os.path.join(directory, "counts.json")
    if os.path.exists(counts_path):
        os.unlink(counts_path)
    command = [os.path.join(BENCH_VENV, "bin", "ansible-playbook"), "-f", str(forks)] + args
    started = time.perf_counter()
    process = subprocess.run(command, env=dict(env, MODULE_RUN_COUNTS=counts_path), cwd=directory,
                             capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    log = os.path.join(directory, "%s.log" % label)
    with open(log, "w", encoding="utf-8") as handle:
        handle.write(process.stdout + process.stderr)
    if process.returncode != 0:
        raise SystemExit("%s failed (rc %d): %s\n%s\n%s" % (label, process.returncode, " ".join(command), process.stdout[-6000:],
                                                            process.stderr[-3000:]))
    with open(counts_path, encoding="utf-8") as handle:
        counts = json.load(handle)
    recap = process.stdout.split("PLAY RECAP", 1)[-1].strip()
    return Run(elapsed, counts, recap)


def noop_seconds(env, directory, forks, repeats=3):
    """ansible-playbook's fixed start-up cost, every figure includes it."""
    path = write_yaml(directory, "noop.yml", [{"hosts": "localhost", "gather_facts": False,
                                               "tasks": [{"ansible.builtin.debug": {"msg": "start-up only"}}]}])
    return min(run_playbook(["-i", "localhost,", path], env, directory, "noop", forks).seconds for _ in range(repeats))


def private_directory():
    return tempfile.TemporaryDirectory(prefix="rdsiam-bench-fleet-run-")
