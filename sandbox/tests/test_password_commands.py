"""rds.restrict_password_commands on the sandbox's own PostgreSQL servers: the library is built from
Debian's headers once, loaded on every server that can have it, off until a restart turns it on,
and then refuses password changes from roles outside rds_password as RDS does; a server that cannot
have it says so when asked to enforce it.

The servers here are private to this module (their own pool), since a test restarts them.
"""
import os
import uuid

import psycopg2
import pytest
from psycopg2 import sql

from sandbox import prereqs
from sandbox.db import password_commands, server_headers, server_parameters, sql_servers

RDS_MESSAGE = "must be a member of rds_password to alter passwords"
# Debian's 15 and the majors a pinned wheel has headers for; the others run without the library.
MAJORS_WITH_LIBRARY = [major for major in sql_servers.MAJORS
                       if major == sql_servers.postgres_builds.DEBIAN_MAJOR or major in server_headers.PYPI_POSTGRES_HEADERS]
MAJORS_WITHOUT_LIBRARY = [major for major in sql_servers.MAJORS if major not in MAJORS_WITH_LIBRARY]


@pytest.fixture(scope="module")
def servers():
    pool = sql_servers.SqlServerPool()
    try:
        yield pool
    finally:
        pool.close()


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def connect(server, user, password):
    conn = psycopg2.connect(host=server.endpoint, hostaddr=server.host, port=server.port, user=user, password=password,
                            dbname="postgres", sslmode="verify-full", sslrootcert=server.ca_cert)
    conn.autocommit = True
    return conn


def execute(conn, statement, *params):
    with conn.cursor() as cur:
        cur.execute(statement, params or None)
        return cur.fetchall() if cur.description else None


def refusal(conn, statement, *params):
    """The error a statement fails with (SQLSTATE, message); fails the test if it succeeds."""
    with pytest.raises(psycopg2.Error) as failed:
        execute(conn, statement, *params)
    return failed.value.pgcode, failed.value.pgerror.splitlines()[0]


def _backend(server):
    return server._server  # pylint: disable=protected-access  # the PostgresServer, to restart it


# --- the build --------------------------------------------------------------------------------

@pytest.mark.parametrize("major", MAJORS_WITH_LIBRARY)
def test_the_library_is_built_once_per_server_headers_and_reused(major):
    postgres, gcc = sql_servers.postgres_builds.programs_for_major(major)["postgres"], prereqs.find_programs(("gcc",))["gcc"]
    first, _ = password_commands.build_library(postgres, gcc)
    again, built = password_commands.build_library(postgres, gcc)
    assert (again, built) == (first, False)
    if major == sql_servers.postgres_builds.DEBIAN_MAJOR:
        package, version = server_headers.debian_package_of(postgres)
        # Keyed by the server's exact Debian version: an upgraded server gets a library built against its own headers.
        assert f"{package.replace('postgresql-', 'postgresql-server-dev-')}-{server_headers.safe_version(version)}-" in first
    else:
        project, version, _, _ = server_headers.PYPI_POSTGRES_HEADERS[major]
        assert f"pg{major}-{project}-{version}-" in first


def test_a_major_without_headers_is_unavailable_naming_it(tmp_path):
    postgres = tmp_path / "postgres"  # not Debian's, and of a major no pinned wheel covers
    postgres.write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 16.14'\n", encoding="utf-8")
    postgres.chmod(0o755)
    with pytest.raises(password_commands.Unavailable, match="no server headers exist here for PostgreSQL 16"):
        password_commands.build_library(str(postgres), "gcc")


# --- majors with the library: enforced -----------------------------------------------------------

@pytest.fixture(scope="module", params=MAJORS_WITH_LIBRARY)
def enforcing(servers, request):
    server = servers.get(request.param)
    master = server.master_connection()
    ops, ops_password = unique("ops"), uuid.uuid4().hex
    # A role that may create and alter roles but is not a member of rds_password.
    execute(master, sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD %s").format(sql.Identifier(ops)), ops_password)
    master.close()
    yield server, ops, ops_password
    _backend(server).set_restrict_password_commands(False)


def test_the_library_is_loaded_and_off_until_a_restart_turns_it_on(enforcing):
    server, ops, ops_password = enforcing
    conn = server.superuser_connection()
    try:
        preload, = execute(conn, "SHOW shared_preload_libraries")[0]
        assert preload.endswith("/" + password_commands.LIBRARY_FILE)
        assert execute(conn, "SHOW rds.restrict_password_commands") == [("off",)]
        with pytest.raises(psycopg2.Error, match="cannot be changed without restarting the server"):
            execute(conn, "SET rds.restrict_password_commands = on")
    finally:
        conn.close()
    ops_conn = connect(server, ops, ops_password)
    try:
        execute(ops_conn, sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(ops)), ops_password)
    finally:
        ops_conn.close()


