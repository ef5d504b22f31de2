# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# IAM database auth tokens: a SigV4 query-string presigner for rds-db:connect that produces
# exactly what botocore's generate_db_auth_token produces for the same credentials, endpoint,
# port, user, region and clock (tests/unit/plugins/module_utils/test_token.py checks this byte for byte).
# It needs only hashlib and hmac: the lookup mints a token in a freshly forked Ansible worker
# without importing botocore (about 100 ms), and the HMAC chain for the signing key runs once
# per (secret, day, region). The region and target rules are here too, so that path imports
# nothing else of the collection.

import collections
import datetime
import hashlib
import hmac
import re
from urllib.parse import quote

from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError

TOKEN_LIFETIME_SECONDS = 900
SIGNING_SERVICE = 'rds-db'
_ALGORITHM = 'AWS4-HMAC-SHA256'
_TIMESTAMP_FORMAT = '%Y%m%dT%H%M%SZ'
_EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b'').hexdigest()
# botocore.utils.percent_encode: RFC 3986 unreserved characters stay, everything else is %XX of its UTF-8 bytes.
_UNRESERVED = '-_.~'

_SIGNING_KEYS = {}
_MAX_SIGNING_KEYS = 64
_ENCODED = {}
_MAX_ENCODED = 256


class Credentials(collections.namedtuple('Credentials', 'access_key secret_key session_token expiration source')):
    """Frozen AWS credentials for signing: expiration is an aware datetime or None; source says where they came from."""

    __slots__ = ()

    def __repr__(self):
        return 'Credentials(access_key=%r, source=%r, expiration=%r)' % (self.access_key, self.source, self.expiration)

    __str__ = __repr__

    @classmethod
    def from_options(cls, options):
        """The access_key/secret_key (and session_token) options as Credentials, or None when they are not both set."""
        if options.get('access_key') and options.get('secret_key'):
            return cls(options['access_key'], options['secret_key'], options.get('session_token') or None, None, 'options')
        return None


def percent_encode(value):
    """value percent-encoded the way botocore encodes query parameters."""
    encoded = _ENCODED.get(value)
    if encoded is None:
        encoded = quote(value.encode('utf-8'), safe=_UNRESERVED)
        if len(_ENCODED) >= _MAX_ENCODED:
            _ENCODED.clear()
        _ENCODED[value] = encoded
    return encoded


def signing_key(secret_key, date, region, service=SIGNING_SERVICE):
    """The SigV4 signing key for one day (YYYYMMDD), region and service; cached, since it only changes daily."""
    cache_key = (secret_key, date, region, service)
    key = _SIGNING_KEYS.get(cache_key)
    if key is None:
        key = ('AWS4' + secret_key).encode('utf-8')
        for part in (date, region, service, 'aws4_request'):
            key = hmac.digest(key, part.encode('utf-8'), 'sha256')
        if len(_SIGNING_KEYS) >= _MAX_SIGNING_KEYS:
            _SIGNING_KEYS.clear()
        _SIGNING_KEYS[cache_key] = key
    return key


def host_header(hostname, port):
    """The signed Host value botocore derives from https://hostname:port: lower case, and no port when it is 443."""
    host = hostname.lower()
    return host if int(port) == 443 else '%s:%d' % (host, int(port))


def generate_db_auth_token(access_key, secret_key, session_token, hostname, port, user, region, now=None):
    """A token for user@hostname:port in region, valid for 15 minutes from now (a UTC datetime, default: the clock).

    Same bytes as botocore's RDS client generate_db_auth_token(DBHostname=hostname, Port=port, DBUsername=user,
    Region=region) with these credentials at this time. session_token is None (or empty) for long-term keys.
    """
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    timestamp = now.strftime(_TIMESTAMP_FORMAT)
    date = timestamp[:8]
    scope = '%s/%s/%s/aws4_request' % (date, region, SIGNING_SERVICE)
    operation = 'Action=connect&DBUser=%s' % percent_encode(user)
    auth = '&'.join((
        'X-Amz-Algorithm=' + _ALGORITHM,
        'X-Amz-Credential=' + percent_encode('%s/%s' % (access_key, scope)),
        'X-Amz-Date=' + timestamp,
        'X-Amz-Expires=%d' % TOKEN_LIFETIME_SECONDS,
    ))
    # botocore puts the session token after SignedHeaders in the URL, but the canonical query string is sorted,
    # where X-Amz-Security-Token comes before X-Amz-SignedHeaders.
    if session_token:
        security = '&X-Amz-Security-Token=' + percent_encode(session_token)
        url_query = '%s&%s&X-Amz-SignedHeaders=host%s' % (operation, auth, security)
        canonical_query = '%s&%s%s&X-Amz-SignedHeaders=host' % (operation, auth, security)
    else:
        url_query = canonical_query = '%s&%s&X-Amz-SignedHeaders=host' % (operation, auth)
    canonical_request = 'GET\n/\n%s\nhost:%s\n\nhost\n%s' % (canonical_query, host_header(hostname, port), _EMPTY_PAYLOAD_SHA256)
    string_to_sign = '%s\n%s\n%s\n%s' % (_ALGORITHM, timestamp, scope, hashlib.sha256(canonical_request.encode('utf-8')).hexdigest())
    signature = hmac.new(signing_key(secret_key, date, region), string_to_sign.encode('utf-8'), hashlib.sha256).hexdigest()
    return '%s:%s/?%s&X-Amz-Signature=%s' % (hostname, port, url_query, signature)


def token_expiry(now=None, credentials_expiry=None):
    """When a token minted now stops working: 15 minutes, or earlier if the temporary credentials expire first."""
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    expiry = now + datetime.timedelta(seconds=TOKEN_LIFETIME_SECONDS)
    if credentials_expiry is not None and credentials_expiry < expiry:
        expiry = credentials_expiry
    return expiry


