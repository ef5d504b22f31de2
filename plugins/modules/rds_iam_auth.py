#!/usr/bin/python
# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_auth
short_description: Turn IAM database authentication on or off for an RDS instance or Aurora cluster
version_added: 0.1.0
description:
  - Sets C(IAMDatabaseAuthenticationEnabled) on one RDS DB instance or DB cluster, or on each of O(targets), and by
    default waits until C(describe_db_instances) / C(describe_db_clusters) shows it applied. With O(targets) every change
    is asked for first and the waits share one O(wait_timeout).
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
  - rdsiam.auth.action_group
  - rdsiam.auth.rds_target
  - rdsiam.auth.aws
attributes:
  check_mode:
    support: full
    description: Reads the target and reports what would change; nothing is modified and nothing is waited for.
  diff_mode:
    support: full
    description: Shows C(iam_auth_enabled) and the value pending for the maintenance window, before and after.
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

- name: Turn it on for every target of a play in one run (once, not once per host)
  rdsiam.auth.rds_iam_auth:
    targets: "{{ fleet.targets | selectattr('kind', 'in', ['instance', 'cluster']) | rejectattr('cluster_identifier') }}"
  run_once: true
  register: iam_auth

- name: Turn it off again
  rdsiam.auth.rds_iam_auth:
    db_instance_identifier: orders-db
    enabled: false
"""

RETURN = r"""
iam_auth_enabled:
  description: Whether IAM database authentication is on now, as C(describe_*) reports it.
  returned: when O(targets) is not used
  type: bool
  sample: true
pending_maintenance:
  description: Whether the requested value waits for the next maintenance window (O(apply_immediately=false)).
  returned: when O(targets) is not used
  type: bool
  sample: false
acted_on:
  description: The kind and identifier of the resource whose flag was checked or changed (the cluster for an Aurora member).
  returned: when O(targets) is not used
  type: dict
  sample: {kind: cluster, identifier: payments-aurora}
target:
  description:
    - The target after the run, in the shape M(rdsiam.auth.rds_iam_fleet_info) returns (kind, identifier, arn, engine,
      dialect, engine_version, endpoint, port, reader_endpoint, resource_id, iam_auth_enabled, master_username,
      master_user_secret_arn, parameter_group, cluster_identifier, region, account_id, tags, status).
  returned: when O(targets) is not used
  type: dict
  sample:
    kind: instance
    identifier: orders-db
    engine: postgres
    resource_id: db-ABCDEFGHIJKLMNOPQRSTUVWXYZ
    iam_auth_enabled: true
    status: available
msg:
  description: What was done, in words (with O(targets), how many targets changed).
  returned: always
  type: str
  sample: IAM database authentication turned on for instance orders-db
results:
  description:
    - With O(targets), one entry per target in the order given, each with the keys above plus C(kind), C(identifier) and C(region)
      of the target as given; a target that failed has C(failed=true) and C(msg) instead.
  returned: when O(targets) is used
  type: list
  elements: dict
  sample:
    - kind: instance
      identifier: orders-db
      changed: true
      iam_auth_enabled: true
      pending_maintenance: false
      msg: IAM database authentication turned on for instance orders-db
"""

import time

from ansible_collections.rdsiam.auth.plugins.module_utils._iam_auth_flag import change_result, start_change, wait_until_applied
from ansible_collections.rdsiam.auth.plugins.module_utils._module import RdsIamModule
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import attempt, each_target, one_or_many


def argument_spec():
    return dict(
        enabled=dict(type='bool', default=True),
        follow_cluster=dict(type='bool', default=False),
        apply_immediately=dict(type='bool', default=True),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=900),
    )


def run(module):
    options = dict(module.params, **module.aws_options)
    # Every change is asked for before any wait, and the waits share one deadline: RDS applies them side by side.
    started = [(target, attempt(start_change, target, module.check_mode)) for target in each_target(options)]
    deadline = time.monotonic() + options['wait_timeout']

    def finish(target, change):
        if change['plan']['wait'] and target['wait'] and not module.check_mode:
            wait_until_applied(change, target, deadline)
        return change_result(change, target, module.check_mode, module._diff)

    return one_or_many(options, [(target, change if isinstance(change, Exception) else attempt(finish, target, change))
                                 for target, change in started])


def main():
    RdsIamModule(argument_spec(), rds_target=True).run(run)


if __name__ == '__main__':
    main()
