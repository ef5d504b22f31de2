"""The moto server's throttling switch: refused calls get each protocol's throttling error, botocore retries them, and
the switch counts them; the sandbox's own endpoints are never refused."""
import json
import urllib.error

import boto3
import botocore.config
import pytest


@pytest.fixture
def throttle(sandbox):
    yield lambda settings: sandbox.throttling("PUT", settings)
    sandbox.throttling("DELETE")


def _client(sandbox, service, attempts):
    config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": attempts})
    return boto3.client(service, endpoint_url=sandbox.moto_url, region_name=sandbox.region, aws_access_key_id="sandbox",
                        aws_secret_access_key="sandbox", config=config)


def test_every_call_refused_is_aws_throttling_error_in_each_protocol(sandbox, throttle):
    throttle({"rate": 1, "seed": 1, "services": ["iam", "secretsmanager"]})
    with pytest.raises(Exception) as refused:
        _client(sandbox, "iam", 1).list_roles()
    assert refused.value.response["Error"]["Code"] == "Throttling"
    with pytest.raises(Exception) as refused:
        _client(sandbox, "secretsmanager", 1).list_secrets()
    assert refused.value.response["Error"]["Code"] == "ThrottlingException"
    # Other services, and the sandbox's own endpoints, go through.
    assert "DBInstances" in _client(sandbox, "rds", 1).describe_db_instances()
    assert sandbox.throttling("GET")["refused"] == {"iam:ListRoles": 1, "secretsmanager:ListSecrets": 1}


def test_botocore_retries_what_is_refused_and_the_count_says_how_often(sandbox, throttle):
    throttle({"rate": 0.5, "seed": 3, "services": ["iam"]})
    client = _client(sandbox, "iam", 20)
    for _ in range(10):
        client.list_roles()
    refused = sandbox.throttling("GET")["refused"]
    assert refused.get("iam:ListRoles", 0) > 0 and set(refused) == {"iam:ListRoles"}
    sandbox.throttling("DELETE")
    assert sandbox.throttling("GET") == {"rate": 0.0, "seed": None, "services": ["rds", "iam", "sts"], "refused": {}}


@pytest.mark.parametrize("settings, message", [
    ({"rate": 2}, "rate must be a number from 0 to 1"),
    ({"rate": "high"}, "rate must be a number from 0 to 1"),
    ({"rate": 0.1, "services": "rds"}, "services must be a list"),
])
def test_bad_settings_are_refused_with_the_reason(sandbox, settings, message):
    with pytest.raises(urllib.error.HTTPError) as bad:
        sandbox.throttling("PUT", settings)
    assert bad.value.code == 400 and message in json.loads(bad.value.read())["error"]