# ---- the region a token is signed for ----

# Plausible region names: us-east-1, eu-central-2, cn-north-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1.
_REGION_PATTERN = r'[a-z]{2,4}(?:-[a-z]+)+-\d{1,2}'
REGION_RE = re.compile(r'^%s$' % _REGION_PATTERN)
# RDS endpoint DNS suffixes of every partition (botocore's partitions.json: aws, aws-us-gov, aws-cn, aws-eusc, aws-iso*).
RDS_DNS_SUFFIXES = ('amazonaws.com', 'amazonaws.com.cn', 'amazonaws.eu', 'c2s.ic.gov', 'sc2s.sgov.gov', 'cloud.adc-e.uk',
                    'csp.hci.ic.gov')
# Most partitions name endpoints ID.HASH.REGION.rds.SUFFIX; China (ID.HASH.rds.cn-north-1.amazonaws.com.cn, the older
# REGION.rds form still resolves) and the ISO partitions put rds first: ID.HASH.rds.REGION.SUFFIX.
_RDS_HOSTNAME_RE = re.compile(r'\.(?:(%s)\.rds|rds\.(%s))\.(?:%s)\.?$'
                              % (_REGION_PATTERN, _REGION_PATTERN, '|'.join(re.escape(suffix) for suffix in RDS_DNS_SUFFIXES)))


class TokenTargetError(RdsIamError):
    """The endpoint, port, user or region a token is asked for cannot work."""


def region_is_plausible(region):
    return bool(REGION_RE.match(region or ''))


def region_from_rds_hostname(hostname):
    """The region in an RDS/Aurora/Proxy endpoint (``*.REGION.rds.amazonaws.com``, ``*.rds.REGION.amazonaws.com.cn``,
    GovCloud, ISO), or None."""
    match = _RDS_HOSTNAME_RE.search((hostname or '').lower())
    return (match.group(1) or match.group(2)) if match else None


def signing_region(hostname, region=None, region_is_explicit=True):
    """The region an IAM token for hostname must be signed for: the one in the RDS host name, else the given one.

    An explicit region that contradicts the host name is an error; one that merely came from the environment
    (AWS_REGION while working on another region's databases) gives way to the host name.
    """
    from_host = region_from_rds_hostname(hostname)
    if from_host:
        if region and region != from_host and region_is_explicit:
            raise TokenTargetError("region '%s' contradicts endpoint '%s', which is in %s: a token signed for another region never "
                                   'works; remove region or set it to %s' % (region, hostname, from_host, from_host))
        return from_host
    if not region:
        raise TokenTargetError("endpoint '%s' is not an RDS host name (*.REGION.rds.amazonaws.com), so it names no region: set "
                               'region. If it is a custom DNS name (CNAME), note that RDS checks the token against the instance, '
                               'cluster or proxy endpoint it was signed for: set endpoint to the real RDS endpoint' % hostname)
    if not region_is_plausible(region):
        raise TokenTargetError("region '%s' is not an AWS region name: use a name like us-east-1, eu-central-2, cn-north-1 or "
                               'us-gov-west-1' % region)
    return region


# ---- what a token can be minted for ----
# Checked before signing: a token for a name the database cannot have, or for a URL instead of a host,
# is signed fine and then refused at login with no hint why.

_HOST_LABEL_RE = re.compile(r'^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$')


def endpoint_problem(endpoint):
    """Why endpoint is not a host name a token can be signed for (None if it is)."""
    if not isinstance(endpoint, str) or not endpoint:
        return 'endpoint is not set: give the RDS instance, cluster or proxy endpoint host name'
    if '://' in endpoint:
        return "endpoint %s has a scheme: give only the host name, without '%s://'" % (_shown(endpoint), endpoint.split('://')[0])
    if any(char.isspace() for char in endpoint):
        return 'endpoint %s contains white space: give only the host name' % _shown(endpoint)
    if '/' in endpoint or '?' in endpoint or '#' in endpoint:
        return 'endpoint %s has a path or query: give only the host name' % _shown(endpoint)
    if '@' in endpoint or ':' in endpoint:
        return ("endpoint %s is not a host name (':' or '@' in it): give the port in port and the user in db_user; "
                'IPv6 addresses are not supported, use the endpoint host name' % _shown(endpoint))
    labels = endpoint[:-1].split('.') if endpoint.endswith('.') else endpoint.split('.')
    if len(endpoint) > 253 or not all(_HOST_LABEL_RE.match(label) for label in labels):
        return ('endpoint %s is not a valid DNS host name: use letters, digits and hyphens, labels of 1 to 63 characters'
                % _shown(endpoint))
    return None


def port_problem(port):
    """Why port is not a TCP port (None if it is)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        return 'port %s is not a TCP port: use 1 to 65535 (5432 for PostgreSQL, 3306 for MySQL and MariaDB)' % _shown(port)
    return None


def parse_target(term):
    """(user or None, endpoint, port or None) from 'db_user@endpoint:port' ('db_user@' and ':port' optional).

    The user is what comes before the last '@' (user names may contain '@'; host names cannot).
    """
    if '://' in term:
        return None, term, None
    user, at, rest = term.rpartition('@')
    host, colon, port = rest.rpartition(':') if ':' in rest else (rest, '', '')
    if colon:
        if not port.isdigit():
            raise ValueError("the port in '%s' is not a number: write db_user@endpoint:port, for example alice@db1.abc.us-east-1"
                             '.rds.amazonaws.com:5432' % term)
        return (user if at else None), host, int(port)
    return (user if at else None), host, None


def _shown(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'
