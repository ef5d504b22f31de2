# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Database admin login options and one connector each for psycopg2 (PostgreSQL) and PyMySQL
# (MySQL/MariaDB). Works on a plain mapping of option values like the AWS helper. The drivers
# are imported inside the connectors only, so planning code and unit tests never need them.

import collections
import ipaddress
import json
import os
import re
import socket
import ssl
import struct

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import aws_call, aws_client, region_from_arn, resolve_credentials
from ansible_collections.rdsiam.auth.plugins.module_utils._token import TokenTargetError, generate_db_auth_token, signing_region
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError, import_library
from ansible_collections.rdsiam.auth.plugins.module_utils._target_dict import dialect

SSL_MODES = ('disable', 'require', 'verify-ca', 'verify-full')
APPLICATION_NAME = 'rdsiam.auth'
DEFAULT_PORTS = {'postgres': 5432, 'mysql': 3306, 'mariadb': 3306}
DEFAULT_DBNAMES = {'postgres': 'postgres'}
# RDS engine names map onto the driver family; callers may pass either.
# libpq learnt sslrootcert=system in PostgreSQL 16.
_LIBPQ_SYSTEM_ROOTCERT = 160000
_TLS_FAILURE_RE = re.compile(r'certificate verify failed|SSL error: (?!.*does not match)', re.IGNORECASE)
_RDS_CA_HINT = ('RDS instance and cluster certificates come from the Amazon RDS CA, which system trust stores do not include: '
                'set ca_cert to the RDS bundle from https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem')

DB_ARGUMENT_SPEC = dict(
    login_host=dict(type='str'),
    login_port=dict(type='int'),
    login_db=dict(type='str'),
    login_user=dict(type='str'),
    login_password=dict(type='str', no_log=True),
    # The ARN or name of a secret, not the secret itself.
    login_secret=dict(type='str', no_log=False),
    login_iam=dict(type='bool', default=False),
    endpoint=dict(type='str'),
    endpoint_port=dict(type='int'),
    ca_cert=dict(type='path', aliases=['ssl_rootcert', 'ca_file']),
    ssl_mode=dict(type='str', default='verify-full', choices=list(SSL_MODES)),
    connect_timeout=dict(type='int', default=10),
)

# login_iam is not in mutually_exclusive: Ansible counts an explicit "login_iam: false" as set,
# which would break roles that pass every option through. check_db_options covers it by value.
DB_ARGUMENT_KWARGS = dict(
    mutually_exclusive=[('login_password', 'login_secret')],
    required_if=[('login_iam', True, ('login_user',))],
)


class DbOptionsError(RdsIamError):
    """The database login options are invalid or contradict each other."""


class DbConnectError(RdsIamError):
    """Opening the database connection failed; the message never holds the password or token.
    detail is the driver's own (scrubbed) text, for callers that classify the cause."""

    def __init__(self, message, detail=None):
        super().__init__(message)
        self.detail = detail


_DB_LOGIN_FIELDS = ('engine', 'host', 'port', 'dbname', 'user', 'password', 'auth', 'endpoint', 'endpoint_port',
                    'ssl_mode', 'ca_cert', 'connect_timeout')


class DbLogin(collections.namedtuple('DbLogin', _DB_LOGIN_FIELDS)):
    """Everything needed to open one admin connection. host/port is where the TCP connection goes;
    endpoint/endpoint_port is the real server the token is signed for and the certificate is checked against."""

    __slots__ = ()

    def __repr__(self):
        shown = self._replace(password=None if self.password is None else '********')
        return 'DbLogin(%s)' % ', '.join('%s=%r' % (name, getattr(shown, name)) for name in self._fields)

    __str__ = __repr__


def known_dialect(engine):
    """dialect(engine), or DbOptionsError naming the engine when it has none."""
    name = dialect(engine)
    if not name:
        raise DbOptionsError("engine '%s' is not supported: use postgres, mysql or mariadb (or an aurora-* name)" % engine)
    return name


