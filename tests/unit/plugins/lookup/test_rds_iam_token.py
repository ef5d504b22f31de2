"""The rds_iam_token lookup in-process: option handling, the term form, regions, output forms and errors (no network)."""
import datetime
import re
from urllib.parse import parse_qs

import botocore.auth
import botocore.session
import pytest
import yaml
from ansible.errors import AnsibleLookupError
from ansible import constants as C
from ansible.utils.display import Display
from botocore.stub import Stubber

from ansible_collections.rdsiam.auth.plugins.doc_fragments import aws as aws_fragment
from ansible_collections.rdsiam.auth.plugins.lookup import rds_iam_token
from ansible_collections.rdsiam.auth.plugins.module_utils import _aws, _credential_cache
from ansible_collections.rdsiam.auth.plugins.module_utils._common import DB_USER_NAME_LIMITS

ACCESS = 'AKIAIOSFODNN7EXAMPLE'
SECRET = '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'
SESSION_TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN'
HOST = 'db1.abcdefghijkl.eu-west-1.rds.amazonaws.com'
ROLE_ARN = 'arn:aws:iam::123456789012:role/db-connect'


def option_definitions():
    """The lookup's options as Ansible assembles them: its DOCUMENTATION, plus the aws fragment, plus its PLUGINS sources.

    Built here rather than through lookup_loader: other unit tests import the collection as a plain package first, which
    Ansible's collection loader cannot share. The integration tests load the lookup the real way.
    """
    options = yaml.safe_load(rds_iam_token.DOCUMENTATION)['options']
    for name, doc in yaml.safe_load(aws_fragment.ModuleDocFragment.DOCUMENTATION)['options'].items():
        options.setdefault(name, doc)
    for name, sources in yaml.safe_load(aws_fragment.ModuleDocFragment.PLUGINS)['options'].items():
        options[name].update(sources)
    return options


@pytest.fixture(scope='module')
def lookup_plugin():
    plugin = rds_iam_token.LookupModule()
    plugin._load_name = 'rdsiam.auth.rds_iam_token'
    C.config.initialize_plugin_configuration_definitions('lookup', plugin._load_name, option_definitions())
    return plugin


@pytest.fixture
def lookup(lookup_plugin, monkeypatch, tmp_path):
    """run(terms, **options) with static keys in the environment, as `source sandbox/.state/env` would set them."""
    monkeypatch.setenv('AWS_ACCESS_KEY_ID', ACCESS)
    monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', SECRET)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg-cache'))

    def run(*terms, **options):
        return lookup_plugin.run(list(terms), variables={}, **options)
    return run


def query(token):
    host, query_string = token.split('/?', 1)
    return host, {key: values[0] for key, values in parse_qs(query_string).items()}


def botocore_token(token, host, port, user, region, session_token=None):
    """What botocore's generate_db_auth_token returns for the same inputs at the time written in token."""
    stamp = datetime.datetime.strptime(query(token)[1]['X-Amz-Date'], '%Y%m%dT%H%M%SZ')
    client = botocore.session.get_session().create_client('rds', region_name='us-east-1', aws_access_key_id=ACCESS,
                                                          aws_secret_access_key=SECRET, aws_session_token=session_token)
    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda *args, **kwargs: stamp
    try:
        return client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user, Region=region)
    finally:
        botocore.auth.get_current_datetime = original


# ---- terms and options ----

def test_term_form_gives_the_same_token_as_botocore(lookup):
    [token] = lookup('alice@%s:3306' % HOST)
    assert token == botocore_token(token, HOST, 3306, 'alice', 'eu-west-1')


def test_options_form_with_default_port(lookup):
    [token] = lookup(endpoint=HOST, db_user='app_user')
    host, params = query(token)
    assert host == HOST + ':5432' and params['DBUser'] == 'app_user' and params['X-Amz-Expires'] == '900'
    assert params['X-Amz-Credential'] == '%s/%s/eu-west-1/rds-db/aws4_request' % (ACCESS, params['X-Amz-Date'][:8])


