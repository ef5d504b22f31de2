#!/usr/bin/python
# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_db_user
short_description: Manage IAM database users on RDS and Aurora PostgreSQL, MySQL and MariaDB, many per call
version_added: 0.1.0
description:
  - Makes the IAM database users of one database server match the list given, over one connection.
  - With O(targets), one run does this on many servers, 4 at a time, each over its own connection; the users can differ by
    engine (O(users_by_dialect)).
  - "PostgreSQL (RDS and Aurora): an IAM user is a C(LOGIN) role that is a member of C(rds_iam). Privileges live in roles
    (for example C(app_ro), C(app_rw)) and users get memberships in them."
  - "MySQL and MariaDB: an IAM user is an account created with
    C(IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL); it gets roles (which become its default roles) and
    privileges in the C(db.table:PRIV1,PRIV2/db2.*:ALL) form of M(community.mysql.mysql_user)."
  - The state of every listed user is read in a fixed number of queries, compared, and only the statements needed are run.
    On PostgreSQL they run in one transaction; MySQL and MariaDB commit account statements at once, so everything
    (names, roles, databases, tables, privileges, safety rules) is checked before the first one.
  - The module never grants C(rds_iam) to, converts, locks or drops the user it is logged in as, nor the accounts RDS reserves
    (C(rdsadmin), C(rds_superuser), C(rds_iam), C(rdsrepladmin), C(rdsproxyadmin), C(mysql.sys), C(mysql.session),
    C(mysql.infoschema), ...).
  - Names the server would silently truncate or cannot store are refused (PostgreSQL more than 63 bytes; MySQL user names
    more than 32 characters, MariaDB more than 80, the limit before MariaDB 10.6; host parts more than 255; NUL bytes;
    trailing spaces and characters outside the Basic Multilingual Plane on MySQL/MariaDB).
author:
  - rdsiam.auth contributors (@rdsiam)
