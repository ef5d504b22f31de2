"""Bring the sandbox up, report on it and take it down again, leaving nothing behind."""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import time

from sandbox import fleet, outputs, runtime_dir
from sandbox.db import mariadb_plugin, native_build, pam
from sandbox.db.localserver import terminate
from sandbox.db.mariadb import MariaDbServer
from sandbox.network import SandboxError, free_port, port_open, require_loopback, wait_for_port
from sandbox.db.postgres import PostgresServer
from sandbox.prereqs import chown_tree, find_programs, server_os_user
from sandbox.db.tls import CertificateAuthority

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE_FILE = "sandbox.json"
_SERVER_CLASSES = {"postgres": PostgresServer, "mariadb": MariaDbServer}
_OS_USERS = {"postgres": "postgres", "mariadb": "mysql"}


def default_state_dir():
    return os.environ.get("RDSIAM_SANDBOX_STATE") or os.path.join(REPO_ROOT, "sandbox", ".state")


def default_host():
    return require_loopback(os.environ.get("RDSIAM_SANDBOX_HOST", "127.0.0.1"))


class MotoSession:
    """boto3 clients pointed at the sandbox's moto server (moto accepts any key here)."""

    def __init__(self, endpoint_url, region=fleet.REGION):
        import boto3

        self.endpoint_url = endpoint_url
        self._session = boto3.Session(aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name=region)

    def client(self, service):
        return self._session.client(service, endpoint_url=self.endpoint_url)


def load_state(state_dir):
    try:
        with open(os.path.join(state_dir, STATE_FILE), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def _save_state(state_dir, state):
    path = os.path.join(state_dir, STATE_FILE)
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds secrets
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def _server(entry, programs=None):
    cls = _SERVER_CLASSES[entry["server_kind"]]
    return cls(entry["identifier"], entry["directory"], entry["host"], entry["port"], entry["os_user"], programs or {})


def server(state, identifier):
    """The local server behind a target, to stop and start it (a target going down, in tests)."""
    entry = next(entry for entry in state["servers"] if entry["identifier"] == identifier)
    found = _server(entry, state.get("programs"))
    if isinstance(found, MariaDbServer):  # its TLS files are command-line options, known after initialise()
        found.cert_path, found.key_path, found.ca_path = _tls_paths(entry)
        found.admin_password = entry.get("admin_password")
    return found


def _start_moto(state_dir, host, port):
    log = open(os.path.join(state_dir, "moto.log"), "wb")  # pylint: disable=consider-using-with
    process = subprocess.Popen([sys.executable, "-m", "sandbox.aws.moto_server", host, str(port), state_dir], cwd=REPO_ROOT,
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    wait_for_port(host, port, "moto server", timeout=60, alive=lambda: process.poll() is None)
    return process.pid


def _os_user(spec):
    return server_os_user(_OS_USERS[spec.server_kind])


def _plan_servers(servers_root, host, specs):
    """One entry per server, each with its own directory under servers_root (the runtime directory)."""
    entries = []
    for spec in specs:
        os_user = _os_user(spec)
        directory = runtime_dir.server_directory(servers_root, spec.identifier, os_user)
        os.mkdir(os.path.join(directory, "tls"))
        entries.append({"identifier": spec.identifier, "server_kind": spec.server_kind, "directory": directory,
                        "host": host, "port": free_port(host), "os_user": os_user})
    return entries


def _register_fleet(state, specs):
    session = MotoSession(state["moto"]["endpoint_url"])
    state["operator"] = fleet.create_operator(session)
    for spec, entry in zip(specs, state["servers"]):
        target = fleet.register_target(session, spec, entry["port"])
        target.update(identifier=spec.identifier, kind=spec.kind, engine=spec.engine, members=list(spec.members),
                      tags=spec.tags, port=entry["port"], login_host=entry["host"], login_port=entry["port"])
        state["targets"].append(target)


def _tls_paths(entry):
    """The server's certificate, key and a copy of the CA certificate, in its own directory (the state
    directory, where the CA is kept for the user, may be closed to the server's account)."""
    tls = os.path.join(entry["directory"], "tls")
    return os.path.join(tls, "server.crt"), os.path.join(tls, "server.key"), os.path.join(tls, "ca.pem")


def _initialise(entry, programs):
    server = _server(entry, programs)
    cert, key, ca_copy = _tls_paths(entry)
    if entry["server_kind"] == "postgres":
        server.initialise(cert, key)
    else:
        server.initialise(cert, key, ca_copy)
    return server


VERIFY_PATH = "/_sandbox/verify"  # the verifier's route on the moto server (credentials_api.py, which imports moto)


def _build_native_parts(specs, programs):
    """The C parts this fleet needs, from the cache when nothing changed: {name: path}."""
    kinds = {spec.server_kind for spec in specs}
    built = {}
    if "postgres" in kinds:
        built["pam_module"], fresh = native_build.build_pam_module(programs["gcc"])
        if fresh:
            print(f"sandbox: built the PAM module ({built['pam_module']})", flush=True)
        built["pam_start_lock"], fresh = native_build.build_pam_start_lock(programs["gcc"])
        if fresh:
            print(f"sandbox: built the PAM start lock ({built['pam_start_lock']})", flush=True)
    if "mariadb" in kinds:
        built["mariadb_plugin"], fresh = mariadb_plugin.build_plugin(programs["mariadbd"], programs["gcc"])
        if fresh:
            print(f"sandbox: built {mariadb_plugin.PLUGIN_NAME} ({built['mariadb_plugin']})", flush=True)
    return built


def _install_iam_auth(server, native_parts, verify_url):
    """Route the server's IAM logins to the verifier: PAM for PostgreSQL, the plugin for MariaDB."""
    if isinstance(server, PostgresServer):
        server.install_iam_auth(native_parts["pam_module"], verify_url, native_parts["pam_start_lock"])
    else:
        server.install_iam_plugin(native_parts["mariadb_plugin"], verify_url)


def _start(server, target):
    server.start()
    server.bootstrap(target["master_username"], target["master_password"])
    return getattr(server, "admin_password", None)


def up(state_dir=None, host=None, specs=fleet.DEFAULT_FLEET):
    """Start moto and one database server per target; idempotent when everything is running."""
    state_dir = state_dir or default_state_dir()
    host = require_loopback(host) if host else default_host()
    started = time.monotonic()
    state = load_state(state_dir)
    if state and not unhealthy(state):
        print(f"sandbox: already up ({state_dir})")
        return state
    if state or os.path.exists(state_dir):
        down(state_dir, quiet=True)
    programs = find_programs()
    os_users = {_os_user(spec) for spec in specs}
    # The user's files only (keys, passwords, the CA): no other account needs to enter it.
    os.makedirs(state_dir, mode=0o700)
    moto_port = free_port(host)
    state = {"state_dir": state_dir, "host": host, "region": fleet.REGION, "targets": [], "programs": programs,
             "moto": {"port": moto_port, "endpoint_url": f"http://{host}:{moto_port}", "pid": None},
             "runtime_dir": None, "servers": []}
    try:
        state["runtime_dir"] = runtime_dir.create(os_users)
        _save_state(state_dir, state)  # from here on, down finds the runtime directory whatever fails next
        state["servers"] = _plan_servers(state["runtime_dir"], host, specs)
        _save_state(state_dir, state)
        for entry in state["servers"]:
            runtime_dir.check_enterable(entry["directory"], entry["os_user"])
        _bring_up(state, specs, programs)
    except BaseException:
        _take_down(state)
        raise
    outputs.write_all(state)
    print(f"sandbox: up in {time.monotonic() - started:.1f} s ({state_dir})")
    print(f"sandbox: the servers' files (data, sockets, logs) are in {state['runtime_dir']} until down")
    return state


def _bring_up(state, specs, programs):
    state_dir = state["state_dir"]
    tls_dir = os.path.join(state_dir, "tls")
    os.makedirs(tls_dir)
    ca_path = os.path.join(tls_dir, "ca.pem")
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(specs) + 2) as pool:
        moto = pool.submit(_start_moto, state_dir, state["host"], state["moto"]["port"])
        native = pool.submit(_build_native_parts, specs, programs)
        inits = [pool.submit(_initialise, entry, programs) for entry in state["servers"]]
        state["moto"]["pid"] = moto.result()
        _save_state(state_dir, state)
        _register_fleet(state, specs)
        servers = [future.result() for future in inits]
        native_parts = native.result()
    verify_url = state["moto"]["endpoint_url"] + VERIFY_PATH
    for server in servers:
        _install_iam_auth(server, native_parts, verify_url)
    authority = CertificateAuthority.create(tls_dir)
    for entry, target in zip(state["servers"], state["targets"]):
        names = [target["endpoint"], *target["extra_names"], "localhost"]
        authority.issue_server_cert(os.path.join(entry["directory"], "tls"), names)
        shutil.copyfile(ca_path, _tls_paths(entry)[2])
        chown_tree(os.path.join(entry["directory"], "tls"), entry["os_user"])
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(servers)) as pool:
        admin_passwords = list(pool.map(_start, servers, state["targets"]))
    for entry, password in zip(state["servers"], admin_passwords):
        entry["admin_password"] = password
    state["ca_cert"] = ca_path
    _save_state(state_dir, state)


