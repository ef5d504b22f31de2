# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the shared AWS options and the botocore session/client factory (no network)."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys

import botocore.session
import botocore.exceptions
import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from botocore.stub import Stubber

from ansible_collections.rdsiam.auth.plugins.module_utils import _aws, _common, _credential_cache, _token
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import (
    AWS_ARGUMENT_KWARGS,
    AWS_ARGUMENT_SPEC,
    AwsCallError,
    AwsOptionsError,
    aws_client,
    aws_client_kwargs,
    aws_error_message,
    aws_session,
    check_aws_options,
    region_from_arn,
    tls_verify_setting,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._credential_cache import assume_role_params, default_role_session_name
from ansible_collections.rdsiam.auth.plugins.module_utils._common import MissingLibraryError, import_library

SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzSECRETKEY'
TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN'
ACCESS = 'AKIAIOSFODNN7EXAMPLE'
ROLE_ARN = 'arn:aws:iam::123456789012:role/rdsiam-admin'
STATIC = dict(access_key=ACCESS, secret_key=SECRET, region='eu-central-1')


@pytest.fixture(autouse=True)
def private_credential_cache(monkeypatch, tmp_path):
    """Assumed-role credentials are cached on disk between runs: each test gets its own cache directory."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg-cache'))


def validate(params, with_kwargs=False):
    kwargs = AWS_ARGUMENT_KWARGS if with_kwargs else {}
    return ArgumentSpecValidator(AWS_ARGUMENT_SPEC, **kwargs).validate(params)


def opts(**values):
    """A full option mapping as AnsibleModule would hand it over (defaults applied)."""
    result = validate(values)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


# ---- argument spec ----

@pytest.mark.parametrize('option,env_name', [(option, env_name) for option, spec in sorted(AWS_ARGUMENT_SPEC.items())
                                             if 'fallback' in spec for env_name in spec['fallback'][1]])
def test_every_env_fallback_fills_its_option(monkeypatch, option, env_name):
    monkeypatch.setenv(env_name, 'from-' + env_name)
    result = validate({})
    assert result.validated_parameters[option] == 'from-' + env_name


def test_first_env_name_wins_like_amazon_aws(monkeypatch):
    monkeypatch.setenv('AWS_DEFAULT_REGION', 'us-west-2')
    monkeypatch.setenv('AWS_REGION', 'eu-west-1')
    assert validate({}).validated_parameters['region'] == 'eu-west-1'


def test_explicit_option_beats_env(monkeypatch):
    monkeypatch.setenv('AWS_REGION', 'eu-west-1')
    assert validate({'region': 'ap-southeast-2'}).validated_parameters['region'] == 'ap-southeast-2'


def test_secret_from_env_is_registered_as_no_log_value(monkeypatch):
    monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', SECRET)
    monkeypatch.setenv('AWS_SESSION_TOKEN', TOKEN)
    assert {SECRET, TOKEN} <= validate({})._no_log_values


def test_secret_options_are_no_log_and_look_alikes_explicitly_not():
    assert AWS_ARGUMENT_SPEC['secret_key']['no_log'] is True
    assert AWS_ARGUMENT_SPEC['session_token']['no_log'] is True
    assert AWS_ARGUMENT_SPEC['access_key']['no_log'] is False
    # Same rule as ansible-test's no-log-needed: any name that looks secret must say explicitly.
    looks_secret = re.compile(r'pass(?!ive)|secret|token|key', re.I)
    for name, spec in AWS_ARGUMENT_SPEC.items():
        if looks_secret.search(name) and spec.get('type') not in ('path', 'bool'):
            assert 'no_log' in spec, name


@pytest.mark.parametrize('alias,option', [(alias, option) for option, spec in sorted(AWS_ARGUMENT_SPEC.items())
                                          for alias in spec.get('aliases', [])])
def test_aliases_resolve(alias, option):
    value = 'us-east-1' if option == 'region' else 'value'
    result = validate({alias: value})
    assert not result.error_messages
    assert result.validated_parameters[option] == value


def test_spec_defaults():
    params = opts()
    assert params['validate_certs'] is True and params['credential_cache'] is True
    assert all(params[name] is None for name in AWS_ARGUMENT_SPEC if name not in ('validate_certs', 'credential_cache'))


def test_required_together_keys():
    result = validate({'access_key': ACCESS}, with_kwargs=True)
    assert any('access_key' in msg and 'secret_key' in msg for msg in result.error_messages)


@pytest.mark.parametrize('option,value', [('role_session_name', 'x1'), ('external_id', 'ext'), ('session_tags', {'a': 'b'})])
def test_assume_role_options_require_the_role_arn(option, value):
    result = validate({option: value}, with_kwargs=True)
    assert any('assume_role_arn' in msg and option in msg for msg in result.error_messages)
    assert not validate({option: value, 'assume_role_arn': ROLE_ARN}, with_kwargs=True).error_messages


# ---- check_aws_options ----

@pytest.mark.parametrize('options,option,fix', [
    (dict(profile='dev', access_key=ACCESS, secret_key=SECRET), 'profile', 'use either profile or access_key/secret_key'),
    (dict(profile='dev', session_token=TOKEN), 'session_token', 'use either profile'),
    (dict(access_key=ACCESS), 'secret_key', 'set secret_key'),
    (dict(secret_key=SECRET, session_token=TOKEN), 'access_key', 'set access_key'),
    (dict(region='useast1'), 'region', 'us-east-1'),
    (dict(region='US-EAST-1'), 'region', 'us-east-1'),
    (dict(endpoint_url='localhost:5000'), 'endpoint_url', 'http://127.0.0.1:5000'),
    (dict(endpoint_url='127.0.0.1'), 'endpoint_url', 'https://'),
    (dict(role_session_name='x'), 'role_session_name', 'set assume_role_arn'),
    (dict(session_tags={'a': 'b'}), 'session_tags', 'set assume_role_arn'),
    (dict(assume_role_arn='rdsiam-admin'), 'assume_role_arn', 'arn:aws:iam::<12-digit account>:role/<name>'),
    (dict(assume_role_arn=ROLE_ARN, role_session_name='has space'), 'role_session_name', '2 to 64 characters'),
    (dict(assume_role_arn=ROLE_ARN, external_id='x'), 'external_id', '2 to 1224 characters'),
    (dict(assume_role_arn=ROLE_ARN, session_tags={'team': 42}), 'session_tags', 'quote it'),
    (dict(assume_role_arn=ROLE_ARN, session_tags={'k%d' % i: 'v' for i in range(51)}), 'session_tags', 'remove some tags'),
    (dict(assume_role_arn=ROLE_ARN, session_tags={'k' * 129: 'v'}), 'session_tags', 'shorten it'),
    (dict(assume_role_arn=ROLE_ARN, session_tags={'k': 'v' * 257}), 'session_tags', 'shorten it'),
])
def test_check_aws_options_names_option_and_fix_without_secrets(options, option, fix):
    with pytest.raises(AwsOptionsError) as err:
        check_aws_options(options)
    message = str(err.value)
    assert option in message
    assert fix in message
    assert SECRET not in message and TOKEN not in message


def test_check_aws_options_reports_all_problems_at_once():
    with pytest.raises(AwsOptionsError) as err:
        check_aws_options(dict(region='nowhere', endpoint_url='host:1'))
    assert 'region' in str(err.value) and 'endpoint_url' in str(err.value)


@pytest.mark.parametrize('region', ['us-east-1', 'cn-north-1', 'us-gov-west-1', 'eu-central-2', 'ap-southeast-4', 'us-isob-east-1'])
def test_plausible_regions_pass(region):
    check_aws_options(dict(region=region))


def test_valid_full_option_set_passes():
    check_aws_options(opts(access_key=ACCESS, secret_key=SECRET, session_token=TOKEN, region='us-east-1',
                           endpoint_url='http://127.0.0.1:5000', assume_role_arn=ROLE_ARN, role_session_name='ops@corp',
                           external_id='ext-123', session_tags={'team': 'dba', 'dbuser': 'jane'}))


def test_endpoint_url_error_does_not_echo_userinfo():
    with pytest.raises(AwsOptionsError) as err:
        check_aws_options(dict(endpoint_url='user:hunter2@proxy:8080'))
    assert 'hunter2' not in str(err.value)


# ---- clients ----

def test_client_has_standard_retries_user_agent_and_region():
    client = aws_client(opts(**STATIC), 'rds')
    assert client.meta.config.retries['mode'] == 'standard'
    assert client.meta.config.user_agent_extra == 'rdsiam.auth/%s' % _common.COLLECTION_VERSION
    assert client.meta.region_name == 'eu-central-1'
    assert client.meta.endpoint_url == 'https://rds.eu-central-1.amazonaws.com'


def test_client_honours_endpoint_url():
    client = aws_client(opts(endpoint_url='http://127.0.0.1:5000', **STATIC), 'secretsmanager')
    assert client.meta.endpoint_url == 'http://127.0.0.1:5000'


def test_aws_config_overrides_merge_over_defaults():
    client = aws_client(opts(aws_config={'retries': {'mode': 'adaptive', 'max_attempts': 7}, 'connect_timeout': 3}, **STATIC), 'sts')
    assert client.meta.config.retries == {'mode': 'adaptive', 'total_max_attempts': 8}  # botocore counts the first try
    assert client.meta.config.connect_timeout == 3
    assert 'rdsiam.auth/' in client.meta.config.user_agent_extra


def test_unknown_aws_config_key_is_an_options_error():
    with pytest.raises(AwsOptionsError, match='aws_config'):
        aws_client(opts(aws_config={'no_such_setting': 1}, **STATIC), 'sts')


@pytest.mark.parametrize('values,expected', [
    ({}, None),
    ({'validate_certs': False}, False),
    ({'aws_ca_bundle': '/etc/rds-ca.pem'}, '/etc/rds-ca.pem'),
    ({'validate_certs': False, 'aws_ca_bundle': '/etc/rds-ca.pem'}, False),
])
def test_verify_setting(values, expected):
    options = opts(**values)
    assert tls_verify_setting(options) == expected
    assert aws_client_kwargs(options)['verify'] == expected


def test_verify_false_reaches_the_http_session():
    client = aws_client(opts(validate_certs=False, **STATIC), 'rds')
    assert client._endpoint.http_session._verify is False  # pylint: disable=protected-access


def test_ca_bundle_reaches_the_http_session(tmp_path):
    bundle = tmp_path / 'ca.pem'
    bundle.write_text('')
    client = aws_client(opts(aws_ca_bundle=str(bundle), **STATIC), 'rds')
    assert client._endpoint.http_session._verify == str(bundle)  # pylint: disable=protected-access


def test_missing_region_is_an_options_error():
    with pytest.raises(AwsOptionsError, match='set region'):
        aws_client(opts(access_key=ACCESS, secret_key=SECRET), 'rds')


def test_unknown_profile_is_an_options_error():
    with pytest.raises(AwsOptionsError, match="profile 'nope'"):
        aws_session(opts(profile='nope'))


def test_profile_from_config_file(tmp_path):
    (tmp_path / 'credentials').write_text('[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = devsecret\n')
    (tmp_path / 'config').write_text('[profile dev]\nregion = ap-south-1\n')
    session = aws_session(opts(profile='dev'))
    assert session.profile == 'dev'
    assert session.get_credentials().access_key == 'AKIADEV'
    assert aws_client(opts(profile='dev'), 'rds').meta.region_name == 'ap-south-1'


def test_static_keys_reach_the_session():
    credentials = aws_session(opts(session_token=TOKEN, **STATIC)).get_credentials()
    assert (credentials.access_key, credentials.secret_key, credentials.token) == (ACCESS, SECRET, TOKEN)


def test_sessions_are_cached_per_identity_without_secrets_in_the_key():
    first = aws_session(opts(**STATIC))
    assert aws_session(opts(**STATIC)) is first
    assert aws_session(opts(**{**STATIC, 'secret_key': 'other-secret'})) is not first
    assert aws_session(opts(**{**STATIC, 'region': 'us-east-1'})) is not first
    for key in _aws._SESSION_CACHE:  # pylint: disable=protected-access
        assert SECRET not in key and 'other-secret' not in key


def test_aws_session_checks_options_first():
    with pytest.raises(AwsOptionsError, match='profile'):
        aws_session(opts(profile='dev', access_key=ACCESS, secret_key=SECRET))


# ---- assume role ----

def _credentials(key_id, minutes=60):
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
    return {'Credentials': {'AccessKeyId': key_id, 'SecretAccessKey': 'tmp-secret', 'SessionToken': 'tmp-token', 'Expiration': expiry}}


@pytest.fixture
def sts_stub(monkeypatch):
    """Every STS client the helper builds is a real client with a Stubber attached (no network)."""
    stubs = []
    real_aws_client = _aws.aws_client

    def stubbed(options, service, session=None):
        client = real_aws_client(options, service, session=session)
        if service == 'sts':
            stubber = Stubber(client)
            for method, args in stubs:
                getattr(stubber, method)(*args)
            stubber.activate()
            stubbed.stubbers.append(stubber)
        return client

    stubbed.stubbers = []
    monkeypatch.setattr(_aws, 'aws_client', stubbed)
    stubbed.stubs = stubs
    return stubbed


def test_assume_role_sends_tags_external_id_and_session_name(sts_stub):
    expected = {'RoleArn': ROLE_ARN, 'RoleSessionName': 'ops-run', 'ExternalId': 'ext-123',
                'Tags': [{'Key': 'dbuser', 'Value': 'jane'}, {'Key': 'team', 'Value': 'dba'}]}
    sts_stub.stubs.append(('add_response', ('assume_role', _credentials('ASIATEMPORARYKEY01'), expected)))
    session = aws_session(opts(assume_role_arn=ROLE_ARN, role_session_name='ops-run', external_id='ext-123',
                               session_tags={'team': 'dba', 'dbuser': 'jane'}, **STATIC))
    sts_stub.stubbers[0].assert_no_pending_responses()
    credentials = session.get_credentials()
    assert (credentials.access_key, credentials.secret_key, credentials.token) == ('ASIATEMPORARYKEY01', 'tmp-secret', 'tmp-token')
    assert _aws.session_region(session) == 'eu-central-1'


def test_assume_role_default_session_name_is_sanitised_local_user(sts_stub, monkeypatch):
    monkeypatch.setattr(_credential_cache.getpass, 'getuser', lambda: 'jane doe#1')
    sts_stub.stubs.append(('add_response', ('assume_role', _credentials('ASIATEMPORARYKEY01'),
                                            {'RoleArn': ROLE_ARN, 'RoleSessionName': 'rdsiam-auth-jane-doe-1'})))
    aws_session(opts(assume_role_arn=ROLE_ARN, **STATIC))
    sts_stub.stubbers[0].assert_no_pending_responses()


def test_default_session_name_rules(monkeypatch):
    assert default_role_session_name('x' * 100) == ('rdsiam-auth-' + 'x' * 100)[:64]
    assert default_role_session_name('a.b@c,d=e+f_g-h') == 'rdsiam-auth-a.b@c,d=e+f_g-h'

    def no_passwd_entry():
        raise KeyError('getpwuid(): uid not found: 12345')
    monkeypatch.setattr(_credential_cache.getpass, 'getuser', no_passwd_entry)
    assert default_role_session_name() == 'rdsiam-auth-unknown'


def test_assume_role_params_without_optional_fields():
    params = assume_role_params({'assume_role_arn': ROLE_ARN, 'role_session_name': 'n1'})
    assert params == {'RoleArn': ROLE_ARN, 'RoleSessionName': 'n1'}


def test_assumed_session_is_reused_until_close_to_expiry(sts_stub):
    sts_stub.stubs.append(('add_response', ('assume_role', _credentials('ASIAFIRSTTEMPKEY01', minutes=2))))
    options = opts(assume_role_arn=ROLE_ARN, **STATIC)
    first = aws_session(options)
    sts_stub.stubs[:] = [('add_response', ('assume_role', _credentials('ASIASECONDTEMPKEY1', minutes=60)))]
    second = aws_session(options)
    assert first.get_credentials().access_key == 'ASIAFIRSTTEMPKEY01'
    assert second.get_credentials().access_key == 'ASIASECONDTEMPKEY1'
    assert aws_session(options) is second
    assert len(sts_stub.stubbers) == 2


def test_assume_role_error_names_code_and_role_without_secrets(sts_stub):
    sts_stub.stubs.append(('add_client_error', ('assume_role', 'AccessDenied', 'User is not authorized to perform sts:AssumeRole')))
    with pytest.raises(AwsCallError) as err:
        aws_session(opts(assume_role_arn=ROLE_ARN, session_token=TOKEN, **STATIC))
    message = str(err.value)
    assert message == ('sts:AssumeRole on %s failed: AccessDenied: User is not authorized to perform sts:AssumeRole: the role\'s trust '
                       'policy must allow the calling identity, and the identity needs sts:AssumeRole on the role' % ROLE_ARN)
    assert SECRET not in message and TOKEN not in message


# ---- error messages, regions, missing libraries ----

def test_aws_error_message_for_client_error():
    exc = botocore.exceptions.ClientError({'Error': {'Code': 'DBInstanceNotFound', 'Message': 'DBInstance db1 not found.'}},
                                          'DescribeDBInstances')
    assert aws_error_message(exc, 'rds:DescribeDBInstances', 'db1') == \
        'rds:DescribeDBInstances on db1 failed: DBInstanceNotFound: DBInstance db1 not found.'


def test_aws_error_message_for_botocore_error():
    message = aws_error_message(botocore.exceptions.NoCredentialsError(), 'rds:GenerateDBAuthToken', 'admin@db1')
    assert message == 'rds:GenerateDBAuthToken on admin@db1 failed: NoCredentialsError: Unable to locate credentials'


def test_aws_error_message_for_other_errors():
    assert aws_error_message(ValueError('bad'), 'op', 'thing') == 'op on thing failed: ValueError: bad'


@pytest.mark.parametrize('hostname,region', [
    ('db1.abcdefghijkl.eu-central-1.rds.amazonaws.com', 'eu-central-1'),
    ('c1.cluster-ro-abcdefghijkl.us-gov-west-1.rds.amazonaws.com', 'us-gov-west-1'),
    ('px.proxy-abcdefghijkl.cn-north-1.rds.amazonaws.com.cn', 'cn-north-1'),
    ('DB1.ABC.US-EAST-2.RDS.AMAZONAWS.COM', 'us-east-2'),
    ('db1.abcdefghijkl.us-gov-east-1.rds.amazonaws.com.', 'us-gov-east-1'),
    ('db1.abcdefghijkl.us-iso-east-1.rds.c2s.ic.gov', 'us-iso-east-1'),
    ('db1.abcdefghijkl.us-isob-east-1.rds.sc2s.sgov.gov', 'us-isob-east-1'),
    ('db1.abcdefghijkl.eu-isoe-west-1.rds.cloud.adc-e.uk', 'eu-isoe-west-1'),
    ('db1.abcdefghijkl.us-isof-south-1.rds.csp.hci.ic.gov', 'us-isof-south-1'),
    ('db1.abcdefghijkl.eusc-de-east-1.rds.amazonaws.eu', 'eusc-de-east-1'),
    ('db1.abcdefghijkl.eu-west-1.rds.amazonaws.com.evil.example', None),
    ('eu-west-1.rds.amazonaws.com', None),
    ('db.internal.example.com', None),
    ('127.0.0.1', None),
    (None, None),
])
def test_region_from_rds_hostname(hostname, region):
    assert _token.region_from_rds_hostname(hostname) == region


@pytest.mark.parametrize('arn,region', [
    ('arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf', 'eu-west-1'),
    ('arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x', 'cn-north-1'),
    ('arn:aws:iam::123456789012:role/x', None),
    ('my-secret-name', None),
])
def test_region_from_arn(arn, region):
    assert region_from_arn(arn) == region


def test_missing_library_uses_ansible_wording():
    with pytest.raises(MissingLibraryError) as err:
        import_library('rdsiam_no_such_library', 'rdsiam-no-such-package', reason='to test')
    assert 'Failed to import the required Python library (rdsiam-no-such-package)' in str(err.value)
    assert isinstance(err.value.import_error, ImportError)


def test_missing_botocore_is_reported_not_raised_as_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, 'botocore.session', None)
    with pytest.raises(MissingLibraryError, match=r'required Python library \(botocore\)'):
        aws_session(opts(**STATIC))


def _printed_by_fresh_python(code):
    """What code prints in a new interpreter (with sys imported), so imports made by earlier tests do not count."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, '-c', 'import sys\n' + code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_importing_the_helpers_does_not_import_heavy_libraries():
    assert _printed_by_fresh_python('from ansible_collections.rdsiam.auth.plugins.module_utils import _aws, _db\n'
                                    'print(sorted(m for m in ("boto3", "botocore", "psycopg2", "pymysql") if m in sys.modules))\n') == '[]'


def test_sessions_are_botocore_sessions_and_boto3_is_never_imported():
    assert isinstance(aws_session(opts(**STATIC)), botocore.session.Session)
    assert _printed_by_fresh_python('from ansible_collections.rdsiam.auth.plugins.module_utils import _aws\n'
                                    "_aws.aws_client(dict(access_key='AKIDEXAMPLE', secret_key='x', region='us-east-1'), 'rds')\n"
                                    'print("boto3" in sys.modules, "botocore" in sys.modules)\n') == 'False True'


# ---- signing region ----

ENDPOINT = 'db1.abcdefghijkl.eu-west-1.rds.amazonaws.com'


def test_signing_region_from_host_name():
    assert _token.signing_region(ENDPOINT) == 'eu-west-1'
    assert _token.signing_region(ENDPOINT, 'eu-west-1') == 'eu-west-1'


def test_explicit_region_contradicting_the_host_name_is_an_error():
    with pytest.raises(_token.TokenTargetError) as err:
        _token.signing_region(ENDPOINT, 'us-east-1')
    assert str(err.value) == ("region 'us-east-1' contradicts endpoint '%s', which is in eu-west-1: a token signed for another "
                              'region never works; remove region or set it to eu-west-1' % ENDPOINT)


def test_region_from_the_environment_gives_way_to_the_host_name():
    assert _token.signing_region(ENDPOINT, 'us-east-1', region_is_explicit=False) == 'eu-west-1'


def test_custom_host_name_needs_a_region_and_says_rds_wants_the_real_endpoint():
    assert _token.signing_region('db.corp.example', 'eu-west-1') == 'eu-west-1'
    with pytest.raises(_token.TokenTargetError, match=r"endpoint 'db.corp.example' is not an RDS host name .*set region.*CNAME.*real RDS endpoint"):
        _token.signing_region('db.corp.example')


def test_implausible_region_for_a_custom_host_name():
    with pytest.raises(_token.TokenTargetError, match="region 'moon-1' is not an AWS region name"):
        _token.signing_region('db.corp.example', 'moon-1')


# ---- credentials for signing ----

def test_static_credentials_need_no_botocore():
    assert _printed_by_fresh_python(
        'from ansible_collections.rdsiam.auth.plugins.module_utils import _aws, _token\n'
        'c = _aws.resolve_credentials({"access_key": "AKIAX", "secret_key": "s", "session_token": "t"})\n'
        '_token.generate_db_auth_token(c.access_key, c.secret_key, c.session_token, "h.example", 5432, "u", "us-east-1")\n'
        'print(c.source, sorted(m for m in ("boto3", "botocore") if m in sys.modules))\n') == 'options []'


def test_empty_session_token_counts_as_none():
    credentials = _aws.resolve_credentials(opts(access_key=ACCESS, secret_key=SECRET, session_token=''))
    assert (credentials.access_key, credentials.session_token, credentials.source) == (ACCESS, None, 'options')


def test_credentials_repr_hides_the_secrets():
    credentials = _aws.resolve_credentials(opts(access_key=ACCESS, secret_key=SECRET, session_token=TOKEN))
    assert SECRET not in repr(credentials) and TOKEN not in str(credentials) and ACCESS in repr(credentials)


def test_profile_credentials_come_from_the_chain(tmp_path):
    (tmp_path / 'credentials').write_text('[dev]\naws_access_key_id = AKIAPROFILEKEY\naws_secret_access_key = profile-secret\n')
    credentials = _aws.resolve_credentials(opts(profile='dev', region='eu-west-1'))
    assert (credentials.access_key, credentials.secret_key, credentials.source) == ('AKIAPROFILEKEY', 'profile-secret',
                                                                                    'shared-credentials-file')


def test_no_credentials_names_every_source_tried():
    with pytest.raises(_aws.NoCredentialsError) as err:
        _aws.resolve_credentials(opts(region='eu-west-1'))
    message = str(err.value)
    for source in ('access_key/secret_key options', 'env', 'shared-credentials-file', 'config-file', 'sso', 'container-role',
                   'iam-role', "profile 'default'"):
        assert source in message, source


def test_failing_role_chain_in_a_profile_is_an_aws_call_error(tmp_path):
    # source_profile without credentials: botocore raises while resolving; the message names it, without a traceback.
    (tmp_path / 'config').write_text('[profile chained]\nrole_arn = %s\nsource_profile = missing\n' % ROLE_ARN)
    with pytest.raises((AwsCallError, AwsOptionsError), match='credential|profile'):
        _aws.resolve_credentials(opts(profile='chained', region='eu-west-1'))


def test_assumed_role_credentials_for_signing(sts_stub):
    sts_stub.stubs.append(('add_response', ('assume_role', _credentials('ASIAFORSIGNING0001'))))
    credentials = _aws.resolve_credentials(opts(assume_role_arn=ROLE_ARN, **STATIC))
    assert (credentials.access_key, credentials.session_token, credentials.source) == ('ASIAFORSIGNING0001', 'tmp-token', 'assume-role')
    assert credentials.expiration.tzinfo is not None


def test_assumed_role_credentials_come_from_the_file_cache_in_the_next_process(sts_stub):
    sts_stub.stubs.append(('add_response', ('assume_role', _credentials('ASIACACHEDKEY00001'))))
    options = opts(assume_role_arn=ROLE_ARN, session_tags={'userName': 'alice'}, **STATIC)
    first = _aws.resolve_credentials(options)
    _aws.clear_session_cache()  # as in a new Ansible worker process
    sts_stub.stubs[:] = [('add_client_error', ('assume_role', 'Throttling', 'must not be called'))]
    second = _aws.resolve_credentials(options)
    assert (first.access_key, second.access_key, second.source) == ('ASIACACHEDKEY00001', 'ASIACACHEDKEY00001', 'assume-role (cached)')
    assert len(sts_stub.stubbers) == 1
    # Modules share the cache through aws_session.
    assert aws_session(options).get_credentials().access_key == 'ASIACACHEDKEY00001'


def test_credential_cache_opt_out_calls_sts_every_time(sts_stub):
    options = opts(assume_role_arn=ROLE_ARN, credential_cache=False, **STATIC)
    sts_stub.stubs.append(('add_response', ('assume_role', _credentials('ASIAUNCACHEDKEY001'))))
    _aws.resolve_credentials(options)
    assert _aws.resolve_credentials(options).access_key == 'ASIAUNCACHEDKEY001'  # same process: remembered
    _aws.clear_session_cache()  # a new Ansible worker process
    sts_stub.stubs[:] = [('add_response', ('assume_role', _credentials('ASIAUNCACHEDKEY002')))]
    assert _aws.resolve_credentials(options).access_key == 'ASIAUNCACHEDKEY002'
    assert not os.path.exists(os.path.join(os.environ['XDG_CACHE_HOME'], 'rdsiam.auth'))


def test_credential_cache_opt_out_from_the_environment(monkeypatch):
    monkeypatch.setenv('RDSIAM_CREDENTIAL_CACHE', 'false')
    assert opts()['credential_cache'] is False