def check_db_options(options):
    """Raise DbOptionsError for contradictory DB login options (lookups get no AnsibleModule checks, so all live here)."""
    problems = []
    sources = [name for name in ('login_password', 'login_secret', 'login_iam') if options.get(name)]
    if len(sources) > 1:
        problems.append('%s are mutually exclusive: choose one way for the admin to log in' % ' and '.join(sources))
    ssl_mode = options.get('ssl_mode') or 'verify-full'
    if ssl_mode not in SSL_MODES:
        problems.append("ssl_mode '%s' is not one of %s" % (ssl_mode, ', '.join(SSL_MODES)))
    if options.get('login_iam') and ssl_mode == 'disable':
        problems.append('login_iam needs TLS (RDS refuses IAM logins without it and the token would travel in clear): '
                        'set ssl_mode to verify-full (recommended), verify-ca or require')
    if not (options.get('login_host') or options.get('endpoint')):
        problems.append('neither login_host nor endpoint is set: set endpoint to the RDS endpoint host name')
    problems.extend(_check_numbers(options))
    if options.get('ca_cert') and not os.path.isfile(options['ca_cert']):
        problems.append("ca_cert '%s' is not a readable file: set it to the path of the RDS CA bundle (PEM)" % options['ca_cert'])
    if problems:
        raise DbOptionsError('; '.join(problems))


def _check_numbers(options):
    problems = []
    for name in ('login_port', 'endpoint_port'):
        if options.get(name) is not None and not 0 < options[name] < 65536:
            problems.append('%s %s is not a TCP port: use 1 to 65535' % (name, options[name]))
    if options.get('connect_timeout') is not None and options['connect_timeout'] <= 0:
        problems.append('connect_timeout must be a positive number of seconds')
    return problems


def resolve_db_login(options, engine, aws_options=None, credentials=None, aws=None):
    """Turn the DB options into a DbLogin: defaults by engine, and the password from the option, the secret or an IAM token.
    credentials: AWS credentials from iam_signing_credentials(), so a caller minting many tokens resolves them once.
    aws: a SharedAws, so threads working on many targets share one client and one set of credentials."""
    check_db_options(options)
    engine = known_dialect(engine)
    host = options.get('login_host') or options['endpoint']
    endpoint = options.get('endpoint') or host
    port = options.get('login_port') or DEFAULT_PORTS[engine]
    endpoint_port = options.get('endpoint_port') or port
    user, password, auth = _login_credentials(options, endpoint, endpoint_port, aws_options or {}, credentials, aws)
    return DbLogin(engine=engine, host=host, port=port, dbname=options.get('login_db') or DEFAULT_DBNAMES.get(engine),
                   user=user, password=password, auth=auth, endpoint=endpoint, endpoint_port=endpoint_port,
                   ssl_mode=options.get('ssl_mode') or 'verify-full', ca_cert=options.get('ca_cert'),
                   connect_timeout=options.get('connect_timeout') or 10)


def _login_credentials(options, endpoint, endpoint_port, aws_options, credentials=None, aws=None):
    """(user, password, how) from exactly one source; login_user is required unless the secret names the user."""
    user = options.get('login_user')
    if options.get('login_secret'):
        secret_user, password = read_login_secret(aws_options, options['login_secret'], aws)
        return user or secret_user, password, 'secret'
    if not user:
        raise DbOptionsError('login_user is not set: name the database user the admin connection logs in as '
                             '(or set login_secret to a secret holding username and password)')
    if options.get('login_iam'):
        if credentials is None and aws is not None:
            credentials = iam_signing_credentials(aws_options, endpoint, aws)
        return user, generate_iam_token(aws_options, endpoint, endpoint_port, user, credentials), 'iam'
    if options.get('login_password') is not None:
        return user, options['login_password'], 'password'
    return user, None, 'none'


