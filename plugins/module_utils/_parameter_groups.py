# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# The parameters that make IAM-only access hold, per engine, and the parameter-group work around
# them: which group a target uses (instance group, or the cluster group for Aurora cluster-level
# parameters), default.* groups that cannot be modified (a custom group is created and attached),
# groups shared with other targets, static parameters that wait for a reboot. Pure planning
# (desired_parameters, plan_parameter_changes, custom_group_name) is kept apart from the AWS calls.

import re
import time

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import aws_call
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import describe, wait_for
from ansible_collections.rdsiam.auth.plugins.module_utils._target_dict import dialect

# Option -> parameter per dialect (as _target_dict.dialect names it), with its apply type and
# allowed values on RDS. `parameters` may name anything else the group's family has; RDS's own
# describe_db_parameters then supplies the apply type.
HARDENING_PARAMETERS = {
    'force_ssl': {'postgres': 'rds.force_ssl', 'mysql': 'require_secure_transport', 'mariadb': 'require_secure_transport'},
    'log_connections': {'postgres': 'log_connections'},
    'restrict_password_commands': {'postgres': 'rds.restrict_password_commands'},
    'audit_logging': {'mariadb': 'server_audit_logging'},
    'audit_events': {'mariadb': 'server_audit_events'},
}
PARAMETER_TABLE = {
    'postgres': {
        'rds.force_ssl': ('dynamic', ('0', '1')),
        'log_connections': ('dynamic', ('0', '1')),
        # Static: only rds_password members may change passwords after the reboot.
        'rds.restrict_password_commands': ('static', ('0', '1')),
    },
    'mysql': {'require_secure_transport': ('dynamic', ('0', '1'))},
    'mariadb': {
        'require_secure_transport': ('dynamic', ('0', '1')),
        'server_audit_logging': ('dynamic', ('0', '1')),
        'server_audit_events': ('dynamic', None),
    },
}
AUDIT_EVENTS = ('CONNECT', 'QUERY', 'TABLE', 'QUERY_DDL', 'QUERY_DML', 'QUERY_DCL')
DEFAULT_AUDIT_EVENTS = ('CONNECT', 'QUERY_DCL')

# ModifyDBParameterGroup / ModifyDBClusterParameterGroup take at most 20 parameters per call.
MAX_PARAMETERS_PER_CALL = 20
_GROUP_NAME_RE = re.compile(r'^[a-z](?:[a-z0-9]|-(?!-)){0,254}$')
_TRUE_VALUES = ('1', 'on', 'true')
_FALSE_VALUES = ('0', 'off', 'false')


class ParameterGroupError(RdsIamError):
    """A parameter request that RDS would refuse or that this module will not carry out."""


def is_default_group(name):
    return (name or '').startswith('default.')


def custom_group_name(family, identifier):
    """rdsiam-<family>-<target> within RDS's rules: lower-case letters, digits, single hyphens, <= 255 characters."""
    name = re.sub(r'[^a-z0-9]+', '-', ('rdsiam-%s-%s' % (family, identifier)).lower())
    return re.sub(r'-{2,}', '-', name)[:255].strip('-')


def check_group_name(name):
    if is_default_group(name) or not _GROUP_NAME_RE.match(name or '') or name.endswith('-'):
        raise ParameterGroupError("parameter_group_name '%s' is not a name RDS accepts for a custom group: use 1 to 255 lower-case "
                                  "letters, digits and single hyphens, starting with a letter, not ending with a hyphen, "
                                  "and not a default.* name" % name)


def _bool_value(value):
    return '1' if value else '0'