def unhealthy(state):
    """Names of the parts that are not running (empty when the sandbox is healthy)."""
    problems = []
    if not state.get("moto", {}).get("pid") or not port_open(state["host"], state["moto"]["port"]):
        problems.append("moto")
    for entry in state.get("servers", []):
        if not _server(entry).alive() or not port_open(entry["host"], entry["port"]):
            problems.append(entry["identifier"])
    if len(state.get("targets", [])) != len(state.get("servers", [])) or "ca_cert" not in state:
        problems.append("set-up incomplete")
    return problems


def down(state_dir=None, quiet=False):
    """Stop every sandbox process, delete the state and runtime directories; returns the ports it freed."""
    state_dir = state_dir or default_state_dir()
    state = load_state(state_dir) or {}
    ports = _take_down(dict(state, state_dir=state_dir))
    if not quiet:
        removed = " and ".join(filter(None, (state_dir, state.get("runtime_dir"))))
        print(f"sandbox: down ({len(ports)} processes stopped, {removed} removed)")
    return ports


def _take_down(state):
    """down() for a state in hand: also what up() leaves when it fails half-way, saved or not."""
    # The paths found at up time: taking the sandbox down must never install anything.
    servers = [_server(entry, state.get("programs")) for entry in state.get("servers", [])]
    if servers:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(servers)) as pool:
            list(pool.map(lambda server: server.stop(), servers))
    ports = [(entry["host"], entry["port"]) for entry in state.get("servers", [])]
    if state.get("moto", {}).get("pid"):
        terminate(state["moto"]["pid"], group=True, timeout=5)
        ports.append((state["host"], state["moto"]["port"]))
    shutil.rmtree(state["state_dir"], ignore_errors=True)
    runtime_dir.remove(state.get("runtime_dir"))
    pam.remove_orphaned_copies()
    still_open = [f"{host}:{port}" for host, port in ports if port_open(host, port)]
    if still_open:
        raise SandboxError(f"sandbox: still listening after down: {', '.join(still_open)}")
    return ports
