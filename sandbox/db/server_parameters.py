"""Make the sandbox's real servers follow the RDS parameters moto holds for their targets.

On RDS a parameter takes effect in the database itself: `rds.force_ssl=1` refuses plaintext
PostgreSQL logins, `require_secure_transport=ON` refuses plaintext MySQL/MariaDB logins,
`rds.restrict_password_commands=1` (static: only after a reboot) refuses password changes from
roles outside rds_password. The moto shims (sandbox/aws/shims_rds_params.py) call `apply_safely`
when a target "reboots" (with every value) or a dynamic value is applied immediately (with the
dynamic ones only), so a test sees the effect on a real login or statement, not only the API
call. Only parameters the sandbox can show are applied; everything else is moto's business.

It runs inside the moto process, which finds the sandbox state through $RDSIAM_SANDBOX_STATE_DIR.
"""
import os
import sys
import time
import traceback

from sandbox.db import password_commands
from sandbox.db.mariadb import MariaDbServer
from sandbox.network import SandboxError
from sandbox.db.postgres import PostgresServer

_RELOAD_TIMEOUT = 10.0


def _load_state():
    from sandbox.lifecycle import load_state

    state_dir = os.environ.get("RDSIAM_SANDBOX_STATE_DIR")
    return load_state(state_dir) if state_dir else None


def server_entry(state, identifier):
    """The server entry standing in for an instance, a cluster, or a cluster's member instance; None if not ours."""
    for target in state.get("targets", []):
        if identifier == target["identifier"] or identifier in target.get("members", []):
            return next((entry for entry in state["servers"] if entry["identifier"] == target["identifier"]), None)
    return None


def _truthy(value):
    return str(value).strip().lower() in ("1", "on", "true")


def _plaintext_refused(entry):
    """Whether the PostgreSQL server now turns away a plaintext TCP login before asking for a password."""
    import psycopg2

    try:
        psycopg2.connect(host=entry["host"], port=entry["port"], user="rdsadmin", password="probe-only", dbname="postgres",
                         sslmode="disable", connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        return "no encryption" in str(exc)
    return False


def apply_postgres(entry, programs, values):
    """rds.force_ssl -> pg_hba.conf and a reload; rds.restrict_password_commands -> a restart with the new setting."""
    server = PostgresServer(entry["identifier"], entry["directory"], entry["host"], entry["port"], entry["os_user"], programs)
    if "rds.force_ssl" in values:
        _apply_force_ssl(server, entry, _truthy(values["rds.force_ssl"]))
    if password_commands.PARAMETER in values:
        try:
            server.set_restrict_password_commands(_truthy(values[password_commands.PARAMETER]))
        except password_commands.Unavailable as exc:
            # The reboot itself succeeded; the server's own log says what it does not enforce.
            with open(server.log, "a", encoding="utf-8") as log:
                log.write(f"sandbox: {exc}\n")
            raise


def _apply_force_ssl(server, entry, force_ssl):
    server.write_hba(force_ssl)
    server.reload()
    # A reload is a signal; the new rules apply a moment later. Return once they do, so the
    # caller's next login sees them.
    deadline = time.monotonic() + _RELOAD_TIMEOUT
    while _plaintext_refused(entry) != force_ssl:
        if time.monotonic() > deadline:
            raise SandboxError(f"{entry['identifier']}: rds.force_ssl={int(force_ssl)} not in effect {_RELOAD_TIMEOUT:.0f} s after reload")
        time.sleep(0.05)


def apply_mariadb(entry, programs, values):
    """require_secure_transport -> SET GLOBAL over the admin socket (dynamic on RDS too)."""
    if "require_secure_transport" not in values:
        return
    server = MariaDbServer(entry["identifier"], entry["directory"], entry["host"], entry["port"], entry["os_user"], programs)
    server.admin_password = entry.get("admin_password")
    conn = server.admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL require_secure_transport = %s", ("ON" if _truthy(values["require_secure_transport"]) else "OFF",))
    finally:
        conn.close()


def apply(identifier, values, state=None):
    """Apply values (parameter name -> value) to the server behind identifier; returns whether there is one."""
    state = state if state is not None else _load_state()
    entry = server_entry(state, identifier) if state else None
    if entry is None:
        return False
    apply_one = apply_postgres if entry["server_kind"] == "postgres" else apply_mariadb
    apply_one(entry, state.get("programs") or {}, values)
    return True


def apply_safely(identifier, values):
    """apply(), with failures written to the moto log: the RDS call itself succeeded either way."""
    try:
        apply(identifier, values)
    except Exception:  # pylint: disable=broad-except
        print(f"sandbox: applying parameters to {identifier} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
