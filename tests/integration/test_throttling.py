"""A fifth of the RDS, IAM and STS calls refused as throttled, as on a busy account: onboarding and the audit still
converge through botocore's retry mode, with no failed task and the same outcome as without throttling.

The sandbox's switch (sandbox/aws/throttling.py) refuses calls at random; the runs give botocore's standard retry mode
10 retries through the collection's `aws_config` option, as docs/awx.md advises for fleets.
"""
import json

import pytest

from sandbox.iam_login import enable_iam_auth
from tests.integration.support.onboard import FLEET, onboarding_person, playbook_vars

RATE = 0.2
RETRIES = {"retries": {"mode": "standard", "max_attempts": 10}}


@pytest.fixture
def throttling(sandbox):
    """on(): refuse RATE of the RDS, IAM and STS calls from now; off(): stop and return the calls refused by operation."""
    def on():
        sandbox.throttling("PUT", {"rate": RATE, "seed": 20261207, "services": ["rds", "iam", "sts"]})

    def off():
        refused = sandbox.throttling("GET")["refused"]
        sandbox.throttling("DELETE")
        return refused

    yield on, off
    sandbox.throttling("DELETE")


def _aws(sandbox):
    return {"region": sandbox.region, "endpoint_url": sandbox.moto_url, "aws_config": RETRIES}


def _failed(run):
    return [(entry["host"], entry["task"]) for entry in run.results if entry["status"] in ("failed", "unreachable")
            and not entry["result"].get("_ansible_ignore_errors")]


def _onboarding_rows(report, person):
    """The report's rows with the person's names replaced by their position, so that two people's runs compare."""
    rows = json.loads(report.read_text())["rows"]
    text = json.dumps(rows, sort_keys=True)
    for index, user in enumerate(person["users"]):
        text = text.replace(user, f"<user {index}>")
    return sorted(json.loads(text), key=lambda row: (row["target"], row["user"]))


def test_onboarding_converges_with_a_fifth_of_the_calls_throttled(sandbox, fleet_flags, playbook_runner, tmp_path, throttling):
    on, off = throttling
    outcomes = []
    for throttled in (False, True):
        for identifier in FLEET:  # the same starting point for both runs: IAM auth off, so that both turn it on
            enable_iam_auth(sandbox, identifier, False)
        with onboarding_person(sandbox, "th") as person:
            values, report = playbook_vars(sandbox, person, tmp_path, rdsiam_aws=_aws(sandbox))
            if throttled:
                on()
            run = playbook_runner("rdsiam.auth.onboard_user", extra_vars=values, env=sandbox.aws_env())
            refused = off()
            assert run.rc == 0, run.stdout[-4000:]
            assert _failed(run) == []
            outcomes.append(_onboarding_rows(report, person))
    assert outcomes[0] == outcomes[1]
    assert all(not row["failed"] and row["login"].startswith("yes (TLS") for row in outcomes[1])
    # The throttled run really was throttled (about a fifth of some hundred calls), and only where it was asked to be.
    assert sum(refused.values()) > 0 and {operation.split(":")[0] for operation in refused} <= {"rds", "iam", "sts"}, refused


def test_the_audit_converges_with_a_fifth_of_the_calls_throttled(sandbox, playbook_runner, tmp_path, throttling):
    on, off = throttling
    documents = []
    for throttled in (False, True):
        directory = tmp_path / f"audit-{throttled}"
        values = {"rdsiam_aws": _aws(sandbox), "rdsiam_ca_cert": sandbox.ca_cert, "rdsiam_audit_dir": str(directory),
                  "rdsiam_targets": {"identifiers": list(FLEET)},
                  "rdsiam_login_overrides": {target["identifier"]: {"login_host": target["login_host"], "login_port": target["login_port"]}
                                             for target in sandbox.state["targets"]}}
        if throttled:
            on()
        run = playbook_runner("rdsiam.auth.audit", extra_vars=values, env=sandbox.aws_env())
        refused = off()
        assert run.rc == 0, run.stdout[-4000:]
        assert _failed(run) == []
        document = json.loads((directory / "audit.json").read_text())
        del document["generated_at"]
        documents.append(document)
    assert documents[0] == documents[1]
    assert documents[1]["summary"]["unreadable_targets"] == 0
    assert sum(refused.values()) > 0 and {operation.split(":")[0] for operation in refused} <= {"rds", "iam", "sts"}, refused