options:
  users:
    description:
      - The users to manage on this server. Mutually exclusive with O(name) and the other top-level user options
        (O(state), O(roles), O(privileges), O(host), O(connection_limit)); set those per entry.
    type: list
    elements: dict
    suboptions:
      name:
        description: The database user name, exactly as stored (case and spaces count).
        type: str
        required: true
      state:
        description:
          - V(present) creates or updates the user; V(absent) drops it.
          - V(locked) keeps the user, with its roles, privileges and objects, but stops it from logging in (offboarding
            without dropping); C(ALTER ROLE ... NOLOGIN) on PostgreSQL, C(ALTER USER ... ACCOUNT LOCK) on MySQL and
            MariaDB (10.4 or later). A user that does not exist is left absent (RV(users[].exists) is V(false), nothing
            changes). O(users[].roles), O(users[].privileges) and O(users[].connection_limit) are not applied.
          - V(present) lifts a lock (C(LOGIN) back, or C(ACCOUNT UNLOCK)); existing sessions of a locked user stay open
            unless O(terminate_sessions) ends them.
          - On PostgreSQL a group role (no C(LOGIN), not in C(rds_iam)) is neither turned into a user nor dropped; listed
            as V(locked) it is left as it is. A password user (outside C(rds_iam)) locked on PostgreSQL looks like a group
            role afterwards, so V(present) refuses it; give it C(LOGIN) back by hand.
        type: str
        choices: [present, absent, locked]
        default: present
      roles:
        description:
          - Roles the user is a member of (PostgreSQL) or is granted (MySQL/MariaDB). They must exist.
          - On MySQL they become the user's default roles; MariaDB has a single default role, the first one listed.
          - C(rds_iam) is always granted on PostgreSQL and need not be listed.
        type: list
        elements: str
      privileges:
        description:
          - MySQL and MariaDB only. Privileges as C(db.table:PRIV1,PRIV2/db2.*:ALL), or a dict of C(db.table) to a
            comma-separated string or list of privileges. Quote names holding dots with backticks.
          - V(GRANT) adds C(WITH GRANT OPTION). V(ALL) is accepted at database and table level, not on C(*.*).
          - The databases and tables must exist; C(_) and C(%) in database names are taken literally, not as wildcards.
        type: raw
      host:
        description:
          - MySQL and MariaDB only. The host part of the account; V(%) (any host) when not set.
          - Compared and stored in lower case, as both servers keep account hosts.
        type: str
      connection_limit:
        description:
          - The most concurrent connections of the user (PostgreSQL C(CONNECTION LIMIT), V(-1) for none; MySQL/MariaDB
            C(MAX_USER_CONNECTIONS), V(0) for none). Left as it is when not set.
        type: int
  users_by_dialect:
    description:
      - The users per engine, keyed by V(postgres), V(mysql) or V(mariadb), each a list like O(users); a server gets the
        list of its engine (MySQL or MariaDB as its version string says). For O(targets) of mixed engines, whose roles and
        privileges are written differently.
      - A server whose engine has no list fails, naming the list to add. Mutually exclusive with O(users) and O(name).
    type: dict
  name:
    description: One user to manage (the same as a one-entry O(users) list). Mutually exclusive with O(users).
    type: str
  state:
    description:
      - The state of O(name), V(present), V(absent) or V(locked); see O(users[].state).
      - Mutually exclusive with O(users), whose entries set their own O(users[].state).
    type: str
    choices: [present, absent, locked]
    default: present
  roles:
    description: The roles of O(name); see O(users[].roles). Mutually exclusive with O(users).
    type: list
    elements: str
  privileges:
    description: The privileges of O(name); see O(users[].privileges). Mutually exclusive with O(users).
    type: raw
  host:
    description: The host part of O(name); see O(users[].host). Mutually exclusive with O(users).
    type: str
  connection_limit:
    description: The connection limit of O(name); see O(users[].connection_limit). Mutually exclusive with O(users).
    type: int
  grant_mode:
    description:
      - V(append) grants what is listed and keeps other roles and privileges.
      - V(exact) also revokes roles and privileges that are not listed (never C(rds_iam) on PostgreSQL).
    type: str
    choices: [append, exact]
    default: append
  convert_password_users:
    description:
      - An existing user that logs in another way (PostgreSQL, a C(LOGIN) role outside C(rds_iam), whether or not it has a
        password; MySQL/MariaDB, any other authentication plugin) is switched to IAM only when this is V(true); otherwise
        the module fails listing them, since whatever logs in as them today would stop working.
      - "PostgreSQL: on RDS every role that holds C(rds_iam) through any chain of memberships must log in with a token.
        Before any grant, the module works out every role that would newly inherit C(rds_iam) (the members of the user,
        recursively; from PostgreSQL 16 only memberships WITH INHERIT or SET count, not the ADMIN-only membership a
        creator holds). If the login the module uses is among them it fails naming the chain (for example
        C(postgres -> ops -> rds_iam)); another C(LOGIN) role among them must itself be listed in O(users) for conversion
        with this option, or the module fails naming it. Nothing is written in either case."
    type: bool
    default: false
  reassign_owned_to:
    description:
      - PostgreSQL, O(users[].state=absent). The role that receives the objects of dropped users (C(REASSIGN OWNED BY)).
        Defaults to the user the module logs in as.
      - C(REASSIGN OWNED) and C(DROP OWNED) act in the database connected to (O(login_db)) and on shared objects; a user
        that owns objects in other databases cannot be dropped until they are reassigned there.
      - They need the privileges of the user and of this role. When the login lacks them (always from PostgreSQL 16, where
        the creator of a role holds only ADMIN on it), the module grants them to its login inside the same transaction
        (C(GRANT user TO login WITH INHERIT TRUE) from 16); C(DROP ROLE) and a closing C(REVOKE) leave no membership behind.
    type: str
  terminate_sessions:
    description:
      - With O(users[].state=absent) or O(users[].state=locked), also end the live sessions of dropped or locked users
        (including users locked earlier that still have sessions open). A token only gates new logins; a session that is
        open outlives it, and so does a lock.
      - PostgreSQL ends them once the drops and locks are committed. MySQL/MariaDB sessions show only the user name, not
        the account, so they are left alone (with a warning) while another account of the same name stays able to log in.
    type: bool
    default: false
