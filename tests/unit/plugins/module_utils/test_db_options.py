# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the shared DB login options and the psycopg2/PyMySQL connectors (no database, no AWS)."""

from __future__ import annotations

import datetime
import json
import re
import socket
import ssl
import threading

import psycopg2
import pymysql
import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.rdsiam.auth.plugins.module_utils import _aws, _db
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError
from ansible_collections.rdsiam.auth.plugins.module_utils._db import (
    DB_ARGUMENT_KWARGS,
    DB_ARGUMENT_SPEC,
    DbConnectError,
    DbLogin,
    DbOptionsError,
    check_db_options,
    classify_first_reply,
    connect_mysql,
    connect_postgres,
    dialect_mismatch,
    mysql_connect_kwargs,
    mysql_dialect,
    mysql_ssl_context,
    postgres_connect_kwargs,
    resolve_db_login,
    resolve_host_addresses,
    scrub_secret,
    tls_warning,
)

PASSWORD = "S3cr'et-p4ss"
ENDPOINT = 'db1.abcdefghijkl.eu-central-1.rds.amazonaws.com'
SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0123-AbCdEf'
AWS = dict(access_key='AKIAIOSFODNN7EXAMPLE', secret_key='wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY', validate_certs=True)


def validate(params):
    return ArgumentSpecValidator(DB_ARGUMENT_SPEC, **DB_ARGUMENT_KWARGS).validate(params)


def opts(**values):
    result = validate(values)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def login(**overrides):
    values = dict(engine='postgres', host=ENDPOINT, port=5432, dbname='postgres', user='admin', password=PASSWORD, auth='password',
                  endpoint=ENDPOINT, endpoint_port=5432, ssl_mode='verify-full', ca_cert=None, connect_timeout=10)
    values.update(overrides)
    return DbLogin(**values)


# ---- argument spec ----

def test_secret_options_are_no_log_and_look_alikes_explicitly_not():
    assert DB_ARGUMENT_SPEC['login_password']['no_log'] is True
    assert DB_ARGUMENT_SPEC['login_secret']['no_log'] is False
    looks_secret = re.compile(r'pass(?!ive)|secret|token|key', re.I)
    for name, spec in DB_ARGUMENT_SPEC.items():
        if looks_secret.search(name) and spec.get('type') not in ('path', 'bool'):
            assert 'no_log' in spec, name


def test_password_is_registered_as_no_log_value():
    assert PASSWORD in validate({'login_password': PASSWORD, 'login_user': 'a'})._no_log_values


def test_spec_defaults():
    params = opts(endpoint=ENDPOINT)
    assert (params['ssl_mode'], params['connect_timeout'], params['login_iam']) == ('verify-full', 10, False)
    assert params['login_port'] is None and params['login_db'] is None


@pytest.mark.parametrize('alias', ['ssl_rootcert', 'ca_file'])
def test_ca_cert_aliases(alias):
    assert opts(**{alias: '/etc/rds.pem'})['ca_cert'] == '/etc/rds.pem'


@pytest.mark.parametrize('mode', ['allow', 'prefer', 'verify_full'])
def test_plaintext_fallback_modes_are_not_choices(mode):
    assert any('ssl_mode' in msg for msg in validate({'ssl_mode': mode}).error_messages)


def test_password_and_secret_are_mutually_exclusive_in_the_spec():
    errors = validate({'login_password': PASSWORD, 'login_secret': SECRET_ARN}).error_messages
    assert any('mutually exclusive' in msg for msg in errors)


def test_login_iam_requires_login_user_in_the_spec():
    assert any('login_user' in msg for msg in validate({'login_iam': True}).error_messages)


def test_explicit_login_iam_false_with_password_is_accepted():
    # Roles pass every option through; "login_iam: false" must not count as a second login method.
    options = opts(login_iam=False, login_password=PASSWORD, login_user='admin', endpoint=ENDPOINT)
    check_db_options(options)


