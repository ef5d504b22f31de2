"""Run the collection's modules and playbooks for real, as Ansible would, from the tests.

`run_module` executes one module the way AnsiballZ does (a fresh Python process reading its
arguments from a file), which is fast enough to call hundreds of times; `run_playbook` runs
ansible-playbook itself, for lookups, check/diff handling by the controller and -vvvv output.
Both use the collection tests import (the installed build), never the source tree.
"""
import json
import os
import subprocess
import sys
import tempfile

import yaml

import ansible_collections

COLLECTIONS_PATH = os.path.dirname(os.path.abspath(ansible_collections.__path__[0]))
CALLBACKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")


class PlaybookRun:
    """An ansible-playbook run: exit code, full output, and every task result in order."""

    def __init__(self, process, results):
        self.rc = process.returncode
        self.stdout = process.stdout
        self.stderr = process.stderr
        self.results = results

    def task(self, name, host=None):
        """The result of the task called name (on host, when given); fails if it did not run."""
        found = [entry for entry in self.results if entry["task"] == name and host in (None, entry["host"])]
        assert found, f"task {name!r} did not run; ran: {[entry['task'] for entry in self.results]}\n{self.stdout}"
        return found[-1]


def ansible_env(extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_RETRY_FILES_ENABLED="False",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, PYTHONPATH=COLLECTIONS_PATH)
    env.update(extra or {})
    return env


def run_module(name, args, *, check=False, diff=False, env=None, timeout=300):
    """Run rdsiam.auth.<name> with args in a new process; returns its JSON result (failed or not).

    The result also carries `_stderr`, so a test can check that nothing leaked there either.
    """
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=diff)}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(payload, handle)
    try:
        process = subprocess.run([sys.executable, "-m", f"ansible_collections.rdsiam.auth.plugins.modules.{name}",
                                  handle.name], capture_output=True, text=True, timeout=timeout, check=False,
                                 env=ansible_env(env))
    finally:
        os.unlink(handle.name)
    try:
        result = json.loads(process.stdout)
    except ValueError:
        raise AssertionError(f"{name} printed no JSON (rc={process.returncode}):\n{process.stdout}\n{process.stderr}") from None
    result["_stderr"] = process.stderr
    return result


def run_playbook(playbook, tmp_path, *, extra_vars=None, inventory=None, check=False, diff=False, verbosity=0,
                 env=None, timeout=600):
    """Run a playbook (a path, or a list of plays written to tmp_path) and return a PlaybookRun."""
    if not isinstance(playbook, (str, os.PathLike)):
        path = tmp_path / "playbook.yml"
        path.write_text(yaml.safe_dump(playbook, sort_keys=False))
        playbook = path
    results_file = tmp_path / f"results-{os.urandom(4).hex()}.jsonl"
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(playbook),
            "-i", str(inventory) if inventory else "localhost,"]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if verbosity:
        argv.append("-" + "v" * verbosity)
    run_env = ansible_env(dict(env or {}, RDSIAM_RESULTS_FILE=str(results_file), ANSIBLE_CALLBACK_PLUGINS=CALLBACKS,
                               ANSIBLE_CALLBACKS_ENABLED="record_results"))
    process = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=run_env,
                             cwd=str(tmp_path))
    results = []
    if results_file.exists():
        results = [json.loads(line) for line in results_file.read_text().splitlines() if line]
    return PlaybookRun(process, results)
