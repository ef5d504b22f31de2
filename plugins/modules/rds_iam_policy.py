#!/usr/bin/python
# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_policy
short_description: Manage the IAM policy that lets principals log in to RDS databases with IAM authentication
version_added: 0.1.0
description:
  - Writes the IAM side of IAM database authentication, an C(rds-db:connect) policy saying who may connect as which database
    user to which instances, clusters and proxies, and attaches it to roles, users or groups.
  - Targets are resolved to the resource ids IAM checks (C(db-...), C(cluster-...), C(prx-...)), never the identifier, with one
    describe call per kind and region whatever the number of targets. An Aurora member instance resolves to its cluster, with a
    warning. When a target is unknown, the module fails listing every unknown target, before writing anything.
  - The document is deterministic (sorted, one statement per set of targets, statement ids derived from the content) and is
    compared with the current one after normalisation, so a rerun with the same grants changes nothing.
  - A managed policy gets a new default version when its document changes; when it already has five versions, the oldest
    non-default one is deleted first.
  - Runs writing the same policy at the same moment (parallel onboardings, job slices) all succeed. A policy another run
    created after this one read IAM is treated as existing (compared, and updated only if it differs); a version, an
    attachment or a policy the other run already removed counts as removed; IAM's C(ConcurrentModification) is retried.
    C(changed) reports what this run wrote.
  - When the grants do not fit in one managed policy (6,144 characters), they are split into numbered policies
    C(NAME-1), C(NAME-2), ... attached the same way, each tagged C(rdsiam:part-of=NAME), and numbers no longer needed are
    deleted.
  - O(policies) manages many policies in one run (for example one per database user), with the AWS reads shared by all of
    them; see O(policies) for what is checked before the first write. O(name) is the same as a one-entry O(policies) list,
    whose result is returned unwrapped.
author:
  - rdsiam.auth contributors (@rdsiam)
