#!/usr/bin/python
# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_db_user_info
short_description: List every login account of RDS and Aurora PostgreSQL, MySQL and MariaDB servers, IAM or not
version_added: 0.1.0
description:
  - Reads every account that can log in to one database server (or to many with O(targets)) and says for each whether it is
    an IAM user, whether it also has a password, whether it is locked or its password expired, whether TLS is required, whether
    it is an administrator, and its roles and privileges in the forms M(rdsiam.auth.rds_iam_db_user) uses.
  - "PostgreSQL: an IAM user is a role that holds C(rds_iam), directly or through any chain of roles; RV(accounts[].iam_via)
    names the chain. From PostgreSQL 16 only memberships granted WITH INHERIT or SET count (the C(ADMIN)-only membership a
    role's creator holds passes nothing on). Accounts are the C(LOGIN) roles, and the IAM users without C(LOGIN) (locked
    users). Group roles are left out, including a group that holds C(rds_iam) for its members."
  - "MySQL and MariaDB: an IAM user is an account that authenticates with C(AWSAuthenticationPlugin); on MariaDB that may be
    one of several methods (C(IDENTIFIED VIA AWSAuthenticationPlugin OR mysql_native_password ...)), in which case the account
    also has a password. Roles are left out."
  - Read-only in every mode, with at most two catalog queries per server whatever the number of accounts. Password hashes are
    never returned, only whether there is one.
  - With O(targets) each server is read over its own connection, 4 at a time. A server that cannot be read (down, wrong
    secret) is reported in its RV(results) entry and the module does not fail.
author:
  - rdsiam.auth contributors (@rdsiam)
options:
  names:
    description:
      - Only the accounts of these user names (on MySQL/MariaDB every host of each name). All accounts when not set.
      - The names are sent as bound values; a name the server could not hold (too long, NUL) fails before any query.
    type: list
    elements: str
extends_documentation_fragment:
  - rdsiam.auth.action_group
  - rdsiam.auth.db
  - rdsiam.auth.db_engine
  - rdsiam.auth.db_target
  - rdsiam.auth.aws
attributes:
  check_mode:
    support: full
    description: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
    description: The module changes nothing, so there is nothing to show.
seealso:
  - module: rdsiam.auth.rds_iam_db_user
  - module: rdsiam.auth.rds_iam_fleet_info
  - module: rdsiam.auth.rds_iam_grants_info
  - module: rdsiam.auth.rds_iam_login_doctor
  - module: rdsiam.auth.rds_iam_login_check
notes:
  - The AWS options are used only to read O(login_secret) or to sign the admin's own token with O(login_iam).
  - "PostgreSQL: whether an account has a password is read from C(pg_authid), which the RDS master user may not read; then
    RV(accounts[].has_password) is V(null)."
  - "The login needs to read the catalog: C(pg_roles) and C(pg_auth_members) on PostgreSQL (every role may); C(mysql.user),
    C(mysql.global_priv) (MariaDB), C(mysql.roles_mapping) (MariaDB) or C(mysql.role_edges) (MySQL) and the privilege views
    of C(information_schema) on MySQL/MariaDB (the RDS master user may)."
"""

EXAMPLES = r"""
- name: Every login account of a PostgreSQL instance, admin password from the RDS-managed secret
  rdsiam.auth.rds_iam_db_user_info:
    endpoint: orders.abcdefghijkl.eu-west-1.rds.amazonaws.com
    ca_cert: /etc/ssl/rds/global-bundle.pem
    login_secret: arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf
  register: orders_users

- name: IAM users that still have a password
  ansible.builtin.debug:
    msg: "{{ orders_users.accounts | selectattr('iam') | selectattr('has_password') | map(attribute='name') }}"

- name: Two users on MariaDB, logged in with the admin's own IAM token
  rdsiam.auth.rds_iam_db_user_info:
    endpoint: shop.abcdefghijkl.eu-west-1.rds.amazonaws.com
    ca_cert: /etc/ssl/rds/global-bundle.pem
    login_user: admin
    login_iam: true
    names: [alice, reporting]

