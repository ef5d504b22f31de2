#!/usr/bin/python
# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_fleet_info
short_description: List RDS instances, Aurora clusters and RDS proxies as IAM database authentication targets
version_added: 0.1.0
description:
  - Lists the DB instances, DB clusters (Aurora and Multi-AZ) and RDS proxies of one or more regions, one entry per target,
    with what IAM database authentication needs to know about each one.
  - Filters are applied on the controller; RDS has no tag filter. Every listed filter must match.
  - The number of AWS calls depends on the regions, kinds and result pages only, not on the number of targets. Tags come from
    the describe responses; proxy tags come from one Resource Groups Tagging API call per region that has proxies.
  - The output is ready for M(ansible.builtin.add_host), one host per target.
author:
  - rdsiam.auth contributors (@rdsiam)
options:
  regions:
    description:
      - The regions to list. Defaults to the configured region (O(region), E(AWS_REGION) or the profile's region).
    type: list
    elements: str
  kinds:
    description:
      - The kinds of targets to list. Aurora member instances are listed as V(instance) with RV(targets[].cluster_identifier) set.
    type: list
    elements: str
    choices: [instance, cluster, proxy]
    default: [instance, cluster, proxy]
  identifiers:
    description:
      - Only targets whose identifier matches one of these exactly or as a shell-style glob (V(app-*)), or whose ARN or resource
        id is listed. Identifiers match regardless of case, as RDS matches them.
    type: list
    elements: str
  engines:
    description:
      - Only targets of these engines. V(postgres), V(mysql) and V(mariadb) match the RDS and Aurora variants alike;
        an RDS engine name such as V(aurora-postgresql) matches only that engine.
    type: list
    elements: str
  tags:
    description:
      - Only targets that have every one of these tags with exactly this value.
    type: dict
  iam_auth_enabled:
    description:
      - Only targets whose IAM database authentication flag is this value. For a proxy, V(true) means at least one of its
        authentication entries allows or requires IAM.
    type: bool
extends_documentation_fragment:
  - rdsiam.auth.action_group
  - rdsiam.auth.aws
attributes:
  check_mode:
    support: full
    description: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
    description: The module changes nothing, so there is nothing to show.
notes:
  - Needs C(rds:DescribeDBInstances), C(rds:DescribeDBClusters), C(rds:DescribeDBProxies), and C(tag:GetResources) when
    proxies exist.
seealso:
  - module: rdsiam.auth.rds_iam_policy
"""

EXAMPLES = r"""
- name: Find the production PostgreSQL targets of two regions
  rdsiam.auth.rds_iam_fleet_info:
    regions: [us-east-1, eu-west-1]
    engines: [postgres]
    tags:
      env: prod
  register: fleet

- name: One inventory host per target, ready for the database modules
  ansible.builtin.add_host:
    name: "{{ item.identifier }}"
    groups: [rds_targets, "rds_{{ item.dialect }}"]
    rds_target: "{{ item }}"
  loop: "{{ fleet.targets }}"
  loop_control:
    label: "{{ item.kind }} {{ item.identifier }}"

- name: Targets that still have IAM database authentication off
  rdsiam.auth.rds_iam_fleet_info:
    kinds: [instance, cluster]
    iam_auth_enabled: false
    identifiers: ["app-*", "billing"]
  register: todo
"""

RETURN = r"""
targets:
  description: The matching targets, sorted by region, kind (instance, cluster, proxy) and identifier.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(instance), V(cluster) or V(proxy).
      type: str
      sample: cluster
    identifier:
      description: The DB instance or cluster identifier, or the proxy name.
      type: str
      sample: app-aurora
    arn:
      description: The target's ARN.
      type: str
      sample: arn:aws:rds:us-east-1:123456789012:cluster:app-aurora
    engine:
      description: The engine exactly as RDS reports it, for example V(aurora-postgresql), V(postgres) or V(mariadb);
        for a proxy, its engine family (V(POSTGRESQL), V(MYSQL)).
      type: str
      sample: aurora-postgresql
    dialect:
      description:
        - The SQL dialect and IAM login mechanism of the engine - V(postgres), V(mysql) or V(mariadb) - or null for an
          engine without IAM database authentication.
        - The database modules take it from O(rdsiam.auth.rds_iam_db_user#module:target) themselves.
      type: str
      sample: postgres
    engine_version:
      description: The engine version; null for proxies.
      type: str
      sample: "15.7"
    endpoint:
      description: The host name clients connect to (the writer endpoint of a cluster).
      type: str
      sample: app-aurora.cluster-abcdefghij.us-east-1.rds.amazonaws.com
    port:
      description: The port clients connect to.
      type: int
      sample: 5432
    reader_endpoint:
      description: The reader endpoint of a cluster; null otherwise.
      type: str
    resource_id:
      description: The id IAM policies name in C(rds-db:connect) ARNs (C(db-...), C(cluster-...) or C(prx-...)).
      type: str
      sample: cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ
    iam_auth_enabled:
      description: Whether IAM database authentication is enabled.
      type: bool
    master_username:
      description: The master user name; null for proxies.
      type: str
    master_user_secret_arn:
      description: The ARN of the RDS-managed master user secret, if RDS manages it.
      type: str
    parameter_group:
      description: The DB parameter group (cluster parameter group for a cluster) and its apply status; null for proxies.
      type: dict
      sample: {name: app-pg15, apply_status: pending-reboot}
    cluster_identifier:
      description: For an Aurora member instance, the identifier of its cluster.
      type: str
    region:
      description: The region.
      type: str
    account_id:
      description: The AWS account id, from the ARN.
      type: str
    tags:
      description: The tags as a dict.
      type: dict
      sample: {env: prod, team: payments}
    status:
      description: The status RDS reports, for example V(available).
      type: str
    log_exports:
      description:
        - The log types the target exports to CloudWatch Logs, sorted (for example C(iam-db-auth-error), C(postgresql)).
        - V(null) for a proxy.
      type: list
      elements: str
      sample: [iam-db-auth-error, postgresql]
"""

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import default_region
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._module import RdsIamModule
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import discover
from ansible_collections.rdsiam.auth.plugins.module_utils._target_dict import KINDS
from ansible_collections.rdsiam.auth.plugins.module_utils._token import region_is_plausible


def argument_spec():
    return dict(
        regions=dict(type='list', elements='str'),
        kinds=dict(type='list', elements='str', choices=list(KINDS), default=list(KINDS)),
        identifiers=dict(type='list', elements='str'),
        engines=dict(type='list', elements='str'),
        tags=dict(type='dict'),
        iam_auth_enabled=dict(type='bool'),
    )


def regions_to_list(module):
    regions = module.params['regions']
    if not regions:
        region = default_region(module.aws_options)
        if not region:
            raise RdsIamError('rds_iam_fleet_info has no region to list: set regions, region or AWS_REGION, or a region in the profile')
        regions = [region]
    bad = [region for region in regions if not region_is_plausible(region)]
    if bad:
        raise RdsIamError('regions %s are not AWS region names: use names like us-east-1 or eu-west-1' % ', '.join(bad))
    return sorted(set(regions))


def run(module):
    params = module.params
    targets = discover(module.aws_options, regions_to_list(module), kinds=params['kinds'], identifiers=params['identifiers'],
                       engines=params['engines'], tags=params['tags'], iam_auth_enabled=params['iam_auth_enabled'])
    return dict(changed=False, targets=targets)


def main():
    RdsIamModule(argument_spec()).run(run)


if __name__ == '__main__':
    main()
