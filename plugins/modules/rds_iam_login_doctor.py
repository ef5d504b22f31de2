#!/usr/bin/python
# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_login_doctor
short_description: Explain why an IAM database login to an RDS or Aurora target fails, check by check
version_added: 0.1.0
description:
  - Given a target, a database user and an IAM principal (a role, a user, or the caller), runs every check an IAM database
    login depends on, in order, and returns each as V(ok), V(fail), V(unknown) (the facts could not be read, or depend on
    a request not made yet) or V(skipped) (an earlier failure makes it meaningless), with the evidence and the fix in one
    sentence. The first failing check is the RV(cause).
  - "AWS side: the engine and its version support IAM auth (C(engine)); the IAM flag is on, the cluster's for an Aurora
    member (C(iam_auth_enabled)); the endpoint is a real RDS endpoint of this target, not a CNAME or another host
    (C(endpoint)); the token's region and port are the target's (C(region_port)); the principal's policies allow
    C(rds-db:connect) on the exact ARN - resource id, account, region, user - (C(policy_allows)); no explicit Deny,
    permissions boundary or service control policy blocks it (C(not_blocked)); for a grant written with
    C(${aws:PrincipalTag/KEY}), the session carries the tag (C(session_tags))."
  - When no policy allows the exact ARN, the evidence names the near miss found in the principal's policies - C(wrong user)
    (a grant for another database user on this target), C(another target) (this user on another resource id),
    C(wrong region), C(identifier instead of resource id) (the grant names the target's identifier, which IAM never
    matches), C(wrong account), C(wrong action) - or C(policy without the ARN) when there is none.
  - "Database side, over one admin connection: the user exists (C(user_exists)), is not locked or expired
    (C(user_not_locked)), may log in (C(user_can_login)), is an IAM user - a member of C(rds_iam) directly or through a
    role on PostgreSQL, C(AWSAuthenticationPlugin) on MySQL and MariaDB - (C(user_is_iam)), and whether TLS is required
    (C(tls): C(REQUIRE SSL), C(rds.force_ssl), C(require_secure_transport); a client without TLS is refused)."
  - Finally, with O(login=true), a real token login as the principal (C(login)); when it fails, the matching lines of the
    target's C(iam-db-auth-error) log (C(rds:DescribeDBLogFiles), C(rds:DownloadDBLogFilePortion)) come back in RV(log_lines).
  - The IAM side is read with C(iam:GetAccountAuthorizationDetails) and evaluated by the same evaluator as
    M(rdsiam.auth.rds_iam_grants_info); the database user is read as M(rdsiam.auth.rds_iam_db_user_info) reads it.
  - "Read-only: nothing is changed in any mode; the module runs the same in check mode and never reports a change."
author:
  - rdsiam.auth contributors (@rdsiam)
