"""Fixtures for the integration tests; the harness itself is in rdsiam_harness.py."""
import pytest

from rdsiam_harness import run_module, run_playbook


@pytest.fixture
def module_runner():
    return run_module


@pytest.fixture
def playbook_runner(tmp_path):
    def run(playbook, **kwargs):
        return run_playbook(playbook, tmp_path, **kwargs)

    return run
