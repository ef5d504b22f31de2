#!/usr/bin/python
# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_login_check
short_description: Prove that IAM database logins work (or no longer work) on RDS and Aurora targets
version_added: 0.1.0
description:
  - Logs in to one PostgreSQL, MySQL or MariaDB server as each of O(db_users) with an IAM database auth token, over TLS,
    and runs C(SELECT current_user) (PostgreSQL) or C(SELECT CURRENT_USER()) (MySQL, MariaDB).
  - The tokens are signed with the AWS options, so with O(assume_role_arn) (and O(session_tags), O(role_session_name), ...)
    the logins are made as that principal, the way the people or applications behind it will log in.
  - AWS credentials are resolved once for all users (at most one STS C(AssumeRole)); then each user gets a fresh token and
    its own connection. The first login runs alone; the others run at once (up to 8 at a time), since each waits on the
    network and the server.
  - With O(targets), one run proves the same users on many targets, 4 targets at a time, with credentials resolved once
    per region, and returns one result per target.
  - With O(expect=success) the module fails unless every user logs in as itself; the message names each user, the target,
    the cause and the likely fix. With O(expect=failure) it fails unless the server refuses every login, which proves
    that access is gone after offboarding.
  - "Read-only: a login changes nothing, so the module runs in check mode too and never reports a change."
author:
  - rdsiam.auth contributors (@rdsiam)
options:
  db_users:
    description:
      - The database users to log in as, one connection each. Repeats are checked once.
    type: list
    elements: str
    required: true
  expect:
    description:
      - V(success) passes when every user logs in and the server names that user as the current user.
      - V(failure) passes only when the server refuses every login (for example C(PAM authentication failed) or
        C(Access denied)). A target that cannot be reached, a TLS failure or any other error proves nothing and fails the
        module.
    type: str
    choices: [success, failure]
    default: success
  engine:
    description:
      - The database engine. V(auto) tells PostgreSQL from MySQL/MariaDB by the server's first reply (one extra TCP handshake,
        no credentials sent).
    type: str
    choices: [auto, postgres, mysql, mariadb]
    default: auto
  endpoint:
    description:
      - The real host name of the RDS instance, Aurora cluster or RDS Proxy endpoint, for example
        V(mydb.abcdefghijkl.eu-central-1.rds.amazonaws.com).
      - The tokens are signed for it, and the TLS certificate host name is checked against it, even when O(login_host)
        points the TCP connection elsewhere.
      - Defaults to O(login_host). At least one of O(endpoint) and O(login_host) is required.
    type: str
  endpoint_port:
    description:
      - The port of O(endpoint), which the tokens are signed for.
      - Defaults to O(login_port), then to the engine's default port.
    type: int
  login_host:
    description:
      - The host to open the TCP connections to, for example V(127.0.0.1) for an SSH tunnel. Defaults to O(endpoint).
    type: str
  login_port:
    description:
      - The TCP port to connect to. Defaults to V(5432) for PostgreSQL and V(3306) for MySQL and MariaDB.
    type: int
  login_db:
    description:
      - The database to connect to. Defaults to V(postgres) for PostgreSQL; MySQL and MariaDB connect without selecting one.
    type: str
  ca_cert:
    description:
      - The path to the CA bundle (PEM) that signs the database server certificate, usually the RDS bundle from
        U(https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem).
      - If not set, the system trust store is used; it works for RDS Proxy but not for RDS instance or cluster certificates.
      - Ignored when O(ssl_mode) is V(require).
    type: path
    aliases: [ssl_rootcert, ca_file]
  ssl_mode:
    description:
      - How the connections use TLS. V(verify-full) checks the certificate chain and that the certificate names O(endpoint).
      - V(verify-ca) checks the chain only and V(require) checks nothing; both produce a warning.
      - "There is no V(disable): RDS refuses IAM tokens without TLS, and a token must not travel in clear text."
    type: str
    choices: [require, verify-ca, verify-full]
    default: verify-full
  connect_timeout:
    description:
      - Seconds to wait for each connection to open.
      - When the target does not answer or TLS fails, the remaining users are not tried (their entries say so).
    type: int
    default: 10
  retries:
    description:
      - How many more times to try a login whose outcome is not O(expect), with a fresh token, before failing.
      - IAM policy and user changes take a few seconds to reach the database, so a login checked right after onboarding
        or offboarding may need them. A target that does not answer or fails TLS is not tried again.
    type: int
    default: 0
  retry_delay:
    description:
      - Seconds to wait before each of the O(retries).
    type: int
    default: 5
