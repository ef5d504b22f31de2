"""The sandbox as the collection's tests rely on it: the fleet in moto, the servers, the files."""
import json
import os
import ssl
import stat
import urllib.error
import urllib.request

import psycopg2
import pymysql
import pytest
import yaml

from sandbox import fleet, lifecycle
from sandbox.network import SandboxError, port_open
from sandbox.tests import leftovers


def _pg_connect(sandbox, target, sslmode="verify-full", password=None, **extra):
    params = dict(host=target["endpoint"], hostaddr=target["login_host"], port=target["login_port"],
                  user=target["master_username"], password=password or target["master_password"], dbname="postgres",
                  sslmode=sslmode, sslrootcert=sandbox.ca_cert, connect_timeout=5)
    params.update(extra)
    return psycopg2.connect(**params)


def _mysql_tls_context(sandbox):
    context = ssl.create_default_context(cafile=sandbox.ca_cert)
    context.check_hostname = True
    return context


def _mysql_connect(target, user=None, password=None, **tls):
    return pymysql.connect(host=target["login_host"], port=target["login_port"], user=user or target["master_username"],
                           password=password if password is not None else target["master_password"], connect_timeout=5,
                           **tls)


def test_moto_lists_the_registered_fleet_with_distinct_resource_ids(sandbox):
    rds = sandbox.moto().client("rds")
    instances = {db["DBInstanceIdentifier"]: db for db in rds.describe_db_instances()["DBInstances"]}
    clusters = {c["DBClusterIdentifier"]: c for c in rds.describe_db_clusters()["DBClusters"]}
    assert {ident: db["Engine"] for ident, db in instances.items()} == {
        "sbx-postgres": "postgres", "sbx-aurora-pg-1": "aurora-postgresql", "sbx-mariadb": "mariadb", "sbx-mysql": "mysql"}
    assert list(clusters) == ["sbx-aurora-pg"]
    assert [m["DBInstanceIdentifier"] for m in clusters["sbx-aurora-pg"]["DBClusterMembers"]] == ["sbx-aurora-pg-1"]
    resource_ids = [db["DbiResourceId"] for db in instances.values()] + [clusters["sbx-aurora-pg"]["DbClusterResourceId"]]
    assert len(set(resource_ids)) == 5
    assert {t["Key"]: t["Value"] for t in instances["sbx-mariadb"]["TagList"]} == {"env": "prod", "team": "data"}
    for target in sandbox.state["targets"]:
        described = clusters.get(target["identifier"]) or instances[target["identifier"]]
        assert described.get("DbClusterResourceId", described.get("DbiResourceId")) == target["resource_id"]


def test_master_passwords_come_from_each_targets_managed_secret(sandbox):
    secretsmanager = sandbox.moto().client("secretsmanager")
    passwords = set()
    for target in sandbox.state["targets"]:
        secret = json.loads(secretsmanager.get_secret_value(SecretId=target["secret_arn"])["SecretString"])
        assert (secret["username"], secret["password"]) == (target["master_username"], target["master_password"])
        passwords.add(secret["password"])
    assert len(passwords) == len(sandbox.state["targets"])


