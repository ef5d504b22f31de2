#!/usr/bin/python
# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_grants_info
short_description: Report who may connect to which RDS database as which user, from the account's live IAM policies
version_added: 0.1.0
description:
  - Reads the IAM users, groups, roles and managed policies of the account once and reports every statement that allows
    or denies C(rds-db:connect), one row per principal, resource and statement (RV(grants)).
  - With O(targets), evaluates each user and role against each target and database user (RV(access)) with the
    collection's own implementation of IAM's evaluation logic, explicit denies, permissions boundaries, service control
    policies, wildcards and policy variables (V(${aws:username}), V(${aws:PrincipalTag/KEY})) included.
  - A role's session tags are chosen when the role is assumed, so a grant that needs one is reported as
    V(conditional), with the tag it needs (C(any session tagged db_user=alice)). Any C(Condition) block makes a grant
    conditional, and is shown as written; conditions are not evaluated.
  - A grant that names a target's identifier where RDS expects its resource id (C(db-...), C(cluster-...),
    C(prx-...)) grants nothing; its RV(grants[].resource_id_kind) is V(identifier).
  - The number of AWS calls does not depend on the number of principals; it is one C(sts:GetCallerIdentity), the pages of
    C(iam:GetAccountAuthorizationDetails), two reads per distinct AWS managed policy in use, and the Organizations reads
    for service control policies. RV(aws_calls) counts them.
  - The module only reads. It never changes anything, in any mode.
author:
  - rdsiam.auth contributors (@rdsiam)
options:
  targets:
    description:
      - Targets as M(rdsiam.auth.rds_iam_fleet_info) returns them; each needs at least C(identifier), C(resource_id)
        and C(region).
      - With targets, RV(access) is returned, and grant rows that name exactly one of them carry its identifier in
        RV(grants[].target).
    type: list
    elements: dict
  db_users:
    description:
      - Database user names to evaluate per target, as a dict of target identifier to list of names.
      - The users that grants name literally on a target's resource id are always evaluated as well.
    type: dict
  principals:
    description:
      - Only report principals whose ARN matches one of these shell-style globs, for example
        V(arn:aws:iam::123456789012:role/app-*).
    type: list
    elements: str
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
  - Needs C(sts:GetCallerIdentity), C(iam:GetAccountAuthorizationDetails), C(iam:GetPolicy) and C(iam:GetPolicyVersion)
    (for AWS managed policies in use).
  - Service control policies are read when the caller may (C(organizations:DescribeOrganization), C(ListPolicies),
    C(DescribePolicy), C(ListTargetsForPolicy), C(ListParents)); otherwise RV(scps.status) says V(not_readable) and
    access is evaluated without them. SCPs do not restrict the management account.
  - Resource-based policies do not apply to C(rds-db:connect); session policies passed at assume time are not known
    and not evaluated.
  - A role's own tags are taken as the principal tags of its sessions. A session tag with the same key, set when the
    role is assumed (C(sts:TagSession)), overrides it on AWS; such sessions are not foreseen.
seealso:
  - module: rdsiam.auth.rds_iam_fleet_info
  - module: rdsiam.auth.rds_iam_policy
  - module: rdsiam.auth.rds_iam_db_user_info
  - module: rdsiam.auth.rds_iam_login_doctor
  - module: rdsiam.auth.rds_iam_login_check
"""

EXAMPLES = r"""
- name: Every rds-db:connect grant of the account
  rdsiam.auth.rds_iam_grants_info:
  register: grants

- name: Find the targets
  rdsiam.auth.rds_iam_fleet_info:
    engines: [postgres]
  register: fleet

- name: Who may connect to them, as the users the databases have
  rdsiam.auth.rds_iam_grants_info:
    targets: "{{ fleet.targets }}"
    db_users:
      app-db: [alice, app_rw]
    principals:
      - "arn:aws:iam::*:role/app-*"
      - "arn:aws:iam::*:user/*"
  register: access

- name: Grants written with an identifier instead of a resource id grant nothing
  ansible.builtin.debug:
    msg: "{{ access.grants | selectattr('resource_id_kind', 'equalto', 'identifier') | list }}"