def test_term_without_user_or_port_takes_them_from_options(lookup):
    [token] = lookup(HOST, db_user='bob', port=3306)
    assert query(token)[0] == HOST + ':3306' and query(token)[1]['DBUser'] == 'bob'


def test_user_is_what_comes_before_the_last_at(lookup):
    [token] = lookup('jane@example.com@%s' % HOST)
    assert query(token)[1]['DBUser'] == 'jane@example.com'


def test_one_token_per_term(lookup):
    tokens = lookup('a@%s' % HOST, 'b@%s:3306' % HOST, 'c@db2.abcdefghijkl.us-east-2.rds.amazonaws.com')
    assert [query(token)[1]['DBUser'] for token in tokens] == ['a', 'b', 'c']
    assert '%2Fus-east-2%2F' in tokens[2]


def test_session_token_is_signed(lookup, monkeypatch):
    monkeypatch.setenv('AWS_SESSION_TOKEN', SESSION_TOKEN)
    [token] = lookup('alice@%s' % HOST)
    assert token == botocore_token(token, HOST, 5432, 'alice', 'eu-west-1', SESSION_TOKEN)


def test_direct_keys_beat_the_environment(lookup):
    [token] = lookup('alice@%s' % HOST, access_key='AKIADIRECTKEY', secret_key='direct-secret')
    assert query(token)[1]['X-Amz-Credential'].startswith('AKIADIRECTKEY/')