def desired_parameters(options, engine, only_applicable=False):
    """{parameter: value} for the options set, for engine; refuses options the engine does not have and contradictions.

    only_applicable: leave out the options the engine does not have instead, so one set of options serves a mixed fleet.
    """
    kind = dialect(engine)
    wanted = {}
    for option, by_engine in HARDENING_PARAMETERS.items():
        value = options.get(option)
        if value is None or (option == 'audit_events' and not options.get('audit_logging')):
            continue
        if kind not in by_engine and only_applicable:
            continue
        if kind not in by_engine:
            raise ParameterGroupError('%s does not apply to engine %s (it exists for %s): remove it, or set the engine\'s own '
                                      'parameter in parameters' % (option, engine, ', '.join(sorted(by_engine))))
        if option == 'audit_events':
            unknown = sorted(set(value) - set(AUDIT_EVENTS))
            if unknown:
                raise ParameterGroupError('audit_events has %s, which MariaDB does not know: use %s' % (', '.join(unknown), ', '.join(AUDIT_EVENTS)))
            wanted[by_engine[kind]] = ','.join(value)
        else:
            wanted[by_engine[kind]] = _bool_value(value)
    if options.get('audit_logging') and kind == 'mariadb' and options.get('audit_events') is None:
        wanted[HARDENING_PARAMETERS['audit_events']['mariadb']] = ','.join(DEFAULT_AUDIT_EVENTS)
    for name, value in (options.get('parameters') or {}).items():
        value = _bool_value(value) if isinstance(value, bool) else str(value)
        if name in wanted and normalise_value(wanted[name]) != normalise_value(value):
            raise ParameterGroupError("parameters sets %s to '%s', but another option sets it to '%s': set it in one place" % (name, value, wanted[name]))
        wanted[name] = value
    return wanted


def normalise_value(value):
    """Compare values as RDS means them: booleans as 0/1, lists without spaces."""
    if value is None:
        return None
    text = str(value).strip()
    if text.lower() in _TRUE_VALUES:
        return '1'
    if text.lower() in _FALSE_VALUES:
        return '0'
    return ','.join(part.strip() for part in text.split(',')) if ',' in text else text


def _check_allowed(name, value, entry, kind):
    table = PARAMETER_TABLE.get(kind, {}).get(name)
    allowed = table[1] if table and table[1] else None
    if allowed is None and (entry.get('DataType') == 'boolean') and entry.get('AllowedValues'):
        allowed = tuple(entry['AllowedValues'].split(','))
    if allowed and normalise_value(value) not in allowed:
        raise ParameterGroupError("%s cannot be '%s': allowed values are %s" % (name, value, ', '.join(allowed)))


def plan_parameter_changes(wanted, current, engine, family, level):
    """[{name, before, after, apply_method, apply_type}] for the parameters whose value differs.

    current: describe_db_(cluster_)parameters entries by name for the group's family. Every name must
    be there: an unknown name fails here, before anything is written.
    """
    kind = dialect(engine)
    unknown = sorted(name for name in wanted if name not in current)
    if unknown:
        where = 'cluster parameter group' if level == 'cluster' else 'DB parameter group'
        hint = 'check the name against describe_db_parameters for %s' % family
        if (engine or '').startswith('aurora'):
            hint += (', and whether it is an instance-level parameter (use db_instance_identifier of a member)' if level == 'cluster'
                     else ', and whether it is a cluster-level parameter (use db_cluster_identifier of the cluster)')
        raise ParameterGroupError('%s: no such parameter in the %s family %s (engine %s): %s' % (', '.join(unknown), where, family, engine, hint))
    changes = []
    for name in sorted(wanted):
        entry = current[name]
        if entry.get('IsModifiable') is False:
            raise ParameterGroupError('%s is not modifiable in family %s: RDS manages it' % (name, family))
        _check_allowed(name, wanted[name], entry, kind)
        before = entry.get('ParameterValue')
        if normalise_value(before) == normalise_value(wanted[name]):
            continue
        apply_type = entry.get('ApplyType') or PARAMETER_TABLE.get(kind, {}).get(name, ('static',))[0]
        changes.append(dict(name=name, before=before, after=wanted[name], apply_type=apply_type,
                            apply_method='pending-reboot' if apply_type == 'static' else 'immediate'))
    return changes


# --- AWS side -----------------------------------------------------------------------------------

# The API names of each level: (group name key, target key, describe groups, its items, describe parameters, create group,
# modify group, modify target, describe targets, their items).
_LEVEL_API = {
    'instance': ('DBParameterGroupName', 'DBInstanceIdentifier', 'describe_db_parameter_groups', 'DBParameterGroups',
                 'describe_db_parameters', 'create_db_parameter_group', 'modify_db_parameter_group', 'modify_db_instance',
                 'describe_db_instances', 'DBInstances'),
    'cluster': ('DBClusterParameterGroupName', 'DBClusterIdentifier', 'describe_db_cluster_parameter_groups', 'DBClusterParameterGroups',
                'describe_db_cluster_parameters', 'create_db_cluster_parameter_group', 'modify_db_cluster_parameter_group',
                'modify_db_cluster', 'describe_db_clusters', 'DBClusters'),
}


