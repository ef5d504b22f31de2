#!/usr/bin/python
# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_parameter_group
short_description: Set the parameters that make IAM-only database access hold on an RDS instance or Aurora cluster
version_added: 0.1.0
description:
  - Sets, in the parameter group of one RDS DB instance or DB cluster, the parameters that keep logins on IAM
    database authentication over TLS.
  - PostgreSQL (RDS and Aurora) C(rds.force_ssl), C(log_connections) and C(rds.restrict_password_commands); MySQL and
    MariaDB C(require_secure_transport); MariaDB C(server_audit_logging) and C(server_audit_events) when asked; and any
    other parameter of the group's family through O(parameters).
  - A target on a C(default.*) group, which RDS does not let anyone modify, gets a custom group of the same family
    (named C(rdsiam-<family>-<target>) unless O(parameter_group_name) is given) holding only the values asked for, and
    the group is attached to it. When the default group already has every value asked for, the target stays on it (no
    group is created, and no reboot is needed). A custom group already attached is modified in place. A group other targets also use
    is modified only with O(allow_shared_group=true); the failure message lists who shares it.
  - For an Aurora cluster (O(db_cluster_identifier)) the cluster parameter group is used, where Aurora keeps these
    parameters. O(db_instance_identifier) of an Aurora member addresses its instance-level group.
  - Static parameters, and every value of a newly attached group, wait for a reboot; the result says so in
    RV(pending_reboot) and RV(pending_reboot_parameters). With O(reboot=true) the module reboots (every member of a
    cluster) and waits until the values are in sync.
  - With O(targets) each target is done in turn in one run.
  - Given as fleet targets (O(target) or O(targets)), the hardening options an engine does not have (for example
    O(log_connections) on MariaDB) are left out for that target, so one set of options serves a mixed fleet. Given by
    identifier, such an option fails the module.
  - Unknown parameters for the group's family, options that do not apply to the engine, and values outside the
    allowed ones fail before anything is written.
author:
  - rdsiam.auth contributors (!UNKNOWN)
options:
  force_ssl:
    description:
      - Refuse connections without TLS. C(rds.force_ssl) on PostgreSQL, C(require_secure_transport) on MySQL and MariaDB.
      - Left as it is when not set.
    type: bool
  log_connections:
    description:
      - Log every connection attempt (PostgreSQL C(log_connections)), so each IAM login is traceable.
    type: bool
  restrict_password_commands:
    description:
      - PostgreSQL C(rds.restrict_password_commands). Only members of C(rds_password) may then change passwords, so IAM
        becomes the only way in apart from the master user. Static; takes effect after a reboot.
    type: bool
  audit_logging:
    description:
      - MariaDB C(server_audit_logging). When V(true), C(server_audit_events) is set from O(audit_events) too.
    type: bool
  audit_events:
    description:
      - The MariaDB audit events to log when O(audit_logging=true).
    type: list
    elements: str
    choices: [CONNECT, QUERY, TABLE, QUERY_DDL, QUERY_DML, QUERY_DCL]
    default: [CONNECT, QUERY_DCL]
  parameters:
    description:
      - Any other parameters of the group's family, as name and value. Booleans become C(1) / C(0).
      - Each must exist in the family; the apply method (immediate or pending-reboot) follows its apply type.
    type: dict
    default: {}
  parameter_group_name:
    description:
      - The custom group to use. It is created (same family, only the requested values) if it does not exist, and
        attached if the target uses another group.
      - Default is the target's custom group, or C(rdsiam-<family>-<target>) when the target is on a default group
        (lower case, dots in the family become hyphens, for example C(rdsiam-mysql8-0-orders)).
    type: str
  allow_shared_group:
    description:
      - Modify the group even when other instances or clusters use it too.
    type: bool
    default: false
  reboot:
    description:
      - Reboot the target when values wait for a reboot, and wait until they are in sync.
      - The members of a cluster are rebooted one at a time, readers first, each back to C(available) before the next.
    type: bool
    default: false
  wait_timeout:
    description:
      - How many seconds to wait for a reboot to finish before failing.
    type: int
    default: 1800