@pytest.mark.parametrize("identifier", ["sbx-postgres", "sbx-aurora-pg"])
def test_postgres_accepts_verify_full_tls_for_its_endpoint_name(sandbox, identifier):
    target = sandbox.target(identifier)
    conn = _pg_connect(sandbox, target)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == (target["master_username"], True)
            cur.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('rds_iam', 'rds_superuser') ORDER BY 1")
            assert cur.fetchall() == [("rds_iam", False), ("rds_superuser", False)]
            cur.execute("SELECT rolsuper, pg_has_role(current_user, 'rds_superuser', 'MEMBER') FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False, True)  # like RDS: the master user is not a superuser
    finally:
        conn.close()


def test_postgres_refuses_plaintext_like_rds_force_ssl(sandbox):
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        _pg_connect(sandbox, sandbox.target("sbx-postgres"), sslmode="disable", host="127.0.0.1")


def test_postgres_certificate_fails_verification_for_another_name(sandbox):
    target = sandbox.target("sbx-postgres")
    with pytest.raises(psycopg2.OperationalError, match="does not match host name"):
        _pg_connect(sandbox, target, host="other-db.aaaaaaaaaa.us-east-1.rds.amazonaws.com")


def test_postgres_refuses_a_wrong_password(sandbox):
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        _pg_connect(sandbox, sandbox.target("sbx-postgres"), password="not-the-secret")


@pytest.mark.parametrize("identifier", ["sbx-mariadb", "sbx-mysql"])
def test_mariadb_accepts_verified_tls(sandbox, identifier):
    target = sandbox.target(identifier)
    conn = _mysql_connect(target, ssl=_mysql_tls_context(sandbox))
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            assert cur.fetchone()[1].startswith("TLSv1.")
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone()[0] == f"{target['master_username']}@%"
    finally:
        conn.close()


def test_mariadb_refuses_plaintext_for_require_ssl_users(sandbox):
    target = sandbox.target("sbx-mariadb")
    admin = _mysql_connect(target, ssl=_mysql_tls_context(sandbox))
    try:
        with admin.cursor() as cur:
            cur.execute("CREATE USER 'tls_only'@'%' IDENTIFIED BY 'pw-123456' REQUIRE SSL")
        with pytest.raises(pymysql.err.OperationalError) as refused:
            _mysql_connect(target, user="tls_only", password="pw-123456", ssl_disabled=True)
        assert refused.value.args[0] == 1045  # access denied, as RDS answers
        _mysql_connect(target, user="tls_only", password="pw-123456", ssl=_mysql_tls_context(sandbox)).close()
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'tls_only'@'%'")
        admin.close()


def test_mariadb_master_lacks_the_privileges_rds_withholds(sandbox):
    conn = _mysql_connect(sandbox.target("sbx-mysql"), ssl=_mysql_tls_context(sandbox))
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GRANTS")
            grants = cur.fetchone()[0]
    finally:
        conn.close()
    assert "WITH GRANT OPTION" in grants and "CREATE USER" in grants
    assert not any(f" {priv}," in grants or f" {priv} ON" in grants for priv in ("SUPER", "FILE", "SHUTDOWN"))


def test_env_and_inventory_point_at_the_sandbox(sandbox):
    env_path = os.path.join(sandbox.state_dir, "env")
    inventory_path = os.path.join(sandbox.state_dir, "inventory.yml")
    for path in (env_path, inventory_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # the env file holds a secret key
    with open(env_path, encoding="utf-8") as handle:
        exported = dict(line[len("export "):].split("=", 1) for line in handle.read().splitlines() if line.startswith("export "))
    assert exported["AWS_ENDPOINT_URL"] == sandbox.moto_url
    assert exported["AWS_REGION"] == exported["AWS_DEFAULT_REGION"] == "us-east-1"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "RDSIAM_SANDBOX_CA"} <= set(exported)
    with open(inventory_path, encoding="utf-8") as handle:
        hosts = yaml.safe_load(handle)["all"]["children"]["sandbox"]["hosts"]
    assert sorted(hosts) == ["sbx-aurora-pg", "sbx-mariadb", "sbx-mysql", "sbx-postgres"]
    aurora = hosts["sbx-aurora-pg"]
    assert aurora["endpoint"].startswith("sbx-aurora-pg.cluster-") and aurora["resource_id"].startswith("cluster-")
    assert aurora["login_host"] == "127.0.0.1" and aurora["login_port"] == aurora["port"]


def test_playbook_vars_point_the_roles_at_the_real_servers(sandbox):
    vars_path = os.path.join(sandbox.state_dir, "vars.yml")
    assert stat.S_IMODE(os.stat(vars_path).st_mode) == 0o600
    with open(vars_path, encoding="utf-8") as handle:
        playbook_vars = yaml.safe_load(handle)
    assert playbook_vars["rdsiam_aws"] == {"region": "us-east-1", "endpoint_url": sandbox.moto_url}
    assert os.path.isfile(playbook_vars["rdsiam_ca_cert"])
    overrides = playbook_vars["rdsiam_login_overrides"]
    assert sorted(overrides) == ["sbx-aurora-pg", "sbx-mariadb", "sbx-mysql", "sbx-postgres"]
    ports = {overrides[name]["login_port"] for name in overrides}
    assert len(ports) == 4 and all(override["login_host"] == "127.0.0.1" for override in overrides.values())


def test_operator_credentials_are_a_real_moto_iam_user(sandbox):
    import boto3

    env = sandbox.aws_env()
    sts = boto3.client("sts", endpoint_url=sandbox.moto_url, region_name=sandbox.region,
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{fleet.OPERATOR_USER}")


def _credentials(sandbox, access_key_id):
    with urllib.request.urlopen(f"{sandbox.moto_url}/_sandbox/credentials/{access_key_id}", timeout=10) as response:
        return json.load(response)


def test_credentials_endpoint_knows_assumed_role_keys_and_their_session_tags(sandbox):
    import boto3

    operator = sandbox.state["operator"]
    sts = boto3.client("sts", endpoint_url=sandbox.moto_url, region_name=sandbox.region,
                       aws_access_key_id=operator["access_key_id"], aws_secret_access_key=operator["secret_access_key"])
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{operator['account_id']}:root"},
                                                     "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
    iam = sandbox.moto().client("iam")
    role_arn = iam.create_role(RoleName="sbx-analyst", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    try:
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="alice", Tags=[{"Key": "userName", "Value": "alice"}])["Credentials"]
    finally:
        iam.delete_role(RoleName="sbx-analyst")
    found = _credentials(sandbox, creds["AccessKeyId"])
    assert (found["type"], found["role_arn"], found["session_name"]) == ("assumed-role", role_arn, "alice")
    assert (found["secret_access_key"], found["session_token"]) == (creds["SecretAccessKey"], creds["SessionToken"])
    assert found["session_tags"] == {"userName": "alice"}


def test_credentials_endpoint_knows_iam_user_keys_and_their_status(sandbox):
    operator = sandbox.state["operator"]
    found = _credentials(sandbox, operator["access_key_id"])
    assert (found["type"], found["user_name"], found["status"]) == ("user", fleet.OPERATOR_USER, "Active")
    assert found["secret_access_key"] == operator["secret_access_key"]
    with pytest.raises(urllib.error.HTTPError) as missing:
        _credentials(sandbox, "AKIAUNKNOWNKEY000000")
    assert missing.value.code == 404


def test_up_is_idempotent_when_running(sandbox, capsys):
    again = lifecycle.up(sandbox.state_dir)
    assert "already up" in capsys.readouterr().out
    assert again["moto"]["port"] == sandbox.state["moto"]["port"]
    assert lifecycle.unhealthy(again) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.com"])
def test_refuses_to_bind_anything_but_loopback(host, tmp_path):
    state_dir = str(tmp_path / "never-created")
    with pytest.raises(SandboxError, match="loopback"):
        lifecycle.up(state_dir, host=host)
    assert not os.path.exists(state_dir)


def test_down_leaves_no_process_port_or_file_behind(monkeypatch):
    from sandbox.pytest_plugin import private_state_dir

    # Everything that honours TMPDIR goes to a private one, so other programs writing /tmp meanwhile cannot
    # fail this test; /tmp is still checked for what ignores TMPDIR.
    private_tmp = leftovers.private_tmpdir(monkeypatch)
    tmp_before = set(os.listdir("/tmp"))
    state_dir = private_state_dir()
    assert os.path.dirname(state_dir) == private_tmp
    state = lifecycle.up(state_dir, specs=(fleet.DEFAULT_FLEET[0], fleet.DEFAULT_FLEET[2]))
    runtime = state["runtime_dir"]
    ports = [state["moto"]["port"]] + [entry["port"] for entry in state["servers"]]
    assert all(port_open("127.0.0.1", port) for port in ports)
    assert leftovers.processes_mentioning(state_dir) and leftovers.processes_mentioning(runtime)
    lifecycle.down(state_dir)
    assert not any(port_open("127.0.0.1", port) for port in ports)
    assert leftovers.processes_mentioning(state_dir) == leftovers.processes_mentioning(runtime) == []
    assert leftovers.processes_mentioning(f"sandbox.aws.moto_server 127.0.0.1 {state['moto']['port']}") == []
    assert not os.path.exists(state_dir) and not os.path.exists(runtime)
    assert os.listdir(private_tmp) == []
    os.rmdir(private_tmp)
    assert leftovers.left_in_tmp(tmp_before, runtime) == []
    assert lifecycle.down(state_dir, quiet=True) == []  # a second down is harmless


@pytest.mark.parametrize("errors, starts", [
    (["pg_ctl failed: PWRAP_ERROR - pwrap_init: Failed to create pam_wrapper config dir: /tmp/pam.E - File exists"], 2),
    ([], 1),
])
def test_postgres_start_retries_only_libpam_wrappers_directory_race(monkeypatch, errors, starts):
    from sandbox.db.postgres import PostgresServer

    server = PostgresServer("sbx-x", "/nonexistent", "127.0.0.1", 1, "postgres", {"pg_ctl": "pg_ctl"})
    calls = []

    def run(argv, env=None):
        calls.append(argv)
        if len(calls) <= len(errors):
            raise SandboxError(errors[len(calls) - 1])

    monkeypatch.setattr(server, "_run", run)
    monkeypatch.setattr("sandbox.db.postgres.wait_for_port", lambda *args, **kwargs: None)
    monkeypatch.setattr("sandbox.db.postgres.time.sleep", lambda seconds: None)
    server.start()
    assert len(calls) == starts


def test_postgres_start_does_not_retry_other_failures(monkeypatch):
    from sandbox.db.postgres import PostgresServer

    server = PostgresServer("sbx-x", "/nonexistent", "127.0.0.1", 1, "postgres", {"pg_ctl": "pg_ctl"})
    calls = []

    def run(argv, env=None):
        calls.append(argv)
        raise SandboxError("pg_ctl failed: could not bind IPv4 address")

    monkeypatch.setattr(server, "_run", run)
    with pytest.raises(SandboxError, match="could not bind"):
        server.start()
    assert len(calls) == 1
