"""The fresh-machine path: missing server programs, PAM parts and the compiler are installed from Debian's archive once."""
import os

import pytest

from sandbox import prereqs
from sandbox.network import SandboxError


@pytest.fixture
def machine(monkeypatch):
    """A fake machine: which programs exist, whether we are root, and the commands run."""
    state = {"present": set(), "root": True, "commands": []}
    monkeypatch.setattr(prereqs, "_find", lambda name: f"/usr/bin/{name}" if name in state["present"] else None)
    monkeypatch.setattr(prereqs.os, "geteuid", lambda: 0 if state["root"] else 1000)
    monkeypatch.setattr(prereqs, "_apt_updated", False)

    def run(argv, **_kwargs):
        state["commands"].append(argv)
        if argv[:2] == ["apt-get", "install"]:
            state["present"].update(prereqs._PACKAGES)  # pylint: disable=protected-access
    monkeypatch.setattr(prereqs.subprocess, "run", run)
    return state


def test_nothing_is_installed_when_everything_is_there(machine):
    machine["present"].update(prereqs._PACKAGES)  # pylint: disable=protected-access
    assert prereqs.find_programs()["initdb"] == "/usr/bin/initdb"
    assert machine["commands"] == []


def test_missing_servers_are_installed_after_one_apt_update(machine, capsys):
    found = prereqs.find_programs()
    assert set(found) == set(prereqs._PACKAGES)  # pylint: disable=protected-access
    assert [cmd[:2] for cmd in machine["commands"]] == [["apt-get", "update"], ["apt-get", "install"]]
    assert {"postgresql-15", "mariadb-server", "libpam-wrapper", "libpam0g-dev", "gcc", "libc6-dev"} <= set(machine["commands"][1])
    assert "installing gcc libc6-dev libpam-wrapper libpam0g-dev mariadb-server postgresql-15 from" in capsys.readouterr().out
    machine["present"].clear()
    prereqs.find_programs()
    assert [cmd[:2] for cmd in machine["commands"]].count(["apt-get", "update"]) == 1


def test_without_root_it_says_what_to_run(machine):
    machine["root"] = False
    machine["present"].update(name for name, package in prereqs._PACKAGES.items()  # pylint: disable=protected-access
                              if package not in ("mariadb-server", "libpam-wrapper"))
    with pytest.raises(SandboxError, match=r"sudo apt-get install -y libpam-wrapper mariadb-server'"):
        prereqs.find_programs()
    assert machine["commands"] == []


def test_only_the_missing_pam_wrapper_is_installed(machine):
    machine["present"].update(name for name in prereqs._PACKAGES if name != "libpam_wrapper.so")  # pylint: disable=protected-access
    prereqs.find_programs()
    assert machine["commands"][-1][-1:] == ["libpam-wrapper"] and len(machine["commands"]) == 2


def test_libraries_and_headers_are_found_where_debian_puts_them():
    found = prereqs.find_programs(("libpam_wrapper.so", "stdio.h", "security/pam_modules.h", "gcc"))
    assert found["libpam_wrapper.so"].endswith("/libpam_wrapper.so")
    assert found["stdio.h"] == "/usr/include/stdio.h"
    assert found["security/pam_modules.h"] == "/usr/include/security/pam_modules.h"
    assert os.access(found["gcc"], os.X_OK)