def read_login_secret(aws_options, secret_id, aws=None):
    """(username, password) from a Secrets Manager secret shaped like the RDS-managed master secret; aws: a SharedAws."""
    options = dict(aws_options, region=aws_options.get('region') or region_from_arn(secret_id))
    client = aws.client(options, 'secretsmanager') if aws is not None else aws_client(options, 'secretsmanager')
    response = aws_call(client, 'get_secret_value', secret_id, SecretId=secret_id)
    try:
        data = json.loads(response.get('SecretString') or '')
    except ValueError:
        data = None
    if not (isinstance(data, dict) and isinstance(data.get('username'), str) and isinstance(data.get('password'), str)):
        # The decode error is not chained: it carries the secret text.
        raise DbOptionsError("login_secret '%s' does not hold a JSON object with string username and password "
                             '(the shape of the RDS-managed master secret): point login_secret at such a secret' % secret_id) from None
    return data['username'], data['password']


def iam_signing_region(aws_options, hostname):
    """The region IAM tokens for hostname are signed for: the one in the RDS host name (a token signed for another region
    never works), else the region from the AWS options."""
    try:
        return signing_region(hostname, aws_options.get('region'), region_is_explicit=False)
    except TokenTargetError as exc:
        raise DbOptionsError('no region to sign the IAM token: %s' % exc) from None


def iam_signing_credentials(aws_options, hostname, aws=None):
    """The AWS credentials that sign IAM tokens for hostname (STS, if used, is asked in the token's region); with aws, a
    SharedAws, resolved once for all the threads that sign for the same options and region."""
    options = dict(aws_options, region=iam_signing_region(aws_options, hostname))
    return aws.credentials(options) if aws is not None else resolve_credentials(options)


def generate_iam_token(aws_options, hostname, port, user, credentials=None):
    """A 15-minute IAM auth token for user@hostname:port, signed for iam_signing_region() with the given credentials,
    or with iam_signing_credentials() when none are given."""
    region = iam_signing_region(aws_options, hostname)
    if credentials is None:
        credentials = resolve_credentials(dict(aws_options, region=region))
    return generate_db_auth_token(credentials.access_key, credentials.secret_key, credentials.session_token, hostname, port, user, region)


def tls_warning(login):
    """The warning to show when certificate or host name verification is off, or None for verify-full."""
    target = '%s:%s' % (login.endpoint, login.endpoint_port)
    risks = {
        'disable': 'the connection to %s is not encrypted: the password or token travels in clear text' % target,
        'require': 'the server certificate of %s is not verified: a man in the middle can read the password or token' % target,
        'verify-ca': 'the certificate of %s is checked against the CA but not against the host name' % target,
    }
    if login.ssl_mode not in risks:
        return None
    return 'ssl_mode=%s: %s. Set ssl_mode=verify-full and ca_cert to the RDS CA bundle.' % (login.ssl_mode, risks[login.ssl_mode])


def scrub_secret(text, secret):
    """Text with the secret (and any SigV4 signature or session token fragment) masked, for driver error messages."""
    text = str(text)
    if secret:
        for form in (secret, secret.replace('\\', '\\\\').replace("'", "\\'")):
            text = text.replace(form, '********')
    return re.sub(r'(X-Amz-(?:Signature|Security-Token)=)[^&\s\'"]+', r'\1********', text)


def connect_error(login, cause):
    """DbConnectError for a driver exception: the full message, and the driver's text alone as detail (both scrubbed)."""
    return DbConnectError(connect_error_message(login, cause), detail=scrub_secret(cause, login.password).strip())


def connect_error_message(login, cause):
    target = '%s:%s' % (login.host, login.port)
    if (login.endpoint, login.endpoint_port) != (login.host, login.port):
        target += ' (endpoint %s:%s)' % (login.endpoint, login.endpoint_port)
    detail = scrub_secret(cause, login.password).strip()
    if _TLS_FAILURE_RE.search(detail):
        # Driver texts for a failed chain check vary ("certificate verify failed", "SSL error: ..."): name the fix.
        detail += '. ' + (_RDS_CA_HINT if not login.ca_cert else
                          "check that ca_cert '%s' holds the CA that signed the server certificate" % login.ca_cert)
    return "could not connect to %s at %s as user '%s' with ssl_mode=%s: %s" % (login.engine, target, login.user, login.ssl_mode, detail)