extends_documentation_fragment:
  - rdsiam.auth.action_group
  - rdsiam.auth.db
  - rdsiam.auth.db_engine
  - rdsiam.auth.db_target
  - rdsiam.auth.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Every read runs and no write runs; RV(queries) lists the statements a real run would execute.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: >-
      Before and after per user (existence, IAM, roles, privileges, connection limit; a lock as C(login) on PostgreSQL and
      C(locked) on MySQL/MariaDB), keyed by name (C(name@host) on MySQL/MariaDB).
seealso:
  - module: rdsiam.auth.rds_iam_policy
  - module: rdsiam.auth.rds_iam_auth
  - plugin: rdsiam.auth.rds_iam_token
    plugin_type: lookup
notes:
  - The AWS options are used only to read O(login_secret) or to sign the admin's own token with O(login_iam).
  - "Performance: one connection per call, the current state of all listed users in a fixed number of queries
    (two on PostgreSQL, at most seven on MySQL/MariaDB), and on PostgreSQL one transaction."
  - On RDS for MySQL, ending other users' sessions (O(terminate_sessions)) needs the C(CONNECTION_ADMIN) privilege.
"""

EXAMPLES = r"""
- name: Onboard two IAM users onto a PostgreSQL instance, admin password from the RDS-managed secret
  rdsiam.auth.rds_iam_db_user:
    endpoint: orders.abcdefghijkl.eu-west-1.rds.amazonaws.com
    ca_cert: /etc/ssl/rds/global-bundle.pem
    login_secret: arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf
    users:
      - name: alice
        roles: [app_ro]
      - name: bob
        roles: [app_ro, app_rw]
        connection_limit: 5

- name: Keep exactly these roles and privileges on MariaDB (others are revoked)
  rdsiam.auth.rds_iam_db_user:
    endpoint: shop.abcdefghijkl.eu-west-1.rds.amazonaws.com
    ca_cert: /etc/ssl/rds/global-bundle.pem
    login_user: admin
    login_iam: true
    engine: mariadb
    grant_mode: exact
    name: reporting
    roles: [reader]
    privileges: 'shop.*:SELECT/shop.orders:SELECT,UPDATE'

- name: Offboard a user, reassign what it owns and end its sessions
  rdsiam.auth.rds_iam_db_user:
    endpoint: orders.abcdefghijkl.eu-west-1.rds.amazonaws.com
    ca_cert: /etc/ssl/rds/global-bundle.pem
    login_secret: "{{ master_secret_arn }}"
    login_db: orders
    name: bob
    state: absent
    reassign_owned_to: app_owner
    terminate_sessions: true

- name: Offboard without dropping - lock two users on every server they are on and end their sessions
  rdsiam.auth.rds_iam_db_user:
    endpoint: "{{ item.endpoint }}"
    ca_cert: /etc/ssl/rds/global-bundle.pem
    login_secret: "{{ item.master_secret_arn }}"
    terminate_sessions: true
    users:
      - name: bob
        state: locked
      - name: carol
        state: locked
  loop: "{{ databases }}"

- name: Let bob log in again (lifts the lock, keeps his roles)
  rdsiam.auth.rds_iam_db_user:
    endpoint: orders.abcdefghijkl.eu-west-1.rds.amazonaws.com
    ca_cert: /etc/ssl/rds/global-bundle.pem
    login_secret: "{{ master_secret_arn }}"
    name: bob

- name: Find the fleet's databases
  rdsiam.auth.rds_iam_fleet_info:
    tags: {team: payments}
  register: fleet

