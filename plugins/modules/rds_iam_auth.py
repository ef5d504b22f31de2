#!/usr/bin/python
# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_auth
short_description: Turn IAM database authentication on or off for an RDS instance or Aurora cluster
version_added: 0.1.0
description:
  - Sets C(IAMDatabaseAuthenticationEnabled) on one RDS DB instance or DB cluster, and by default waits until
    C(describe_db_instances) / C(describe_db_clusters) shows it applied.
  - On Aurora the flag lives on the cluster. Given a member instance, the module fails with a message naming its
    cluster, or acts on the cluster when O(follow_cluster=true).
  - Engines without IAM database authentication (SQL Server, Oracle, Db2, RDS Custom) are refused with the engine named.
  - Only the IAM flag is changed; users, grants and policies are the business of M(rdsiam.auth.rds_iam_db_user) and
    M(rdsiam.auth.rds_iam_policy).
author:
  - rdsiam.auth contributors (!UNKNOWN)
options:
  enabled:
    description:
      - Whether IAM database authentication should be on.
    type: bool
    default: true
  follow_cluster:
    description:
      - When O(db_instance_identifier) names a cluster member, act on its cluster instead of failing.
    type: bool
    default: false
  apply_immediately:
    description:
      - Apply the change now. With V(false) RDS applies it in the next maintenance window; the result then says
        so in RV(pending_maintenance) and nothing is waited for.
    type: bool
    default: true
  wait:
    description:
      - Wait until the change shows in C(describe_*) and the target is C(available) again.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait before failing.
    type: int
    default: 900
extends_documentation_fragment:
  - rdsiam.auth.rds_target
  - rdsiam.auth.aws
attributes:
  check_mode:
    support: full
    description: Reads the target and reports what would change; nothing is modified and nothing is waited for.
  diff_mode:
    support: full
    description: Shows C(iam_auth_enabled) and the value pending for the maintenance window, before and after.
  action_group:
    description: Use C(group/rdsiam.auth.rdsiam) in C(module_defaults) to set the AWS options once.
    support: full
    membership: [rdsiam.auth.rdsiam]
seealso:
  - module: rdsiam.auth.rds_iam_parameter_group
  - module: rdsiam.auth.rds_iam_fleet_info
notes:
  - The AWS calls are C(rds:DescribeDBInstances) or C(rds:DescribeDBClusters) and C(rds:ModifyDBInstance) or
    C(rds:ModifyDBCluster); their number does not depend on the size of the fleet.
"""

EXAMPLES = r"""
- name: Turn IAM database authentication on for an RDS instance and wait until it is applied
  rdsiam.auth.rds_iam_auth:
    db_instance_identifier: orders-db
    region: eu-west-1

- name: Turn it on for an Aurora cluster, given any member instance
  rdsiam.auth.rds_iam_auth:
    db_instance_identifier: arn:aws:rds:eu-west-1:123456789012:db:payments-aurora-1
    follow_cluster: true

- name: Leave the change for the next maintenance window
  rdsiam.auth.rds_iam_auth:
    db_cluster_identifier: payments-aurora
    apply_immediately: false

- name: Turn it off again
  rdsiam.auth.rds_iam_auth:
    db_instance_identifier: orders-db
    enabled: false
"""

RETURN = r"""
iam_auth_enabled:
  description: Whether IAM database authentication is on now, as C(describe_*) reports it.
  returned: always
  type: bool
  sample: true
pending_maintenance:
  description: Whether the requested value waits for the next maintenance window (O(apply_immediately=false)).
  returned: always
  type: bool
  sample: false
acted_on:
  description: The kind and identifier of the resource whose flag was checked or changed (the cluster for an Aurora member).
  returned: always
  type: dict
  sample: {kind: cluster, identifier: payments-aurora}
target:
  description:
    - The target after the run, in the shape M(rdsiam.auth.rds_iam_fleet_info) returns (kind, identifier, arn, engine,
      dialect, engine_version, endpoint, port, reader_endpoint, resource_id, iam_auth_enabled, master_username,
      master_user_secret_arn, parameter_group, cluster_identifier, region, account_id, tags, status).
  returned: always
  type: dict
  sample:
    kind: instance
    identifier: orders-db
    engine: postgres
    resource_id: db-ABCDEFGHIJKLMNOPQRSTUVWXYZ
    iam_auth_enabled: true
    status: available
msg:
  description: What was done, in words.
  returned: always
  type: str
  sample: IAM database authentication turned on for instance orders-db
"""

from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_auth_flag import (
    describe_wait,
    flag_applied,
    flag_holder,
    flag_state,
    modify_iam_auth,
    plan_iam_auth_change,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._module import RdsIamModule
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import (
    WaitTimeout,
    as_target,
    describe,
    target_client,
    wait_for,
)


def argument_spec():
    return dict(
        enabled=dict(type='bool', default=True),
        follow_cluster=dict(type='bool', default=False),
        apply_immediately=dict(type='bool', default=True),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=900),
    )


def run(module):
    params = module.params
    kind, identifier, rds = target_client(dict(params, **module.aws_options))
    region = rds.meta.region_name
    kind, identifier, item = flag_holder(rds, kind, identifier, params['follow_cluster'])
    enabled, apply_immediately = params['enabled'], params['apply_immediately']
    before, pending_before, _status = flag_state(item)
    plan = plan_iam_auth_change(item, enabled, apply_immediately)
    changed = plan['modify']
    if changed and not module.check_mode:
        item = modify_iam_auth(rds, kind, identifier, enabled, apply_immediately)
    if plan['wait'] and params['wait'] and not module.check_mode:
        try:
            item = wait_for(lambda: describe(rds, kind, identifier), lambda found: flag_applied(found, enabled),
                            params['wait_timeout'], describe_wait)
        except WaitTimeout as exc:
            # The change was asked for; say so, and show where the target stands.
            raise RdsIamError(str(exc), result=dict(changed=changed, target=as_target(kind, exc.last, region))) from None
    now = enabled if (changed and module.check_mode and apply_immediately) else flag_state(item)[0]
    pending_maintenance = plan['scheduled']
    state = 'on' if enabled else 'off'
    if pending_maintenance:
        msg = 'IAM database authentication for %s %s will be turned %s in the next maintenance window' % (kind, identifier, state)
    elif changed:
        msg = 'IAM database authentication %s %s for %s %s' % ('would be turned' if module.check_mode else 'turned', state, kind, identifier)
    else:
        msg = 'IAM database authentication is already %s for %s %s' % (state, kind, identifier)
    result = dict(changed=changed, iam_auth_enabled=now, pending_maintenance=pending_maintenance, msg=msg,
                  acted_on=dict(kind=kind, identifier=identifier), target=as_target(kind, item, region))
    if module._diff:
        after_pending = enabled if pending_maintenance else None
        result['diff'] = dict(before=dict(iam_auth_enabled=before, pending_iam_auth_enabled=pending_before),
                              after=dict(iam_auth_enabled=now, pending_iam_auth_enabled=after_pending))
    return result


def main():
    RdsIamModule(argument_spec(), rds_target=True).run(run)


if __name__ == '__main__':
    main()