- name: Find the fleet's databases
  rdsiam.auth.rds_iam_fleet_info:
    tags: {team: payments}
  register: fleet

- name: Every login account of every database of the fleet; an unreachable one is reported, not fatal
  rdsiam.auth.rds_iam_db_user_info:
    targets: "{{ fleet.targets }}"
    ca_cert: /etc/ssl/rds/global-bundle.pem
  register: accounts
"""

RETURN = r"""
target:
  description: The identifier of O(target), or V(null) when the server was named by O(endpoint).
  returned: without O(targets)
  type: str
  sample: orders
engine:
  description: The engine the catalog was read as, V(postgres), V(mysql) or V(mariadb).
  returned: without O(targets)
  type: str
  sample: postgres
accounts:
  description: Every login account (or those of O(names)), sorted by name and host.
  returned: without O(targets)
  type: list
  elements: dict
  contains:
    name:
      description: The user name.
      type: str
      sample: alice
    host:
      description: The host part of the account on MySQL/MariaDB; V(null) on PostgreSQL.
      type: str
      sample: '%'
    can_login:
      description:
        - PostgreSQL, whether the role has C(LOGIN); MySQL/MariaDB, V(true) unless its only authentication plugin is one no
          one can log in through (C(mysql_no_login)). A lock is RV(accounts[].locked).
      type: bool
    iam:
      description:
        - Whether the account logs in with IAM tokens. PostgreSQL, a member of C(rds_iam) directly or through roles;
          MySQL/MariaDB, an account with C(AWSAuthenticationPlugin) among its authentication methods.
      type: bool
    iam_via:
      description:
        - PostgreSQL, the roles from the account's first parent up to and including C(rds_iam), for example V([rds_iam]) for a
          direct member and V([app_iam_group, rds_iam]) for one inheriting it (the shortest chain); MySQL/MariaDB,
          V([AWSAuthenticationPlugin]). Empty when not an IAM user.
      type: list
      elements: str
      sample: [app_iam_group, rds_iam]
    auth_plugin:
      description:
        - MySQL/MariaDB, the authentication plugin (the first tried when MariaDB lists several); V(null) on PostgreSQL.
      type: str
      sample: AWSAuthenticationPlugin
    has_password:
      description:
        - Whether the account also has a password. V(null) when the login cannot tell (PostgreSQL without read access to
          C(pg_authid), as the RDS master user).
        - On MySQL/MariaDB a password plugin with an empty password counts as no password.
      type: bool
    locked:
      description:
        - PostgreSQL, an IAM user without C(LOGIN); MySQL/MariaDB, C(ACCOUNT LOCK).
      type: bool
    expired:
      description: PostgreSQL, C(VALID UNTIL) is in the past; MySQL/MariaDB, the password is marked expired.
      type: bool
    require_ssl:
      description:
        - MySQL/MariaDB, whether the account must connect over TLS (C(REQUIRE SSL), C(X509) or more); V(null) on PostgreSQL,
          which has no per-user TLS requirement (C(rds.force_ssl) is per server).
      type: bool
    admin:
      description:
        - PostgreSQL, a superuser or a member of C(rds_superuser); MySQL/MariaDB, holds C(SUPER) or C(GRANT OPTION) on C(*.*).
      type: bool
    roles:
      description: The roles granted to the account (on PostgreSQL those that pass their privileges on), without C(rds_iam), sorted.
      type: list
      elements: str
      sample: [app_ro]
    privileges:
      description:
        - "MySQL/MariaDB, the privileges granted to the account itself (not through roles), as a dict of C(db.table) to the
          sorted list of privileges, with C(GRANT OPTION) as a privilege: the dict form
          O(rdsiam.auth.rds_iam_db_user#module:privileges) takes. Empty on PostgreSQL."
      type: dict
      sample: {'shop.*': [SELECT], 'shop.orders': [SELECT, UPDATE]}
  sample:
    - {name: alice, host: null, can_login: true, iam: true, iam_via: [rds_iam], auth_plugin: null, has_password: null,
       locked: false, expired: false, require_ssl: null, admin: false, roles: [app_ro], privileges: {}}
queries:
  description:
    - The catalog queries run, at most two, with C(%s) where the O(names) were bound. Never holds a secret.
  returned: without O(targets)
  type: list
  elements: str
results:
  description:
    - With O(targets), one entry per target in the order given, with the target's C(kind), C(identifier) and C(region), and
      RV(engine), RV(accounts) and RV(queries) as a run on that target alone returns them.
    - A target that could not be read has C(failed) V(true) and C(msg) instead; the module itself does not fail.
  returned: when O(targets) is used
  type: list
  elements: dict
  sample:
    - kind: instance
      identifier: orders
      region: eu-west-1
      engine: postgres
      accounts:
        - {name: alice, host: null, can_login: true, iam: true, iam_via: [rds_iam], auth_plugin: null, has_password: null,
           locked: false, expired: false, require_ssl: null, admin: false, roles: [app_ro], privileges: {}}
      queries: ['SELECT ...', 'SELECT ...']
    - kind: instance
      identifier: shop
      region: eu-west-1
      failed: true
      msg: "could not connect to mysql at ..."
"""

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import SharedAws
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._db import (
    connect_db,
    dialect_mismatch,
    driver_for,
    mysql_dialect,
    resolve_db_login,
    tls_warning,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._db_user_info import read_accounts
from ansible_collections.rdsiam.auth.plugins.module_utils._db_users import ENGINE_OPTION
from ansible_collections.rdsiam.auth.plugins.module_utils._module import RdsIamModule
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import attempt_each, one_or_many


def argument_spec():
    return dict(
        names=dict(type='list', elements='str'),
        engine=ENGINE_OPTION,
    )


def run(module):
    names = module.params['names']
    if module.params['targets'] is None:
        result = read_server(module.db_options, module.aws_options, names, module.warn)
        return dict(result, changed=False, target=module.target.get('identifier'))
    aws = SharedAws()

    def read(job):
        target, db_options, aws_options = job
        return read_server(db_options, aws_options, names, lambda text: module.warn('%s %s: %s' % (
            target.get('kind'), target.get('identifier'), text)), aws)

    outcomes = attempt_each(read, module.db_targets())
    try:
        result = one_or_many(dict(targets=module.params['targets']), [(dict(target=job[0]), outcome) for job, outcome in outcomes])
    except RdsIamError as exc:
        # Read-only: a target that cannot be read is reported in its entry, not fatal to the others.
        result = dict(exc.result)
    results = result['results']
    unread = [entry for entry in results if entry.get('failed')]
    for entry in unread:
        module.warn('%s %s could not be read: %s' % (entry['kind'], entry['identifier'], entry['msg']))
    return dict(changed=False, results=results, msg='%d of %d targets read' % (len(results) - len(unread), len(results)))


def read_server(db_options, aws_options, names, warn, aws=None):
    """One server's login accounts over one connection: the module result for it."""
    family = driver_for(db_options)
    login = resolve_db_login(db_options, family, aws_options, aws=aws)
    warning = tls_warning(login)
    if warning:
        warn(warning)
    conn = connect_db(login)
    try:
        if family == 'postgres':
            conn.set_session(readonly=True)  # the server itself refuses any write in this session's transactions
        engine = 'postgres' if family == 'postgres' else mysql_dialect(conn.get_server_info())
        mismatch = dialect_mismatch(db_options['engine'], conn.get_server_info()) if family != 'postgres' else None
        if mismatch:
            warn(mismatch)
        accounts, queries = read_accounts(conn, engine, names)
    finally:
        conn.close()
    return dict(engine=engine, accounts=accounts, queries=queries)


def main():
    RdsIamModule(argument_spec(), db=True).run(run)


if __name__ == '__main__':
    main()