- name: The same two users on every database of the fleet in one run, with the grants each engine has
  rdsiam.auth.rds_iam_db_user:
    targets: "{{ fleet.targets }}"
    ca_cert: /etc/ssl/rds/global-bundle.pem
    users_by_dialect:
      postgres: [{name: alice, roles: [pg_read_all_data]}, {name: bob, roles: [app_rw]}]
      mariadb: [{name: alice, privileges: '*.*:SELECT'}, {name: bob, privileges: 'shop.*:SELECT,INSERT,UPDATE'}]
  register: onboarded

- name: Switch existing password users to IAM (whatever used their passwords must move to tokens first)
  rdsiam.auth.rds_iam_db_user:
    endpoint: orders.abcdefghijkl.eu-west-1.rds.amazonaws.com
    ca_cert: /etc/ssl/rds/global-bundle.pem
    login_secret: "{{ master_secret_arn }}"
    convert_password_users: true
    users:
      - name: legacy_app
        roles: [app_rw]
"""

RETURN = r"""
engine:
  description: The engine the SQL was written for, V(postgres), V(mysql) or V(mariadb).
  returned: without O(targets)
  type: str
  sample: postgres
users:
  description: One entry per listed user, in the order given.
  returned: without O(targets)
  type: list
  elements: dict
  contains:
    name:
      description: The user name.
      type: str
      sample: alice
    host:
      description: The host part of the account (MySQL/MariaDB only).
      type: str
      sample: '%'
    exists:
      description:
        - Whether the user exists after the run (in check mode, would exist).
        - V(false) with O(users[].state=locked) means the user was not there, so there was nothing to lock.
      type: bool
    changed:
      description: Whether anything was (or in check mode would be) changed for this user.
      type: bool
    created:
      description: Whether the user was created.
      type: bool
    converted:
      description: Whether an existing password user was switched to IAM (O(convert_password_users=true)).
      type: bool
    roles_granted:
      description: Roles granted (C(rds_iam) is not listed).
      type: list
      elements: str
      sample: [app_ro]
    roles_revoked:
      description: Roles revoked (O(grant_mode=exact)).
      type: list
      elements: str
    privileges_granted:
      description: MySQL/MariaDB privileges granted, by C(db.table).
      type: dict
      sample: {'shop.*': [SELECT]}
    privileges_revoked:
      description: MySQL/MariaDB privileges revoked, by C(db.table) (O(grant_mode=exact)).
      type: dict
    locked:
      description: Whether the user was locked (O(users[].state=locked)); V(false) when it was locked already.
      type: bool
    unlocked:
      description: Whether O(users[].state=present) lifted a lock (PostgreSQL C(LOGIN), MySQL/MariaDB C(ACCOUNT UNLOCK)).
      type: bool
    dropped:
      description: Whether the user was dropped.
      type: bool
  sample:
    - {name: alice, exists: true, changed: true, created: true, converted: false, roles_granted: [app_ro], roles_revoked: [],
       privileges_granted: {}, privileges_revoked: {}, locked: false, unlocked: false, dropped: false}
queries:
  description: The statements run (in check mode, the ones a real run would run), with values as sent. Never holds a secret.
  returned: without O(targets)
  type: list
  elements: str
  sample:
    - CREATE ROLE "alice" LOGIN
    - GRANT "rds_iam", "app_ro" TO "alice"
results:
  description:
    - With O(targets), one entry per target in the order given, with RV(engine), RV(users), RV(queries) and C(changed) as
      a run on that target alone returns them, and the target's C(kind), C(identifier) and C(region).
    - A target that failed has C(failed) and C(msg) instead; the others were still done.
  returned: when O(targets) is used
  type: list
  elements: dict
  sample:
    - kind: instance
      identifier: orders
      region: eu-west-1
      changed: true
      engine: postgres
      users:
        - {name: alice, exists: true, changed: true, created: true, converted: false, roles_granted: [pg_read_all_data],
           roles_revoked: [], privileges_granted: {}, privileges_revoked: {}, locked: false, unlocked: false, dropped: false}
      queries: ['CREATE ROLE "alice" LOGIN', 'GRANT "rds_iam", "pg_read_all_data" TO "alice"']
