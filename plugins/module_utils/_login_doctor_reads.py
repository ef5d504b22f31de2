# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Every read the login doctor makes, in one place, so its checks (_login_doctor) stay pure: the
# RDS describe of the target (and of its cluster or members), the principal's IAM state through the
# audit's one IAM reader (_iam_account), the database user's catalog row through the audit's one
# catalog reader (_db_user_info) over one admin connection, the optional real login (_login_check's,
# the same token minting and TLS as every module) and the target's iam-db-auth-error log lines.
# Nothing here writes, in any mode.

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError, aws_call, aws_client
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._db import (
    DbOptionsError,
    connect_db,
    iam_signing_region,
    mysql_dialect,
    resolve_db_login,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._db_user_info import read_accounts
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_account import CallCounter, caller_identity, read_principals, read_scps
from ansible_collections.rdsiam.auth.plugins.module_utils._login_check import (
    LOGIN_CHECK_DB_OPTIONS,
    LOGIN_CHECK_SSL_MODES,
    driver_error,
    check_logins,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._login_doctor import connect_arn, principal_context, run_checks
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import as_target, describe, target_client
from ansible_collections.rdsiam.auth.plugins.module_utils._target_dict import target_from_instance

# The file RDS keeps IAM database authentication errors in, per DB instance (log type iam-db-auth-error).
AUTH_ERROR_LOG_FILE = 'iam-db-auth-error.log'
# The tail of the log that is searched for the user's lines: one DownloadDBLogFilePortion call.
_LOG_TAIL_LINES = 2000
_SERVER_TLS_QUERIES = {
    'postgres': ('rds.force_ssl', "SELECT pg_catalog.current_setting('rds.force_ssl', true)"),
    'mysql': ('require_secure_transport', 'SELECT @@GLOBAL.require_secure_transport'),
}
_ROLE_SESSION_NAME = 'rdsiam-login-doctor'


class DoctorError(RdsIamError):
    """The doctor cannot start: the target cannot be described or the options contradict each other."""


# ---- RDS ----

def read_target(options):
    """(target, iam target, endpoint names, writer instance or None): the target as asked, the one whose IAM flag and
    resource id apply (the cluster of an Aurora member), every endpoint name a token may be signed for, and the instance
    whose log holds the refusals. One to three describe calls."""
    kind, identifier, rds = target_client(options)
    item = describe(rds, kind, identifier)
    region = rds.meta.region_name
    target = as_target(kind, item, region)
    iam_target, names, log_instance = target, [target['endpoint'], target.get('reader_endpoint')], identifier
    cluster_id = item.get('DBClusterIdentifier') if kind == 'instance' else None
    if cluster_id:
        iam_target = as_target('cluster', describe(rds, 'cluster', cluster_id), region)
        names += [iam_target['endpoint'], iam_target.get('reader_endpoint')]
    if kind == 'cluster':
        members = aws_call(rds, 'describe_db_instances', "the members of cluster '%s'" % identifier, result_key='DBInstances',
                           Filters=[dict(Name='db-cluster-id', Values=[identifier])])
        names += [target_from_instance(member, region)['endpoint'] for member in members]
        writers = [member['DBInstanceIdentifier'] for member in item.get('DBClusterMembers') or () if member.get('IsClusterWriter')]
        log_instance = (writers or [member['DBInstanceIdentifier'] for member in members] or [None])[0]
    names = list(dict.fromkeys(name.lower().rstrip('.') for name in names if name))
    return target, iam_target, names, log_instance


# ---- IAM ----

def principal_of_caller(caller_arn, principals):
    """The principal the caller's ARN stands for: an assumed-role session maps to its role (whatever its path)."""
    resource = caller_arn.split(':', 5)[-1]
    if resource.startswith('assumed-role/'):
        role_name = resource.split('/')[1]
        return next((principal for principal in principals if principal['kind'] == 'role' and principal['name'] == role_name), None)
    return next((principal for principal in principals if principal['arn'] == caller_arn), None)


def read_principal(aws_options, principal_arn=None):
    """{principal, caller, statements, boundary, scps, scps_status}: the principal (principal_arn, or the caller) with its
    policies through the audit's IAM reader, and the service control policies that apply to its account."""
    counter = CallCounter()
    found = dict(statements=[], boundary=None, scps=None, scps_status='not read')
    try:
        _partition, account, caller = caller_identity(aws_options, counter)
        found['caller'] = caller
        wanted = principal_arn or caller
        principals = read_principals(aws_options, counter, account)
    except AwsCallError as exc:
        found.update(caller=None, principal=dict(arn=principal_arn, kind=_kind_of(principal_arn), readable=False, error=str(exc)))
        return found
    principal = principal_of_caller(wanted, [p for p in principals if p['kind'] != 'group'])
    if principal is None:
        found['principal'] = dict(arn=wanted, kind=_kind_of(wanted), readable=False, missing=True,
                                  error='%s is not a user or role of account %s' % (wanted, account))
        return found
    found['principal'] = dict((key, principal[key]) for key in ('arn', 'kind', 'name', 'id', 'account', 'tags', 'readable'))
    found['principal']['error'] = '; '.join(principal['problems']) or None
    found['statements'], found['boundary'] = principal['statements'], principal['boundary']
    try:
        scps = read_scps(aws_options, counter, account)
    except AwsCallError as exc:
        scps = dict(status='not_readable', msg=str(exc), levels=None)
    found['scps'], found['scps_status'] = scps['levels'], '%s: %s' % (scps['status'], scps['msg'])
    return found


def _kind_of(arn):
    resource = (arn or '').split(':', 5)[-1]
    return 'user' if resource.startswith('user/') else 'role'


# ---- the database ----

def read_db_user(db_options, aws_options, dialect, db_user):
    """{account, account_error, server_tls, queries}: the user's catalog row(s) through read_accounts and the server's TLS
    requirement, over one admin connection opened like rds_iam_db_user's. A connection that fails is reported, not raised."""
    found = dict(account=None, account_error=None, server_tls=None, queries=[])
    family = 'postgres' if dialect == 'postgres' else 'mysql'
    try:
        login = resolve_db_login(dict(db_options, engine=family), family, aws_options)
        conn = connect_db(login)
    except RdsIamError as exc:
        found['account_error'] = str(exc)
        return found
    try:
        if family == 'mysql':
            dialect = mysql_dialect(conn.get_server_info())
        accounts, found['queries'] = read_accounts(conn, dialect, [db_user])
        found['account'] = pick_account(accounts)
        found['server_tls'] = read_server_tls(conn, family)
    except (RdsIamError, driver_error(family)) as exc:
        # The catalog could not be read (a login without the rights to): the database checks become unknown.
        found['account_error'] = str(exc).strip()
    finally:
        conn.close()
    found['dialect'] = dialect
    return found


def pick_account(accounts):
    """The account a login from anywhere meets: MySQL's '%' host first, else the first one."""
    if not accounts:
        return None
    return next((account for account in accounts if account.get('host') == '%'), accounts[0])


def read_server_tls(conn, family):
    """{name, value, required}: the server setting that refuses clear-text logins (rds.force_ssl, require_secure_transport)."""
    name, query = _SERVER_TLS_QUERIES[family]
    with conn.cursor() as cur:
        cur.execute(query)
        row = cur.fetchone()
    if family == 'postgres':
        conn.rollback()
    value = row[0] if row else None
    if value is None:
        return None
    return dict(name=name, value=str(value), required=str(value).upper() in ('1', 'ON', 'TRUE'))


# ---- the real login and its log ----

def login_aws_options(aws_options, principal, caller_principal_arn, session_tags):
    """(AWS options that sign the login as the principal, or None, and why not): the caller's own, or the role assumed."""
    if principal.get('arn') in (None, caller_principal_arn):
        return aws_options, None
    if principal.get('kind') != 'role':
        return None, ('%s is an IAM user other than the caller: its keys are not available here; run the doctor with its '
                      'credentials to try the login' % principal['arn'])
    options = dict(aws_options, assume_role_arn=principal['arn'], role_session_name=_ROLE_SESSION_NAME, external_id=None,
                   session_tags=session_tags or None)
    return options, None


def real_login(db_options, aws_options, dialect, db_user, hide=None):
    """(logged in: bool or None when it could not be tried, evidence): one real token login, over TLS, through _login_check."""
    options = dict((name, db_options.get(name)) for name in LOGIN_CHECK_DB_OPTIONS)
    if options.get('ssl_mode') not in LOGIN_CHECK_SSL_MODES:
        options['ssl_mode'] = 'verify-full'
    options.update(db_users=[db_user], engine=dialect, expect='success', retries=0, retry_delay=0)
    try:
        result, _failure = check_logins(options, aws_options, hide=hide)
    except RdsIamError as exc:
        return None, 'the login could not be tried: %s' % exc
    entry = result['logins'][0]
    if entry['logged_in'] and not entry['error']:
        return True, 'logged in as %s over %s' % (entry['current_user'], entry['tls_version'] or 'TLS')
    return False, 'the login failed: %s' % entry['error']


def read_log_lines(aws_options, region, instance, db_user, limit):
    """The last `limit` lines of the instance's iam-db-auth-error log that name db_user, oldest first, or (None, why)."""
    if not instance:
        return None, 'the target has no instance whose log could be read'
    rds = aws_client(dict(aws_options, region=region), 'rds')
    subject = "the IAM auth error log of DB instance '%s'" % instance
    try:
        files = aws_call(rds, 'describe_db_log_files', subject, result_key='DescribeDBLogFiles', DBInstanceIdentifier=instance,
                         FilenameContains='iam-db-auth-error')
        if not any(entry['LogFileName'] == AUTH_ERROR_LOG_FILE for entry in files):
            return None, 'DB instance %s has no %s' % (instance, AUTH_ERROR_LOG_FILE)
        portion = aws_call(rds, 'download_db_log_file_portion', subject, DBInstanceIdentifier=instance, LogFileName=AUTH_ERROR_LOG_FILE,
                           NumberOfLines=_LOG_TAIL_LINES)
    except AwsCallError as exc:
        return None, str(exc)
    needle = "user '%s'" % db_user
    lines = [line for line in (portion.get('LogFileData') or '').splitlines() if needle in line]
    return lines[-limit:] if limit > 0 else [], None


def signing_region_of(aws_options, endpoint):
    """(region a token for endpoint is signed for, or None, and the problem when there is none)."""
    try:
        return iam_signing_region(aws_options, endpoint), None
    except DbOptionsError as exc:
        return None, str(exc)


# ---- one diagnosis ----

def diagnose(params, aws_options_for, db_options_for, hide=None):
    """The module result: every check in order, the cause, ok, and the log lines of a failed login.

    params: the module parameters; aws_options_for(target) and db_options_for(target, override) complete the AWS and
    database options from the described target as the module skeleton does. hide(secret) receives each token.
    """
    if params.get('targets') is not None:
        raise DoctorError('the doctor explains one login on one target: give target, db_instance_identifier or '
                          'db_cluster_identifier instead of targets')
    given = params.get('target') or {}
    reference = dict(aws_options_for(given), target=params.get('target'), db_instance_identifier=params.get('db_instance_identifier'),
                     db_cluster_identifier=params.get('db_cluster_identifier'))
    target, iam_target, names, log_instance = read_target(reference)
    aws_options = aws_options_for(target)
    db_options = db_options_for(target, params.get('login_override'))
    facts = dict(target=target, iam_target=iam_target, endpoint_names=names, log_instance=log_instance, db_user=params['db_user'],
                 endpoint=db_options['endpoint'], endpoint_port=db_options['endpoint_port'] or target.get('port'),
                 client_tls=params.get('client_tls', True), login=None)
    facts['signing_region'], facts['signing_region_error'] = signing_region_of(aws_options, facts['endpoint'])
    iam = read_principal(aws_options, params.get('principal_arn'))
    caller_principal = _caller_principal(iam)
    session_tags = params.get('principal_session_tags')
    if session_tags is None and iam['principal'].get('arn') == caller_principal and aws_options.get('assume_role_arn'):
        session_tags = aws_options.get('session_tags')
    facts.update(principal=iam['principal'], identity=iam['statements'], boundary=iam['boundary'], scps=iam['scps'],
                 scps_status=iam['scps_status'], session_tags=session_tags)
    facts['base_context'], facts['context'] = principal_context(iam['principal'], session_tags, iam['statements'])
    database = read_db_user(db_options, aws_options, target['dialect'], params['db_user'])
    facts.update(account=database['account'], account_error=database['account_error'], server_tls=database['server_tls'],
                 dialect=database.get('dialect') or target['dialect'])
    log_lines = None
    if params.get('login'):
        facts['login'], log_lines = _login(facts, db_options, aws_options, caller_principal, params, hide)
    result = run_checks(facts)
    result.update(changed=False, target=target['identifier'], db_user=params['db_user'], principal=iam['principal'].get('arn'),
                  connect_arn=connect_arn(facts))
    if log_lines is not None:
        result['log_lines'] = log_lines
    return result


def _caller_principal(iam):
    caller = iam.get('caller')
    if not caller:
        return None
    if ':assumed-role/' in caller and iam['principal'].get('kind') == 'role' and iam['principal'].get('name') == caller.split('/')[1]:
        return iam['principal']['arn']
    return caller


def _login(facts, db_options, aws_options, caller_principal, params, hide):
    """(login check facts, log lines or None): the real login as the principal, and on failure the log's lines."""
    login_options, why_not = login_aws_options(aws_options, facts['principal'], caller_principal, facts['session_tags'])
    if login_options is None:
        return dict(status='unknown', evidence=why_not, fix='run the doctor with the credentials of %s' % facts['principal']['arn']), None
    logged_in, evidence = real_login(db_options, login_options, facts['dialect'], facts['db_user'], hide)
    if logged_in:
        return dict(status='ok', evidence=evidence), None
    if logged_in is None:
        return dict(status='unknown', evidence=evidence, fix='fix what stopped the login and run again'), None
    lines, why_none = read_log_lines(aws_options, facts['target']['region'], facts['log_instance'], facts['db_user'],
                                     params.get('log_lines', 20))
    if why_none:
        evidence += ' (no log lines: %s)' % why_none
    return dict(status='fail', evidence=evidence, fix='the first failing check and log_lines say why'), lines or []
