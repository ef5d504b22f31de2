# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the parameter-group planning: which values, which group, what waits for a reboot (no AWS)."""

from __future__ import annotations

import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils._parameter_groups import (
    ParameterGroupError,
    apply_status,
    check_group_name,
    custom_group_name,
    desired_parameters,
    group_of,
    is_default_group,
    normalise_value,
    plan_parameter_changes,
    reboot_and_wait,
    reboot_members,
    settled,
    waiting_for_reboot,
)


def _entry(name, value=None, apply_type='dynamic', data_type='boolean', allowed='0,1', modifiable=True):
    entry = {'ParameterName': name, 'ApplyType': apply_type, 'DataType': data_type, 'AllowedValues': allowed, 'IsModifiable': modifiable}
    if value is not None:
        entry['ParameterValue'] = value
    return entry


PG_CURRENT = {
    'rds.force_ssl': _entry('rds.force_ssl', '1'),
    'log_connections': _entry('log_connections'),
    'rds.restrict_password_commands': _entry('rds.restrict_password_commands', apply_type='static'),
    'work_mem': _entry('work_mem', '4096', data_type='integer', allowed='64-2147483647'),
    'rds.extensions': _entry('rds.extensions', 'x', modifiable=False, data_type='list', allowed=None),
}


@pytest.mark.parametrize('family, identifier, expected', [
    ('postgres15', 'orders-db', 'rdsiam-postgres15-orders-db'),
    ('mysql8.0', 'App-MySQL', 'rdsiam-mysql8-0-app-mysql'),
    ('aurora-postgresql15', 'pay', 'rdsiam-aurora-postgresql15-pay'),
    ('postgres15', 'x' * 300, ('rdsiam-postgres15-' + 'x' * 300)[:255]),
])
def test_custom_group_name_follows_rds_rules(family, identifier, expected):
    name = custom_group_name(family, identifier)
    assert name == expected
    check_group_name(name)


@pytest.mark.parametrize('name', ['default.postgres15', 'Has_Underscore', 'two--hyphens', 'ends-', '9starts', 'x' * 256])
def test_check_group_name_refuses(name):
    with pytest.raises(ParameterGroupError, match='is not a name RDS accepts'):
        check_group_name(name)


def test_default_groups_are_recognised():
    assert is_default_group('default.postgres15') and not is_default_group('rdsiam-postgres15-x') and not is_default_group(None)


def test_desired_parameters_postgres():
    options = dict(force_ssl=True, log_connections=True, restrict_password_commands=False, parameters={'work_mem': 8192})
    assert desired_parameters(options, 'aurora-postgresql') == {
        'rds.force_ssl': '1', 'log_connections': '1', 'rds.restrict_password_commands': '0', 'work_mem': '8192'}


def test_desired_parameters_mariadb_audit_uses_events_only_when_logging_is_on():
    assert desired_parameters(dict(force_ssl=True, audit_logging=True, audit_events=['CONNECT']), 'mariadb') == {
        'require_secure_transport': '1', 'server_audit_logging': '1', 'server_audit_events': 'CONNECT'}
    assert desired_parameters(dict(audit_logging=False, audit_events=['CONNECT']), 'mariadb') == {'server_audit_logging': '0'}
    assert desired_parameters(dict(audit_events=['CONNECT']), 'mariadb') == {}


@pytest.mark.parametrize('options, engine, message', [
    (dict(log_connections=True), 'mysql', 'log_connections does not apply to engine mysql'),
    (dict(restrict_password_commands=True), 'mariadb', 'restrict_password_commands does not apply to engine mariadb'),
    (dict(audit_logging=True, audit_events=['CONNECT']), 'postgres', 'audit_logging does not apply to engine postgres'),
    (dict(force_ssl=True, parameters={'rds.force_ssl': 0}), 'postgres', 'parameters sets rds.force_ssl to'),
    (dict(audit_logging=True, audit_events=['CONNECT', 'LOGIN']), 'mariadb', 'audit_events has LOGIN'),
])
def test_desired_parameters_refuses(options, engine, message):
    with pytest.raises(ParameterGroupError, match=message):
        desired_parameters(options, engine)


def test_same_value_in_two_places_is_accepted():
    assert desired_parameters(dict(force_ssl=True, parameters={'rds.force_ssl': 'on'}), 'postgres') == {'rds.force_ssl': 'on'}


@pytest.mark.parametrize('value, expected', [
    ('ON', '1'), ('true', '1'), (1, '1'), ('off', '0'), ('0', '0'), ('CONNECT, QUERY_DCL', 'CONNECT,QUERY_DCL'), (None, None), ('8192', '8192'),
])
def test_normalise_value(value, expected):
    assert normalise_value(value) == expected


def test_plan_sets_only_what_differs_with_the_right_apply_method():
    wanted = {'rds.force_ssl': '1', 'log_connections': '1', 'rds.restrict_password_commands': '1'}
    changes = plan_parameter_changes(wanted, PG_CURRENT, 'postgres', 'postgres15', 'instance')
    assert changes == [
        dict(name='log_connections', before=None, after='1', apply_type='dynamic', apply_method='immediate'),
        dict(name='rds.restrict_password_commands', before=None, after='1', apply_type='static', apply_method='pending-reboot'),
    ]


def test_plan_is_empty_when_values_match_in_another_spelling():
    current = dict(PG_CURRENT, log_connections=_entry('log_connections', 'on'))
    assert plan_parameter_changes({'log_connections': 'true', 'rds.force_ssl': '1'}, current, 'postgres', 'postgres15', 'instance') == []


