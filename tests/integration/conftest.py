"""Fixtures for the integration tests; the harness and the other helpers are in support/."""
import secrets

import pytest

from sandbox.iam_login import enable_iam_auth
from tests.integration.support.onboard import FLEET
from tests.integration.support.harness import run_module, run_playbook
from sandbox import lifecycle


@pytest.fixture
def module_runner():
    return run_module


@pytest.fixture
def rds(sandbox):
    """An RDS client on the sandbox's moto, in the sandbox's region."""
    return sandbox.moto().client("rds")


@pytest.fixture
def make_instance(sandbox, rds):
    """make(engine=, version=, tags=, region=, **create_args): a new moto instance's identifier (unique, so the fleet
    other tests share is never touched). Instances, then the parameter groups a test lists in make.groups, are deleted
    afterwards."""
    created, clients = [], {sandbox.region: rds}

    def make(engine="postgres", version="15.7", tags=None, region=None, **extra):
        region = region or sandbox.region
        if region not in clients:
            clients[region] = lifecycle.MotoSession(sandbox.moto_url, region=region).client("rds")
        name = f"enable-{engine.split('-')[0]}-{secrets.token_hex(3)}"
        if tags:
            extra["Tags"] = [{"Key": key, "Value": value} for key, value in tags.items()]
        clients[region].create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t4g.micro", Engine=engine,
                                           EngineVersion=version, MasterUsername="admin1",
                                           MasterUserPassword="p4ssword-only-for-moto", AllocatedStorage=20, **extra)
        created.append((clients[region], name))
        return name

    make.groups = []
    yield make
    for client, name in created:
        client.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
    for name in make.groups:
        rds.delete_db_parameter_group(DBParameterGroupName=name)


@pytest.fixture
def playbook_runner(tmp_path):
    def run(playbook, **kwargs):
        return run_playbook(playbook, tmp_path, **kwargs)

    return run


@pytest.fixture(scope="module")
def fleet_flags(sandbox):
    """The playbook tests turn IAM auth on across the fleet: the flags go back as the file found them after its last test."""
    restore = [enable_iam_auth(sandbox, identifier, False) for identifier in FLEET]
    yield
    for undo in restore:
        undo()
