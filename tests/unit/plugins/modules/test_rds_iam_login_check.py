# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for rds_iam_login_check's logic: options, error causes, verdicts, and the token kept out of everything
(fake connections; the tokens are real, from the collection's signer)."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
import yaml

from ansible_collections.rdsiam.auth.plugins.modules import rds_iam_login_check
from ansible_collections.rdsiam.auth.plugins.module_utils import _aws, _db
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AWS_ARGUMENT_SPEC
from ansible_collections.rdsiam.auth.plugins.module_utils._db import DbOptionsError
from ansible_collections.rdsiam.auth.plugins.module_utils._module import merged_argument_spec
from ansible_collections.rdsiam.auth.plugins.module_utils._login_check import (
    LOGIN_CHECK_DB_OPTIONS,
    LoginCheckError,
    check_logins,
    check_targets,
    classify_error,
    short_reason,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._token import Credentials

ENDPOINT = 'orders.abcdefghijkl.eu-west-1.rds.amazonaws.com'
AWS = dict(access_key='AKIAIOSFODNN7EXAMPLE', secret_key='wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY', validate_certs=True)

PG_PAM = 'connection to server at "127.0.0.1", port 5432 failed: FATAL:  PAM authentication failed for user "bob"\n'
PG_PASSWORD = 'connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "carl"\n'
PG_HBA = ('connection to server at "127.0.0.1", port 5432 failed: FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", '
          'user "bob", database "postgres", no encryption\n')
PG_NOLOGIN = 'connection to server at "127.0.0.1", port 5432 failed: FATAL:  role "bob" is not permitted to log in\n'
PG_REFUSED = ('connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running on that host and '
              'accepting TCP/IP connections?\n')
PG_TIMEOUT = 'connection to server at "10.1.2.3", port 5432 failed: timeout expired\n'
PG_CERT = ('connection to server at "127.0.0.1", port 5432 failed: SSL error: certificate verify failed\n')
PG_NO_DB = 'connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "nope" does not exist\n'
MY_DENIED = '(1045, "Access denied for user \'bob\'@\'10.0.0.9\' (using password: YES)")'
MY_LOCKED = "(4151, 'Access denied, this account is locked')"
MY_REFUSED = "(2003, \"Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)\")"
MY_CERT = ("(2003, \"Can't connect to MySQL server on '127.0.0.1' ([SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
           'unable to get local issuer certificate (_ssl.c:1006))")')


# ---- options ----

def login_check_argument_spec():
    """The module's options as its skeleton builds them, without the AWS and target options its doc fragments document."""
    spec = merged_argument_spec(rds_iam_login_check.argument_spec(), db=LOGIN_CHECK_DB_OPTIONS)[0]
    from_fragments = set(AWS_ARGUMENT_SPEC) | {'target', 'login_override', 'targets', 'login_overrides'}
    return dict((name, option) for name, option in spec.items() if name not in from_fragments)


def test_module_documents_exactly_its_options_with_the_same_types_defaults_and_choices():
    documented = yaml.safe_load(rds_iam_login_check.DOCUMENTATION)['options']
    spec = login_check_argument_spec()
    assert set(documented) == set(spec)
    assert not set(spec) & {'login_user', 'login_password', 'login_secret', 'login_iam'}
    for name, option in spec.items():
        doc = documented[name]
        assert doc['type'] == option['type'], name
        assert doc.get('default') == option.get('default'), name
        assert doc.get('choices') == option.get('choices'), name
        assert sorted(doc.get('aliases', [])) == sorted(option.get('aliases', [])), name
        assert doc.get('required', False) == option.get('required', False), name
    assert {'rdsiam.auth.aws', 'rdsiam.auth.db_target'} <= set(yaml.safe_load(rds_iam_login_check.DOCUMENTATION)['extends_documentation_fragment'])
    assert not set(spec) & set(AWS_ARGUMENT_SPEC)


def test_connection_options_are_the_db_helpers_own_specs_and_disable_is_not_offered():
    spec = login_check_argument_spec()
    for name in ('endpoint', 'login_host', 'login_port', 'ca_cert', 'connect_timeout'):
        assert spec[name] == _db.DB_ARGUMENT_SPEC[name]
    assert spec['ssl_mode']['choices'] == ['require', 'verify-ca', 'verify-full'] and spec['ssl_mode']['default'] == 'verify-full'
    assert 'disable' in _db.DB_ARGUMENT_SPEC['ssl_mode']['choices']  # the shared spec is left as it is


# ---- causes ----

@pytest.mark.parametrize('detail, cause, reason', [
    (PG_PAM, 'refused_token', 'PAM authentication failed for user "bob"'),
    (PG_PASSWORD, 'refused_password', 'password authentication failed for user "carl"'),
    (PG_HBA, 'refused_hba', 'pg_hba.conf rejects connection for host "127.0.0.1", user "bob", database "postgres", no encryption'),
    (PG_NOLOGIN, 'refused_locked', 'role "bob" is not permitted to log in'),
    (PG_REFUSED, 'unreachable', 'Connection refused'),
    (PG_TIMEOUT, 'unreachable', 'timeout expired'),
    (PG_CERT, 'tls', 'SSL error: certificate verify failed'),
    (PG_NO_DB, 'other', 'database "nope" does not exist'),
    (MY_DENIED, 'refused_mysql', "Access denied for user 'bob'@'10.0.0.9' (using password: YES) (1045)"),
    (MY_LOCKED, 'refused_locked', 'Access denied, this account is locked (4151)'),
    (MY_REFUSED, 'unreachable', "Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused) (2003)"),
    (MY_CERT, 'tls', None),
], ids=['pg-pam', 'pg-password', 'pg-hba', 'pg-nologin', 'pg-refused', 'pg-timeout', 'pg-cert', 'pg-no-db', 'my-denied',
        'my-locked', 'my-refused', 'my-cert'])
def test_driver_errors_are_sorted_into_causes_and_cut_to_the_servers_words(detail, cause, reason):
    assert classify_error(detail) == cause
    if reason:
        assert short_reason(detail) == reason
    assert '\n' not in short_reason(detail) and len(short_reason(detail * 20)) <= 303


# ---- check_logins against fake connections ----

class FakeCursor:
    def __init__(self, conn):
        self.conn = conn
        self.row = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, statement):
        self.conn.statements.append(statement)
        self.row = (self.conn.as_user, ) if 'CURRENT_USER' in statement.upper() else ('Ssl_version', 'TLSv1.3')

    def fetchone(self):
        return self.row


class FakeInfo:
    ssl_in_use = True

    @staticmethod
    def ssl_attribute(name):
        return 'TLSv1.3' if name == 'protocol' else None


class FakeConn:
    info = FakeInfo()

    def __init__(self, as_user):
        self.as_user = as_user
        self.statements = []
        self.closed = False

    def cursor(self):
        return FakeCursor(self)

    def close(self):
        self.closed = True


class FakeServer:
    """connect(login): refuses, accepts or fails per user as told; remembers every DbLogin it saw."""

    def __init__(self, family='postgres', refuse=(), errors=None, as_user=None):
        self.family, self.refuse, self.errors, self.as_user = family, set(refuse), dict(errors or {}), dict(as_user or {})
        self.logins, self.connections = [], []

    def __call__(self, login):
        self.logins.append(login)
        if login.user in self.errors:
            raise _db.connect_error(login, Exception(self.errors[login.user]))
        if login.user in self.refuse:
            text = PG_PAM.replace('bob', login.user) if self.family == 'postgres' else MY_DENIED.replace('bob', login.user)
            raise _db.connect_error(login, Exception(text))
        name = self.as_user.get(login.user, login.user if self.family == 'postgres' else login.user + '@%')
        conn = FakeConn(name)
        self.connections.append(conn)
        return conn


def params(**overrides):
    values = dict(db_users=['alice'], engine='postgres', expect='success', endpoint=ENDPOINT, endpoint_port=None,
                  login_host='127.0.0.1', login_port=15432, login_db=None, ca_cert=None, ssl_mode='verify-full', connect_timeout=10)
    values.update(overrides)
    return values


def token_user(token):
    return parse_qs(token.partition('/?')[2])['DBUser'][0]


def test_many_users_share_one_credential_resolution_and_each_gets_its_own_token_and_connection(monkeypatch):
    calls = []
    real = _db.resolve_credentials
    monkeypatch.setattr(_db, 'resolve_credentials', lambda options: calls.append(options['region']) or real(options))
    users = ['user_%02d' % number for number in range(50)]
    server = FakeServer()
    hidden = []
    result, failure = check_logins(params(db_users=users), dict(AWS), hide=hidden.append, connect=server)
    assert failure is None and calls == ['eu-west-1']
    assert [login.user for login in server.logins] == users
    assert [token_user(login.password) for login in server.logins] == users
    assert hidden == [login.password for login in server.logins] and len(set(hidden)) == 50
    assert all(login.auth == 'iam' and login.ssl_mode == 'verify-full' and login.host == '127.0.0.1' and login.endpoint == ENDPOINT
               and login.password.startswith(ENDPOINT + ':15432/?Action=connect') for login in server.logins)
    assert all(conn.closed and conn.statements == ['SELECT current_user'] for conn in server.connections)
    assert result['logins'][0] == dict(db_user='user_00', logged_in=True, current_user='user_00', tls_version='TLSv1.3',
                                       error=None, refused=False)
    assert (result['changed'], result['failed_users'], result['endpoint'], result['endpoint_port']) == (False, [], ENDPOINT, 15432)


def test_mysql_logins_ask_current_user_and_the_tls_version():
    server = FakeServer('mysql')
    result, failure = check_logins(params(engine='mariadb', db_users=['alice', 'alice']), dict(AWS), connect=server)
    assert failure is None and len(server.logins) == 1  # repeats are checked once
    assert server.connections[0].statements == ['SELECT CURRENT_USER()', "SHOW SESSION STATUS LIKE 'Ssl_version'"]
    assert (result['logins'][0]['current_user'], result['logins'][0]['tls_version']) == ('alice@%', 'TLSv1.3')


def test_failed_logins_fail_naming_each_user_the_target_the_cause_and_the_fix():
    server = FakeServer(refuse=['bob', 'dave'], errors={'carl': PG_PASSWORD})
    result, failure = check_logins(params(db_users=['alice', 'bob', 'carl', 'dave']), dict(AWS), connect=server)
    assert result['failed_users'] == ['bob', 'carl', 'dave']
    assert failure.startswith('3 of 4 IAM logins to %s:15432 failed.' % ENDPOINT)
    assert "'bob', 'dave': PAM authentication failed" in failure and 'rds-db:connect on arn:aws:rds-db:eu-west-1:' in failure
    assert 'IAM principal of access key %s' % AWS['access_key'] in failure and 'rds_iam_auth' in failure
    assert "'carl': password authentication failed" in failure and 'GRANT rds_iam' in failure
    bob = result['logins'][1]
    assert (bob['logged_in'], bob['refused'], bob['current_user'], bob['tls_version']) == (False, True, None, None)


def test_mysql_access_denied_names_the_plugin_and_the_policy():
    server = FakeServer('mysql', refuse=['bob'])
    failure = check_logins(params(engine='mysql', db_users=['bob']), dict(AWS), connect=server)[1]
    assert "IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'" in failure and 'dbuser:RESOURCE_ID/bob' in failure


def test_assumed_role_is_named_as_the_principal(monkeypatch):
    role = 'arn:aws:iam::123456789012:role/app'
    issued = Credentials('ASIAEXAMPLE', 'temporary-secret', 'session-token', None, 'assume-role')
    monkeypatch.setattr(_db, 'resolve_credentials', lambda options: issued)
    failure = check_logins(params(db_users=['bob']), dict(AWS, assume_role_arn=role), connect=FakeServer(refuse=['bob']))[1]
    assert 'for the role %s' % role in failure


def test_a_token_the_driver_echoes_never_reaches_results_or_messages():
    def echoing(login):
        raise _db.connect_error(login, Exception('FATAL:  PAM authentication failed; password was %s' % login.password))

    seen = []
    result, failure = check_logins(params(db_users=['bob']), dict(AWS), hide=seen.append, connect=echoing)
    token = seen[0]
    assert token not in repr(result) and token not in failure
    assert 'X-Amz-Signature' not in repr(result) + failure and '********' in result['logins'][0]['error']


def test_a_login_mapped_to_another_account_is_not_proof():
    server = FakeServer('mysql', as_user={'bob': '@localhost'})
    result, failure = check_logins(params(engine='mysql', db_users=['bob']), dict(AWS), connect=server)
    assert result['logins'][0]['logged_in'] is True and result['failed_users'] == ['bob']
    assert 'the current user is @localhost' in failure and 'anonymous' in failure


# ---- expect: failure ----

def test_expect_failure_passes_only_when_every_login_is_refused():
    result, failure = check_logins(params(db_users=['bob', 'carl'], expect='failure'), dict(AWS),
                                   connect=FakeServer(refuse=['bob'], errors={'carl': PG_NOLOGIN}))
    assert failure is None and result['failed_users'] == [] and all(entry['refused'] for entry in result['logins'])

    result, failure = check_logins(params(db_users=['bob', 'alice'], expect='failure'), dict(AWS), connect=FakeServer(refuse=['bob']))
    assert result['failed_users'] == ['alice']
    assert failure.startswith('IAM access to %s:15432 is not proven gone for 1 of 2 users.' % ENDPOINT)
    assert "'alice': logged in as alice" in failure and 'These logins still work' in failure


def test_expect_failure_does_not_take_an_unreachable_target_for_a_refusal_and_stops_trying():
    server = FakeServer(errors={'bob': PG_TIMEOUT})
    result, failure = check_logins(params(db_users=['bob', 'carl', 'dave'], expect='failure'), dict(AWS), connect=server)
    assert [login.user for login in server.logins] == ['bob']
    assert result['failed_users'] == ['bob', 'carl', 'dave'] and not any(entry['refused'] for entry in result['logins'])
    assert result['logins'][2]['error'] == 'not tried: the login of bob already failed with: timeout expired'
    assert 'Only a refusal by the server proves that access is gone' in failure and 'security groups' in failure


def test_tls_failures_name_the_ca_bundle():
    failure = check_logins(params(db_users=['bob']), dict(AWS), connect=FakeServer(errors={'bob': PG_CERT}))[1]
    assert 'set ca_cert to the RDS CA bundle' in failure


# ---- refused before any login ----

@pytest.mark.parametrize('overrides, error, match', [
    (dict(db_users=[]), LoginCheckError, 'db_users is empty'),
    (dict(ssl_mode='disable'), LoginCheckError, "ssl_mode 'disable' cannot carry an IAM token"),
    (dict(engine='mysql', db_users=['x' * 33]), LoginCheckError, 'more than the 32 characters'),
    (dict(endpoint=None, login_host=None), DbOptionsError, 'neither login_host nor endpoint'),
    (dict(engine='auto', login_port=None), DbOptionsError, 'engine auto needs login_host'),
    (dict(endpoint='db.internal'), DbOptionsError, 'no region to sign the IAM token'),
])
def test_bad_input_fails_before_any_login(overrides, error, match):
    server = FakeServer()
    with pytest.raises(error, match=match):
        check_logins(params(**overrides), dict(AWS), connect=server)
    assert server.logins == []


def test_weaker_tls_is_warned_about_once():
    warnings = []
    check_logins(params(db_users=['a', 'b'], ssl_mode='require'), dict(AWS), warn=warnings.append, connect=FakeServer())
    assert len(warnings) == 1 and warnings[0].startswith('ssl_mode=require')


# ---- retries ----

class SlowIam(FakeServer):
    """Refuses each user in refuse_times for its first n logins, then accepts (IAM catching up)."""

    def __init__(self, refuse_times, **kwargs):
        super().__init__(**kwargs)
        self.refuse_times = dict(refuse_times)

    def __call__(self, login):
        if self.refuse_times.get(login.user, 0) > 0:
            self.refuse_times[login.user] -= 1
            self.logins.append(login)
            raise _db.connect_error(login, Exception(PG_PAM.replace('bob', login.user)))
        return super().__call__(login)


def test_refused_logins_are_tried_again_with_a_fresh_token_after_the_delay():
    server, sleeps, hidden = SlowIam({'bob': 2}), [], []
    result, failure = check_logins(params(db_users=['alice', 'bob'], retries=3, retry_delay=4), dict(AWS), hide=hidden.append,
                                   connect=server, sleep=sleeps.append)
    assert failure is None and result['failed_users'] == [] and sleeps == [4, 4]
    assert [login.user for login in server.logins] == ['alice', 'bob', 'bob', 'bob']
    # Minted again for each try (hidden each time), since a long retry could outlive a token's 15 minutes.
    assert len(hidden) == 4 and set(hidden) == set(login.password for login in server.logins)
    assert result['logins'][1] == dict(db_user='bob', logged_in=True, current_user='bob', tls_version='TLSv1.3', error=None, refused=False)


def test_retries_run_out_and_the_last_outcome_is_reported():
    server, sleeps = SlowIam({'bob': 5}), []
    result, failure = check_logins(params(db_users=['alice', 'bob'], retries=2, retry_delay=1), dict(AWS), connect=server,
                                   sleep=sleeps.append)
    assert sleeps == [1, 1] and [login.user for login in server.logins] == ['alice', 'bob', 'bob', 'bob']
    assert result['failed_users'] == ['bob'] and failure.startswith('1 of 2 IAM logins')


def test_expect_failure_tries_again_a_login_that_still_works_and_never_an_unreachable_target():
    class Revoked(FakeServer):
        def __call__(self, login):
            if sum(1 for seen in self.logins if seen.user == login.user) >= 1:
                self.refuse.add(login.user)
            return super().__call__(login)

    server, sleeps = Revoked(), []
    result, failure = check_logins(params(db_users=['bob'], expect='failure', retries=3, retry_delay=2), dict(AWS), connect=server,
                                   sleep=sleeps.append)
    assert failure is None and sleeps == [2] and len(server.logins) == 2 and result['logins'][0]['refused'] is True

    server, sleeps = FakeServer(errors={'bob': PG_TIMEOUT}), []
    result, failure = check_logins(params(db_users=['bob', 'carl'], expect='failure', retries=3), dict(AWS), connect=server,
                                   sleep=sleeps.append)
    assert sleeps == [] and len(server.logins) == 1 and result['failed_users'] == ['bob', 'carl']


def test_negative_retries_are_refused_before_any_login():
    server = FakeServer()
    with pytest.raises(LoginCheckError, match='retries is -1 and retry_delay is 5: use 0 or more'):
        check_logins(params(retries=-1, retry_delay=5), dict(AWS), connect=server)
    assert server.logins == []


# ---- many targets in one run ----

def target_dict(identifier, region='eu-west-1', dialect='postgres'):
    return dict(kind='instance', identifier=identifier, region=region, dialect=dialect, port=5432,
                endpoint='%s.abcdefghijkl.%s.rds.amazonaws.com' % (identifier, region))


def test_many_targets_share_one_credential_resolution_per_region_and_fail_only_where_logins_fail(monkeypatch):
    calls = []
    real = _aws.resolve_credentials
    monkeypatch.setattr(_aws, 'resolve_credentials', lambda options: calls.append(options['region']) or real(options))
    targets = [target_dict('pg%d' % number) for number in range(6)] + [target_dict('far', region='us-east-1')]

    def server(login):
        # pg3 has no bob; every other target lets both in.
        return FakeServer(refuse=['bob'] if login.endpoint.startswith('pg3.') else [])(login)

    def options_for(target):
        return dict(params(db_users=['alice', 'bob'], endpoint=target['endpoint'], endpoint_port=target['port'],
                           login_host='127.0.0.1'), engine=target['dialect']), dict(AWS, region=target['region'])

    outcomes = check_targets([(target,) + options_for(target) for target in targets], connect=server)
    assert sorted(calls) == ['eu-west-1', 'us-east-1']
    assert [target['identifier'] for target, _outcome in outcomes] == [target['identifier'] for target in targets]
    failed = dict((target['identifier'], outcome) for target, outcome in outcomes if isinstance(outcome, LoginCheckError))
    assert list(failed) == ['pg3'] and failed['pg3'].result['failed_users'] == ['bob']
    assert str(failed['pg3']).startswith('1 of 2 IAM logins to pg3.abcdefghijkl.eu-west-1.rds.amazonaws.com:5432 failed.')
    assert all(outcome['failed_users'] == [] and outcome['endpoint'] == target['endpoint'] for target, outcome in outcomes
               if target['identifier'] != 'pg3')


def test_a_target_that_cannot_be_checked_is_its_own_failure():
    targets = [target_dict('good'), dict(target_dict('nameless'), endpoint=None)]

    def options_for(target):
        return dict(params(endpoint=target['endpoint'], login_host=None)), dict(AWS)

    outcomes = check_targets([(target,) + options_for(target) for target in targets], connect=FakeServer())
    assert outcomes[0][1]['failed_users'] == []
    assert isinstance(outcomes[1][1], DbOptionsError) and 'neither login_host nor endpoint' in str(outcomes[1][1])