# ---- check_db_options ----

@pytest.mark.parametrize('values,needle', [
    (dict(login_iam=True, login_password=PASSWORD, login_user='a'), 'login_password and login_iam are mutually exclusive'),
    (dict(login_iam=True, login_secret=SECRET_ARN, login_user='a'), 'login_secret and login_iam are mutually exclusive'),
    (dict(login_iam=True, login_user='a', ssl_mode='disable'), 'login_iam needs TLS'),
    (dict(login_user='a', login_port=70000), 'login_port 70000 is not a TCP port'),
    (dict(login_user='a', connect_timeout=0), 'connect_timeout must be a positive'),
    (dict(login_user='a', ca_cert='/nonexistent/rds-ca.pem'), "ca_cert '/nonexistent/rds-ca.pem' is not a readable file"),
])
def test_check_db_options_errors(values, needle):
    with pytest.raises(DbOptionsError) as err:
        check_db_options(dict(opts(**values), endpoint=ENDPOINT))
    assert needle in str(err.value)
    assert PASSWORD not in str(err.value)


def test_host_or_endpoint_is_required():
    with pytest.raises(DbOptionsError, match='neither login_host nor endpoint'):
        resolve_db_login(opts(login_user='a', login_password='x'), 'postgres')


def test_unsupported_engine():
    with pytest.raises(DbOptionsError, match="engine 'oracle-ee' is not supported"):
        resolve_db_login(opts(login_user='a', endpoint=ENDPOINT), 'oracle-ee')


# ---- resolve_db_login ----

@pytest.mark.parametrize('engine,name,port,dbname', [
    ('postgres', 'postgres', 5432, 'postgres'),
    ('aurora-postgresql', 'postgres', 5432, 'postgres'),
    ('mysql', 'mysql', 3306, None),
    ('aurora-mysql', 'mysql', 3306, None),
    ('mariadb', 'mariadb', 3306, None),
])
def test_engine_defaults(engine, name, port, dbname):
    result = resolve_db_login(opts(endpoint=ENDPOINT, login_user='admin', login_password=PASSWORD), engine)
    assert (result.engine, result.port, result.endpoint_port, result.dbname) == (name, port, port, dbname)
    assert (result.host, result.endpoint, result.user, result.password, result.auth) == (ENDPOINT, ENDPOINT, 'admin', PASSWORD, 'password')


def test_login_host_and_endpoint_default_to_each_other():
    assert resolve_db_login(opts(login_host='10.0.0.5', login_user='a'), 'mysql').endpoint == '10.0.0.5'
    assert resolve_db_login(opts(endpoint=ENDPOINT, login_user='a'), 'mysql').host == ENDPOINT


def test_tunnel_ports():
    result = resolve_db_login(opts(login_host='127.0.0.1', login_port=15432, endpoint=ENDPOINT, endpoint_port=5432,
                                   login_user='a', login_db='app', ssl_mode='verify-ca', connect_timeout=3), 'postgres')
    assert (result.host, result.port, result.endpoint, result.endpoint_port) == ('127.0.0.1', 15432, ENDPOINT, 5432)
    assert (result.dbname, result.ssl_mode, result.connect_timeout, result.auth, result.password) == ('app', 'verify-ca', 3, 'none', None)
    # Without endpoint_port the token is signed for the port we connect to.
    assert resolve_db_login(opts(login_host='127.0.0.1', login_port=15432, endpoint=ENDPOINT, login_user='a'), 'postgres').endpoint_port == 15432


def test_login_user_is_required_without_secret():
    with pytest.raises(DbOptionsError, match='login_user is not set'):
        resolve_db_login(opts(endpoint=ENDPOINT, login_password=PASSWORD), 'postgres')


def test_repr_hides_password():
    text = repr(resolve_db_login(opts(endpoint=ENDPOINT, login_user='admin', login_password=PASSWORD), 'postgres'))
    assert PASSWORD not in text and "password='********'" in text and "user='admin'" in text
    assert PASSWORD not in str(login())