"""

RETURN = r"""
principals:
  description: The users, groups and roles reported, sorted by ARN.
  returned: always
  type: list
  elements: dict
  contains:
    arn:
      description: The principal's ARN.
      type: str
    kind:
      description: V(user), V(group) or V(role).
      type: str
    name:
      description: The principal's name.
      type: str
    id:
      description: The unique id IAM gave it (C(AIDA...), C(AROA...), C(AGPA...)).
      type: str
    account:
      description: The account id.
      type: str
    tags:
      description: The principal's tags as a dict.
      type: dict
    labels:
      description:
        - What the audit should know about the principal, sorted. V(identity_center) (an C(AWSReservedSSO_) role or one
          trusted by Identity Center's SAML provider), V(service_linked), V(cross_account_trust) (another account or
          anyone may assume it), V(service_trust), V(permissions_boundary).
      type: list
      elements: str
    groups:
      description: For a user, the groups it belongs to, sorted.
      type: list
      elements: str
    members:
      description: For a group, its users, sorted.
      type: list
      elements: str
    readable:
      description: Whether every policy of the principal could be read. When false, its RV(access) rows say V(unknown).
      type: bool
    problems:
      description: Why some of its policies could not be read; only when RV(principals[].readable) is false.
      type: list
      elements: str
      returned: when not readable
    permissions_boundary:
      description: The ARN of the permissions boundary policy.
      type: str
      returned: when there is one
    assumable_by:
      description:
        - For a role, who its trust policy lets assume it, from the C(Allow) statements, sorted by type and principal.
        - C(type) is V(account), V(role), V(user), V(identity_center), V(service), V(federated), V(cross_account) or
          V(any); C(conditions) is the statement's Condition block as written (empty when none); C(tag_session) says
          whether the statement also allows C(sts:TagSession), without which sessions carry no session tags.
      type: list
      elements: dict
      returned: for roles
      sample: [{principal: "arn:aws:iam::123456789012:saml-provider/AWSSSO_1234_DO_NOT_DELETE", type: identity_center, conditions: {},
                tag_session: true}]
grants:
  description:
    - Every statement that allows or denies C(rds-db:connect) to a user or role, one row per resource it names, as
      written; a user's rows include its groups' statements. Sorted by principal, target, resource id, db user.
  returned: always
  type: list
  elements: dict
  contains:
    principal:
      description: The ARN of the user or role.
      type: str
    principal_kind:
      description: V(user) or V(role).
      type: str
    db_user:
      description: The database user part of the resource, as written - a name, a pattern (V(*)) or a variable
        (V(${aws:PrincipalTag/db_user})).
      type: str
    db_user_resolved:
      description: The name a policy variable in RV(grants[].db_user) takes for this principal, when its own name or
        tags resolve it; null otherwise.
      type: str
    resource:
      description: The resource pattern as written; V(*) for a C(NotResource) statement.
      type: str
    not_resource:
      description: The patterns of a C(NotResource) statement, which allows or denies every resource but these.
      type: list
      elements: str
      returned: for NotResource statements
    resource_id:
      description: The resource id part (C(db-...), C(cluster-...), C(prx-...)), a pattern, or whatever was written there.
      type: str
    resource_id_kind:
      description:
        - V(resource_id) when it is the resource id of one of O(targets), V(identifier) when it is a target's
          identifier (such a grant never matches), V(pattern) for wildcards and variables, V(unknown) otherwise.
      type: str
    region:
      description: The region part, or a pattern.
      type: str
    account:
      description: The account part, or a pattern.
      type: str
    target:
      description: The identifier of the one target whose resource id the row names literally; null otherwise.
      type: str
    effect:
      description: V(allow) or V(deny).
      type: str
    how:
      description: V(explicit) (one ARN), V(wildcard), V(abac) (a policy variable) or V(administrator) (every action on
        every resource).
      type: str
    conditional:
      description: Whether the statement has a Condition block or needs a session tag the principal does not carry itself.
      type: bool
    conditions:
      description: The Condition blocks as written (C(condition)) and session requirements (C(requirement)).
      type: list
      elements: dict
    policy:
      description: The policy name.
      type: str
    policy_arn:
      description: The managed policy's ARN; null for inline policies.
      type: str
    kind:
      description: V(inline), V(managed), V(group_inline) or V(group_managed).
      type: str
    holder:
      description: The ARN of the user, role or group that holds the policy.
      type: str
    statement:
      description: The statement's Sid, or its index in the policy when it has none.
      type: raw
