"""rds.restrict_password_commands end to end: rds_iam_parameter_group sets the static parameter, and only a
reboot of the instance makes the fleet's real PostgreSQL enforce it (sandbox/db/password_commands): an IAM
user can no longer change its own password, a CREATEROLE role outside rds_password can no longer set an
expiry, the master (a member of rds_password through rds_superuser) still can; off and rebooted, it is lifted.

The fleet's servers are shared by the session: every fixture puts its target back on its original group
and reboots it, which turns the parameter off again (checked).
"""
import contextlib
import os
import secrets

import psycopg2
import pytest
from psycopg2 import sql

from sandbox.db import password_commands
from sandbox.iam_login import (admin_connection, allow_connect, connect_arn, create_db_user, delete_iam_user, drop_db_user,
                               iam_auth_set, iam_user_with_policy, mint_token)
from sandbox.reference_client import connect
from tests.integration.support.harness import run_module

RDS_MESSAGE = "must be a member of rds_password to alter passwords"


def _harden(sandbox, enabled, reboot, **target):
    result = run_module("rds_iam_parameter_group", dict(target, restrict_password_commands=enabled, reboot=reboot),
                        env=sandbox.aws_env())
    assert result.get("failed") is not True, result
    return result


def _setting(sandbox, identifier):
    """The server's rds.restrict_password_commands as its library defines it ('on'/'off'); None if no library did.

    pg_settings lists a setting only once a library defines it, unlike SHOW, which also shows a placeholder.
    """
    conn = admin_connection(sandbox, identifier)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT setting FROM pg_settings WHERE name = 'rds.restrict_password_commands' AND vartype = 'bool'")
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def _unavailable_reason(sandbox, identifier):
    path = os.path.join(sandbox.server(identifier)["directory"], "lib", password_commands.UNAVAILABLE_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return "no reason recorded"


def _execute(conn, statement, *params):
    with conn.cursor() as cur:
        cur.execute(statement, params or None)


def _refusal(conn, statement, *params):
    """(SQLSTATE, first line) of the error a statement fails with; fails the test if it succeeds."""
    with pytest.raises(psycopg2.Error) as failed:
        _execute(conn, statement, *params)
    return failed.value.pgcode, failed.value.pgerror.splitlines()[0]


class Logins:
    """On one fleet target: an IAM database user (member of rds_iam only, logs in with tokens), a CREATEROLE role
    outside rds_password (`ops`, password login) and a role both may change; the master is the target's own."""

    def __init__(self, sandbox, identifier):
        self.sandbox, self.identifier = sandbox, identifier
        suffix = secrets.token_hex(3)
        self.iam_user, self.ops, self.other = f"rpc_iam_{suffix}", f"rpc_ops_{suffix}", f"rpc_other_{suffix}"
        self.iam_principal = f"rpc-{identifier}-{suffix}"
        self.ops_password = secrets.token_urlsafe(18)
        create_db_user(sandbox, identifier, self.iam_user)
        with self.master() as conn:
            _execute(conn, sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD %s").format(sql.Identifier(self.ops)), self.ops_password)
            _execute(conn, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(self.other)))
        self.keys = iam_user_with_policy(sandbox, self.iam_principal, allow_connect(connect_arn(sandbox, identifier, self.iam_user)))

    def master(self):
        return contextlib.closing(admin_connection(self.sandbox, self.identifier))

    def as_iam_user(self):
        target = self.sandbox.target(self.identifier)
        token = mint_token(self.keys, target, self.iam_user)
        return contextlib.closing(connect(target, self.iam_user, token, self.sandbox.ca_cert, autocommit=True))

    def as_ops(self):
        target = self.sandbox.target(self.identifier)
        return contextlib.closing(connect(target, self.ops, self.ops_password, self.sandbox.ca_cert, autocommit=True))

    def drop(self):
        delete_iam_user(self.sandbox, self.iam_principal)
        for role in (self.iam_user, self.ops, self.other):
            drop_db_user(self.sandbox, self.identifier, role)


def _password(conn, role):
    _execute(conn, sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(role)), secrets.token_urlsafe(18))


def _valid_until(conn, role):
    _execute(conn, sql.SQL("ALTER ROLE {} VALID UNTIL 'infinity'").format(sql.Identifier(role)))


def _assert_refused(conn, statement, *params):
    assert _refusal(conn, statement, *params) == ("42501", f"ERROR:  {RDS_MESSAGE}")


@pytest.fixture
def sbx_postgres(sandbox, rds):
    """sbx-postgres with IAM auth on and the logins above; afterwards back on its group, rebooted, and unrestricted."""
    identifier = "sbx-postgres"
    assert _setting(sandbox, identifier) == "off", _unavailable_reason(sandbox, identifier)
    original = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBParameterGroups"][0]["DBParameterGroupName"]
    with iam_auth_set(sandbox, [identifier]):
        logins = Logins(sandbox, identifier)
        try:
            yield logins
        finally:
            current = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBParameterGroups"][0]
            rds.modify_db_instance(DBInstanceIdentifier=identifier, DBParameterGroupName=original, ApplyImmediately=True)
            rds.reboot_db_instance(DBInstanceIdentifier=identifier)
            rds.describe_db_instances(DBInstanceIdentifier=identifier)
            if current["DBParameterGroupName"] != original:
                rds.delete_db_parameter_group(DBParameterGroupName=current["DBParameterGroupName"])
            logins.drop()
    assert _setting(sandbox, identifier) == "off"


