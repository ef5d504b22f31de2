"""The token presigner against botocore's generate_db_auth_token: same inputs and clock, same bytes.

A seeded random generator draws user names (special characters, unicode), hosts, ports, regions
of every partition, long-term and temporary credentials and clocks; any difference fails with
the seed's case number so it can be replayed.
"""
import datetime
import hashlib
import random
import re
import string

import botocore.auth
import botocore.credentials
import botocore.session
import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _token

REGIONS = ['us-east-1', 'eu-central-2', 'ap-southeast-4', 'cn-north-1', 'cn-northwest-1', 'us-gov-west-1',
           'us-gov-east-1', 'us-iso-east-1', 'us-isob-east-1', 'eu-isoe-west-1', 'il-central-1']
HOST_SUFFIXES = {'cn': '.rds.amazonaws.com.cn', 'us-iso-': '.rds.c2s.ic.gov', 'us-isob-': '.rds.sc2s.sgov.gov',
                 'eu-isoe-': '.rds.cloud.adc-e.uk'}
USER_ALPHABET = string.ascii_letters + string.digits + "_-.@+=/ :&?#%'\"\\$~!*()[]{}<>|^`," + 'äéøßÆ中文ж' + '\U0001f600'


def rds_host(rng, region):
    suffix = next((value for prefix, value in HOST_SUFFIXES.items() if region.startswith(prefix)), '.rds.amazonaws.com')
    name = rng.choice(['db1', 'My-Cluster', 'px'])
    kind = rng.choice(['', 'cluster-', 'cluster-ro-', 'proxy-'])
    host = '%s.%s%s.%s%s' % (name, kind, ''.join(rng.choices(string.ascii_lowercase + string.digits, k=12)), region, suffix)
    return host.upper() if rng.random() < 0.1 else host


@pytest.fixture(scope='module')
def botocore_rds():
    session = botocore.session.get_session()
    return session


def botocore_token(session, credentials, host, port, user, region, now):
    client = session.create_client('rds', region_name='us-east-1', aws_access_key_id=credentials[0],
                                   aws_secret_access_key=credentials[1], aws_session_token=credentials[2])
    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda *args, **kwargs: now.replace(tzinfo=None)
    try:
        return client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user, Region=region)
    finally:
        botocore.auth.get_current_datetime = original


def random_case(rng):
    region = rng.choice(REGIONS)
    user = ''.join(rng.choices(USER_ALPHABET, k=rng.randint(1, 40)))
    port = rng.choice([5432, 3306, 443, 80, 1, 65535, rng.randint(1, 65535)])
    access_key = rng.choice(['AKIA', 'ASIA']) + ''.join(rng.choices(string.ascii_uppercase + string.digits, k=16))
    secret = ''.join(rng.choices(string.ascii_letters + string.digits + '+/', k=40))
    token = None
    if access_key.startswith('ASIA'):
        token = ''.join(rng.choices(string.ascii_letters + string.digits + '+/=', k=rng.randint(100, 900)))
    now = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=rng.randint(0, 20 * 365 * 86400))
    return (access_key, secret, token), rds_host(rng, region), port, user, region, now


def test_byte_identical_to_botocore_over_random_cases(botocore_rds):
    rng = random.Random(20261125)
    for case in range(400):
        credentials, host, port, user, region, now = random_case(rng)
        ours = _token.generate_db_auth_token(*credentials, host, port, user, region, now=now)
        theirs = botocore_token(botocore_rds, credentials, host, port, user, region, now)
        assert ours == theirs, 'case %d differs: user=%r host=%r port=%r region=%r' % (case, user, host, port, region)


@pytest.mark.parametrize('user', ['iam_admin', 'Alice', 'a b', 'x&y=z', 'ünïcödé', '中文', '%41', '+', 'a/b', '\U0001f600',
                                  'n' * 63, "o'brien", 'semi;colon'])
@pytest.mark.parametrize('session_token', [None, 'FwoGZXIvYXdzE//+abc=='])
def test_byte_identical_for_chosen_user_names(botocore_rds, user, session_token):
    now = datetime.datetime(2026, 11, 25, 23, 59, 59, tzinfo=datetime.timezone.utc)
    credentials = ('AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', session_token)
    host = 'db1.abcdefghijkl.eu-central-1.rds.amazonaws.com'
    ours = _token.generate_db_auth_token(*credentials, host, 5432, user, 'eu-central-1', now=now)
    assert ours == botocore_token(botocore_rds, credentials, host, 5432, user, 'eu-central-1', now)


# The token botocore 1.44.5 produced for fixed inputs (AWS's documented example keys). A token is a secret, even a
# test's: the signature is kept only as the SHA-256 of the whole token, which pins it just as exactly.
KNOWN_TOKEN_UNSIGNED = ('db1.abc.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=alice&X-Amz-Algorithm=AWS4-HMAC-SHA256'
                        '&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260102%2Fus-east-1%2Frds-db%2Faws4_request'
                        '&X-Amz-Date=20260102T030405Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=')
KNOWN_TOKEN_SHA256 = 'b4f3fda47ee1516947927337311393e4545c9ae1d87322c6004ab425c7b930e7'


