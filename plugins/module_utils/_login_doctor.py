# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Why one IAM database login fails, cause by cause: pure checks over facts read once
# (_login_doctor_reads gathers them). Each check returns {name, status, evidence, fix}; status is
# ok, fail, unknown (the facts could not be read or depend on a request not made yet) or skipped
# (an earlier failure makes the check meaningless). The first failing check is the cause. The IAM
# side is decided by the collection's one evaluator (_iam_eval); this file only asks it the
# question for the exact ARN and, when the answer is no, for the near misses a person typically
# wrote instead (another user, another target, another region, the identifier for the resource id).

from ansible_collections.rdsiam.auth.plugins.module_utils._iam_eval import (
    evaluate,
    match_resource,
    statement_action_matches,
    tokenize,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import IAM_AUTH_ENGINES

ACTION = 'rds-db:connect'
STATUSES = ('ok', 'fail', 'unknown', 'skipped')
# Oldest versions with IAM database authentication on RDS; every Aurora version has it.
MIN_IAM_VERSIONS = {'postgres': (9, 5, 15), 'mysql': (5, 6, 34), 'mariadb': (10, 6)}
# The near misses, most specific first: the evidence names the first one found.
NEAR_MISSES = ('identifier instead of resource id', 'wrong region', 'another target', 'wrong user', 'wrong account',
               'wrong action', 'several differences')

_POLICY_FIX = ('allow rds-db:connect on %s in a policy of %s (rds_iam_policy resolves the resource id from the target and '
               'writes it)')


def check(name, status, evidence, fix=None):
    return dict(name=name, status=status, evidence=evidence, fix=fix if status in ('fail', 'unknown') else None)


def connect_arn(facts):
    """arn:aws:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/DB_USER for the target whose flag and resource id apply."""
    target = facts['iam_target']
    partition = (target.get('arn') or 'arn:aws').split(':')[1]
    return 'arn:%s:rds-db:%s:%s:dbuser:%s/%s' % (partition, target['region'], target['account_id'], target['resource_id'],
                                                 facts['db_user'])


# ---- AWS side ----

def _version(text):
    numbers = []
    for part in (text or '').split('.'):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


def check_engine(facts):
    target = facts['target']
    engine, version = (target.get('engine') or '').lower(), target.get('engine_version') or ''
    if engine not in IAM_AUTH_ENGINES:
        return check('engine', 'fail', '%s runs engine %s, which has no IAM database authentication' % (target['identifier'], engine),
                     'use a PostgreSQL, MySQL or MariaDB target (RDS or Aurora); this engine cannot log in with IAM tokens')
    minimum = None if engine.startswith('aurora') else MIN_IAM_VERSIONS.get(target.get('dialect'))
    if minimum and _version(version) and _version(version) < minimum:
        return check('engine', 'fail', '%s %s is older than %s, the first %s version with IAM database authentication'
                     % (engine, version, '.'.join(str(part) for part in minimum), engine),
                     'upgrade the engine to %s or later' % '.'.join(str(part) for part in minimum))
    return check('engine', 'ok', '%s %s supports IAM database authentication' % (engine, version))


def check_iam_flag(facts):
    target, holder = facts['target'], facts['iam_target']
    where = '%s %s' % (holder['kind'], holder['identifier'])
    if holder is not target:
        where += ' (the cluster of instance %s, which holds the flag)' % target['identifier']
    if holder.get('iam_auth_enabled'):
        return check('iam_auth_enabled', 'ok', 'IAM database authentication is on for %s' % where)
    return check('iam_auth_enabled', 'fail', 'IAM database authentication is off for %s: every token is refused' % where,
                 'turn it on with rdsiam.auth.rds_iam_auth (%s: %s, state: enabled)'
                 % ('db_cluster_identifier' if holder['kind'] == 'cluster' else 'db_instance_identifier', holder['identifier']))


def check_endpoint(facts):
    endpoint, names = facts['endpoint'], facts['endpoint_names']
    if (endpoint or '').lower().rstrip('.') in names:
        return check('endpoint', 'ok', '%s is an endpoint of %s' % (endpoint, facts['target']['identifier']))
    return check('endpoint', 'fail', '%s is not an RDS endpoint of %s (its endpoints: %s): a token signed for a CNAME or another '
                 'host is refused' % (endpoint, facts['target']['identifier'], ', '.join(names)),
                 'sign the token for %s and connect there (a CNAME may carry the TCP connection, not the token)' % names[0])


def check_region_port(facts):
    holder, problems = facts['iam_target'], []
    region, port = facts.get('signing_region'), facts.get('endpoint_port')
    if facts.get('signing_region_error'):
        problems.append(facts['signing_region_error'])
    elif region != holder['region']:
        problems.append('the token would be signed for region %s, but %s is in %s' % (region, holder['identifier'], holder['region']))
    if port != facts['target'].get('port'):
        problems.append('the token would be signed for port %s, but %s listens on %s' % (port, facts['target']['identifier'],
                                                                                         facts['target'].get('port')))
    if problems:
        return check('region_port', 'fail', '; '.join(problems),
                     'sign the token for region %s and port %s (set region and endpoint_port, or leave them to the target)'
                     % (holder['region'], facts['target'].get('port')))
    return check('region_port', 'ok', 'region %s and port %s are the target\'s' % (region, port))


def _who(facts):
    return facts['principal'].get('arn') or 'the principal'


def _unreadable(name, facts):
    principal = facts['principal']
    if principal.get('missing'):
        if name != 'policy_allows':
            return check(name, 'skipped', 'not checked: policy_allows failed')
        return check(name, 'fail', principal.get('error'), 'name an existing IAM role or user of the account in principal_arn')
    return check(name, 'unknown', 'the IAM policies of %s could not be read: %s' % (_who(facts), principal.get('error')),
                 'run with credentials that may call iam:GetAccountAuthorizationDetails (and read the managed policies in use)')


def _identity_allows(facts):
    """(the identity's Allow statements, their decision on the ARN in the principal's own context): what policy_allows
    and session_tags both start from, evaluated once per run."""
    if 'identity_allows' not in facts:
        allows = [statement for statement in facts['identity'] if statement.effect == 'Allow']
        facts['identity_allows'] = (allows, evaluate(ACTION, connect_arn(facts), allows, facts['base_context']))
    return facts['identity_allows']


def check_policy(facts):
    if not facts['principal'].get('readable'):
        return _unreadable('policy_allows', facts)
    arn = connect_arn(facts)
    allows, decision = _identity_allows(facts)
    if decision.outcome == 'allowed':
        return check('policy_allows', 'ok', '%s: %s' % (arn, decision.reason))
    if decision.outcome == 'conditional':
        if all('requirement' in condition for condition in decision.conditions):
            needs = '; '.join(condition['requirement'] for condition in decision.conditions)
            return check('policy_allows', 'ok', '%s: %s (%s; see session_tags)' % (arn, decision.reason, needs))
        shown = '; '.join('%s %s: %s' % (condition['policy'], condition['sid'], condition.get('condition') or condition.get('requirement'))
                          for condition in decision.conditions)
        return check('policy_allows', 'unknown', '%s: %s: %s' % (arn, decision.reason, shown),
                     'make sure the login request meets these conditions, or allow %s without them' % arn)
    misses = near_misses(facts, allows)
    if misses:
        evidence = '%s: %s allows rds-db:connect on %s, not on %s; ' % (misses[0]['kind'], misses[0]['where'], misses[0]['resource'], arn)
        evidence += misses[0]['detail']
        if len(misses) > 1:
            evidence += '; also: ' + '; '.join('%s (%s)' % (miss['kind'], miss['resource']) for miss in misses[1:])
    else:
        policies = sorted(set(statement.source.get('policy') for statement in facts['identity'])) or ['none']
        evidence = ('policy without the ARN: no policy of %s allows rds-db:connect on %s or anything like it (policies read: %s)'
                    % (_who(facts), arn, ', '.join(str(policy) for policy in policies)))
    return check('policy_allows', 'fail', evidence, _POLICY_FIX % (arn, _who(facts)))


def check_not_blocked(facts):
    if not facts['principal'].get('readable'):
        return _unreadable('not_blocked', facts)
    arn = connect_arn(facts)
    decision = evaluate(ACTION, arn, facts['identity'], facts['context'], facts.get('boundary'), facts.get('scps'))
    if decision.blocked_by:
        where = ', '.join('%s policy %s statement %s' % (ref['kind'], ref['policy'], ref['sid'] if ref['sid'] is not None else ref['index'])
                          for ref in decision.statements) or decision.blocked_by
        fixes = {
            'deny': 'remove or narrow the explicit Deny of rds-db:connect on %s (%s)' % (arn, where),
            'boundary': 'let the permissions boundary of %s allow rds-db:connect on %s' % (_who(facts), arn),
            'scp': 'ask the organization administrators to let the service control policies allow rds-db:connect on %s' % arn,
        }
        blocker = {'deny': 'an explicit Deny', 'boundary': 'the permissions boundary', 'scp': 'a service control policy'}
        return check('not_blocked', 'fail', 'blocked by %s: %s' % (blocker[decision.blocked_by], decision.reason),
                     fixes[decision.blocked_by])
    if facts.get('scps') is None:
        # Without the SCPs nothing more can be said; a login proves the rest, so this is not reported as unknown.
        return check('not_blocked', 'ok', 'no explicit Deny or permissions boundary blocks %s (service control policies: %s)'
                     % (arn, facts.get('scps_status') or 'not read'))
    return check('not_blocked', 'ok', 'no explicit Deny, permissions boundary or service control policy blocks %s' % arn)


def check_session_tags(facts):
    if not facts['principal'].get('readable'):
        return _unreadable('session_tags', facts)
    arn = connect_arn(facts)
    allows, base = _identity_allows(facts)
    needs = [condition['requirement'] for condition in base.conditions if 'requirement' in condition]
    if base.outcome != 'conditional' or not needs:
        return check('session_tags', 'ok', 'the grant does not depend on a session tag')
    if facts.get('session_tags') is None:
        return check('session_tags', 'unknown', 'allowed only for %s, and the tags of the session are not known' % ' or '.join(needs),
                     'give session_tags (the tags the session carries) to check them')
    decision = evaluate(ACTION, arn, allows, facts['context'])
    carried = ', '.join('%s=%s' % item for item in sorted(facts['session_tags'].items())) or 'no tags'
    if decision.outcome == 'allowed':
        return check('session_tags', 'ok', 'the session carries %s, which %s needs' % (carried, ' or '.join(needs)))
    return check('session_tags', 'fail', 'allowed only for %s, but the session carries %s' % (' or '.join(needs), carried),
                 'tag the session as the grant needs (%s) when assuming the role' % ' or '.join(needs))


# ---- the near misses ----

def _arn_parts(pattern):
    """(partition, region, account, resource id, user) of an rds-db dbuser ARN pattern as written, or None."""
    parts = pattern.split(':', 5)
    if len(parts) != 6 or parts[0] != 'arn' or parts[2].lower() != 'rds-db' or not parts[5].startswith('dbuser:'):
        return None
    resource_id, slash, user = parts[5][len('dbuser:'):].partition('/')
    return (parts[1], parts[3], parts[4], resource_id, user) if slash else None


def _matches(pattern, value, context):
    return match_resource(pattern, value, context)[0] != 'no'


def _variable_free(pattern):
    return all(kind != 'var' for kind, _value in tokenize(pattern))


def classify_near_miss(pattern, facts):
    """(kind, detail) for a dbuser ARN pattern that misses the exact ARN, or None when it is not a near miss of it."""
    written = _arn_parts(pattern)
    if written is None:
        return None
    holder, context = facts['iam_target'], facts['context']
    _partition, region, account, resource_id, user = written
    differs = [name for name, part, value in (('region', region, holder['region']), ('account', account, holder['account_id']),
                                              ('resource id', resource_id, holder['resource_id']), ('user', user, facts['db_user']))
               if not _matches(part, value, context)]
    identifiers = set(filter(None, (facts['target'].get('identifier'), holder.get('identifier'))))
    if 'resource id' in differs and resource_id.lower() in identifiers:
        return 'identifier instead of resource id', ("the grant names %s, the target's identifier, but IAM matches the resource id %s: "
                                                     'it grants nothing' % (resource_id, holder['resource_id']))
    if differs == ['region']:
        return 'wrong region', 'the grant is for region %s, the target is in %s' % (region, holder['region'])
    if differs == ['resource id']:
        return 'another target', 'resource id %s is not the resource id of %s (%s)' % (resource_id, holder['identifier'], holder['resource_id'])
    if differs == ['user']:
        granted = user if _variable_free(user) else '%s (as the session or principal resolves it)' % user
        return 'wrong user', 'the grant is for database user %s, not %s' % (granted, facts['db_user'])
    if differs == ['account']:
        return 'wrong account', 'the grant is for account %s, the target is in %s' % (account, holder['account_id'])
    if differs:
        return 'several differences', 'the grant differs in %s' % ', '.join(differs)
    return None


def near_misses(facts, allows):
    """The Allow grants that almost name the exact ARN, most specific kind first: [{kind, resource, where, detail}]."""
    arn, found = connect_arn(facts), []
    for statement in allows:
        grants_connect = statement_action_matches(statement, ACTION)
        label = statement.sid if statement.sid is not None else statement.index
        where = '%s policy %s statement %s' % (statement.source.get('kind'), statement.source.get('policy'), label)
        for pattern in statement.resource or ():
            if not grants_connect:
                if _arn_parts(pattern) and _matches(pattern, arn, facts['context']):
                    found.append(dict(kind='wrong action', resource=pattern, where=where,
                                      detail='the statement names the ARN but allows %s, not rds-db:connect' % ', '.join(statement.action or ())))
                continue
            miss = classify_near_miss(pattern, facts)
            if miss:
                found.append(dict(kind=miss[0], resource=pattern, where=where, detail=miss[1]))
    return sorted(found, key=lambda miss: NEAR_MISSES.index(miss['kind']))


# ---- database side ----

def _db_unknown(name, facts):
    return check(name, 'unknown', 'the database could not be read: %s' % facts['account_error'],
                 'give an admin login that can connect (login_secret, login_user/login_password or login_iam) and run again')


def _account_name(facts):
    account = facts['account']
    return facts['db_user'] if account.get('host') is None else "'%s'@'%s'" % (account['name'], account['host'])


def check_user_exists(facts):
    if facts.get('account_error'):
        return _db_unknown('user_exists', facts)
    if facts['account'] is None:
        return check('user_exists', 'fail', 'there is no login account %s on %s' % (facts['db_user'], facts['target']['identifier']),
                     'create it with rdsiam.auth.rds_iam_db_user (name: %s)' % facts['db_user'])
    return check('user_exists', 'ok', '%s exists on %s' % (_account_name(facts), facts['target']['identifier']))


def check_user_not_locked(facts):
    account = facts['account']
    if account.get('locked') or account.get('expired'):
        how = []
        if account.get('locked'):
            how.append('locked (NOLOGIN)' if facts['dialect'] == 'postgres' else 'locked (ACCOUNT LOCK)')
        if account.get('expired'):
            how.append('expired (VALID UNTIL in the past)' if facts['dialect'] == 'postgres' else 'expired (PASSWORD EXPIRE)')
        return check('user_not_locked', 'fail', '%s is %s' % (_account_name(facts), ' and '.join(how)),
                     'unlock it with rdsiam.auth.rds_iam_db_user (name: %s, state: present)' % facts['db_user'])
    return check('user_not_locked', 'ok', '%s is not locked' % _account_name(facts))


def check_user_can_login(facts):
    account = facts['account']
    if account.get('can_login'):
        return check('user_can_login', 'ok', '%s may log in' % _account_name(facts))
    return check('user_can_login', 'fail', '%s may not log in (%s)' % (_account_name(facts), account.get('auth_plugin') or 'NOLOGIN'),
                 'make it a login with rdsiam.auth.rds_iam_db_user (name: %s, state: present)' % facts['db_user'])


def check_user_is_iam(facts):
    account = facts['account']
    if account.get('iam'):
        via = ' -> '.join(account.get('iam_via') or ())
        return check('user_is_iam', 'ok', '%s is an IAM user (%s)' % (_account_name(facts), via))
    if facts['dialect'] == 'postgres':
        return check('user_is_iam', 'fail', '%s is not a member of rds_iam (directly or through a role): the server asks it for a '
                     'password, not a token' % _account_name(facts),
                     'grant rds_iam with rdsiam.auth.rds_iam_db_user (name: %s)' % facts['db_user'])
    return check('user_is_iam', 'fail', "%s authenticates with %s, not AWSAuthenticationPlugin: the server does not accept a token"
                 % (_account_name(facts), account.get('auth_plugin') or 'a password'),
                 "re-create it IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' with rdsiam.auth.rds_iam_db_user (name: %s)" % facts['db_user'])


def check_tls(facts):
    account = facts.get('account') or {}
    required = []
    if account.get('require_ssl'):
        required.append('%s is REQUIRE SSL' % _account_name(facts))
    setting = facts.get('server_tls')
    if setting and setting.get('required'):
        required.append('%s=%s' % (setting['name'], setting['value']))
    needs = ' and '.join(required) or 'nothing on the server requires TLS for it'
    if not facts.get('client_tls', True):
        return check('tls', 'fail', 'the client connects without TLS: RDS accepts IAM tokens only over TLS (%s)' % needs,
                     'connect with TLS and verify the certificate (PostgreSQL sslmode=verify-full, MySQL/MariaDB --ssl-mode=VERIFY_IDENTITY) '
                     'with the RDS CA bundle')
    return check('tls', 'ok', 'the client connects with TLS, as IAM tokens need (%s)' % needs)


def check_login(facts):
    login = facts['login']
    return check('login', login['status'], login['evidence'], login.get('fix'))


# ---- all checks in order ----

# (check, names of the earlier checks whose failure makes it meaningless); 'user_exists' not ok also skips the account checks.
CHECKS = (
    (check_engine, ()),
    (check_iam_flag, ('engine',)),
    (check_endpoint, ()),
    (check_region_port, ()),
    (check_policy, ()),
    (check_not_blocked, ()),
    (check_session_tags, ('policy_allows',)),
    (check_user_exists, ()),
    (check_user_not_locked, ('user_exists',)),
    (check_user_can_login, ('user_exists', 'user_not_locked')),
    (check_user_is_iam, ('user_exists',)),
    (check_tls, ()),
)
CHECK_NAMES = ('engine', 'iam_auth_enabled', 'endpoint', 'region_port', 'policy_allows', 'not_blocked', 'session_tags',
               'user_exists', 'user_not_locked', 'user_can_login', 'user_is_iam', 'tls', 'login')
_ACCOUNT_CHECKS = ('user_not_locked', 'user_can_login', 'user_is_iam')


def run_checks(facts):
    """{checks, cause, ok}: every check in order (the login last, when facts carry one); cause is the name of the first
    failing check or None; ok is true only when every check is ok."""
    checks, status = [], {}
    for function, after in CHECKS:
        name = CHECK_NAMES[len(checks)]
        failed = [earlier for earlier in after if status.get(earlier) in ('fail', 'skipped')]
        if name in _ACCOUNT_CHECKS and status.get('user_exists') == 'unknown':
            result = _db_unknown(name, facts)
        elif failed:
            result = check(name, 'skipped', 'not checked: %s failed' % failed[0])
        else:
            result = function(facts)
        status[name] = result['status']
        checks.append(result)
    if facts.get('login') is not None:
        checks.append(check_login(facts))
    cause = next((entry['name'] for entry in checks if entry['status'] == 'fail'), None)
    return dict(checks=checks, cause=cause, ok=all(entry['status'] == 'ok' for entry in checks))


# ---- the request context IAM evaluates ----

def principal_context(principal, session_tags=None, statements=()):
    """(base, full) request contexts for the principal: base from what IAM holds (its name, id, account and tags), full
    with the session's tags on top. With session_tags given, every aws:PrincipalTag the statements use and the session
    does not carry is known to be absent, so a grant that needs it is refused rather than left conditional."""
    is_user = principal.get('kind') == 'user'
    base = {'aws:PrincipalType': 'User' if is_user else 'AssumedRole', 'aws:PrincipalAccount': principal.get('account')}
    if is_user:
        base.update({'aws:username': principal.get('name'), 'aws:userid': principal.get('id')})
    for key, value in (principal.get('tags') or {}).items():
        base['aws:PrincipalTag/%s' % key] = value
    if session_tags is None:
        return base, dict(base)
    full = dict(base)
    for key in tag_keys_used(statements):
        full.setdefault('aws:PrincipalTag/%s' % key, None)
    for key, value in session_tags.items():
        full['aws:PrincipalTag/%s' % key] = value
    return base, full


def tag_keys_used(statements):
    """The KEYs of every ${aws:PrincipalTag/KEY} in the statements' resources."""
    keys = set()
    for statement in statements:
        for pattern in (statement.resource or ()) + (statement.not_resource or ()):
            for kind, value in tokenize(pattern):
                if kind == 'var' and value[0].lower().startswith('aws:principaltag/'):
                    keys.add(value[0].split('/', 1)[1])
    return sorted(keys)
