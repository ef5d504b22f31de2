# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Proving that IAM logins work (or no longer work) on one target or many: one credential
# resolution per signing region, then per database user one token and one connection through _db
# (the same signing and TLS code as every module), `SELECT current_user`, and a verdict per user.
# Driver errors are sorted into refusals by the server, unreachable targets, TLS failures and the
# rest, because only a refusal proves that access is gone and each cause has its own fix.

import concurrent.futures
import re
import time

from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError, import_library
from ansible_collections.rdsiam.auth.plugins.module_utils._db import (
    DbConnectError,
    check_db_options,
    connect_db,
    driver_for,
    iam_signing_credentials,
    iam_signing_region,
    resolve_db_login,
    scrub_secret,
    tls_warning,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._identifiers import IdentifierError, check_db_user_name
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import SharedAws
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import attempt_each

# The DB connection options that make sense for someone else's login; the admin login options do not.
LOGIN_CHECK_DB_OPTIONS = ('endpoint', 'endpoint_port', 'login_host', 'login_port', 'login_db', 'ca_cert', 'ssl_mode',
                          'connect_timeout')
# Logins proven at once on one target: each waits on the network and the server, not on this process.
MAX_CONCURRENT_LOGINS = 8
# IAM tokens need TLS: RDS refuses them in clear text, and they would travel readable.
LOGIN_CHECK_SSL_MODES = ('require', 'verify-ca', 'verify-full')
EXPECTATIONS = ('success', 'failure')

_MAX_ERROR_LENGTH = 300

# Causes, in the order they are tried. 'refused' means the server turned the login down: the only outcome that proves
# access is gone. 'unreachable' and 'tls' are about the target, not the user, so the other users are not tried.
_CAUSES = (
    ('refused_token', re.compile(r'PAM authentication failed', re.IGNORECASE)),
    ('refused_password', re.compile(r'password authentication failed', re.IGNORECASE)),
    ('refused_locked', re.compile(r'account is locked|is not permitted to log in', re.IGNORECASE)),
    ('refused_hba', re.compile(r'pg_hba\.conf rejects|no pg_hba\.conf entry', re.IGNORECASE)),
    ('refused_mysql', re.compile(r"^\(1045,|Access denied for user '[^']*'@'[^']*' \(using", re.IGNORECASE)),
    ('tls', re.compile(r'certificate|SSL|TLS|insecure transport', re.IGNORECASE)),
    ('unreachable', re.compile(r'Connection refused|timed out|timeout|could not translate host name|Name or service not known|'
                               r"Can't connect to|No route to host|Network is unreachable|Temporary failure in name resolution",
                               re.IGNORECASE)),
)
REFUSALS = ('refused_token', 'refused_password', 'refused_locked', 'refused_hba', 'refused_mysql')
# Outcomes in which the server accepted the login.
_LOGGED_IN = ('ok', 'other_user', 'query')
_TARGET_LEVEL = ('unreachable', 'tls')


class LoginCheckError(RdsIamError):
    """The login check cannot run (bad options, no credentials); no login was tried."""


def classify_error(detail):
    """The cause of a failed login from the driver's text: one of the _CAUSES names, or 'other'."""
    for cause, pattern in _CAUSES:
        if pattern.search(detail or ''):
            return cause
    return 'other'


def short_reason(detail):
    """The driver's text cut to its point: the server's FATAL line, or the MySQL error text, on one line."""
    text = (detail or '').strip()
    fatal = re.search(r'FATAL:\s+(.+)', text)
    if fatal:
        text = fatal.group(1)
    else:
        text = re.sub(r'^connection to server at "[^"]*", port \d+ failed:\s*', '', text)
        mysql = re.match(r'^\((\d+), ["\'](.*)["\']\)$', text, re.DOTALL)
        if mysql:
            text = '%s (%s)' % (mysql.group(2), mysql.group(1))
    text = text.splitlines()[0].strip() if text else 'unknown error'
    return text if len(text) <= _MAX_ERROR_LENGTH else text[:_MAX_ERROR_LENGTH] + '...'


def _db_options(params):
    return dict((name, params.get(name)) for name in LOGIN_CHECK_DB_OPTIONS)


def requested_users(params, engine):
    """db_users without repeats, in order; names no database can hold are refused before any login."""
    users = list(dict.fromkeys(params.get('db_users') or []))
    if not users:
        raise LoginCheckError('db_users is empty: list the database users whose IAM login to check')
    problems = []
    for user in users:
        try:
            check_db_user_name(user, engine, 'db_user')
        except IdentifierError as exc:
            problems.append(str(exc))
    if problems:
        raise LoginCheckError('; '.join(problems))
    return users


def whoami(conn, family):
    """(current user as the server names it, TLS protocol version or None) on an open connection."""
    with conn.cursor() as cur:
        if family == 'postgres':
            cur.execute('SELECT current_user')
            user = cur.fetchone()[0]
            return user, (conn.info.ssl_attribute('protocol') if conn.info.ssl_in_use else None)
        cur.execute('SELECT CURRENT_USER()')
        user = cur.fetchone()[0]
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        row = cur.fetchone()
        return user, ((row[1] or None) if row else None)


def driver_error(family):
    if family == 'postgres':
        return import_library('psycopg2', 'psycopg2-binary', reason='to connect to PostgreSQL').Error
    return import_library('pymysql', 'PyMySQL', reason='to connect to MySQL or MariaDB').err.MySQLError


def account_user(current_user, family):
    """The user part of what the server says: MySQL's CURRENT_USER() is user@host."""
    return current_user if family == 'postgres' else current_user.rpartition('@')[0]


def try_login(login, family, connect=connect_db):
    """One login as login.user: a result entry (db_user, logged_in, current_user, tls_version, error) plus its cause."""
    entry = dict(db_user=login.user, logged_in=False, current_user=None, tls_version=None, error=None)
    try:
        conn = connect(login)
    except DbConnectError as exc:
        detail = exc.detail if exc.detail is not None else str(exc)
        entry['error'] = scrub_secret(short_reason(detail), login.password)
        return entry, classify_error(detail)
    try:
        entry['current_user'], entry['tls_version'] = whoami(conn, family)
    except driver_error(family) as exc:
        # Logged in, but the check query failed: access works, the proof is incomplete.
        entry.update(logged_in=True, error='logged in, but SELECT current_user failed: %s'
                     % scrub_secret(short_reason(str(exc)), login.password))
        return entry, 'query'
    finally:
        conn.close()
    entry['logged_in'] = True
    if account_user(entry['current_user'], family) != login.user:
        entry['error'] = 'logged in, but the server says the current user is %s' % entry['current_user']
        return entry, 'other_user'
    return entry, 'ok'


def check_logins(options, aws_options, warn=None, hide=None, connect=connect_db, credentials=None, sleep=time.sleep):
    """Log in once as every db_user with an IAM token and judge the outcomes against options['expect'].

    options: db_users, engine, expect, retries, retry_delay and the LOGIN_CHECK_DB_OPTIONS. Returns (result, failure
    message or None). warn(text) receives warnings; hide(secret) gets each token before it is used, so the caller can
    keep it out of anything it prints. credentials(aws_options, endpoint) resolves the AWS credentials that sign the
    tokens (a run over many targets shares them). The first login runs alone: when it finds the target unreachable or
    its TLS failing, the others are not tried. The rest run at once. A login whose outcome is not the expected one is
    tried again up to `retries` times, `retry_delay` seconds apart, with a fresh token: IAM changes take a few seconds to
    reach the database.
    """
    db_options = _db_options(options)
    check_db_options(db_options)
    if (db_options.get('ssl_mode') or 'verify-full') not in LOGIN_CHECK_SSL_MODES:
        raise LoginCheckError("ssl_mode '%s' cannot carry an IAM token: use verify-full (recommended), verify-ca or require"
                              % db_options['ssl_mode'])
    retries, retry_delay = options.get('retries') or 0, options.get('retry_delay') or 0
    if retries < 0 or retry_delay < 0:
        raise LoginCheckError('retries is %d and retry_delay is %d: use 0 or more' % (retries, retry_delay))
    family = driver_for(options)
    engine = options.get('engine') or 'auto'
    users = requested_users(options, engine if engine != 'auto' else ('postgres' if family == 'postgres' else None))
    endpoint = db_options.get('endpoint') or db_options['login_host']
    # One resolution (and at most one STS AssumeRole) for every user; tokens are local signatures, minted here.
    signing = (credentials or iam_signing_credentials)(aws_options, endpoint)

    def mint(names):
        logins = [resolve_db_login(dict(db_options, login_user=user, login_iam=True), family, aws_options, signing) for user in names]
        if hide:
            for login in logins:
                hide(login.password)
        return logins

    logins = mint(users)
    target = dict(endpoint=logins[0].endpoint, endpoint_port=logins[0].endpoint_port, region=iam_signing_region(aws_options, endpoint),
                  principal=_principal(aws_options, signing))
    if warn and tls_warning(logins[0]):
        warn(tls_warning(logins[0]))
    expect = options.get('expect') or 'success'
    outcomes = _prove(logins, family, connect)
    for _retry in range(retries):
        again = [user for user in users if _unexpected(outcomes[user][1], expect)]
        if not again:
            break
        sleep(retry_delay)
        outcomes.update(_prove(mint(again), family, connect))
    causes = {}
    for user in users:
        entry, cause = outcomes[user]
        entry['refused'] = cause in REFUSALS
        causes[user] = cause
    return judge([outcomes[user][0] for user in users], causes, expect, target)


def _unexpected(cause, expect):
    """Whether an outcome may change once IAM catches up: a refusal when a login is expected, a login when a refusal is.
    An unreachable target or a TLS failure will not."""
    return cause in (REFUSALS if expect == 'success' else _LOGGED_IN)


def _prove(logins, family, connect):
    """{db_user: (entry, cause)} for each login: the first alone, the rest at once unless the first found the target
    unreachable or its TLS failing."""
    first = first_entry, first_cause = try_login(logins[0], family, connect)
    proven = {logins[0].user: first}
    if first_cause in _TARGET_LEVEL:
        # Unreachable or failing TLS is the target's problem: every other login would wait and fail the same way.
        for login in logins[1:]:
            proven[login.user] = (dict(db_user=login.user, logged_in=False, current_user=None, tls_version=None,
                                       error='not tried: the login of %s already failed with: %s' % (logins[0].user, first_entry['error'])),
                                  first_cause)
    elif len(logins) > 1:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_LOGINS, len(logins) - 1)) as pool:
            for login, outcome in zip(logins[1:], pool.map(lambda login: try_login(login, family, connect), logins[1:])):
                proven[login.user] = outcome
    return proven