class GroupApi:
    """The calls for one level ('instance': DB parameter groups, 'cluster': DB cluster parameter groups)."""

    def __init__(self, rds, level):
        self.rds = rds
        (self.group_key, self.target_key, self.describe_op, self.groups_key, self.parameters_op, self.create_op, self.modify_op,
         self.attach_op, self.targets_op, self.targets_key) = _LEVEL_API[level]

    def family(self, name):
        """The group's family, or None if the group does not exist."""
        found = aws_call(self.rds, self.describe_op, name, missing_ok=True, **{self.group_key: name})
        return found[self.groups_key][0]['DBParameterGroupFamily'] if found and found[self.groups_key] else None

    def parameters(self, name):
        """Every parameter of the group (all pages), by name."""
        found = aws_call(self.rds, self.parameters_op, name, result_key='Parameters', **{self.group_key: name})
        return {entry['ParameterName']: entry for entry in found}

    def create(self, name, family, description):
        aws_call(self.rds, self.create_op, name, DBParameterGroupFamily=family, Description=description, **{self.group_key: name})

    def modify(self, name, changes):
        for start in range(0, len(changes), MAX_PARAMETERS_PER_CALL):
            batch = [dict(ParameterName=change['name'], ParameterValue=change['after'], ApplyMethod=change['apply_method'])
                     for change in changes[start:start + MAX_PARAMETERS_PER_CALL]]
            aws_call(self.rds, self.modify_op, name, Parameters=batch, **{self.group_key: name})

    def attach(self, identifier, name):
        aws_call(self.rds, self.attach_op, identifier, ApplyImmediately=True, **{self.target_key: identifier, self.group_key: name})

    def users(self, name):
        """Identifiers of every instance (or cluster) that uses the group, all pages."""
        found = aws_call(self.rds, self.targets_op, 'the %s using %s' % (self.targets_key, name), result_key=self.targets_key)
        return sorted(item[self.target_key] for item in found if name in _group_names(item))


def _group_names(item):
    """The parameter groups a describe_db_instances / describe_db_clusters item uses."""
    if 'DBParameterGroups' in item:
        return [group.get('DBParameterGroupName') for group in item['DBParameterGroups'] or ()]
    return [item.get('DBClusterParameterGroup')]


def group_of(kind, item):
    """(level, current group name) for a describe item: the cluster group for a cluster, else the instance's group."""
    if kind == 'cluster':
        return 'cluster', item.get('DBClusterParameterGroup')
    groups = item.get('DBParameterGroups') or [{}]
    return 'instance', groups[0].get('DBParameterGroupName')


def apply_status(kind, item):
    """'in-sync', 'pending-reboot', 'applying' ... as RDS reports it for the target's group (worst member for a cluster)."""
    if kind == 'cluster':
        statuses = [member.get('DBClusterParameterGroupStatus') for member in item.get('DBClusterMembers') or ()]
    else:
        statuses = [group.get('ParameterApplyStatus') for group in item.get('DBParameterGroups') or ()]
    statuses = [status for status in statuses if status]
    pending = [status for status in statuses if status != 'in-sync']
    return pending[0] if pending else ('in-sync' if statuses else None)


def reboot_members(kind, item):
    """The instances to reboot so the target picks up its groups: the instance, or every member of a cluster, readers first."""
    if kind == 'cluster':
        members = sorted(item.get('DBClusterMembers') or (), key=lambda member: bool(member.get('IsClusterWriter')))
        return [member['DBInstanceIdentifier'] for member in members]
    return [item['DBInstanceIdentifier']]


def _wait_until_available(rds, instance, timeout, deadline, clock, sleep):
    return wait_for(lambda: describe(rds, 'instance', instance), lambda found: found.get('DBInstanceStatus') == 'available', timeout,
                    lambda found: 'member %s is %s' % (instance, found.get('DBInstanceStatus')), clock=clock, sleep=sleep, deadline=deadline)


