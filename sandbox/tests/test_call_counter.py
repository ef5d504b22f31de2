"""The moto server counts the AWS calls it receives by operation, across clients, for the benchmarks."""
import json
import urllib.request


def _calls(sandbox, method="GET"):
    request = urllib.request.Request(sandbox.moto_url + "/_sandbox/calls", method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_calls_are_counted_by_service_and_action_and_reset(sandbox):
    _calls(sandbox, "DELETE")
    session = sandbox.moto()
    session.client("iam").list_roles()
    session.client("iam").list_roles()
    session.client("rds").describe_db_instances()
    session.client("secretsmanager").list_secrets()
    assert _calls(sandbox) == {"iam:ListRoles": 2, "rds:DescribeDBInstances": 1, "secretsmanager:ListSecrets": 1}
    assert _calls(sandbox, "DELETE") == {"iam:ListRoles": 2, "rds:DescribeDBInstances": 1, "secretsmanager:ListSecrets": 1}
    assert _calls(sandbox) == {}
