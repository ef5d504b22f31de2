"""The shared AWS session/client builder against the sandbox's moto server."""
import json
import urllib.request

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.rdsiam.auth.plugins.module_utils import _aws


@pytest.fixture(autouse=True)
def fresh_sessions():
    _aws.clear_session_cache()
    yield
    _aws.clear_session_cache()


def _options_from_env():
    """What a module gets from its argument spec when only the sandbox's env file is set."""
    result = ArgumentSpecValidator(_aws.AWS_ARGUMENT_SPEC).validate({})
    assert result.error_messages == []
    return result.validated_parameters


def test_env_file_alone_points_clients_at_the_sandbox(sandbox_env):
    options = _options_from_env()
    assert options["endpoint_url"] == sandbox_env.moto_url and options["region"] == "us-east-1"
    rds = _aws.aws_client(options, "rds")
    assert rds.meta.config.retries["mode"] == "standard"
    identifiers = {db["DBInstanceIdentifier"] for db in rds.describe_db_instances()["DBInstances"]}
    assert {"sbx-postgres", "sbx-mariadb", "sbx-mysql", "sbx-aurora-pg-1"} <= identifiers
    caller = _aws.aws_client(options, "sts").get_caller_identity()
    assert caller["Arn"].endswith(":user/sandbox-operator")


@pytest.fixture
def dba_role(sandbox_env):
    """A role the operator may assume with the external id ext-1234 and session tags (the sandbox's STS checks both)."""
    iam = sandbox_env.moto().client("iam")
    account = sandbox_env.state["operator"]["account_id"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                                                     "Action": ["sts:AssumeRole", "sts:TagSession"],
                                                     "Condition": {"StringEquals": {"sts:ExternalId": "ext-1234"}}}]}
    yield iam.create_role(RoleName="dba", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.delete_role(RoleName="dba")


def test_assume_role_carries_session_tags_and_external_id(sandbox_env, dba_role):
    options = dict(_options_from_env(), assume_role_arn=dba_role,
                   role_session_name="alice-session", external_id="ext-1234", session_tags={"userName": "alice"})
    caller = _aws.aws_client(options, "sts").get_caller_identity()
    assert caller["Arn"] == "arn:aws:sts::123456789012:assumed-role/dba/alice-session"
    access_key = _aws.aws_session(options).get_credentials().access_key
    with urllib.request.urlopen(f"{sandbox_env.moto_url}/_sandbox/credentials/{access_key}", timeout=10) as response:
        issued = json.load(response)
    assert (issued["type"], issued["session_tags"]) == ("assumed-role", {"userName": "alice"})


def test_aws_errors_carry_the_code_and_the_subject(sandbox_env):
    from botocore.exceptions import ClientError

    rds = _aws.aws_client(_options_from_env(), "rds")
    with pytest.raises(ClientError) as failed:
        rds.describe_db_instances(DBInstanceIdentifier="no-such-db")
    message = _aws.aws_error_message(failed.value, "rds:DescribeDBInstances", "no-such-db")
    assert message.startswith("rds:DescribeDBInstances on no-such-db failed: DBInstanceNotFound")
    assert sandbox_env.state["operator"]["secret_access_key"] not in message