"""

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import SharedAws
from ansible_collections.rdsiam.auth.plugins.module_utils._db import (
    connect_db,
    dialect_mismatch,
    driver_for,
    mysql_dialect,
    resolve_db_login,
    tls_warning,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._db_users import (
    ENGINE_OPTION,
    USER_OPTION_SPEC,
    module_result,
    users_for_engine,
    wanted_users,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._module import RdsIamModule
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import attempt_each, one_or_many

USER_LISTS = ('users', 'name', 'users_by_dialect')
# The top-level user options describe O(name) only: next to a users list they would be silently ignored
# (state=absent with users would create the users it meant to drop).
SINGLE_USER_EXCLUSIVE = [(lists, option) for lists in ('users', 'users_by_dialect') for option in USER_OPTION_SPEC]


def argument_spec():
    spec = dict(
        users=dict(type='list', elements='dict', options=dict(USER_OPTION_SPEC)),
        # Checked entry by entry against USER_OPTION_SPEC by wanted_users: a dict of lists has no suboptions.
        users_by_dialect=dict(type='dict'),
        engine=ENGINE_OPTION,
        grant_mode=dict(type='str', default='append', choices=['append', 'exact']),
        convert_password_users=dict(type='bool', default=False, no_log=False),
        reassign_owned_to=dict(type='str'),
        terminate_sessions=dict(type='bool', default=False),
    )
    single = dict(USER_OPTION_SPEC)
    single['name'] = dict(type='str')
    spec.update(single)
    return spec


def run(module):
    wanted = wanted_users(module.params)
    if module.params['targets'] is None:
        return sync_users(module, module.db_options, module.aws_options, wanted, module.warn)
    aws = SharedAws()

    def sync(job):
        target, db_options, aws_options = job
        return sync_users(module, db_options, aws_options, wanted, lambda text: module.warn('%s %s: %s' % (
            target.get('kind'), target.get('identifier'), text)), aws)

    outcomes = attempt_each(sync, module.db_targets())
    result = one_or_many(dict(targets=module.params['targets']), [(dict(target=job[0]), outcome) for job, outcome in outcomes])
    if module._diff:
        result['diff'] = [dict(entry['diff'], before_header=entry['identifier'], after_header=entry['identifier'])
                          for entry in result['results']]
    return result


def sync_users(module, db_options, aws_options, wanted, warn, aws=None):
    """One server's users made to match wanted (see wanted_users), over one connection: the module result for it."""
    params = module.params
    family = driver_for(db_options)
    login = resolve_db_login(db_options, family, aws_options, aws=aws)
    warning = tls_warning(login)
    if warning:
        warn(warning)
    server = '%s:%s' % (login.endpoint, login.endpoint_port)
    conn = connect_db(login)
    try:
        if family == 'postgres':
            from ansible_collections.rdsiam.auth.plugins.module_utils._pg_users import sync_pg_users

            engine = 'postgres'
            plan, queries = sync_pg_users(conn, users_for_engine(wanted, engine, server), params, module.check_mode)
        else:
            from ansible_collections.rdsiam.auth.plugins.module_utils._mysql_users import sync_mysql_users

            engine = mysql_dialect(conn.get_server_info())
            mismatch = dialect_mismatch(db_options['engine'], conn.get_server_info())
            if mismatch:
                warn(mismatch)
            plan, queries = sync_mysql_users(conn, engine, users_for_engine(wanted, engine, server), params, module.check_mode)
    finally:
        conn.close()
    for plan_warning in plan.warnings:
        warn(plan_warning)
    return module_result(plan, queries, engine, module._diff)


def main():
    RdsIamModule(argument_spec(), db=True, mutually_exclusive=[USER_LISTS] + SINGLE_USER_EXCLUSIVE,
                 required_one_of=[USER_LISTS]).run(run)


if __name__ == '__main__':
    main()
