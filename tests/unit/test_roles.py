"""Each role input has one name and one default, and each playbook input reaches its role under one rename.

A role's defaults/main.yml and meta/argument_specs.yml say the same (required inputs have no default, which would
satisfy Ansible's argument check and hide a forgotten input); the playbooks hand every rdsiam_<name> input to the role
as <role>_<name> without restating the role's default; docs/onboarding.md documents every input the playbooks read.
"""
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(name for name in os.listdir(os.path.join(ROOT, "roles")) if not name.startswith("."))
PLAYBOOKS = {"onboard_user.yml": "onboard", "offboard_user.yml": "offboard"}
TYPES = {"str": str, "path": str, "bool": bool, "int": int, "list": list, "dict": dict}
# An input handed over as it is, or left unset when not given so that the role's own default applies.
HANDED = re.compile(r"^\{\{ (rdsiam_\w+)(?: \| default\(omit\))? \}\}$")


def _load(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _options(role):
    return _load("roles", role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]


def _handed_inputs(playbook):
    """(role, {role variable: expression}) of the play that runs the role: the set_fact that hands it the inputs."""
    play = next(play for play in _load("playbooks", playbook) if play.get("roles"))
    role = play["roles"][0]["role"].split(".")[-1]
    handed = [task["ansible.builtin.set_fact"] for task in play.get("pre_tasks", []) if "ansible.builtin.set_fact" in task]
    assert len(handed) == 1, playbook
    return role, handed[0]


def test_every_role_has_an_argument_spec():
    assert ROLES == ["db_users", "enable_iam_auth", "iam_policies", "offboard", "onboard"]


def _tasks_text(role):
    parts = []
    for directory in ("tasks", "vars"):
        folder = os.path.join(ROOT, "roles", role, directory)
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                parts.append(handle.read())
    return "\n".join(parts)


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_spec_agree(role):
    defaults = _load("roles", role, "defaults", "main.yml") or {}
    options = _options(role)
    required = {name for name, option in options.items() if option.get("required")}
    # An input whose default is a module's or filter's is not in defaults/main.yml: it is handed on only when set.
    passed_on = set(options) - required - set(defaults)
    text = _tasks_text(role)
    for name in passed_on:
        option = options[name]
        assert "default" not in option, name
        assert "When not set, the " in " ".join(option["description"]) and "default" in option["description"][-1], name
        uses = re.findall(r"(?:\{\{ |=)%s\b(?!_)(?: \| default\((?:omit|none)\))?" % name, text)
        assert uses and all(use.endswith(("| default(omit)", "| default(none)")) for use in uses), (name, uses)
    assert set(defaults) == set(options) - required - passed_on
    for name, value in defaults.items():
        option = options[name]
        if isinstance(value, str) and "{{" in value:
            # Computed from another input: the spec says in words what it is, and states no default of its own.
            assert "default" not in option, name
            continue
        assert option.get("default") == value, name
        assert value is None or isinstance(value, TYPES[option["type"]]), name
        if value is not None and "choices" in option:
            assert value in option["choices"], name


@pytest.mark.parametrize("playbook", sorted(PLAYBOOKS))
def test_playbook_hands_each_input_to_its_role_under_one_rename(playbook):
    role, handed = _handed_inputs(playbook)
    assert role == PLAYBOOKS[playbook]
    computed = {}
    for variable, expression in handed.items():
        match = HANDED.match(expression)
        if not match:
            computed[variable] = expression
            continue
        # rdsiam_<name> becomes <role>_<name>; an input the playbook names after the role keeps its name
        # (rdsiam_offboard_mode is offboard_mode).
        assert match.group(1) in ("rdsiam_" + variable[len(role) + 1:], "rdsiam_" + variable), variable
    # Only what the play itself knows is computed here, and it restates no default.
    assert set(computed) == ({"onboard_policy_targets", "onboard_batch_targets"} if role == "onboard" else {"offboard_batch_targets"})
    assert not any("default(" in expression for expression in computed.values())
    # Every input of the role comes from the playbook, but the target each host stands for.
    assert set(_options(role)) - set(handed) == {role + "_target"}


def test_every_playbook_input_is_documented_once():
    with open(os.path.join(ROOT, "docs", "onboarding.md"), encoding="utf-8") as handle:
        documented = re.findall(r"^\| `(rdsiam_\w+)`", handle.read(), re.MULTILINE)
    assert len(documented) == len(set(documented))
    read = set()
    for playbook in PLAYBOOKS:
        for expression in _handed_inputs(playbook)[1].values():
            read.update(re.findall(r"\b(rdsiam_\w+)\b", expression))
    read -= {"rdsiam_targets", "rdsiam_target"}
    assert read - set(documented) == set()