def check_targets(jobs, warn=None, hide=None, connect=connect_db, sleep=time.sleep):
    """check_logins on each of many targets, MAX_CONCURRENT_TARGETS at a time: [(target, result or LoginCheckError)].

    jobs: [(target, options, aws_options)], one per target. The AWS credentials that sign the tokens are
    resolved once per set of AWS options and signing region, not once per target: a role to assume is assumed once.
    A target that cannot be checked, or whose logins fail, is that target's error; the others are still proven.
    """
    aws = SharedAws()

    def shared_credentials(aws_options, endpoint):
        return iam_signing_credentials(aws_options, endpoint, aws)

    def check(job):
        _target, options, aws_options = job
        result, failure = check_logins(options, aws_options, warn, hide, connect, shared_credentials, sleep)
        if failure:
            raise LoginCheckError(failure, result=result)
        return result

    return [(job[0], outcome) for job, outcome in attempt_each(check, jobs)]


def _principal(aws_options, credentials):
    if aws_options.get('assume_role_arn'):
        return 'the role %s' % aws_options['assume_role_arn']
    return 'the IAM principal of access key %s' % credentials.access_key


def judge(logins, causes, expect, target):
    """(result, message): failed_users are those whose outcome is not the expected one; message is None when there are none."""
    if expect == 'success':
        failed = [entry['db_user'] for entry in logins if causes[entry['db_user']] != 'ok']
    else:
        failed = [entry['db_user'] for entry in logins if not entry['refused']]
    result = dict(changed=False, expect=expect, endpoint=target['endpoint'], endpoint_port=target['endpoint_port'],
                  logins=logins, failed_users=failed)
    if not failed:
        return result, None
    return result, failure_message(logins, causes, expect, failed, target)