options:
  db_user:
    description:
      - The database user the login is for, exactly as stored (case counts).
    type: str
    required: true
  principal_arn:
    description:
      - The IAM role or user whose login to explain, by ARN.
      - Omitted, the caller (the AWS options' identity, from C(sts:GetCallerIdentity)); an assumed-role session stands for its role.
    type: str
  principal_session_tags:
    description:
      - The tags the principal's session carries (for grants written with C(${aws:PrincipalTag/KEY})), and the tags the
        login of O(login=true) tags the session of O(principal_arn) with.
      - Omitted for the caller assumed through O(assume_role_arn), O(session_tags) are that session's tags.
      - Given, the session is taken to carry exactly these tags beside the principal's own.
    type: dict
  client_tls:
    description:
      - Whether the client whose login is explained connects with TLS. V(false) explains the refusal of a client that connects
        in clear text (RDS accepts IAM tokens only over TLS). The doctor's own connections always use TLS.
    type: bool
    default: true
  login:
    description:
      - Finally try a real IAM token login as the principal, over TLS, and on failure read the target's
        C(iam-db-auth-error) log.
      - The caller logs in with its own credentials; a role in O(principal_arn) is assumed (with O(principal_session_tags)).
        A user other than the caller cannot be logged in as here; that check is V(unknown) with the reason.
    type: bool
    default: false
  log_lines:
    description:
      - At most this many lines of the target's C(iam-db-auth-error) log that name O(db_user), the newest, when the login fails.
    type: int
    default: 20
  db_instance_identifier:
    description:
      - The DB instance, by identifier or ARN. For an Aurora member the flag and resource id of its cluster apply.
      - Exactly one of O(target), O(db_instance_identifier) and O(db_cluster_identifier) is required.
    type: str
    aliases: [instance_id]
  db_cluster_identifier:
    description:
      - The DB cluster (Aurora or Multi-AZ DB cluster), by identifier or ARN.
    type: str
    aliases: [cluster_id]
  endpoint:
    description:
      - The host name the client signs its tokens for. Defaults to the target's endpoint; a name that is not one of the
        target's endpoints fails the C(endpoint) check.
    type: str
  endpoint_port:
    description:
      - The port the client signs its tokens for. Defaults to the target's port.
    type: int
  target:
    description:
      - The instance or cluster as M(rdsiam.auth.rds_iam_fleet_info) returns it in
        RV(rdsiam.auth.rds_iam_fleet_info#module:targets); its C(kind), C(identifier) and C(region) name the target to describe.
      - The admin connection uses the target's RDS-managed master user secret (C(master_user_secret_arn)) as its
        C(login_secret) when no admin login option is set.
    type: dict
  targets:
    description:
      - Not supported here; the doctor explains one login on one target.
    type: list
    elements: dict
extends_documentation_fragment:
  - rdsiam.auth.action_group
  - rdsiam.auth.db
  - rdsiam.auth.db_target
  - rdsiam.auth.aws
attributes:
  check_mode:
    support: full
    description: The module only reads (and logs in, which changes nothing); it runs the same in check mode.
  diff_mode:
    support: none
    description: The module changes nothing, so there is nothing to show.
seealso:
  - module: rdsiam.auth.rds_iam_login_check
  - module: rdsiam.auth.rds_iam_grants_info
  - module: rdsiam.auth.rds_iam_db_user_info
  - module: rdsiam.auth.rds_iam_policy
  - module: rdsiam.auth.rds_iam_db_user
  - module: rdsiam.auth.rds_iam_auth
notes:
  - The admin login (O(login_secret), O(login_user)/O(login_password) or O(login_iam), else the target's RDS-managed master
    secret) reads the user's catalog row; it needs no write privilege.
  - The caller needs C(rds:DescribeDBInstances), C(rds:DescribeDBClusters), C(iam:GetAccountAuthorizationDetails),
    C(sts:GetCallerIdentity), and for O(login=true) C(sts:AssumeRole) on O(principal_arn), C(rds:DescribeDBLogFiles) and
    C(rds:DownloadDBLogFilePortion). Service control policies are read when the caller may (C(organizations:Describe*),
    C(organizations:List*)); otherwise C(not_blocked) says they were not read.
  - RDS writes the C(iam-db-auth-error) log a little after the refusal; run again if RV(log_lines) is empty.
  - No token, password or secret ever appears in the result.
requirements:
  - botocore
  - psycopg2 (or psycopg2-binary) >= 2.9 for PostgreSQL
  - PyMySQL >= 1.1 for MySQL and MariaDB
"""

EXAMPLES = r"""
- name: Why can the orders-app role not log in as alice?
  rdsiam.auth.rds_iam_login_doctor:
    db_instance_identifier: orders
    db_user: alice
    principal_arn: arn:aws:iam::123456789012:role/orders-app
    ca_cert: /etc/ssl/rds/global-bundle.pem
    login: true
  register: doctor

- name: Say it
  ansible.builtin.debug:
    msg: "{{ doctor.cause }}: {{ (doctor.checks | selectattr('name', 'equalto', doctor.cause) | first).evidence }}"
  when: not doctor.ok

- name: An ABAC grant, for a session tagged db_user=carol, as the caller
  rdsiam.auth.rds_iam_login_doctor:
    db_cluster_identifier: shop
    db_user: carol
    assume_role_arn: arn:aws:iam::123456789012:role/db-users
    session_tags:
      db_user: carol
    ca_cert: /etc/ssl/rds/global-bundle.pem
"""

RETURN = r"""
checks:
  description: Every check in order, the C(login) check last when O(login=true).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: >-
        The check - engine, iam_auth_enabled, endpoint, region_port, policy_allows, not_blocked, session_tags, user_exists,
        user_not_locked, user_can_login, user_is_iam, tls, login.
      type: str
      sample: policy_allows
    status:
      description: V(ok), V(fail), V(unknown) or V(skipped).
      type: str
      sample: fail
    evidence:
      description: What was found, in one sentence or a few.
      type: str
      sample: >-
        wrong user: inline policy rds-connect statement 0 allows rds-db:connect on
        arn:aws:rds-db:us-east-1:123456789012:dbuser:db-ABCDEFGHIJKLMNOPQRST/bob, not on
        arn:aws:rds-db:us-east-1:123456789012:dbuser:db-ABCDEFGHIJKLMNOPQRST/alice; the grant is for database user bob, not alice
    fix:
      description: What to do, in one sentence; null when the check is ok or skipped.
      type: str
      sample: >-
        allow rds-db:connect on arn:aws:rds-db:us-east-1:123456789012:dbuser:db-ABCDEFGHIJKLMNOPQRST/alice in a policy of
        arn:aws:iam::123456789012:role/orders-app (rds_iam_policy resolves the resource id from the target and writes it)
cause:
  description: The name of the first failing check, or null when none failed.
  returned: always
  type: str
  sample: policy_allows
ok:
  description: Whether every check is V(ok).
  returned: always
  type: bool
  sample: false
target:
  description: The identifier of the target.
  returned: always
  type: str
  sample: orders
db_user:
  description: The database user, O(db_user).
  returned: always
  type: str
  sample: alice
principal:
  description: The ARN of the principal whose login was explained (the caller's role or user when O(principal_arn) is omitted).
  returned: always
  type: str
  sample: arn:aws:iam::123456789012:role/orders-app
connect_arn:
  description: The exact resource the principal needs C(rds-db:connect) on.
  returned: always
  type: str
  sample: arn:aws:rds-db:us-east-1:123456789012:dbuser:db-ABCDEFGHIJKLMNOPQRST/alice
log_lines:
  description: The newest lines of the target's C(iam-db-auth-error) log that name O(db_user), oldest first.
  returned: when O(login=true) and the login failed
  type: list
  elements: str
  sample:
    - >-
      2026-12-07T16:51:33,123 [ERROR] Failed to authorize the connection request for user 'alice' because the IAM policy
      assumed by the caller 'arn:aws:sts::123456789012:assumed-role/orders-app/s' is not authorized to perform
      `rds-db:connect` on the DB instance. (Status Code: 403, Error Code: NotAuthorized)
"""

from ansible_collections.rdsiam.auth.plugins.module_utils._login_doctor_reads import diagnose
from ansible_collections.rdsiam.auth.plugins.module_utils._module import RDS_TARGET_ARGUMENT_SPEC, RdsIamModule

_TARGET_OPTIONS = ('target', 'db_instance_identifier', 'db_cluster_identifier')


def argument_spec():
    """The user, the principal and what to try; the database options and target come from the skeleton, the instance and
    cluster identifiers from the RDS target options."""
    return dict(
        db_user=dict(type='str', required=True),
        principal_arn=dict(type='str'),
        principal_session_tags=dict(type='dict'),
        client_tls=dict(type='bool', default=True),
        login=dict(type='bool', default=False),
        log_lines=dict(type='int', default=20),
        db_instance_identifier=dict(RDS_TARGET_ARGUMENT_SPEC['db_instance_identifier']),
        db_cluster_identifier=dict(RDS_TARGET_ARGUMENT_SPEC['db_cluster_identifier']),
    )


def run(module):
    return diagnose(module.params, module.aws_options_for, module.db_options_for, hide=module.no_log_values.add)


def main():
    RdsIamModule(argument_spec(), db=True, mutually_exclusive=[_TARGET_OPTIONS], required_one_of=[_TARGET_OPTIONS]).run(run)


if __name__ == '__main__':
    main()