def reboot_and_wait(rds, kind, identifier, item, timeout, clock=time.monotonic, sleep=time.sleep):
    """Reboot the target's instances one at a time (a cluster keeps serving), then wait until its groups are in sync.

    Returns (rebooted instance identifiers, the target's final describe item); WaitTimeout past timeout seconds.
    """
    deadline = clock() + timeout
    members = reboot_members(kind, item)
    for member in members:
        # RDS refuses to reboot an instance that is still applying the group swap ('modifying').
        _wait_until_available(rds, member, timeout, deadline, clock, sleep)
        aws_call(rds, 'reboot_db_instance', member, DBInstanceIdentifier=member)
        if kind == 'cluster' and member != members[-1]:
            _wait_until_available(rds, member, timeout, deadline, clock, sleep)
    item = wait_for(lambda: describe(rds, kind, identifier), lambda found: settled(kind, found), timeout, describe_settling(kind),
                    clock=clock, sleep=sleep, deadline=deadline)
    return members, item


def describe_settling(kind):
    def text(item):
        status = item.get('DBInstanceStatus') or item.get('Status')
        return 'status %s, parameter apply status %s' % (status, apply_status(kind, item))
    return text


def settled(kind, item):
    status = item.get('DBInstanceStatus') if kind == 'instance' else item.get('Status')
    return status == 'available' and apply_status(kind, item) in ('in-sync', None)


def _plan_changes(wanted, current, item, identifier, family, level):
    """plan_parameter_changes, naming the cluster of an Aurora member when a parameter is not in its instance-level group."""
    try:
        return plan_parameter_changes(wanted, current, item.get('Engine'), family, level)
    except ParameterGroupError as exc:
        if level == 'instance' and item.get('DBClusterIdentifier'):
            raise ParameterGroupError("%s (DB instance '%s' is a member of cluster '%s')" % (exc, identifier, item['DBClusterIdentifier'])) from None
        raise


def plan_group_work(rds, kind, identifier, item, wanted, options):
    """Everything the run will do to parameter groups, decided before any write.

    Returns {level, previous, name, family, create, attach, changes, before, sharers}.
    """
    level, previous = group_of(kind, item)
    api = GroupApi(rds, level)
    family = api.family(previous)
    if family is None:
        raise ParameterGroupError("%s '%s' uses parameter group '%s', which cannot be described: check rds:DescribeDB%sParameterGroups "
                                  "permissions" % (kind, identifier, previous, 'Cluster' if level == 'cluster' else ''))
    if options.get('parameter_group_name'):
        check_group_name(options['parameter_group_name'])
    name = options.get('parameter_group_name') or (custom_group_name(family, identifier) if is_default_group(previous) else previous)
    described = {}

    def parameters_of(group):
        if group not in described:
            described[group] = api.parameters(group)
        return described[group]

    if name != previous and not options.get('parameter_group_name'):
        # A default group that already holds every value asked for needs no group of its own, nor the reboot a swap costs.
        if not _plan_changes(wanted, parameters_of(previous), item, identifier, family, level):
            name = previous
    existing_family = api.family(name) if name != previous else family
    if existing_family and existing_family != family:
        raise ParameterGroupError("parameter group '%s' exists with family %s, but %s '%s' needs family %s: choose another "
                                  "parameter_group_name" % (name, existing_family, kind, identifier, family))
    current = parameters_of(name if existing_family else previous)
    changes = _plan_changes(wanted, current, item, identifier, family, level)
    sharers = []
    if existing_family and changes:
        sharers = [user for user in api.users(name) if user != identifier]
        if sharers and not options.get('allow_shared_group'):
            raise ParameterGroupError("parameter group '%s' of %s '%s' is also used by %s: changing it changes them too; set "
                                      "allow_shared_group: true to accept that, or parameter_group_name to give '%s' a group of its own"
                                      % (name, kind, identifier, ', '.join(sharers), identifier))
    return dict(level=level, previous=previous, name=name, family=family, create=not existing_family, attach=name != previous,
                changes=changes, before={key: current[key].get('ParameterValue') for key in wanted}, sharers=sharers)


def carry_out_group_work(rds, identifier, work):
    """Create, modify, attach, in that order, so a group is complete before a target uses it."""
    api = GroupApi(rds, work['level'])
    if work['create']:
        api.create(work['name'], work['family'], 'rdsiam.auth: IAM-only access hardening for %s' % identifier)
    if work['changes']:
        api.modify(work['name'], work['changes'])
    if work['attach']:
        api.attach(identifier, work['name'])


def waiting_for_reboot(work):
    """The parameters this run set that take effect only after a reboot: static ones, or all of them on a newly attached group."""
    return [change['name'] for change in work['changes'] if work['attach'] or change['apply_type'] == 'static']