extends_documentation_fragment:
  - rdsiam.auth.action_group
  - rdsiam.auth.db_target
  - rdsiam.auth.aws
attributes:
  check_mode:
    support: full
    description: Logins change nothing; the module runs the same in check mode.
  diff_mode:
    support: none
    description: The module changes nothing, so there is nothing to show.
seealso:
  - module: rdsiam.auth.rds_iam_db_user
  - module: rdsiam.auth.rds_iam_policy
  - module: rdsiam.auth.rds_iam_auth
  - plugin: rdsiam.auth.rds_iam_token
    plugin_type: lookup
notes:
  - The tokens are the same as the P(rdsiam.auth.rds_iam_token#lookup) lookup mints; they are never returned or logged.
  - The principal needs C(rds-db:connect) on C(arn:aws:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/DB_USER) for each user.
requirements:
  - psycopg2 (or psycopg2-binary) >= 2.9 for PostgreSQL
  - PyMySQL >= 1.1 for MySQL and MariaDB
"""

EXAMPLES = r"""
- name: Prove that alice and bob log in to the orders database as themselves, as the role they will use
  rdsiam.auth.rds_iam_login_check:
    endpoint: orders.abcdefghijkl.eu-west-1.rds.amazonaws.com
    ca_cert: /etc/ssl/rds/global-bundle.pem
    assume_role_arn: arn:aws:iam::123456789012:role/orders-app
    db_users: [alice, bob]

- name: Prove an ABAC setup, as a session tagged with the user name
  rdsiam.auth.rds_iam_login_check:
    endpoint: shop.cluster-abcdefghijkl.eu-west-1.rds.amazonaws.com
    ca_cert: /etc/ssl/rds/global-bundle.pem
    engine: mysql
    assume_role_arn: arn:aws:iam::123456789012:role/db-users
    role_session_name: check-carol
    session_tags:
      userName: carol
    db_users: [carol]

- name: After offboarding, prove that bob can no longer log in
  rdsiam.auth.rds_iam_login_check:
    endpoint: orders.abcdefghijkl.eu-west-1.rds.amazonaws.com
    ca_cert: /etc/ssl/rds/global-bundle.pem
    db_users: [bob]
    expect: failure
    retries: 3

- name: Find the fleet's PostgreSQL targets
  rdsiam.auth.rds_iam_fleet_info:
    regions: [eu-west-1]
    engines: [postgres]
  register: fleet

- name: Prove alice's login on all of them in one run
  rdsiam.auth.rds_iam_login_check:
    targets: "{{ fleet.targets }}"
    ca_cert: /etc/ssl/rds/global-bundle.pem
    db_users: [alice]
    retries: 3
"""

RETURN = r"""
endpoint:
  description: The endpoint the tokens were signed for and the certificates checked against.
  returned: without O(targets)
  type: str
  sample: orders.abcdefghijkl.eu-west-1.rds.amazonaws.com
endpoint_port:
  description: The port the tokens were signed for.
  returned: without O(targets)
  type: int
  sample: 5432
expect:
  description: The expected outcome, O(expect).
  returned: without O(targets)
  type: str
  sample: success
logins:
  description: One entry per user, in the order of O(db_users).
  returned: without O(targets)
  type: list
  elements: dict
  contains:
    db_user:
      description: The database user.
      type: str
      sample: alice
    logged_in:
      description: Whether the server accepted the login.
      type: bool
    refused:
      description: Whether the server refused the login (the outcome O(expect=failure) needs).
      type: bool
    current_user:
      description: What the server says the current user is (MySQL and MariaDB add C(@host)); null when not logged in.
      type: str
      sample: alice
    tls_version:
      description: The TLS protocol version of the connection; null when not logged in.
      type: str
      sample: TLSv1.3
    error:
      description: Why the login failed or did not prove the user, in short; null when it worked. Never holds the token.
      type: str
      sample: PAM authentication failed for user "bob"
  sample:
    - {db_user: alice, logged_in: true, refused: false, current_user: alice, tls_version: TLSv1.3, error: null}
    - {db_user: bob, logged_in: false, refused: true, current_user: null, tls_version: null,
       error: PAM authentication failed for user "bob"}
failed_users:
  description: The users whose outcome is not O(expect) (with V(failure), the ones that still log in or were not refused).
  returned: without O(targets)
  type: list
  elements: str
  sample: [bob]
results:
  description:
    - With O(targets), one entry per target in the order given, with the keys above (RV(endpoint), RV(endpoint_port),
      RV(expect), RV(logins), RV(failed_users)) plus C(kind), C(identifier) and C(region) of the target as given.
    - A target whose logins are not as expected, or that could not be checked, also has C(failed=true) and C(msg).
  returned: when O(targets) is used
  type: list
  elements: dict
  sample:
    - kind: instance
      identifier: orders-db
      region: eu-west-1
      endpoint: orders-db.abcdefghijkl.eu-west-1.rds.amazonaws.com
      endpoint_port: 5432
      expect: success
      logins:
        - {db_user: alice, logged_in: true, refused: false, current_user: alice, tls_version: TLSv1.3, error: null}
      failed_users: []
"""

from ansible_collections.rdsiam.auth.plugins.module_utils._db import DB_ARGUMENT_SPEC
from ansible_collections.rdsiam.auth.plugins.module_utils._db_users import ENGINE_OPTION
from ansible_collections.rdsiam.auth.plugins.module_utils._login_check import (
    EXPECTATIONS,
    LOGIN_CHECK_DB_OPTIONS,
    LOGIN_CHECK_SSL_MODES,
    LoginCheckError,
    check_logins,
    check_targets,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._module import RdsIamModule
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import one_or_many


def argument_spec():
    """db_users, engine, expect and retries; the DB connection options that fit someone else's login, and targets, come
    from the skeleton."""
    return dict(
        db_users=dict(type='list', elements='str', required=True),
        engine=ENGINE_OPTION,
        expect=dict(type='str', default='success', choices=list(EXPECTATIONS)),
        # IAM tokens need TLS: disable is not offered.
        ssl_mode=dict(DB_ARGUMENT_SPEC['ssl_mode'], choices=list(LOGIN_CHECK_SSL_MODES)),
        retries=dict(type='int', default=0),
        retry_delay=dict(type='int', default=5),
    )


def run(module):
    common = dict((name, module.params[name]) for name in ('db_users', 'expect', 'retries', 'retry_delay'))
    if module.params['targets'] is None:
        result, failure = check_logins(dict(module.db_options, **common), module.aws_options, warn=module.warn,
                                       hide=module.no_log_values.add)
        if failure:
            raise LoginCheckError(failure, result=result)
        return result
    jobs = [(target, dict(db_options, **common), aws_options) for target, db_options, aws_options in module.db_targets()]
    outcomes = check_targets(jobs, warn=module.warn, hide=module.no_log_values.add)
    return one_or_many(dict(targets=module.params['targets']), [(dict(target=target), outcome) for target, outcome in outcomes])


def main():
    RdsIamModule(argument_spec(), db=LOGIN_CHECK_DB_OPTIONS).run(run)


if __name__ == '__main__':
    main()
