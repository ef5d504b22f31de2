# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the IAM-flag planning, target references, engine refusal and waiting (no AWS)."""

from __future__ import annotations

import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils._iam_auth_flag import flag_applied, flag_state, plan_iam_auth_change
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import (
    RdsTargetError,
    WaitTimeout,
    check_engine,
    target_reference,
    wait_for,
)


def _item(enabled=False, pending=None, status='available'):
    item = {'IAMDatabaseAuthenticationEnabled': enabled, 'DBInstanceStatus': status}
    if pending is not None:
        item['PendingModifiedValues'] = {'IAMDatabaseAuthenticationEnabled': pending}
    return item


@pytest.mark.parametrize('item, enabled, immediately, expected', [
    (_item(False), True, True, {'modify': True, 'wait': True, 'scheduled': False}),
    (_item(True), True, True, {'modify': False, 'wait': False, 'scheduled': False}),
    (_item(True), False, True, {'modify': True, 'wait': True, 'scheduled': False}),
    # an earlier run with wait: false left the change in flight: wait for it, do not call again
    (_item(False, pending=True, status='modifying'), True, True, {'modify': False, 'wait': True, 'scheduled': False}),
    # a maintenance-window change is pending but the user now wants it at once
    (_item(False, pending=True), True, True, {'modify': True, 'wait': True, 'scheduled': False}),
    # the flag is right but the opposite change is scheduled: cancel it
    (_item(True, pending=False), True, True, {'modify': True, 'wait': True, 'scheduled': False}),
    (_item(False), True, False, {'modify': True, 'wait': False, 'scheduled': True}),
    (_item(False, pending=True), True, False, {'modify': False, 'wait': False, 'scheduled': True}),
    (_item(True), True, False, {'modify': False, 'wait': False, 'scheduled': False}),
    (_item(True, pending=False), True, False, {'modify': True, 'wait': False, 'scheduled': False}),
])
def test_plan_iam_auth_change(item, enabled, immediately, expected):
    assert plan_iam_auth_change(item, enabled, immediately) == expected


def test_flag_state_reads_clusters_too():
    cluster = {'IAMDatabaseAuthenticationEnabled': True, 'Status': 'modifying'}
    assert flag_state(cluster) == (True, None, 'modifying')
    assert not flag_applied(cluster, True)
    assert flag_applied(dict(cluster, Status='available'), True)
    assert not flag_applied(_item(True, pending=False), True)


@pytest.mark.parametrize('options, expected', [
    ({'db_instance_identifier': 'orders-db'}, ('instance', 'orders-db', None)),
    ({'db_cluster_identifier': 'arn:aws:rds:eu-west-1:123456789012:cluster:pay'}, ('cluster', 'pay', 'eu-west-1')),
    ({'db_instance_identifier': 'arn:aws:rds:us-east-1:123456789012:db:orders-db'}, ('instance', 'orders-db', 'us-east-1')),
    # RDS stores identifiers in lower case and matches them case-insensitively
    ({'db_instance_identifier': 'Orders-DB'}, ('instance', 'orders-db', None)),
    ({'db_cluster_identifier': 'arn:aws:rds:eu-west-1:123456789012:cluster:Pay'}, ('cluster', 'pay', 'eu-west-1')),
])
def test_target_reference(options, expected):
    assert target_reference(options) == expected


@pytest.mark.parametrize('options, message', [
    ({'db_instance_identifier': 'arn:aws:rds:us-east-1:123456789012:cluster:pay'}, 'ARN of a cluster, not of a instance: pass it as db_cluster_identifier'),
    ({'db_instance_identifier': 'bad--name'}, "db_instance_identifier 'bad--name' is not an RDS identifier"),
    ({'db_cluster_identifier': '1starts-with-digit'}, 'is not an RDS identifier'),
    ({}, 'set target, db_instance_identifier or db_cluster_identifier'),
])
def test_target_reference_refuses(options, message):
    with pytest.raises(RdsTargetError, match=message.replace('(', r'\(')):
        target_reference(options)


@pytest.mark.parametrize('engine', ['sqlserver-ee', 'oracle-ee', 'db2-se', 'custom-oracle-ee', 'neptune'])
def test_engines_without_iam_auth_are_refused_by_name(engine):
    with pytest.raises(RdsTargetError, match="'legacy' runs engine %s, which has no IAM database authentication" % engine):
        check_engine({'Engine': engine}, 'legacy')


@pytest.mark.parametrize('engine', ['postgres', 'aurora-postgresql', 'mysql', 'aurora-mysql', 'mariadb'])
def test_engines_with_iam_auth_pass(engine):
    assert check_engine({'Engine': engine}, 'db') == engine


class _Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_for_checks_at_once_and_backs_off():
    clock, seen = _Clock(), iter([1, 2, 3, 4])
    result = wait_for(lambda: next(seen), lambda value: value == 4, 100, str, clock=clock, sleep=clock.sleep)
    assert result == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_wait_for_returns_without_sleeping_when_already_done():
    clock = _Clock()
    assert wait_for(lambda: 'ready', lambda value: True, 5, str, clock=clock, sleep=clock.sleep) == 'ready'
    assert clock.sleeps == []


def test_wait_for_gives_up_at_the_deadline_and_says_why():
    clock = _Clock()
    with pytest.raises(WaitTimeout, match=r'wait_timeout=5 s: still modifying; raise wait_timeout, or look again later') as timeout:
        wait_for(lambda: 'modifying', lambda value: False, 5, lambda value: 'still ' + value, clock=clock, sleep=clock.sleep)
    assert timeout.value.last == 'modifying'
    assert sum(clock.sleeps) == 5  # never sleeps past the deadline


def _stubbed_rds():
    import botocore.session
    from botocore.stub import Stubber

    client = botocore.session.Session().create_client('rds', region_name='eu-west-1', aws_access_key_id='AKIDEXAMPLE',
                                                      aws_secret_access_key='not-a-real-secret')
    return client, Stubber(client)


def test_describe_names_a_missing_target_and_its_region():
    from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import describe

    rds, stub = _stubbed_rds()
    stub.add_client_error('describe_db_clusters', service_error_code='DBClusterNotFoundFault', service_message='not found')
    with stub, pytest.raises(RdsTargetError, match="DB cluster DBClusterIdentifier 'pay' does not exist in region eu-west-1"):
        describe(rds, 'cluster', 'pay')


def test_aws_failures_name_the_operation_and_the_subject_but_no_secret():
    from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError, aws_call

    rds, stub = _stubbed_rds()
    stub.add_client_error('modify_db_cluster_parameter_group', service_error_code='InvalidDBParameterGroupState', service_message='busy')
    with stub, pytest.raises(AwsCallError) as failed:
        aws_call(rds, 'modify_db_cluster_parameter_group', 'grp', DBClusterParameterGroupName='grp', Parameters=[])
    assert str(failed.value) == 'rds:ModifyDBClusterParameterGroup on grp failed: InvalidDBParameterGroupState: busy'
    assert (failed.value.code, failed.value.operation) == ('InvalidDBParameterGroupState', 'rds:ModifyDBClusterParameterGroup')
    assert 'not-a-real-secret' not in str(failed.value)