access:
  description:
    - Only with O(targets). The decision for each user or role, target and database user (O(db_users) for the target,
      plus the users grants name on its resource id), as one entry per principal, target and decision with the database
      users it covers in RV(access[].db_users), sorted by principal, target and first database user.
    - A cell that is in no entry is one no statement allows (and no boundary or SCP had to stop), which is most of a
      fleet's matrix. A principal whose policies could not be read has an V(unknown) entry for every cell.
  returned: when targets are given
  type: list
  elements: dict
  contains:
    principal:
      description: The ARN of the user or role.
      type: str
    principal_kind:
      description: V(user) or V(role).
      type: str
    target:
      description: The target identifier.
      type: str
    resource_id:
      description: The target's resource id.
      type: str
    db_users:
      description: The database users of the target this decision holds for, sorted. A grant to every user of a target is one entry.
      type: list
      elements: str
    decision:
      description:
        - V(allowed), V(conditional) (only with a condition or a session tag, shown in C(conditions)), V(denied) (an
          explicit deny), V(not_allowed) (nothing allows it, or a boundary or SCP does not), or V(unknown) (the
          principal's policies could not be read).
      type: str
    how:
      description: How the granting statement names the resource (see RV(grants[].how)); null when nothing grants.
      type: str
    reason:
      description: One sentence naming the policy and statement that decided.
      type: str
    statements:
      description: The statements that decided, each C({policy, policy_arn, kind, holder, sid, index, effect}).
      type: list
      elements: dict
    conditions:
      description: For a conditional decision, the Condition blocks and session requirements it depends on.
      type: list
      elements: dict
    blocked_by:
      description: V(deny), V(boundary) or V(scp) when one of them stops an allowed grant; null otherwise.
      type: str
scps:
  description: The service control policies of the organization.
  returned: always
  type: dict
  contains:
    status:
      description: V(read), V(not_readable) (the caller may not read them) or V(not_in_organization).
      type: str
    msg:
      description: What was read, or why not.
      type: str
    policies:
      description: The SCPs, each C({id, name, targets}).
      type: list
      elements: dict
aws_calls:
  description: How many AWS requests this run made, by action name (each page counts).
  returned: always
  type: dict
  sample: {"sts:GetCallerIdentity": 1, "iam:GetAccountAuthorizationDetails": 2, "organizations:DescribeOrganization": 1}
account:
  description: The account id of the caller.
  returned: always
  type: str
"""

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import default_region
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_account import read_account
from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_grants as grants_of
from ansible_collections.rdsiam.auth.plugins.module_utils._module import RdsIamModule


def argument_spec():
    return dict(
        targets=dict(type='list', elements='dict'),
        db_users=dict(type='dict'),
        principals=dict(type='list', elements='str'),
    )


def checked_targets(targets):
    """The targets, or RdsIamError naming each one that lacks what an rds-db ARN needs."""
    problems = []
    for index, target in enumerate(targets or ()):
        missing = [key for key in ('identifier', 'resource_id', 'region') if not target.get(key)]
        if missing:
            problems.append('targets[%d] (%s) has no %s' % (index, target.get('identifier') or 'no identifier', '/'.join(missing)))
    if problems:
        raise RdsIamError('rds_iam_grants_info cannot evaluate access: %s: pass targets as rdsiam.auth.rds_iam_fleet_info returns them'
                          % '; '.join(problems))
    return list(targets or ())


def checked_db_users(db_users):
    for identifier, names in (db_users or {}).items():
        if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
            raise RdsIamError("db_users['%s'] is not a list of database user names: write it as {%s: [alice, bob]}" % (identifier, identifier))
    return db_users or {}


def run(module):
    params = module.params
    targets = checked_targets(params['targets'])
    db_users = checked_db_users(params['db_users'])
    options = module.aws_options
    options['region'] = options['region'] or default_region(options) or (targets[0]['region'] if targets else None)
    state = read_account(options)
    principals = grants_of.select_principals(state['principals'], params['principals'])
    grants = grants_of.grant_rows(principals, targets, state['account'])
    result = dict(changed=False, account=state['account'], principals=[grants_of.public_principal(principal) for principal in principals],
                  grants=grants, scps=dict((key, state['scps'][key]) for key in ('status', 'msg', 'policies')), aws_calls=state['aws_calls'])
    if params['targets'] is not None:
        result['access'] = grants_of.access_rows(principals, targets, db_users, grants, state['partition'], state['account'],
                                                 scp_levels=state['scps']['levels'])
    return result


def main():
    RdsIamModule(argument_spec()).run(run)


if __name__ == '__main__':
    main()