extends_documentation_fragment:
  - rdsiam.auth.action_group
  - rdsiam.auth.rds_target
  - rdsiam.auth.aws
attributes:
  check_mode:
    support: full
    description:
      - Reads the target, its group and the parameters, and reports the group it would create and attach, the changes and
        the reboot; nothing is written.
  diff_mode:
    support: full
    description: Shows the group name and the values of the requested parameters, before and after.
seealso:
  - module: rdsiam.auth.rds_iam_auth
  - module: rdsiam.auth.rds_iam_fleet_info
notes:
  - Parameter values are compared as RDS means them (V(on), V(true) and V(1) are the same), so a rerun changes nothing.
  - The shared-group check lists instances (or clusters) once per run; no other call depends on the size of the fleet.
"""

EXAMPLES = r"""
- name: Harden a PostgreSQL instance; a default group is replaced by rdsiam-postgres15-orders-db
  rdsiam.auth.rds_iam_parameter_group:
    db_instance_identifier: orders-db
    force_ssl: true
    log_connections: true
    restrict_password_commands: true
  register: hardening

- name: Show what waits for a reboot
  ansible.builtin.debug:
    msg: "{{ hardening.pending_reboot_parameters }}"
  when: hardening.pending_reboot

- name: Aurora PostgreSQL, cluster-level parameters, rebooting the members now
  rdsiam.auth.rds_iam_parameter_group:
    db_cluster_identifier: payments-aurora
    force_ssl: true
    restrict_password_commands: true
    reboot: true

- name: MariaDB with TLS required and connections audited
  rdsiam.auth.rds_iam_parameter_group:
    db_instance_identifier: reports-mariadb
    force_ssl: true
    audit_logging: true
    audit_events: [CONNECT, QUERY_DCL]

- name: A group several instances share, on purpose
  rdsiam.auth.rds_iam_parameter_group:
    db_instance_identifier: app-mysql-1
    force_ssl: true
    allow_shared_group: true
"""

RETURN = r"""
parameter_group:
  description: The group that holds the values now.
  returned: when O(targets) is not used
  type: dict
  contains:
    name:
      description: Group name.
      type: str
      sample: rdsiam-postgres15-orders-db
    family:
      description: Group family.
      type: str
      sample: postgres15
    level:
      description: V(instance) for a DB parameter group, V(cluster) for a DB cluster parameter group.
      type: str
      sample: instance
    previous:
      description: The group the target used before the run.
      type: str
      sample: default.postgres15
    created:
      description: Whether the run created the group.
      type: bool
    attached:
      description: Whether the run attached the group to the target.
      type: bool
    shared_with:
      description: Other targets that use the group (only filled when the group was modified).
      type: list
      elements: str
parameters:
  description: The values asked for, by parameter name.
  returned: when O(targets) is not used
  type: dict
  sample: {rds.force_ssl: "1", log_connections: "1", rds.restrict_password_commands: "1"}
changes:
  description: The parameters whose value the run changed (or would change in check mode).
  returned: when O(targets) is not used
  type: list
  elements: dict
  sample: [{name: rds.restrict_password_commands, before: null, after: "1", apply_type: static, apply_method: pending-reboot}]
pending_reboot:
  description: Whether values wait for a reboot of the target (RDS reports C(pending-reboot)).
  returned: when O(targets) is not used
  type: bool
  sample: true
pending_reboot_parameters:
  description: The parameters this run set that wait for the reboot.
  returned: when O(targets) is not used
  type: list
  elements: str
  sample: [rds.restrict_password_commands]
rebooted:
  description: The instances the run rebooted.
  returned: when O(targets) is not used
  type: list
  elements: str
target:
  description: The target after the run, in the shape M(rdsiam.auth.rds_iam_fleet_info) returns.
  returned: when O(targets) is not used
  type: dict
msg:
  description: What was done, in words (with O(targets), how many targets changed).
  returned: always
  type: str
results:
  description:
    - With O(targets), one entry per target in the order given, each with the keys above plus C(kind), C(identifier) and C(region)
      of the target as given; a target that failed has C(failed=true) and C(msg) instead.
  returned: when O(targets) is used
  type: list
  elements: dict