def test_dict_output_is_ready_for_login_options(lookup):
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    [db] = lookup('alice@%s:3306' % HOST, output='dict', ca_cert='/etc/ssl/rds.pem')
    assert set(db) == {'host', 'port', 'user', 'password', 'region', 'expires_at', 'ssl_mode', 'check_hostname', 'ca_cert'}
    assert (db['host'], db['port'], db['user'], db['region']) == (HOST, 3306, 'alice', 'eu-west-1')
    assert (db['ssl_mode'], db['check_hostname'], db['ca_cert']) == ('verify-full', True, '/etc/ssl/rds.pem')
    assert db['password'].startswith(HOST + ':3306/?Action=connect&DBUser=alice&')
    expires = datetime.datetime.strptime(db['expires_at'], '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
    assert before + datetime.timedelta(minutes=15) <= expires <= before + datetime.timedelta(minutes=15, seconds=5)


def test_dict_output_without_hostname_check(lookup):
    [db] = lookup('alice@%s' % HOST, output='dict', ssl_mode='verify-ca')
    assert (db['ssl_mode'], db['check_hostname'], db['ca_cert']) == ('verify-ca', False, None)


# ---- regions ----

def test_explicit_region_contradicting_the_host_is_an_error(lookup):
    with pytest.raises(AnsibleLookupError, match="region 'us-east-1' contradicts endpoint '%s', which is in eu-west-1" % re.escape(HOST)):
        lookup('alice@%s' % HOST, region='us-east-1')


def test_region_from_the_environment_gives_way_to_the_host(lookup, monkeypatch):
    monkeypatch.setenv('AWS_REGION', 'us-east-1')
    [token] = lookup('alice@%s' % HOST)
    assert '%2Feu-west-1%2Frds-db%2F' in token


def test_custom_name_needs_a_region(lookup):
    with pytest.raises(AnsibleLookupError, match=r"endpoint 'db.corp.example' is not an RDS host name .*CNAME"):
        lookup('alice@db.corp.example')
    [token] = lookup('alice@db.corp.example', region='eu-west-1')
    assert token.startswith('db.corp.example:5432/') and '%2Feu-west-1%2F' in token


@pytest.mark.parametrize('host,region', [('db.abc.cn-north-1.rds.amazonaws.com.cn', 'cn-north-1'),
                                         # how China endpoints are named today: rds before the region
                                         ('db.abcdefghijkl.rds.cn-north-1.amazonaws.com.cn', 'cn-north-1'),
                                         ('c1.cluster-ro-abcdefghijkl.rds.cn-northwest-1.amazonaws.com.cn', 'cn-northwest-1'),
                                         ('db.abcdefghijkl.rds.us-isob-east-1.sc2s.sgov.gov', 'us-isob-east-1'),
                                         ('db.abc.us-gov-west-1.rds.amazonaws.com', 'us-gov-west-1'),
                                         ('db.abc.us-iso-east-1.rds.c2s.ic.gov', 'us-iso-east-1')])
def test_partition_host_names(lookup, host, region):
    [token] = lookup('alice@' + host)
    assert token == botocore_token(token, host, 5432, 'alice', region)


# ---- bad input: one clear error, nothing signed ----

@pytest.mark.parametrize('terms,options,message', [
    ((HOST,), {}, 'db_user is not set'),
    ((), {'db_user': 'alice'}, 'endpoint is not set'),
    (('alice@%s:0' % HOST,), {}, 'port 0 is not a TCP port: use 1 to 65535'),
    (('alice@%s:65536' % HOST,), {}, 'port 65536 is not a TCP port'),
    ((), {'endpoint': HOST, 'db_user': 'a', 'port': -1}, 'port -1 is not a TCP port'),
    (('alice@%s:54x' % HOST,), {}, "the port in 'alice@%s:54x' is not a number" % HOST),
    (('https://%s' % HOST,), {'db_user': 'a'}, "has a scheme: give only the host name, without 'https://'"),
    ((), {'endpoint': HOST + '/postgres', 'db_user': 'a'}, 'has a path or query'),
    ((), {'endpoint': 'db 1.example.com', 'db_user': 'a'}, 'contains white space'),
    ((), {'endpoint': '::1', 'db_user': 'a'}, 'IPv6 addresses are not supported'),
    ((), {'endpoint': 'a..b', 'db_user': 'a'}, 'is not a valid DNS host name'),
    ((), {'endpoint': HOST, 'db_user': 'bad\x00user'}, 'NUL character'),
    ((), {'endpoint': HOST, 'db_user': 'bad\nuser'}, 'control character'),
    ((), {'endpoint': HOST, 'db_user': 'é' * 32}, '64 bytes long, more than the 63 bytes a user name can have on postgres'),
    ((), {'endpoint': HOST, 'db_user': 'm' * 33, 'port': 3306, 'engine': 'mysql'}, '33 characters long, more than the 32'),
    ((), {'endpoint': HOST, 'db_user': 'm' * 81, 'port': 3306}, 'more than the 80 characters a user name can have on any RDS engine'),
])
def test_bad_input_is_one_clear_error(lookup, terms, options, message):
    with pytest.raises(AnsibleLookupError) as err:
        lookup(*terms, **options)
    assert message in str(err.value)
    assert str(err.value).startswith('rds_iam_token: ')


def test_long_names_pass_where_the_engine_allows_them(lookup):
    assert lookup(endpoint=HOST, db_user='m' * 63)
    assert lookup(endpoint=HOST, db_user='m' * 80, port=3306, engine='mariadb')


def test_all_problems_are_reported_at_once(lookup):
    with pytest.raises(AnsibleLookupError) as err:
        lookup(endpoint='http://x', db_user='', port=0)
    assert 'scheme' in str(err.value) and 'TCP port' in str(err.value) and 'db_user is not set' in str(err.value)


def test_no_credentials_says_which_sources_were_tried(lookup, monkeypatch):
    monkeypatch.delenv('AWS_ACCESS_KEY_ID')
    monkeypatch.delenv('AWS_SECRET_ACCESS_KEY')
    with pytest.raises(AnsibleLookupError) as err:
        lookup('alice@' + HOST)
    message = str(err.value)
    assert message.startswith('rds_iam_token: no AWS credentials found: tried the access_key/secret_key options')
    assert 'shared-credentials-file' in message and 'iam-role' in message


@pytest.fixture
def sts_denied(monkeypatch):
    real = _aws.aws_client

    def stubbed(options, service, session=None):
        client = real(options, service, session=session)
        stubber = Stubber(client)
        stubber.add_client_error('assume_role', 'AccessDenied', 'User: arn:aws:iam::123456789012:user/ops is not authorized '
                                 'to perform: sts:AssumeRole on resource: %s' % ROLE_ARN, 403)
        stubber.activate()
        return client
    monkeypatch.setattr(_aws, 'aws_client', stubbed)


def test_assume_role_denied_shows_the_aws_code_and_never_the_secret(lookup, sts_denied):
    with pytest.raises(AnsibleLookupError) as err:
        lookup('alice@' + HOST, assume_role_arn=ROLE_ARN, session_tags={'userName': 'alice'})
    message = str(err.value)
    assert message.startswith('rds_iam_token: sts:AssumeRole on %s failed: AccessDenied: ' % ROLE_ARN)
    assert SECRET not in message and err.value.__cause__ is None


def test_verbose_output_names_the_target_but_never_the_token(lookup, capsys):
    display = Display()
    verbosity = display.verbosity
    display.verbosity = 4
    try:
        [token] = lookup('alice@%s' % HOST)
    finally:
        display.verbosity = verbosity
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert 'rds_iam_token: signed for alice@%s:5432 in eu-west-1 with options credentials (access key %s)' % (HOST, ACCESS) in shown
    assert token not in shown and 'X-Amz-Signature' not in shown and SECRET not in shown


def test_cached_role_credentials_are_used_without_sts(lookup, sts_denied, tmp_path):
    options = {'assume_role_arn': ROLE_ARN, 'role_session_name': 'cached-session', 'session_tags': {'userName': 'alice'}}
    key = _credential_cache.cache_key(_credential_cache.assume_role_params(options), ACCESS)
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    assert _credential_cache.save(key, {'AccessKeyId': 'ASIACACHEDROLEKEY1', 'SecretAccessKey': 'cached-secret',
                                        'SessionToken': 'cached-token', 'Expiration': expires})
    [db] = lookup('alice@%s' % HOST, output='dict', **options)
    assert query(db['password'])[1]['X-Amz-Credential'].startswith('ASIACACHEDROLEKEY1/')
    assert query(db['password'])[1]['X-Amz-Security-Token'] == 'cached-token'
    # The token dies with the credentials: expires_at is never later than their expiry.
    assert db['expires_at'] <= expires.strftime('%Y-%m-%dT%H:%M:%SZ')
    # With the cache turned off the (denied) STS call happens, and its error is reported.
    with pytest.raises(AnsibleLookupError, match='AccessDenied'):
        lookup('alice@%s' % HOST, credential_cache=False, **options)


def test_cached_role_credentials_about_to_expire_are_not_used(lookup, sts_denied):
    # Credentials with 10 minutes left would sign a "15-minute" token that dies after 10: assume the role again instead.
    options = {'assume_role_arn': ROLE_ARN, 'role_session_name': 'expiring-session'}
    key = _credential_cache.cache_key(_credential_cache.assume_role_params(options), ACCESS)
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
    assert _credential_cache.save(key, {'AccessKeyId': 'ASIAEXPIRINGROLEKEY', 'SecretAccessKey': 'expiring-secret',
                                        'SessionToken': 'expiring-token', 'Expiration': expires})
    with pytest.raises(AnsibleLookupError, match='sts:AssumeRole on .* failed: AccessDenied'):
        lookup('alice@%s' % HOST, **options)


def test_documented_user_name_limits_are_the_enforced_ones():
    described = ' '.join(yaml.safe_load(rds_iam_token.DOCUMENTATION)['options']['db_user']['description'])
    for engine, name in (('postgres', 'PostgreSQL'), ('mysql', 'MySQL'), ('mariadb', 'MariaDB')):
        limit, unit = DB_USER_NAME_LIMITS[engine]
        assert '%s %d %s' % (name, limit, unit) in described


def test_malformed_session_tags_are_reported_not_raised(lookup):
    with pytest.raises(AnsibleLookupError, match="session_tags entry '1' is not a string key with a string value"):
        lookup('alice@%s' % HOST, assume_role_arn=ROLE_ARN, session_tags={1: 'a', 'b': 'c'})