# ---- Secrets Manager ----

@pytest.fixture
def secrets_client(monkeypatch):
    """A real secretsmanager client with a Stubber, handed out instead of a network client."""
    client = _aws.aws_client(dict(AWS, region='eu-west-1'), 'secretsmanager')
    stubber = Stubber(client)
    calls = []

    def fake_aws_client(options, service, session=None):
        calls.append((dict(options), service))
        return client

    monkeypatch.setattr(_db, 'aws_client', fake_aws_client)
    stubber.calls = calls
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def _secret(value):
    return {'ARN': SECRET_ARN, 'Name': 'rds!db-0123', 'SecretString': value}


def test_secret_gives_user_and_password_and_region_from_arn(secrets_client):
    secrets_client.add_response('get_secret_value', _secret(json.dumps({'username': 'master', 'password': PASSWORD, 'engine': 'postgres'})),
                                {'SecretId': SECRET_ARN})
    result = resolve_db_login(opts(endpoint=ENDPOINT, login_secret=SECRET_ARN), 'postgres', dict(AWS))
    assert (result.user, result.password, result.auth) == ('master', PASSWORD, 'secret')
    options, service = secrets_client.calls[0]
    assert service == 'secretsmanager' and options['region'] == 'eu-west-1' and options['access_key'] == AWS['access_key']


def test_login_user_overrides_secret_user_and_aws_region_wins(secrets_client):
    secrets_client.add_response('get_secret_value', _secret(json.dumps({'username': 'master', 'password': PASSWORD})))
    result = resolve_db_login(opts(endpoint=ENDPOINT, login_secret=SECRET_ARN, login_user='other'), 'mysql', dict(AWS, region='us-east-1'))
    assert (result.user, result.password) == ('other', PASSWORD)
    assert secrets_client.calls[0][0]['region'] == 'us-east-1'