def test_the_parameter_restricts_password_commands_only_after_a_reboot(sandbox, rds, sbx_postgres):
    logins, target = sbx_postgres, {"db_instance_identifier": sbx_postgres.identifier}
    with logins.as_iam_user() as conn:
        _password(conn, logins.iam_user)  # RDS's default: anyone may change their own password
    with logins.as_ops() as conn:
        _valid_until(conn, logins.other)

    pending = _harden(sandbox, True, False, **target)
    assert pending["changed"] is True and pending["pending_reboot"] is True, pending
    assert "rds.restrict_password_commands" in pending["pending_reboot_parameters"], pending
    # Static: the server keeps running with the old value until the instance reboots.
    assert _setting(sandbox, logins.identifier) == "off"
    with logins.as_iam_user() as conn:
        _password(conn, logins.iam_user)

    rebooted = _harden(sandbox, True, True, **target)
    assert rebooted["rebooted"] == [logins.identifier] and rebooted["pending_reboot"] is False, rebooted
    assert _setting(sandbox, logins.identifier) == "on"
    with logins.as_iam_user() as conn:
        _assert_refused(conn, sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(logins.iam_user)), secrets.token_urlsafe(18))
        _assert_refused(conn, sql.SQL("ALTER USER {} ENCRYPTED PASSWORD %s").format(sql.Identifier(logins.iam_user)),
                        secrets.token_urlsafe(18))
    with logins.as_ops() as conn:
        _assert_refused(conn, sql.SQL("ALTER ROLE {} VALID UNTIL 'infinity'").format(sql.Identifier(logins.other)))
        _assert_refused(conn, sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(logins.other + "_new")),
                        secrets.token_urlsafe(18))
    with logins.master() as conn:
        _password(conn, logins.other)
        _valid_until(conn, logins.other)
        _execute(conn, sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(logins.ops)), logins.ops_password)

    lifted = _harden(sandbox, False, True, **target)
    assert lifted["changed"] is True and lifted["rebooted"] == [logins.identifier], lifted
    assert _setting(sandbox, logins.identifier) == "off"
    with logins.as_iam_user() as conn:
        _password(conn, logins.iam_user)


def test_the_master_and_the_iam_user_are_told_apart_by_rds_password_membership(sandbox, sbx_postgres):
    """The master is no superuser: it passes because rds_superuser holds rds_password, as on RDS."""
    logins = sbx_postgres
    with logins.master() as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False,)
            cur.execute("SELECT pg_has_role(current_user, 'rds_password', 'MEMBER'), pg_has_role(%s, 'rds_password', 'MEMBER')",
                        (logins.iam_user,))
            assert cur.fetchone() == (True, False)
    _harden(sandbox, True, True, db_instance_identifier=logins.identifier)
    with logins.master() as conn:
        _password(conn, logins.iam_user)
    with logins.as_iam_user() as conn:
        _assert_refused(conn, sql.SQL("ALTER ROLE {} VALID UNTIL 'infinity'").format(sql.Identifier(logins.iam_user)))


@pytest.fixture
def sbx_aurora_pg(sandbox, rds):
    """The fleet's Aurora PostgreSQL cluster with the logins above; afterwards back on its cluster group, its members rebooted."""
    cluster = "sbx-aurora-pg"
    assert _setting(sandbox, cluster) == "off", _unavailable_reason(sandbox, cluster)
    original = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["DBClusterParameterGroup"]
    logins = Logins(sandbox, cluster)
    try:
        yield logins
    finally:
        described = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
        rds.modify_db_cluster(DBClusterIdentifier=cluster, DBClusterParameterGroupName=original, ApplyImmediately=True)
        for member in described["DBClusterMembers"]:
            rds.reboot_db_instance(DBInstanceIdentifier=member["DBInstanceIdentifier"])
        rds.describe_db_clusters(DBClusterIdentifier=cluster)
        if described["DBClusterParameterGroup"] != original:
            rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=described["DBClusterParameterGroup"])
        logins.drop()
    assert _setting(sandbox, cluster) == "off"


def test_on_aurora_the_cluster_group_decides_once_its_members_reboot(sandbox, sbx_aurora_pg):
    logins = sbx_aurora_pg
    pending = _harden(sandbox, True, False, db_cluster_identifier=logins.identifier)
    assert pending["parameter_group"]["level"] == "cluster" and pending["pending_reboot"] is True, pending
    assert _setting(sandbox, logins.identifier) == "off"

    rebooted = _harden(sandbox, True, True, db_cluster_identifier=logins.identifier)
    assert rebooted["rebooted"] and rebooted["pending_reboot"] is False, rebooted
    assert _setting(sandbox, logins.identifier) == "on"
    with logins.as_ops() as conn:
        _assert_refused(conn, sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(logins.other)), secrets.token_urlsafe(18))
    with logins.master() as conn:
        _password(conn, logins.other)