def test_plan_refuses_unknown_names_listing_them_all():
    with pytest.raises(ParameterGroupError, match=r'no_such, other_missing: no such parameter in the DB parameter group family postgres15'):
        plan_parameter_changes({'no_such': '1', 'other_missing': '2', 'log_connections': '1'}, PG_CURRENT, 'postgres', 'postgres15', 'instance')


def test_plan_points_aurora_users_at_the_other_level():
    with pytest.raises(ParameterGroupError, match='cluster-level parameter'):
        plan_parameter_changes({'rds.force_ssl': '1'}, {}, 'aurora-postgresql', 'aurora-postgresql15', 'instance')
    with pytest.raises(ParameterGroupError, match='instance-level parameter'):
        plan_parameter_changes({'work_mem': '1'}, {}, 'aurora-postgresql', 'aurora-postgresql15', 'cluster')


def test_plan_refuses_values_outside_the_allowed_ones_and_unmodifiable_parameters():
    with pytest.raises(ParameterGroupError, match="rds.force_ssl cannot be '2': allowed values are 0, 1"):
        plan_parameter_changes({'rds.force_ssl': '2'}, PG_CURRENT, 'postgres', 'postgres15', 'instance')
    with pytest.raises(ParameterGroupError, match='rds.extensions is not modifiable'):
        plan_parameter_changes({'rds.extensions': 'y'}, PG_CURRENT, 'postgres', 'postgres15', 'instance')


def test_apply_type_falls_back_to_the_table_when_rds_omits_it():
    current = {'rds.restrict_password_commands': {'ParameterName': 'rds.restrict_password_commands'}}
    change, = plan_parameter_changes({'rds.restrict_password_commands': '1'}, current, 'postgres', 'postgres15', 'instance')
    assert change['apply_method'] == 'pending-reboot'


def test_what_waits_for_a_reboot():
    changes = [dict(name='a', apply_type='dynamic'), dict(name='b', apply_type='static')]
    assert waiting_for_reboot(dict(changes=changes, attach=False)) == ['b']
    assert waiting_for_reboot(dict(changes=changes, attach=True)) == ['a', 'b']


def test_group_and_status_of_instances_and_clusters():
    instance = {'DBInstanceIdentifier': 'i', 'DBInstanceStatus': 'available',
                'DBParameterGroups': [{'DBParameterGroupName': 'g', 'ParameterApplyStatus': 'pending-reboot'}]}
    cluster = {'DBClusterParameterGroup': 'cg', 'Status': 'available', 'DBClusterMembers': [
        {'DBInstanceIdentifier': 'm1', 'DBClusterParameterGroupStatus': 'in-sync', 'IsClusterWriter': True},
        {'DBInstanceIdentifier': 'm2', 'DBClusterParameterGroupStatus': 'pending-reboot', 'IsClusterWriter': False}]}
    assert group_of('instance', instance) == ('instance', 'g') and group_of('cluster', cluster) == ('cluster', 'cg')
    assert apply_status('instance', instance) == 'pending-reboot' and apply_status('cluster', cluster) == 'pending-reboot'
    assert reboot_members('instance', instance) == ['i'] and reboot_members('cluster', cluster) == ['m2', 'm1']  # writer last
    assert not settled('instance', instance) and not settled('cluster', cluster)
    instance['DBParameterGroups'][0]['ParameterApplyStatus'] = 'in-sync'
    assert settled('instance', instance)
    assert not settled('instance', dict(instance, DBInstanceStatus='rebooting'))


class _FakeRds:
    """Just enough of an RDS client for reboot_and_wait: members come back 'available' one describe after their reboot."""

    class meta:  # noqa: N801 - mirrors botocore's client.meta
        region_name = 'us-east-1'

    def __init__(self):
        self.calls = []
        self.rebooting = set()

    def reboot_db_instance(self, DBInstanceIdentifier):
        self.calls.append(('reboot', DBInstanceIdentifier))
        self.rebooting.add(DBInstanceIdentifier)
        return {}

    def describe_db_instances(self, DBInstanceIdentifier):
        self.calls.append(('describe', DBInstanceIdentifier))
        status = 'rebooting' if DBInstanceIdentifier in self.rebooting else 'available'
        self.rebooting.discard(DBInstanceIdentifier)
        return {'DBInstances': [{'DBInstanceIdentifier': DBInstanceIdentifier, 'DBInstanceStatus': status}]}

    def describe_db_clusters(self, DBClusterIdentifier):
        self.calls.append(('describe', DBClusterIdentifier))
        return {'DBClusters': [{'DBClusterIdentifier': DBClusterIdentifier, 'Status': 'available', 'DBClusterMembers': [
            {'DBInstanceIdentifier': 'writer', 'IsClusterWriter': True, 'DBClusterParameterGroupStatus': 'in-sync'},
            {'DBInstanceIdentifier': 'reader', 'IsClusterWriter': False, 'DBClusterParameterGroupStatus': 'in-sync'}]}]}


def test_a_cluster_is_rebooted_one_member_at_a_time_writer_last():
    rds = _FakeRds()
    cluster = rds.describe_db_clusters('c')['DBClusters'][0]
    rds.calls.clear()
    slept = []
    rebooted, final = reboot_and_wait(rds, 'cluster', 'c', cluster, 60, sleep=slept.append)
    assert rebooted == ['reader', 'writer'] and settled('cluster', final) and slept == [1.0]
    # the reader is back before the writer goes down
    assert rds.calls == [('describe', 'reader'), ('reboot', 'reader'), ('describe', 'reader'), ('describe', 'reader'),
                         ('describe', 'writer'), ('reboot', 'writer'), ('describe', 'c')]