options:
  name:
    description:
      - The policy name. Split policies are named O(name) followed by V(-1), V(-2), ... and tagged C(rdsiam:part-of=NAME).
      - A policy named like a part is one only with that tag (for example the policy of a database user C(app-1) is not a part
        of the policy of C(app)); any other is never changed or deleted, and when the grants need its name, the module fails
        before writing anything.
      - Parts written by versions before the tag existed are recognised without it, as a run C(NAME-1), C(NAME-2), ... of
        C(rds-db:connect) documents this module wrote that together do not fit in one policy (the only case in which it
        splits); the next run that keeps them adds the tag.
      - Exactly one of O(name) and O(policies) is required.
    type: str
  policies:
    description:
      - Many policies in one run, each entry with the options of one policy. An option an entry does not set takes its
        top-level value (or that option's default), so O(attach_to), O(policy_type) or O(path) can be set once for all.
        A dict such as O(attach_to) set in an entry replaces the top-level one; it is not merged.
      - Every entry is checked, the targets of all entries are resolved together (one describe per kind and region) and every
        policy is read and compared before the first write. When an entry is invalid, names a target that does not exist, a
        principal that does not exist, or needs a name another policy holds, the task fails naming each such entry and
        nothing is written.
      - IAM is read once for all entries, one list of the customer managed policies under the entries' common path, one
        list of attached policies per principal and one C(sts:GetCallerIdentity); what remains per policy is reading its
        document (C(iam:GetPolicyVersion); C(iam:GetPolicy) too when it has O(tags) or O(description), and for each policy
        named like one of its numbered parts) and the writes. O(name) reads the same way.
      - Entry names must be unique, and no entry may be named like a numbered part of another (V(app) and V(app-1)).
      - Mutually exclusive with O(name). The result then has one item per entry in RV(policies), and diff mode shows all
        policies, keyed by policy name.
      - IAM attaches at most 10 managed policies to one role or user by default (more only with a raised quota); one managed
        policy per database user attached to the same role reaches that quota quickly (V(LimitExceeded)).
    type: list
    elements: dict
    version_added: 0.1.0
    suboptions:
      name:
        description: The policy name, as O(name).
        type: str
        required: true
      state:
        description: As O(state); default the top-level O(state).
        type: str
        choices: [present, absent]
      policy_type:
        description: As O(policy_type); default the top-level O(policy_type).
        type: str
        choices: [managed, inline]
      path:
        description: As O(path); default the top-level O(path).
        type: str
      description:
        description: As O(description); default the top-level O(description).
        type: str
      tags:
        description: As O(tags); default the top-level O(tags).
        type: dict
      grants:
        description: As O(grants); default the top-level O(grants).
        type: list
        elements: dict
        suboptions:
          db_users:
            description: As O(grants[].db_users).
            type: list
            elements: str
            required: true
          targets:
            description: As O(grants[].targets).
            type: list
            elements: str
            required: true
      attach_to:
        description: As O(attach_to); default the top-level O(attach_to).
        type: dict
        suboptions:
          roles:
            description: IAM role names.
            type: list
            elements: str
          users:
            description: IAM user names.
            type: list
            elements: str
          groups:
            description: IAM group names.
            type: list
            elements: str
      purge_attachments:
        description: As O(purge_attachments); default the top-level O(purge_attachments).
        type: bool
      allow_wildcard_users:
        description: As O(allow_wildcard_users); default the top-level O(allow_wildcard_users).
        type: bool
  state:
    description:
      - V(present) writes the policy and its attachments; V(absent) detaches and deletes it (and every numbered part).
      - With O(policies), the default state of the entries.
      - With V(absent), a managed policy found under another path than O(path) fails the task naming that path, rather than
        reporting nothing to do while it stays.
    type: str
    choices: [present, absent]
    default: present
  policy_type:
    description:
      - V(managed) creates a customer managed policy that can be attached to several principals.
      - V(inline) writes an inline policy on exactly one role, user or group named in O(attach_to). Inline policies are not
        split, because IAM's inline size quota (role 10,240, user 2,048, group 5,120 characters) covers all the inline
        policies of a principal together; grants that do not fit fail with a message.
    type: str
    choices: [managed, inline]
    default: managed
  path:
    description:
      - The IAM path of a managed policy. It is part of the policy ARN and cannot be changed after creation.
    type: str
    default: /
  description:
    description:
      - The description of a managed policy, set when the policy is created (IAM cannot change it later).
    type: str
  tags:
    description:
      - Tags of a managed policy. When set, the policy carries exactly these tags (a numbered part also its
        C(rdsiam:part-of) tag); when not set, tags are left alone.
    type: dict
  grants:
    description:
      - Who may connect as whom, and where. Required when O(state=present) (with O(policies), in each entry that is present,
        or here as their default).
    type: list
    elements: dict
    suboptions:
      db_users:
        description:
          - Database user names, or an IAM policy variable that stands for one, written verbatim into the policy
            (attribute-based access), V(${aws:username}), V(${aws:userid}) or V(${aws:PrincipalTag/KEY}).
          - V(*) and other wildcards are refused unless O(allow_wildcard_users=true), since they allow connecting as any user,
            the master user included.
          - Names longer than the target engine accepts are refused (PostgreSQL 63 bytes, MySQL 32, MariaDB 80).
        type: list
        elements: str
        required: true
      targets:
        description:
          - Instance or cluster identifiers, proxy names, resource ids (C(db-...), C(cluster-...), C(prx-...)), RDS ARNs (which
            name their own region), or V(*) for every target in the account and O(region).
        type: list
        elements: str
        required: true
  attach_to:
    description:
      - The principals to attach a managed policy to, or the one principal that holds an inline policy.
    type: dict
    suboptions:
      roles:
        description: IAM role names.
        type: list
        elements: str
      users:
        description: IAM user names.
        type: list
        elements: str
      groups:
        description: IAM group names.
        type: list
        elements: str
  purge_attachments:
    description:
      - Detach a managed policy from principals not listed in O(attach_to).
    type: bool
    default: false
  allow_wildcard_users:
    description:
      - Allow V(*) (or another wildcard) as a database user.
    type: bool
    default: false
extends_documentation_fragment:
  - rdsiam.auth.action_group
  - rdsiam.auth.aws
attributes:
  check_mode:
    support: full
    description: Reads IAM and RDS and reports what would change; writes nothing.
  diff_mode:
    support: full
    description: Shows the documents and attachments before and after.
notes:
  - Errors are reported by their AWS code (for example V(NoSuchEntity), V(LimitExceeded), V(MalformedPolicyDocument),
    V(AccessDenied)) with the policy and principal concerned. V(ConcurrentModification) is retried a few times first.
  - Needs C(rds:DescribeDBInstances), C(rds:DescribeDBClusters) (and C(rds:DescribeDBProxies) for proxies),
    C(sts:GetCallerIdentity) and the IAM permissions for the policy operations (C(iam:ListPolicies) among them).
seealso:
  - module: rdsiam.auth.rds_iam_fleet_info
  - name: IAM policies for IAM database authentication
    description: How rds-db:connect ARNs are built.
    link: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.IAMDBAuth.IAMPolicy.html
"""

EXAMPLES = r"""
- name: Let the analysts role log in as report_reader on two databases and a proxy
  rdsiam.auth.rds_iam_policy:
    name: rdsiam-report-reader
    grants:
      - db_users: [report_reader]
        targets: [app-postgres, app-aurora, app-proxy]
    attach_to:
      roles: [analysts]
  register: policy

- name: Attribute-based access, the session tag userName is the database user
  rdsiam.auth.rds_iam_policy:
    name: rdsiam-abac
    grants:
      - db_users: ["${aws:PrincipalTag/userName}"]
        targets: [app-aurora]
    attach_to:
      roles: [sso-engineers]
    purge_attachments: true

- name: An inline policy on one IAM user
  rdsiam.auth.rds_iam_policy:
    name: rdsiam-alice
    policy_type: inline
    grants:
      - db_users: [alice]
        targets: ["arn:aws:rds:eu-west-1:123456789012:db:billing"]
    attach_to:
      users: [alice]

- name: One policy per database user in one task, all attached to the same role, one of them removed
  rdsiam.auth.rds_iam_policy:
    attach_to:
      roles: [app-servers]
    policies:
      - name: rdsiam-alice
        grants:
          - db_users: [alice]
            targets: [app-postgres, app-aurora]
      - name: rdsiam-bob
        grants:
          - db_users: [bob]
            targets: [app-postgres]
      - name: rdsiam-carol
        state: absent
  register: policies

- name: Remove the policy and all its numbered parts
  rdsiam.auth.rds_iam_policy:
    name: rdsiam-report-reader
    state: absent
"""

RETURN = r"""
policies:
  description:
    - With O(name), the policies as they are now (in check mode, as they would be). Several when the grants were split.
    - V(arn) and V(version) are null for inline policies. For a managed policy check mode would create, V(version) is null and
      V(arn) is the ARN it would get.
    - V(version) is the default version after the run; in check mode, the current default version.
    - With O(policies), one item per entry, in their order, holding what the single form returns for that policy (V(changed),
      V(policies), V(resource_arns)) and its V(name).
  returned: always
  type: list
  elements: dict
  contains:
    arn:
      description: The managed policy ARN (with O(name)).
      type: str
      sample: arn:aws:iam::123456789012:policy/rdsiam-report-reader
    name:
      description: The policy name (with O(policies), the name of the entry).
      type: str
      sample: rdsiam-report-reader
    version:
      description: The default version of a managed policy (with O(name)).
      type: str
      sample: v2
    document:
      description: The policy document (with O(name)).
      type: dict
    changed:
      description: Whether this entry's policy changed (with O(policies)).
      type: bool
    policies:
      description: This entry's policies, each with V(arn), V(name), V(version) and V(document) as with O(name) (with O(policies)).
      type: list
      elements: dict
    resource_arns:
      description: Every C(rds-db:connect) resource ARN this entry's policies allow, sorted (with O(policies)).
      type: list
      elements: str
resource_arns:
  description: Every C(rds-db:connect) resource ARN the policies allow, sorted.
  returned: with O(name)
  type: list
  elements: str
  sample: [arn:aws:rds-db:us-east-1:123456789012:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXYZ/report_reader]
"""

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import default_region
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_entries import PolicyEntries
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_sync import sync_policies
from ansible_collections.rdsiam.auth.plugins.module_utils._module import RdsIamModule

_GRANT_OPTIONS = dict(db_users=dict(type='list', elements='str', required=True), targets=dict(type='list', elements='str', required=True))


def _principals():
    return dict(roles=dict(type='list', elements='str'), users=dict(type='list', elements='str'), groups=dict(type='list', elements='str'))


def argument_spec():
    spec = dict(
        name=dict(type='str'),
        policies=dict(type='list', elements='dict', options=dict(
            # No defaults here: an option an entry leaves out takes the top-level value.
            name=dict(type='str', required=True),
            state=dict(type='str', choices=['present', 'absent']),
            policy_type=dict(type='str', choices=['managed', 'inline']),
            path=dict(type='str'),
            description=dict(type='str'),
            tags=dict(type='dict'),
            grants=dict(type='list', elements='dict', options=_GRANT_OPTIONS),
            attach_to=dict(type='dict', options=_principals()),
            purge_attachments=dict(type='bool'),
            allow_wildcard_users=dict(type='bool'),
        )),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        policy_type=dict(type='str', choices=['managed', 'inline'], default='managed'),
        path=dict(type='str', default='/'),
        description=dict(type='str'),
        tags=dict(type='dict'),
        grants=dict(type='list', elements='dict', options=_GRANT_OPTIONS),
        attach_to=dict(type='dict', options=_principals()),
        purge_attachments=dict(type='bool', default=False),
        allow_wildcard_users=dict(type='bool', default=False),
    )
    return spec


def run(module):
    params = module.params
    # The single form is a one-entry policies call, its result unwrapped by sync_policies.
    module.fail_prefix = "rds_iam_policy '%s': " % params['name'] if params['policies'] is None else 'rds_iam_policy: '
    call = PolicyEntries(params)
    problems = call.problems()
    if problems:
        raise call.error(problems)
    params['region'] = default_region(module.aws_options)
    result = sync_policies(params, module.check_mode, module.warn)
    if not module._diff:
        result.pop('diff')
    return result


def main():
    RdsIamModule(argument_spec(), mutually_exclusive=[('name', 'policies')], required_one_of=[('name', 'policies')]).run(run)


if __name__ == '__main__':
    main()
