"""The fresh-machine path: missing server programs are installed from Debian's archive once."""
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
    assert {"postgresql-15", "mariadb-server"} <= set(machine["commands"][1])
    assert "installing mariadb-server postgresql-15" in capsys.readouterr().out
    machine["present"].clear()
    prereqs.find_programs()
    assert [cmd[:2] for cmd in machine["commands"]].count(["apt-get", "update"]) == 1


def test_without_root_it_says_what_to_run(machine):
    machine["root"] = False
    machine["present"].update({"initdb", "pg_ctl", "postgres"})
    with pytest.raises(SandboxError, match=r"sudo apt-get install -y mariadb-server"):
        prereqs.find_programs()
    assert machine["commands"] == []