def test_known_answer():
    # Guards against botocore and this presigner changing together.
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    token = _token.generate_db_auth_token('AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', None,
                                          'db1.abc.us-east-1.rds.amazonaws.com', 5432, 'alice', 'us-east-1', now=now)
    assert token.startswith(KNOWN_TOKEN_UNSIGNED)
    assert re.fullmatch('[0-9a-f]{64}', token[len(KNOWN_TOKEN_UNSIGNED):])
    assert hashlib.sha256(token.encode('utf-8')).hexdigest() == KNOWN_TOKEN_SHA256


def test_token_shape_and_parameter_order():
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    token = _token.generate_db_auth_token('ASIAEXAMPLE', 'secret', 'tok/en+', 'Db1.Example.com', 3306, 'bob', 'us-east-1', now=now)
    host, query = token.split('/?', 1)
    assert host == 'Db1.Example.com:3306'
    names = [pair.split('=')[0] for pair in query.split('&')]
    assert names == ['Action', 'DBUser', 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires',
                     'X-Amz-SignedHeaders', 'X-Amz-Security-Token', 'X-Amz-Signature']
    assert 'X-Amz-Credential=ASIAEXAMPLE%2F20260102%2Fus-east-1%2Frds-db%2Faws4_request' in query
    assert 'X-Amz-Security-Token=tok%2Fen%2B' in query and 'X-Amz-Date=20260102T030405Z' in query


def test_different_clock_region_or_secret_changes_the_signature():
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    base = ('AKIAEXAMPLE', 'secret', None, 'db.example.com', 5432, 'u', 'us-east-1')
    token = _token.generate_db_auth_token(*base, now=now)
    assert token != _token.generate_db_auth_token(*base, now=now + datetime.timedelta(seconds=1))
    assert token != _token.generate_db_auth_token(*base[:6], 'us-east-2', now=now)
    assert token != _token.generate_db_auth_token(base[0], 'secret2', *base[2:], now=now)


def test_signing_key_is_cached_per_secret_day_and_region():
    _token._SIGNING_KEYS.clear()
    first = _token.signing_key('s1', '20260101', 'us-east-1')
    assert _token.signing_key('s1', '20260101', 'us-east-1') is first
    assert _token.signing_key('s2', '20260101', 'us-east-1') != first
    assert _token.signing_key('s1', '20260102', 'us-east-1') != first
    assert len(_token._SIGNING_KEYS) == 3


def test_signing_key_cache_is_bounded():
    _token._SIGNING_KEYS.clear()
    for index in range(_token._MAX_SIGNING_KEYS * 2):
        _token.signing_key('s%d' % index, '20260101', 'us-east-1')
    assert len(_token._SIGNING_KEYS) <= _token._MAX_SIGNING_KEYS


@pytest.mark.parametrize('port,expected', [(443, 'db.example.com'), (5432, 'db.example.com:5432'), ('3306', 'db.example.com:3306')])
def test_host_header(port, expected):
    assert _token.host_header('DB.Example.com', port) == expected


def test_token_expiry_is_fifteen_minutes_or_the_credentials_expiry():
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert _token.token_expiry(now) == now + datetime.timedelta(minutes=15)
    soon = now + datetime.timedelta(minutes=5)
    assert _token.token_expiry(now, soon) == soon
    assert _token.token_expiry(now, now + datetime.timedelta(hours=1)) == now + datetime.timedelta(minutes=15)


@pytest.mark.parametrize('hostname,region', [
    ('db1.abcdefghijkl.eu-central-1.rds.amazonaws.com', 'eu-central-1'),
    # China endpoints as RDS names them today, and the older form that still resolves
    ('db1.abcdefghijkl.rds.cn-north-1.amazonaws.com.cn', 'cn-north-1'),
    ('px.proxy-abcdefghijkl.rds.cn-northwest-1.amazonaws.com.cn', 'cn-northwest-1'),
    ('db1.abcdefghijkl.cn-north-1.rds.amazonaws.com.cn', 'cn-north-1'),
    # ISO and GovCloud endpoints with rds before the region
    ('c1.cluster-abcdefghijkl.rds.us-iso-east-1.c2s.ic.gov', 'us-iso-east-1'),
    ('c1.cluster-abcdefghijkl.rds.us-isob-east-1.sc2s.sgov.gov', 'us-isob-east-1'),
    ('db1.abcdefghijkl.rds.us-gov-west-1.amazonaws.com', 'us-gov-west-1'),
    ('DB1.ABCDEFGHIJKL.RDS.CN-NORTH-1.AMAZONAWS.COM.CN.', 'cn-north-1'),
    # not a database endpoint
    ('rds.cn-north-1.amazonaws.com.cn', None),
    ('db1.abcdefghijkl.rds.cn-north-1.amazonaws.com.cn.evil.example', None),
    ('db1.rds.example.com', None),
])
def test_region_from_rds_hostname_in_every_naming_form(hostname, region):
    assert _token.region_from_rds_hostname(hostname) == region
    if region:
        assert _token.signing_region(hostname) == region
