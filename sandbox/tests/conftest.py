"""Fixtures the sandbox's own tests share (the running-sandbox fixtures come from sandbox/pytest_plugin.py)."""
import pytest
from moto import mock_aws

from sandbox.aws.shims import apply_shims
from sandbox.tests.verifier_world import World, moto_session


@pytest.fixture
def aws():
    """In-process moto with the sandbox's shims and the verifier's two targets (verifier_world.World)."""
    apply_shims()
    with mock_aws():
        yield World(moto_session())