@pytest.mark.parametrize('value', ['not json ' + PASSWORD, json.dumps({'password': PASSWORD}), json.dumps([PASSWORD])])
def test_malformed_secret_is_reported_without_its_content(secrets_client, value):
    secrets_client.add_response('get_secret_value', _secret(value))
    with pytest.raises(DbOptionsError) as err:
        resolve_db_login(opts(endpoint=ENDPOINT, login_secret=SECRET_ARN), 'postgres', dict(AWS))
    assert SECRET_ARN in str(err.value) and 'username and password' in str(err.value)
    assert PASSWORD not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_secret_aws_error_names_operation_and_secret(secrets_client):
    secrets_client.add_client_error('get_secret_value', 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.")
    with pytest.raises(AwsCallError) as err:
        resolve_db_login(opts(endpoint=ENDPOINT, login_secret=SECRET_ARN), 'postgres', dict(AWS))
    assert str(err.value) == ("secretsmanager:GetSecretValue on %s failed: ResourceNotFoundException: "
                              "Secrets Manager can't find the specified secret." % SECRET_ARN)


# ---- IAM token ----

@pytest.fixture
def signer(monkeypatch):
    """Records what _db hands to the collection's presigner (whose bytes tests/unit/plugins/module_utils/test_token.py checks)."""
    calls = []
    real = _db.generate_db_auth_token

    def recording(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(_db, 'generate_db_auth_token', recording)
    return calls


def test_token_is_signed_for_endpoint_and_endpoint_port_with_region_from_host(signer):
    result = resolve_db_login(opts(login_host='127.0.0.1', login_port=15432, endpoint=ENDPOINT, endpoint_port=5432,
                                   login_user='iam_admin', login_iam=True), 'postgres', dict(AWS))
    assert signer == [(AWS['access_key'], AWS['secret_key'], None, ENDPOINT, 5432, 'iam_admin', 'eu-central-1')]
    assert (result.auth, result.host, result.port) == ('iam', '127.0.0.1', 15432)
    assert result.password.startswith(ENDPOINT + ':5432/?Action=connect&DBUser=iam_admin&')


def test_token_region_from_host_name_wins_over_an_options_region(signer):
    # A token signed for another region than the endpoint's never works; AWS_REGION often names another one.
    resolve_db_login(opts(endpoint=ENDPOINT, login_user='u', login_iam=True), 'mysql', dict(AWS, region='us-west-2'))
    assert signer[0][6] == 'eu-central-1' and signer[0][4] == 3306


def test_token_region_from_options_for_a_custom_host_name(signer):
    resolve_db_login(opts(endpoint='db.internal', login_user='u', login_iam=True), 'postgres', dict(AWS, region='us-west-2'))
    assert signer[0][3] == 'db.internal' and signer[0][6] == 'us-west-2'


def test_token_with_session_token_signs_it(signer):
    resolve_db_login(opts(endpoint=ENDPOINT, login_user='u', login_iam=True), 'postgres', dict(AWS, session_token='tok'))
    assert signer[0][2] == 'tok'


def test_token_without_any_region_is_an_options_error(signer):
    with pytest.raises(DbOptionsError, match="no region to sign the IAM token: endpoint 'db.internal' is not an RDS host name"):
        resolve_db_login(opts(endpoint='db.internal', login_user='u', login_iam=True), 'postgres', dict(AWS))
    assert not signer


def test_token_without_login_user_is_an_options_error(signer):
    with pytest.raises(DbOptionsError, match='login_user is not set'):
        resolve_db_login({'endpoint': ENDPOINT, 'login_iam': True}, 'postgres', dict(AWS))


def test_real_token_shape():
    # Signing is local: no network, and the result is the real presigned form.
    result = resolve_db_login(opts(endpoint=ENDPOINT, endpoint_port=5432, login_host='127.0.0.1', login_port=6000,
                                   login_user='iam_admin', login_iam=True), 'postgres', dict(AWS))
    assert result.password.startswith(ENDPOINT + ':5432/?Action=connect&DBUser=iam_admin&')
    assert re.search(r'X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F\d{8}%2Feu-central-1%2Frds-db%2Faws4_request', result.password)
    assert 'X-Amz-Expires=900' in result.password


def test_token_without_credentials_names_the_sources_tried(monkeypatch):
    with pytest.raises(_aws.NoCredentialsError, match=r"no AWS credentials found: tried the access_key/secret_key options, then "
                                                      r"botocore's credential chain \(env, .*iam-role\)"):
        resolve_db_login(opts(endpoint=ENDPOINT, login_user='u', login_iam=True), 'postgres', {})


# ---- PostgreSQL kwargs ----

def fixed_resolver(*addresses):
    def resolve(host, port):
        resolve.calls.append((host, port))
        return list(addresses)
    resolve.calls = []
    return resolve


def test_postgres_kwargs_direct_connection():
    kwargs = postgres_connect_kwargs(login(ca_cert='/etc/rds.pem'), 170000, resolve=fixed_resolver())
    assert kwargs == dict(host=ENDPOINT, port=5432, dbname='postgres', user='admin', password=PASSWORD, connect_timeout=10,
                          application_name='rdsiam.auth', sslmode='verify-full', sslrootcert='/etc/rds.pem')


def test_postgres_kwargs_connect_to_login_host_but_verify_endpoint():
    resolve = fixed_resolver('127.0.0.1')
    kwargs = postgres_connect_kwargs(login(host='localhost', port=15432), 170000, resolve=resolve)
    assert (kwargs['host'], kwargs['hostaddr'], kwargs['port']) == (ENDPOINT, '127.0.0.1', 15432)
    assert resolve.calls == [('localhost', 15432)]


def test_postgres_kwargs_one_host_per_resolved_address():
    kwargs = postgres_connect_kwargs(login(host='localhost'), 170000, resolve=fixed_resolver('::1', '127.0.0.1'))
    assert (kwargs['host'], kwargs['hostaddr']) == ('%s,%s' % (ENDPOINT, ENDPOINT), '::1,127.0.0.1')


def test_postgres_kwargs_no_password_key_without_password():
    assert 'password' not in postgres_connect_kwargs(login(password=None, ssl_mode='require'), 170000)


@pytest.mark.parametrize('mode,ca_cert,libpq,expected', [
    ('disable', '/ca.pem', 170000, {'sslmode': 'disable'}),
    ('require', '/ca.pem', 170000, {'sslmode': 'require'}),
    ('verify-ca', '/ca.pem', 170000, {'sslmode': 'verify-ca', 'sslrootcert': '/ca.pem'}),
    ('verify-full', '/ca.pem', 150000, {'sslmode': 'verify-full', 'sslrootcert': '/ca.pem'}),
    ('verify-full', None, 160000, {'sslmode': 'verify-full', 'sslrootcert': 'system'}),
])
def test_postgres_ssl_mode_mapping(mode, ca_cert, libpq, expected):
    kwargs = postgres_connect_kwargs(login(ssl_mode=mode, ca_cert=ca_cert), libpq)
    assert {key: value for key, value in kwargs.items() if key.startswith('ssl')} == expected


@pytest.mark.parametrize('mode,libpq', [('verify-full', 150002), ('verify-ca', 170000)])
def test_postgres_verification_without_ca_cert_needs_system_store(mode, libpq):
    with pytest.raises(DbOptionsError, match='set ca_cert'):
        postgres_connect_kwargs(login(ssl_mode=mode), libpq)


def test_resolve_host_addresses():
    assert resolve_host_addresses('10.1.2.3', 5432) == ['10.1.2.3']
    assert resolve_host_addresses('::1', 5432) == ['::1']
    addresses = resolve_host_addresses('localhost', 5432)
    assert addresses and all(addr in ('127.0.0.1', '::1') for addr in addresses) and len(set(addresses)) == len(addresses)


# ---- MySQL / MariaDB SSL context ----

def test_mysql_disable_has_no_tls():
    assert mysql_ssl_context(login(ssl_mode='disable')) is None
    kwargs = mysql_connect_kwargs(login(ssl_mode='disable'), None)
    assert kwargs['ssl_disabled'] is True and 'ssl' not in kwargs


@pytest.mark.parametrize('mode,check_hostname,verify_mode', [
    ('require', False, ssl.CERT_NONE),
    ('verify-ca', False, ssl.CERT_REQUIRED),
    ('verify-full', True, ssl.CERT_REQUIRED),
])
def test_mysql_ssl_context_per_mode(tls_files, mode, check_hostname, verify_mode):
    ctx = mysql_ssl_context(login(ssl_mode=mode, ca_cert=tls_files['ca']))
    assert (ctx.check_hostname, ctx.verify_mode) == (check_hostname, verify_mode)
    assert ctx.endpoint_hostname == ENDPOINT
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    if mode != 'require':
        assert ctx.cert_store_stats()['x509_ca'] == 1


def test_mysql_verify_without_ca_cert_uses_system_store():
    ctx = mysql_ssl_context(login(ssl_mode='verify-full'))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_mysql_bad_ca_file_is_an_options_error(tmp_path):
    bad = tmp_path / 'bad.pem'
    bad.write_text('not a certificate')
    with pytest.raises(DbOptionsError, match='ca_cert'):
        mysql_ssl_context(login(ssl_mode='verify-full', ca_cert=str(bad)))


def test_mysql_connect_kwargs():
    ctx = mysql_ssl_context(login(ssl_mode='require'))
    kwargs = mysql_connect_kwargs(login(engine='mysql', host='127.0.0.1', port=13306, dbname=None), ctx)
    assert kwargs == dict(host='127.0.0.1', port=13306, user='admin', password=PASSWORD, database=None, charset='utf8mb4',
                          autocommit=False, connect_timeout=10, program_name='rdsiam.auth', ssl=ctx)


# A real TLS handshake on loopback proves the certificate is checked against the endpoint,
# not against login_host, which is what PyMySQL passes as server_hostname.

@pytest.fixture(scope='module')
def tls_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp('tls')
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'rdsiam test CA')])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ENDPOINT)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(ENDPOINT)]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = {'ca': directory / 'ca.pem', 'cert': directory / 'server.pem', 'key': directory / 'server.key'}
    files['ca'].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files['cert'].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    files['key'].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return {name: str(path) for name, path in files.items()}