def failure_message(logins, causes, expect, failed, target):
    """One sentence per cause: the users it hit, the server's words, and the likely fix."""
    where = '%s:%s' % (target['endpoint'], target['endpoint_port'])
    by_user = dict((entry['db_user'], entry) for entry in logins)
    groups = {}
    for user in failed:
        groups.setdefault(causes[user], []).append(user)
    if expect == 'success':
        head = '%d of %d IAM logins to %s failed' % (len(failed), len(logins), where)
    else:
        head = 'IAM access to %s is not proven gone for %d of %d users' % (where, len(failed), len(logins))
    parts = []
    for cause, users in groups.items():
        named = ', '.join("'%s'" % user for user in users)
        parts.append('%s: %s. %s' % (named, by_user[users[0]]['error'] or 'logged in as %s' % by_user[users[0]]['current_user'],
                                     _fix(cause, expect, users, target)))
    return '%s. %s' % (head, ' '.join(parts))


def _connect_arn(target, users):
    arn = 'arn:aws:rds-db:%s:ACCOUNT:dbuser:RESOURCE_ID/' % target['region']
    return arn + users[0] if len(users) == 1 else arn + 'DB_USER for each of these users'


def _fix(cause, expect, users, target):
    if expect == 'failure' and cause in ('ok', 'other_user', 'query'):
        return ('These logins still work: remove rds-db:connect on %s from the policies of %s (rds_iam_policy), and drop or '
                'lock the database users (rds_iam_db_user); sessions already open outlive the token.'
                % (_connect_arn(target, users), target['principal']))
    if expect == 'failure' and cause not in REFUSALS:
        inconclusive = 'Only a refusal by the server proves that access is gone, and this was not one. '
    else:
        inconclusive = ''
    policy = ('allow rds-db:connect on %s for %s (RESOURCE_ID is the db-... or cluster-... id of the target; rds_iam_policy '
              'resolves it), and turn IAM database authentication on for the target (rds_iam_auth)'
              % (_connect_arn(target, users), target['principal']))
    fixes = {
        'refused_token': 'The IAM token was refused: %s.' % policy,
        'refused_password': ('The server asked for a password, not an IAM token: the user does not exist or is not a member of '
                             'rds_iam; create it with rds_iam_db_user (CREATE ROLE ... LOGIN; GRANT rds_iam).'),
        'refused_locked': 'The account is locked or may not log in: unlock it, or re-create it with rds_iam_db_user.',
        'refused_hba': ('pg_hba.conf has no rule for this user over TLS: check rds.force_ssl and that the user is a member of '
                        'rds_iam (rds_iam_db_user).'),
        'refused_mysql': ("Access denied: the user must exist and be created IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' "
                          '(rds_iam_db_user), and %s.' % policy),
        'tls': ('TLS failed: set ca_cert to the RDS CA bundle (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem) '
                'and endpoint to the name in the server certificate.'),
        'unreachable': ('The target did not answer: check login_host/login_port (or endpoint/endpoint_port), security groups, '
                        'and that the database is available.'),
        'other_user': ('The server mapped the login to another account: remove anonymous or wildcard accounts that match '
                       'first, or check proxy users.'),
        'query': 'The login worked but the check query did not: see the error.',
    }
    return inconclusive + fixes.get(cause, 'See the error; if the login itself was refused, %s.' % policy)
