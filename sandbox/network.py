"""Loopback-only addresses and free ports for the sandbox's servers."""
import ipaddress
import socket
import time


class SandboxError(Exception):
    """A sandbox step failed; the message says what and how to fix it."""


def require_loopback(host):
    """Return host if it is a loopback address; the sandbox never listens anywhere else."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise SandboxError(f"sandbox host {host!r} is not an IP address; use 127.0.0.1 (loopback only)") from None
    if not address.is_loopback:
        raise SandboxError(f"sandbox host {host} is not a loopback address; the sandbox binds only to 127.0.0.0/8 or ::1")
    return host


def free_port(host):
    """A port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host, port, what, timeout=30.0, alive=None):
    """Wait until host:port accepts connections; alive() returning False aborts early."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if alive is not None and not alive():
            raise SandboxError(f"{what} exited before listening on {host}:{port}; see its log")
        time.sleep(0.05)
    raise SandboxError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s; see its log")