def handshake(tls_files, client_ctx):
    """Connect to a one-shot loopback TLS server presenting a certificate for ENDPOINT, as PyMySQL would wrap it."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tls_files['cert'], tls_files['key'])
    listener = socket.create_server(('127.0.0.1', 0))
    seen = {}

    def serve():
        conn, _peer = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                seen['ok'] = True
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as sock:
            with client_ctx.wrap_socket(sock, server_hostname='127.0.0.1') as tls:
                return tls.server_hostname
    finally:
        thread.join(5)
        listener.close()


def test_verify_full_checks_endpoint_name_while_connecting_to_login_host(tls_files):
    ctx = mysql_ssl_context(login(engine='mysql', host='127.0.0.1', ssl_mode='verify-full', ca_cert=tls_files['ca']))
    assert handshake(tls_files, ctx) == ENDPOINT


def test_verify_full_rejects_a_certificate_for_another_endpoint(tls_files):
    ctx = mysql_ssl_context(login(engine='mysql', host='127.0.0.1', endpoint='other.abc.eu-central-1.rds.amazonaws.com',
                                  ssl_mode='verify-full', ca_cert=tls_files['ca']))
    with pytest.raises(ssl.SSLCertVerificationError, match='mismatch|match'):
        handshake(tls_files, ctx)


def test_plain_context_would_have_checked_login_host(tls_files):
    # Why the subclass exists: the stock context checks the name PyMySQL passes (login_host) and fails.
    ctx = ssl.create_default_context(cafile=tls_files['ca'])
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(tls_files, ctx)


# ---- connection errors never carry the password ----

def test_postgres_driver_error_is_scrubbed(monkeypatch):
    def failing_connect(**kwargs):
        raise psycopg2.OperationalError('FATAL: password authentication failed for user "admin" (password=%s)' % kwargs['password'])

    monkeypatch.setattr(psycopg2, 'connect', failing_connect)
    with pytest.raises(DbConnectError) as err:
        connect_postgres(login(host='127.0.0.1', port=15432, ca_cert='/etc/rds.pem'))
    message = str(err.value)
    assert PASSWORD not in message
    assert message.startswith("could not connect to postgres at 127.0.0.1:15432 (endpoint %s:5432) as user 'admin' "
                              "with ssl_mode=verify-full: FATAL: password authentication failed" % ENDPOINT)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_iam_token_fragments_are_scrubbed():
    token = ENDPOINT + ':5432/?Action=connect&DBUser=u&X-Amz-Signature=abcdef0123456789&X-Amz-Security-Token=FQoGZXIvYXdz'
    text = scrub_secret('rejected %s and a truncated copy %s' % (token, token[:-4]), token)
    assert 'abcdef0123456789' not in text and 'FQoGZXIv' not in text
    assert text.count('********') == 3  # the whole token once, then signature and session token of the copy


def test_mysql_driver_error_is_scrubbed(monkeypatch):
    def failing_connect(**kwargs):
        raise pymysql.err.OperationalError(1045, "Access denied for user 'admin' (using password: %s)" % kwargs['password'])

    monkeypatch.setattr(pymysql, 'connect', failing_connect)
    with pytest.raises(DbConnectError) as err:
        connect_mysql(login(engine='mariadb', port=3306, endpoint_port=3306, ssl_mode='require'))
    message = str(err.value)
    assert PASSWORD not in message and '********' in message
    assert message.startswith("could not connect to mariadb at %s:3306 as user 'admin' with ssl_mode=require: (1045," % ENDPOINT)


def test_certificate_failure_without_ca_cert_points_at_the_rds_bundle(monkeypatch):
    def failing_connect(**kwargs):
        raise psycopg2.OperationalError('SSL error: certificate verify failed')

    monkeypatch.setattr(psycopg2, 'connect', failing_connect)
    with pytest.raises(DbConnectError, match='set ca_cert to the RDS bundle'):
        connect_postgres(login())


def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_real_postgres_refused_connection():
    port = closed_port()
    with pytest.raises(DbConnectError) as err:
        connect_postgres(login(host='127.0.0.1', endpoint='127.0.0.1', port=port, endpoint_port=port, ssl_mode='disable'))
    assert 'could not connect to postgres at 127.0.0.1:%d' % port in str(err.value)
    assert PASSWORD not in str(err.value)


def test_real_mysql_refused_connection():
    port = closed_port()
    with pytest.raises(DbConnectError) as err:
        connect_mysql(login(engine='mysql', host='127.0.0.1', endpoint='127.0.0.1', port=port, endpoint_port=port, ssl_mode='require'))
    assert "could not connect to mysql at 127.0.0.1:%d as user 'admin' with ssl_mode=require" % port in str(err.value)
    assert PASSWORD not in str(err.value)


def test_unresolvable_login_host_is_a_connect_error():
    with pytest.raises(DbConnectError, match=r'could not connect to postgres at no-such-host\.invalid:5432 \(endpoint '):
        connect_postgres(login(host='no-such-host.invalid', ca_cert='/etc/rds.pem'))


# ---- warnings ----

def test_tls_warning():
    assert tls_warning(login()) is None
    for mode in ('disable', 'require', 'verify-ca'):
        text = tls_warning(login(ssl_mode=mode))
        assert text.startswith('ssl_mode=%s: ' % mode) and ENDPOINT in text and 'Set ssl_mode=verify-full' in text
        assert PASSWORD not in text


# ---- which engine is at the other end ----

@pytest.mark.parametrize("reply, family", [
    (b"S", "postgres"),
    (b"N", "postgres"),
    (b"\x5b\x00\x00\x00\x0a5.5.5-10.11.9-MariaDB\x00", "mysql"),
    (b"\x4a\x00\x00\x00\x0a8.0.39\x00", "mysql"),
])
def test_first_reply_tells_postgres_from_mysql(reply, family):
    assert classify_first_reply(reply, "db", 1) == family


def test_an_unknown_first_reply_asks_for_the_engine():
    with pytest.raises(DbOptionsError, match="set engine"):
        classify_first_reply(b"HTTP/1.1 400", "db", 80)


@pytest.mark.parametrize("version, dialect", [("10.11.9-MariaDB-0+deb12u1", "mariadb"), ("5.5.5-10.6.1-MariaDB", "mariadb"),
                                              ("8.0.39", "mysql"), ("8.0.mysql_aurora.3.05.2", "mysql")])
def test_mysql_and_mariadb_are_told_apart_by_version_string(version, dialect):
    assert mysql_dialect(version) == dialect


@pytest.mark.parametrize("requested, version, warning", [
    ("mysql", "10.11.9-MariaDB", "engine is mysql but the server says it is mariadb (version 10.11.9-MariaDB): the SQL follows the server"),
    ("mariadb", "8.0.39", "engine is mariadb but the server says it is mysql (version 8.0.39): the SQL follows the server"),
    ("mariadb", "10.11.9-MariaDB", None), ("mysql", "8.0.39", None), ("auto", "10.11.9-MariaDB", None), ("postgres", "8.0.39", None),
])
def test_an_engine_the_version_string_contradicts_is_a_warning(requested, version, warning):
    assert dialect_mismatch(requested, version) == warning