"""

from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._parameter_groups import (
    AUDIT_EVENTS,
    DEFAULT_AUDIT_EVENTS,
    apply_status,
    carry_out_group_work,
    desired_parameters,
    plan_group_work,
    reboot_and_wait,
    reboot_members,
    waiting_for_reboot,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._module import RdsIamModule
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import (
    WaitTimeout,
    as_target,
    attempt,
    check_engine,
    describe,
    each_target,
    one_or_many,
    target_client,
)


def argument_spec():
    return dict(
        force_ssl=dict(type='bool'),
        log_connections=dict(type='bool'),
        restrict_password_commands=dict(type='bool', no_log=False),
        audit_logging=dict(type='bool'),
        audit_events=dict(type='list', elements='str', choices=list(AUDIT_EVENTS), default=list(DEFAULT_AUDIT_EVENTS)),
        parameters=dict(type='dict', default={}),
        parameter_group_name=dict(type='str'),
        allow_shared_group=dict(type='bool', default=False),
        reboot=dict(type='bool', default=False),
        wait_timeout=dict(type='int', default=1800),
    )


def summary(kind, identifier, work, pending, rebooted, check_mode):
    verb = 'would ' if check_mode else ''
    parts = []
    if work['create']:
        parts.append('%screate %s group %s' % (verb, work['family'], work['name']))
    if work['changes']:
        parts.append('%sset %s' % (verb, ', '.join(change['name'] for change in work['changes'])))
    if work['attach']:
        parts.append('%sattach it to %s %s (was %s)' % (verb, kind, identifier, work['previous']))
    if rebooted:
        parts.append('%sreboot %s' % (verb, ', '.join(rebooted)))
    text = '; '.join(parts) if parts else 'parameter group %s of %s %s already has the values asked for' % (work['name'], kind, identifier)
    if pending:
        text += '; a reboot is pending for the values to take effect'
    return text


def run(module):
    options = dict(module.params, **module.aws_options)
    return one_or_many(options, [(target, attempt(act_on, module, target)) for target in each_target(options)])


def act_on(module, params):
    """Plan, change and (when asked) reboot one target."""
    kind, identifier, rds = target_client(params)
    item = describe(rds, kind, identifier)
    check_engine(item, identifier)
    # Fleet targets share one set of options across engines: what an engine does not have is left out for it.
    wanted = desired_parameters(params, item.get('Engine'), only_applicable=bool(params['target']))
    work = plan_group_work(rds, kind, identifier, item, wanted, params)
    changed = bool(work['create'] or work['changes'] or work['attach'])
    if changed and not module.check_mode:
        carry_out_group_work(rds, identifier, work)
        item = describe(rds, kind, identifier)
    waiting = waiting_for_reboot(work)
    pending = bool(waiting) or work['attach'] or apply_status(kind, item) == 'pending-reboot'
    rebooted = []
    if params['reboot'] and pending:
        changed = True
        if module.check_mode:
            rebooted = reboot_members(kind, item)
        else:
            try:
                rebooted, item = reboot_and_wait(rds, kind, identifier, item, params['wait_timeout'])
            except WaitTimeout as exc:
                raise RdsIamError('rebooted %s %s, but %s' % (kind, identifier, exc),
                                  result=dict(changed=True, target=as_target(kind, exc.last, rds.meta.region_name))) from None
            pending, waiting = False, []
    result = dict(
        changed=changed, parameters=wanted, changes=work['changes'], pending_reboot=pending, pending_reboot_parameters=waiting,
        rebooted=rebooted, target=as_target(kind, item, rds.meta.region_name),
        parameter_group=dict(name=work['name'], family=work['family'], level=work['level'], previous=work['previous'],
                             created=work['create'], attached=work['attach'], shared_with=work['sharers']),
        msg=summary(kind, identifier, work, pending, rebooted, module.check_mode),
    )
    if module._diff:
        result['diff'] = dict(before=dict(parameter_group=work['previous'], parameters=work['before']),
                              after=dict(parameter_group=work['name'], parameters=dict(work['before'], **wanted)))
    return result


def main():
    RdsIamModule(argument_spec(), rds_target=True).run(run)


if __name__ == '__main__':
    main()