def test_on_it_refuses_every_password_command_from_a_role_outside_rds_password(enforcing):
    server, ops, ops_password = enforcing
    assert _backend(server).set_restrict_password_commands(True) is True
    assert _backend(server).set_restrict_password_commands(True) is False  # unchanged: no restart
    target = unique("target")
    conn = connect(server, ops, ops_password)
    try:
        execute(conn, sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(target)))  # no password: allowed
        name = sql.Identifier(target)
        for statement in (sql.SQL("ALTER ROLE {} PASSWORD 'x-1'").format(name),
                          sql.SQL("ALTER USER {} ENCRYPTED PASSWORD 'x-2'").format(name),
                          sql.SQL("ALTER ROLE {} PASSWORD NULL").format(name),
                          sql.SQL("ALTER ROLE {} VALID UNTIL 'infinity'").format(name),
                          sql.SQL("ALTER ROLE {} PASSWORD 'x-3'").format(sql.Identifier(ops)),
                          sql.SQL("CREATE ROLE {} PASSWORD 'x-4'").format(sql.Identifier(unique("made"))),
                          sql.SQL("CREATE USER {} VALID UNTIL '2100-01-01'").format(sql.Identifier(unique("made")))):
            assert refusal(conn, statement) == ("42501", f"ERROR:  {RDS_MESSAGE}"), statement
        # Inside a function the statement reaches the same hook.
        do_block = sql.SQL("DO $$ BEGIN EXECUTE 'ALTER ROLE {} PASSWORD ''x-5'''; END $$").format(name)
        assert refusal(conn, do_block) == ("42501", f"ERROR:  {RDS_MESSAGE}")
    finally:
        conn.close()


def test_on_the_master_rds_password_members_and_rdsadmin_still_change_passwords(enforcing):
    """From 16 the master reaches rds_password only through rds_superuser's ADMIN-only grant: it passes all the same."""
    server, ops, _ = enforcing
    _backend(server).set_restrict_password_commands(True)
    member, member_password, made = unique("pwadmin"), uuid.uuid4().hex, unique("made")
    master = server.master_connection()
    try:
        name = sql.Identifier(member)
        execute(master, sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD %s VALID UNTIL 'infinity'").format(name), member_password)
        execute(master, sql.SQL("GRANT rds_password TO {}").format(name))
        execute(master, sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(server.master_user)), server.master_password)
    finally:
        master.close()
    conn = connect(server, member, member_password)
    try:
        execute(conn, sql.SQL("CREATE ROLE {} PASSWORD %s VALID UNTIL 'infinity'").format(sql.Identifier(made)), uuid.uuid4().hex)
        execute(conn, sql.SQL("ALTER ROLE {} VALID UNTIL '2100-01-01' PASSWORD %s").format(sql.Identifier(made)), uuid.uuid4().hex)
    finally:
        conn.close()
    admin = server.superuser_connection()
    try:
        execute(admin, sql.SQL("ALTER ROLE {} VALID UNTIL 'infinity'").format(sql.Identifier(ops)))
    finally:
        admin.close()


def test_off_again_after_a_restart_lifts_it(enforcing):
    server, ops, ops_password = enforcing
    _backend(server).set_restrict_password_commands(True)
    assert _backend(server).set_restrict_password_commands(False) is True
    conn = connect(server, ops, ops_password)
    try:
        execute(conn, sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(ops)), ops_password)
        assert execute(conn, "SHOW rds.restrict_password_commands") == [("off",)]
    finally:
        conn.close()


# --- majors without the library: said so -------------------------------------------------------------

@pytest.mark.parametrize("major", MAJORS_WITHOUT_LIBRARY)
def test_a_major_without_the_library_says_so_when_asked_to_enforce_it(servers, major):
    server = servers.get(major)
    backend = _backend(server)
    with pytest.raises(password_commands.Unavailable) as refused:
        backend.set_restrict_password_commands(True)
    assert str(refused.value).startswith(f"pg{major}: {password_commands.PARAMETER}=1 cannot be enforced: ")
    assert "no server headers" in str(refused.value)
    assert not password_commands.current_setting(backend.data)
    assert not os.path.exists(os.path.join(backend.directory, "lib", password_commands.LIBRARY_FILE))
    # What a reboot with the parameter at 1 does there: the server's own log says it, and so does the error.
    entry = {"identifier": backend.name, "directory": backend.directory, "host": backend.host, "port": backend.port,
             "os_user": backend.os_user}
    with pytest.raises(password_commands.Unavailable):
        server_parameters.apply_postgres(entry, backend.programs, {password_commands.PARAMETER: "1"})
    with open(backend.log, encoding="utf-8") as log:
        assert f"sandbox: {refused.value}" in log.read()
    conn = server.superuser_connection()  # still up, as it was
    try:
        assert execute(conn, "SELECT current_setting('shared_preload_libraries')") == [("",)]
    finally:
        conn.close()
