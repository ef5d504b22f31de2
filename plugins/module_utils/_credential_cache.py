# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Assumed-role credentials cached between tasks, the way the AWS CLI caches them in
# ~/.aws/cli/cache: one JSON file per (role, session name, external id, session tags, source
# identity, STS endpoint), mode 0600 in a 0700 directory under the user's cache directory.
# Ansible runs each task in a new worker process, so without this every task would call STS
# (and import botocore) again. Only AWS credentials are stored here; tokens are never written.

import datetime
import getpass
import hashlib
import json
import os
import re
import stat
import tempfile

from ansible_collections.rdsiam.auth.plugins.module_utils._token import TOKEN_LIFETIME_SECONDS, Credentials

CACHE_DIR_NAME = 'rdsiam.auth'
# Cached credentials are used only while they stay valid at least this long: a token dies with the credentials that
# signed it, so anything shorter would hand out "15-minute" tokens that stop working after a few minutes. The AWS CLI
# refreshes assumed-role credentials 15 minutes before they expire too.
REFRESH_MARGIN_SECONDS = TOKEN_LIFETIME_SECONDS
_FIELDS = ('AccessKeyId', 'SecretAccessKey', 'SessionToken')
_SESSION_NAME_BAD_CHARS_RE = re.compile(r'[^\w+=,.@-]')


# The AssumeRole request is built here, next to the key derived from it, so that a lookup with a warm cache
# needs neither botocore nor the rest of the AWS helper.
def default_role_session_name(user=None):
    """rdsiam-auth-<local user>, limited to the characters and length STS accepts, so CloudTrail shows who ran it."""
    if user is None:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary uid in a container
            user = 'unknown'
    return _SESSION_NAME_BAD_CHARS_RE.sub('-', 'rdsiam-auth-' + user)[:64]


def assume_role_params(options):
    """The STS AssumeRole request for the options (pure, so it is testable without AWS)."""
    params = dict(RoleArn=options['assume_role_arn'],
                  RoleSessionName=options.get('role_session_name') or default_role_session_name())
    if options.get('external_id'):
        params['ExternalId'] = options['external_id']
    if options.get('session_tags'):
        params['Tags'] = [{'Key': key, 'Value': value} for key, value in sorted(options['session_tags'].items())]
    return params


def cache_dir(environ=None):
    """$XDG_CACHE_HOME/rdsiam.auth, or ~/.cache/rdsiam.auth."""
    environ = os.environ if environ is None else environ
    base = environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, CACHE_DIR_NAME)


def cache_key(assume_role_params, source_identity, endpoint_url=None):
    """A file name for the AssumeRole request made with the source identity (an access key id); holds no secret."""
    material = json.dumps({
        'role_arn': assume_role_params.get('RoleArn'),
        'session_name': assume_role_params.get('RoleSessionName'),
        'external_id': assume_role_params.get('ExternalId'),
        'tags': sorted((tag['Key'], tag['Value']) for tag in assume_role_params.get('Tags') or []),
        'source': source_identity,
        'endpoint_url': endpoint_url,
    }, sort_keys=True)
    return hashlib.sha256(material.encode('utf-8')).hexdigest()


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _path(key, directory):
    return os.path.join(directory or cache_dir(), 'assume-role-%s.json' % key)


def _is_private_file(handle):
    """Only trust a file that this user owns and nobody else can read or write."""
    info = os.fstat(handle.fileno())
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077


def load(key, directory=None, now=None):
    """Cached credentials ({AccessKeyId, SecretAccessKey, SessionToken, Expiration: datetime}) still valid for the margin, or None."""
    try:
        with open(_path(key, directory), 'r', encoding='utf-8') as handle:
            if not _is_private_file(handle):
                return None
            data = json.load(handle)
        expiration = datetime.datetime.fromisoformat(data['Expiration'])
    except (OSError, ValueError, KeyError, TypeError):
        # Missing, unreadable or corrupt: behave as a cache miss; the next save replaces it.
        return None
    if expiration.tzinfo is None or not all(isinstance(data.get(name), str) and data[name] for name in _FIELDS):
        return None
    if (expiration - (now or _utcnow())).total_seconds() < REFRESH_MARGIN_SECONDS:
        return None
    return dict({name: data[name] for name in _FIELDS}, Expiration=expiration)


def cached_credentials(options, source_access_key):
    """(key, Credentials or None): the cached credentials for assuming options' role with that source key, if fresh."""
    key = cache_key(assume_role_params(options), source_access_key, options.get('endpoint_url'))
    cached = load(key) if options.get('credential_cache') is not False else None
    return key, (sts_credentials(cached, 'assume-role (cached)') if cached else None)


def sts_credentials(credentials, source):
    """Credentials for signing from an STS Credentials mapping (AccessKeyId, SecretAccessKey, SessionToken, Expiration)."""
    expiration = credentials.get('Expiration')
    if not isinstance(expiration, datetime.datetime):
        expiration = None
    return Credentials(credentials['AccessKeyId'], credentials['SecretAccessKey'], credentials.get('SessionToken'), expiration, source)


def save(key, credentials, directory=None):
    """Write STS credentials atomically as a 0600 file; a failure to write only costs the next task an STS call."""
    directory = directory or cache_dir()
    data = {name: credentials[name] for name in _FIELDS}
    expiration = credentials['Expiration']
    data['Expiration'] = expiration.isoformat() if hasattr(expiration, 'isoformat') else str(expiration)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        # mkstemp creates the file 0600, so the secret is never readable by others, not even briefly.
        fd, temporary = tempfile.mkstemp(prefix='.tmp-', suffix='.json', dir=directory)
    except OSError:
        return False
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            json.dump(data, handle)
        os.replace(temporary, _path(key, directory))
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return False
    return True


def forget(key, directory=None):
    """Remove one cached entry (for example after AWS rejected its credentials)."""
    try:
        os.unlink(_path(key, directory))
    except OSError:
        pass