# ---- PostgreSQL (psycopg2) ----

def resolve_host_addresses(host, port):
    """IP addresses for the TCP connection, so libpq can connect there while verifying the certificate for the endpoint."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def postgres_connect_kwargs(login, libpq_version, resolve=resolve_host_addresses):
    """psycopg2.connect() keyword arguments for a DbLogin (pure apart from resolving login_host)."""
    kwargs = dict(host=login.endpoint, port=login.port, dbname=login.dbname, user=login.user,
                  connect_timeout=login.connect_timeout, application_name=APPLICATION_NAME)
    if login.password is not None:
        kwargs['password'] = login.password
    if login.host != login.endpoint:
        # host names the certificate (and SNI); hostaddr says where to connect. libpq wants one host per address.
        addresses = resolve(login.host, login.port)
        kwargs.update(host=','.join([login.endpoint] * len(addresses)), hostaddr=','.join(addresses))
    kwargs.update(postgres_tls_kwargs(login, libpq_version))
    return kwargs


def postgres_tls_kwargs(login, libpq_version):
    """libpq sslmode/sslrootcert for ssl_mode; no 'allow'/'prefer', which fall back to plaintext silently."""
    if login.ssl_mode in ('disable', 'require'):
        return dict(sslmode=login.ssl_mode)
    if login.ca_cert:
        return dict(sslmode=login.ssl_mode, sslrootcert=login.ca_cert)
    # libpq refuses sslrootcert=system with anything weaker than verify-full.
    if login.ssl_mode == 'verify-full' and libpq_version >= _LIBPQ_SYSTEM_ROOTCERT:
        return dict(sslmode='verify-full', sslrootcert='system')
    raise DbOptionsError('ssl_mode=%s without ca_cert needs libpq 16 or later with verify-full (this libpq is %s): '
                         'set ca_cert to the RDS CA bundle' % (login.ssl_mode, libpq_version))


def connect_postgres(login):
    """An open psycopg2 connection (autocommit off) or DbConnectError."""
    psycopg2 = import_library('psycopg2', 'psycopg2-binary', reason='to connect to PostgreSQL')
    try:
        kwargs = postgres_connect_kwargs(login, psycopg2.__libpq_version__)
        conn = psycopg2.connect(**kwargs)
    except (psycopg2.Error, OSError) as exc:
        # Not chained: the driver's text may hold the password; only the scrubbed copy leaves.
        raise connect_error(login, exc) from None
    conn.autocommit = False
    return conn


# ---- MySQL / MariaDB (PyMySQL) ----

class _EndpointSSLContext(ssl.SSLContext):
    """Checks the certificate (and sends SNI) for the RDS endpoint although PyMySQL connects to login_host:
    PyMySQL calls wrap_socket(sock, server_hostname=<login_host>), so the name is replaced here."""

    endpoint_hostname = None

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, suppress_ragged_eofs=True,
                    server_hostname=None, session=None):
        del server_hostname  # the TCP peer's name; the certificate must match the endpoint instead
        return super().wrap_socket(sock, server_side=server_side, do_handshake_on_connect=do_handshake_on_connect,
                                   suppress_ragged_eofs=suppress_ragged_eofs, server_hostname=self.endpoint_hostname, session=session)


def mysql_ssl_context(login):
    """The SSLContext for ssl_mode, or None for 'disable'. PyMySQL alone would encrypt without verifying."""
    if login.ssl_mode == 'disable':
        return None
    ctx = _EndpointSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.endpoint_hostname = login.endpoint
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if login.ssl_mode == 'require':
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        if login.ca_cert:
            ctx.load_verify_locations(cafile=login.ca_cert)
        else:
            ctx.load_default_certs()
    except (OSError, ssl.SSLError) as exc:
        raise DbOptionsError("ca_cert '%s' cannot be loaded (%s): set it to a PEM CA bundle" % (login.ca_cert, exc)) from exc
    ctx.check_hostname = login.ssl_mode == 'verify-full'
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def mysql_connect_kwargs(login, ssl_context):
    """pymysql.connect() keyword arguments. IAM tokens go through the mysql_clear_password plugin, hence TLS for them."""
    kwargs = dict(host=login.host, port=login.port, user=login.user, password=login.password or '', database=login.dbname,
                  charset='utf8mb4', autocommit=False, connect_timeout=login.connect_timeout, program_name=APPLICATION_NAME)
    if ssl_context is None:
        kwargs['ssl_disabled'] = True
    else:
        kwargs['ssl'] = ssl_context
    return kwargs


def connect_mysql(login):
    """An open PyMySQL connection (autocommit off, utf8mb4) or DbConnectError."""
    pymysql = import_library('pymysql', 'PyMySQL', reason='to connect to MySQL or MariaDB')
    kwargs = mysql_connect_kwargs(login, mysql_ssl_context(login))
    try:
        return pymysql.connect(**kwargs)
    except (pymysql.err.MySQLError, OSError) as exc:
        raise connect_error(login, exc) from None


def connect_db(login):
    """Connect with the driver for login.engine."""
    return connect_postgres(login) if login.engine == 'postgres' else connect_mysql(login)


# ---- which engine is at the other end ----

def driver_for(options):
    """'postgres' or 'mysql': the driver for options['engine'] (a dialect or RDS engine name); with engine auto (or none),
    the server at login_host/endpoint is asked, without sending credentials."""
    engine = options.get('engine') or 'auto'
    if engine != 'auto':
        return known_dialect(engine).replace('mariadb', 'mysql')
    host = options.get('login_host') or options.get('endpoint')
    port = options.get('login_port') or options.get('endpoint_port')
    if not (host and port):
        raise DbOptionsError('engine auto needs login_host (or endpoint) and login_port (or endpoint_port) to detect the engine: '
                             'set them, or set engine')
    return probe_engine_family(host, port, options.get('connect_timeout') or 10)


def probe_engine_family(host, port, timeout):
    """'postgres' or 'mysql' for the server at host:port, from its first reply; sends no credentials.

    A MySQL/MariaDB server greets first; a PostgreSQL server answers an SSLRequest with one byte.
    """
    ssl_request = struct.pack('!ii', 8, 80877103)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(ssl_request)
            reply = sock.recv(64)
    except OSError as exc:
        raise DbOptionsError('engine auto: could not reach %s:%s to detect the database engine (%s): '
                             'check login_host/login_port, or set engine' % (host, port, exc)) from None
    return classify_first_reply(reply, host, port)


def classify_first_reply(reply, host, port):
    if reply in (b'S', b'N'):
        return 'postgres'
    if len(reply) > 5 and reply[3] == 0 and reply[4] in (9, 10):
        return 'mysql'
    raise DbOptionsError('engine auto: the server at %s:%s answered neither like PostgreSQL nor like MySQL/MariaDB: '
                         'set engine to postgres, mysql or mariadb' % (host, port))


def mysql_dialect(server_version):
    """'mariadb' or 'mysql' from the server's version string (MariaDB says so, e.g. 10.11.9-MariaDB)."""
    return 'mariadb' if 'mariadb' in (server_version or '').lower() else 'mysql'


def dialect_mismatch(requested, server_version):
    """The warning when the engine option says mysql or mariadb and the server's version string says the other, else None."""
    dialect = mysql_dialect(server_version)
    if requested in ('mysql', 'mariadb') and requested != dialect:
        return 'engine is %s but the server says it is %s (version %s): the SQL follows the server' % (requested, dialect, server_version)
    return None
