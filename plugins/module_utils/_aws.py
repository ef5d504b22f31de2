# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# AWS options (amazon.aws names) and the single place that builds botocore sessions and clients.
# Everything works on a plain mapping of option values, so a module (AnsibleModule.params) and
# a lookup (self.get_options()) share one implementation. Errors are raised as RdsIamError
# subclasses; the caller turns them into fail_json / AnsibleLookupError.
# botocore is imported inside functions only: importing this file must stay cheap for modules that
# never talk to AWS. boto3 is not used at all: its Session only wraps botocore's, and its import
# costs every module run.

import datetime
import hashlib
import hmac
import json
import os
import random
import re
import threading
import time
from urllib.parse import urlparse

from ansible.module_utils.basic import env_fallback

from ansible_collections.rdsiam.auth.plugins.module_utils import _credential_cache
from ansible_collections.rdsiam.auth.plugins.module_utils._credential_cache import assume_role_params
# Region rules live with the token signer, which the lookup's fast path imports alone.
from ansible_collections.rdsiam.auth.plugins.module_utils._token import Credentials as AwsCredentials, region_is_plausible
from ansible_collections.rdsiam.auth.plugins.module_utils._common import (
    USER_AGENT_EXTRA,
    RdsIamError,
    import_library,
)

AWS_ARGUMENT_SPEC = dict(
    region=dict(type='str', aliases=['aws_region', 'ec2_region'],
                fallback=(env_fallback, ['AWS_REGION', 'AWS_DEFAULT_REGION'])),
    profile=dict(type='str', aliases=['aws_profile'],
                 fallback=(env_fallback, ['AWS_PROFILE', 'AWS_DEFAULT_PROFILE'])),
    # An access key id identifies, it does not authenticate: keep it visible in logs.
    access_key=dict(type='str', no_log=False, aliases=['aws_access_key_id', 'aws_access_key', 'ec2_access_key'],
                    fallback=(env_fallback, ['AWS_ACCESS_KEY_ID', 'AWS_ACCESS_KEY', 'EC2_ACCESS_KEY'])),
    secret_key=dict(type='str', no_log=True, aliases=['aws_secret_access_key', 'aws_secret_key', 'ec2_secret_key'],
                    fallback=(env_fallback, ['AWS_SECRET_ACCESS_KEY', 'AWS_SECRET_KEY', 'EC2_SECRET_KEY'])),
    session_token=dict(type='str', no_log=True, aliases=['aws_session_token', 'security_token', 'aws_security_token'],
                       fallback=(env_fallback, ['AWS_SESSION_TOKEN', 'AWS_SECURITY_TOKEN'])),
    endpoint_url=dict(type='str', aliases=['aws_endpoint_url', 'ec2_url'],
                      fallback=(env_fallback, ['AWS_ENDPOINT_URL', 'AWS_URL', 'EC2_URL'])),
    validate_certs=dict(type='bool', default=True),
    aws_ca_bundle=dict(type='path', fallback=(env_fallback, ['AWS_CA_BUNDLE'])),
    aws_config=dict(type='dict'),
    assume_role_arn=dict(type='str'),
    role_session_name=dict(type='str'),
    external_id=dict(type='str'),
    session_tags=dict(type='dict'),
    # Assumed-role credentials are kept in a 0600 file between tasks unless this is false.
    credential_cache=dict(type='bool', default=True, fallback=(env_fallback, ['RDSIAM_CREDENTIAL_CACHE'])),
)

# Options that only make sense together with assume_role_arn.
_ASSUME_ROLE_ONLY = ('role_session_name', 'external_id', 'session_tags')

AWS_ARGUMENT_KWARGS = dict(
    required_together=[('access_key', 'secret_key')],
    required_by={name: 'assume_role_arn' for name in _ASSUME_ROLE_ONLY},
)

# Option values that must never reach a message, a cache key or a repr.
_SECRET_OPTIONS = ('secret_key', 'session_token')
_STATIC_CREDENTIALS = ('access_key', 'secret_key', 'session_token')

_ROLE_ARN_RE = re.compile(r'^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$')
_SESSION_NAME_RE = re.compile(r'^[\w+=,.@-]{2,64}$')
_EXTERNAL_ID_RE = re.compile(r'^[\w+=,.@:/-]{2,1224}$')

# STS AssumeRole limits for session tags.
_MAX_SESSION_TAGS = 50
_MAX_TAG_KEY_LEN = 128
_MAX_TAG_VALUE_LEN = 256

# Refresh assumed-role credentials this long before STS says they expire (the same margin as the on-disk cache).
_EXPIRY_MARGIN_SECONDS = _credential_cache.REFRESH_MARGIN_SECONDS
_MAX_CACHED_SESSIONS = 16


class AwsOptionsError(RdsIamError):
    """The AWS options are invalid or contradict each other."""


class AwsCallError(RdsIamError):
    """An AWS API call failed; code is AWS's error code (None when no answer came back), operation the API called."""


class NoCredentialsError(AwsOptionsError):
    """No credential source yielded AWS credentials."""


def _botocore(submodule):
    return import_library('botocore.' + submodule, 'botocore', reason='to call AWS APIs')


def region_from_arn(arn):
    """The region field of an ARN (``arn:PARTITION:SERVICE:REGION:...``), or None if it has none."""
    parts = (arn or '').split(':')
    if len(parts) > 4 and parts[0] == 'arn' and region_is_plausible(parts[3]):
        return parts[3]
    return None


def check_aws_options(options):
    """Raise AwsOptionsError for option combinations amazon.aws refuses, naming option, cause and fix."""
    problems = []
    for check in (_check_credential_sources, _check_region, _check_endpoint_url, _check_assume_role, _check_session_tags):
        problems.extend(check(options))
    if problems:
        raise AwsOptionsError('; '.join(problems))


def _set(options, *names):
    return [name for name in names if options.get(name) not in (None, '')]


def _check_credential_sources(options):
    problems = []
    keys = _set(options, *_STATIC_CREDENTIALS)
    if options.get('profile') and keys:
        # Values often arrive from AWS_* environment variables, so say so: the user may not have typed them.
        problems.append(
            'profile cannot be combined with %s (passing both a profile and access keys is not supported; these values may come from '
            'the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN environment variables): '
            'use either profile or access_key/secret_key, and unset the other' % '/'.join(keys))
    elif keys and not {'access_key', 'secret_key'} <= set(keys):
        missing = sorted({'access_key', 'secret_key'} - set(keys))
        problems.append('%s is set without %s: static credentials need both access_key and secret_key (session_token is optional), '
                        'set %s or remove %s' % ('/'.join(keys), '/'.join(missing), '/'.join(missing), '/'.join(keys)))
    return problems


def _check_region(options):
    region = options.get('region')
    if region and not region_is_plausible(region):
        return ["region '%s' is not an AWS region name: use a name like us-east-1, eu-central-2, cn-north-1 or us-gov-west-1" % region]
    return []


def _check_endpoint_url(options):
    url = options.get('endpoint_url')
    if url and not (urlparse(url).scheme in ('http', 'https') and urlparse(url).netloc):
        # The value is not echoed: a proxy-style URL may carry user:password.
        return ['endpoint_url has no http:// or https:// scheme: write it in full, for example https://rds.us-east-1.amazonaws.com '
                'or http://127.0.0.1:5000 for a local test endpoint']
    return []


def _check_assume_role(options):
    problems = []
    arn = options.get('assume_role_arn')
    if not arn:
        problems.extend('%s only applies when assuming a role: set assume_role_arn or remove %s' % (name, name)
                        for name in _set(options, *_ASSUME_ROLE_ONLY))
        return problems
    if not _ROLE_ARN_RE.match(arn):
        problems.append("assume_role_arn '%s' is not an IAM role ARN: use arn:aws:iam::<12-digit account>:role/<name>" % arn)
    name = options.get('role_session_name')
    if name and not _SESSION_NAME_RE.match(name):
        problems.append("role_session_name '%s' is not accepted by STS: use 2 to 64 characters from letters, digits and +=,.@_-" % name)
    if options.get('external_id') and not _EXTERNAL_ID_RE.match(options['external_id']):
        problems.append('external_id is not accepted by STS: use 2 to 1224 characters from letters, digits and +=,.@:/_-')
    return problems


def _check_session_tags(options):
    tags = options.get('session_tags')
    if not tags:
        return []
    if not isinstance(tags, dict):
        return ['session_tags must be a mapping of tag key to tag value']
    problems = []
    if len(tags) > _MAX_SESSION_TAGS:
        problems.append('session_tags has %d tags but STS accepts at most %d: remove some tags' % (len(tags), _MAX_SESSION_TAGS))
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            problems.append("session_tags entry '%s' is not a string key with a string value: quote it in YAML (for example '\"42\"')" % key)
        elif not key or len(key) > _MAX_TAG_KEY_LEN:
            problems.append("session_tags key '%.32s' must be 1 to %d characters long: shorten it" % (key, _MAX_TAG_KEY_LEN))
        elif len(value) > _MAX_TAG_VALUE_LEN:
            problems.append("session_tags value of '%s' is longer than %d characters: shorten it" % (key, _MAX_TAG_VALUE_LEN))
    return problems


# Sessions resolve credentials once (profile files, IMDS, STS); a module that builds several
# clients should pay for that once. The key holds no secret: secret values enter only through an
# HMAC with a per-process random key, so a changed secret still gets its own session.
_SESSION_CACHE = {}
_CACHE_HMAC_KEY = os.urandom(32)


# Assumed-role credentials by cache key, so several terms or clients in one process call STS (or read the file) once.
_ASSUMED_IN_PROCESS = {}


def clear_session_cache():
    _SESSION_CACHE.clear()
    _ASSUMED_IN_PROCESS.clear()


def _session_cache_key(options):
    public = {name: options.get(name) for name in AWS_ARGUMENT_SPEC if name not in _SECRET_OPTIONS}
    secrets = json.dumps([options.get(name) for name in _SECRET_OPTIONS])
    digest = hmac.new(_CACHE_HMAC_KEY, secrets.encode('utf-8'), hashlib.sha256).hexdigest()
    return json.dumps(public, sort_keys=True, default=str) + digest


def aws_session(options):
    """A botocore Session for the options: static keys, profile or default chain, then AssumeRole if asked."""
    check_aws_options(options)
    key = _session_cache_key(options)
    cached = _SESSION_CACHE.get(key)
    if cached and (cached[1] is None or cached[1] > time.time()):
        return cached[0]
    session = _base_session(options)
    refresh_at = None
    if options.get('assume_role_arn'):
        session, refresh_at = _assume_role(session, options)
    if len(_SESSION_CACHE) >= _MAX_CACHED_SESSIONS:
        _SESSION_CACHE.pop(next(iter(_SESSION_CACHE)))
    _SESSION_CACHE[key] = (session, refresh_at)
    return session


def _new_session(profile=None, access_key=None, secret_key=None, session_token=None, region=None):
    session = _botocore('session').Session(profile=profile or None)
    if access_key:
        session.set_credentials(access_key, secret_key, session_token or None)
    if region:
        session.set_config_variable('region', region)
    return session


def _base_session(options):
    exceptions = _botocore('exceptions')
    try:
        session = _new_session(options.get('profile'), options.get('access_key'), options.get('secret_key'),
                               options.get('session_token'), options.get('region'))
        # botocore reads the profile lazily: ask now, so an unknown profile fails here with its name.
        session.get_scoped_config()
        return session
    except exceptions.ProfileNotFound as exc:
        raise AwsOptionsError("profile '%s' is not defined in the AWS config or credentials file: "
                              'check the name, or set AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE' % options.get('profile')) from exc


def session_region(session):
    """The region a session resolved (option, profile or AWS_REGION / AWS_DEFAULT_REGION), or None."""
    return session.get_config_variable('region')


def default_region(options):
    """The region option, else the one the AWS configuration gives."""
    return options.get('region') or session_region(aws_session(options))


def _assume_role(base_session, options):
    """A session on the role's temporary credentials (from the on-disk cache or STS) and when to refresh it."""
    credentials = _assumed_role_credentials(options, base_session)
    session = _new_session(access_key=credentials.access_key, secret_key=credentials.secret_key,
                           session_token=credentials.session_token, region=options.get('region') or session_region(base_session))
    refresh_at = credentials.expiration.timestamp() - _EXPIRY_MARGIN_SECONDS if credentials.expiration else None
    return session, refresh_at


def resolve_credentials(options):
    """Frozen AwsCredentials for signing. Static keys and fresh cached assumed-role credentials need no botocore import;
    anything else goes through botocore's chain (profiles, role chains, SSO, container and instance roles) once per process."""
    check_aws_options(options)
    if options.get('assume_role_arn'):
        return _assumed_role_credentials(options)
    return AwsCredentials.from_options(options) or _chain_credentials(aws_session(options))


def _chain_credentials(session):
    """The session's credentials, frozen now (botocore refreshes temporary ones as needed), or NoCredentialsError."""
    exceptions = _botocore('exceptions')
    try:
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except (exceptions.ClientError, exceptions.BotoCoreError) as exc:
        # A profile's role chain, SSO login or credential_process failed: say so with AWS's error, not a stack.
        raise AwsCallError(aws_error_message(exc, 'credential resolution', 'the AWS credential chain')) from None
    if frozen is None or not frozen.access_key:
        raise NoCredentialsError(_no_credentials_message(session))
    expiry = getattr(credentials, '_expiry_time', None)  # RefreshableCredentials only; botocore has no public accessor
    return AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token or None, expiry, getattr(credentials, 'method', None))


def _no_credentials_message(session):
    try:
        resolver = session.get_component('credential_provider')
        tried = [provider.METHOD for provider in resolver.providers]
    except (AttributeError, KeyError):
        tried = ['env', 'shared-credentials-file', 'config-file', 'container-role', 'iam-role']
    profile = session.profile or 'default'
    return ('no AWS credentials found: tried the access_key/secret_key options, then botocore\'s credential chain (%s) with '
            "profile '%s': set access_key and secret_key (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), set profile to a profile "
            'that has credentials, or run where a container or instance role is available' % (', '.join(tried), profile))


def _assumed_role_credentials(options, base_session=None):
    """The role's credentials: from the on-disk cache while they stay fresh, otherwise from one STS AssumeRole call."""
    params = assume_role_params(options)
    source = AwsCredentials.from_options(options)
    if source is None:
        base_session = base_session or _base_session(options)
        source = _chain_credentials(base_session)
    key, cached = _credential_cache.cached_credentials(options, source.access_key)
    remembered = _ASSUMED_IN_PROCESS.get(key)
    if remembered and _fresh(remembered.expiration):
        return remembered
    credentials = cached
    if credentials is None:
        issued = _call_assume_role(base_session or _base_session(options), options, params)
        if options.get('credential_cache') is not False and isinstance(issued.get('Expiration'), datetime.datetime):
            _credential_cache.save(key, issued)
        credentials = _credential_cache.sts_credentials(issued, 'assume-role')
    if len(_ASSUMED_IN_PROCESS) >= _MAX_CACHED_SESSIONS:
        _ASSUMED_IN_PROCESS.clear()
    _ASSUMED_IN_PROCESS[key] = credentials
    return credentials


def _fresh(expiration):
    return expiration is not None and expiration.timestamp() - time.time() > _EXPIRY_MARGIN_SECONDS


def _call_assume_role(base_session, options, params):
    sts = aws_client(options, 'sts', session=base_session)
    return aws_call(sts, 'assume_role', params['RoleArn'], **params)['Credentials']


def tls_verify_setting(options):
    """botocore's ``verify``: False when validate_certs is off, the CA bundle path if given, else None (botocore default)."""
    if options.get('validate_certs') is False:
        return False
    return options.get('aws_ca_bundle') or None


def aws_client_kwargs(options):
    """Keyword arguments for Session.create_client(): the one client configuration the collection uses."""
    config_module = _botocore('config')
    # Retries come from botocore's own retry modes, never a hand-written loop.
    config = config_module.Config(retries={'mode': 'standard'}, user_agent_extra=USER_AGENT_EXTRA)
    if options.get('aws_config'):
        try:
            config = config.merge(config_module.Config(**options['aws_config']))
        except TypeError as exc:
            raise AwsOptionsError('aws_config has a key botocore.config.Config does not know (%s): '
                                  'see the botocore Config documentation for valid keys' % exc) from exc
    return dict(config=config, region_name=options.get('region') or None,
                endpoint_url=options.get('endpoint_url') or None, verify=tls_verify_setting(options))


def aws_client(options, service, session=None):
    """The one place AWS clients are created: shared retry mode, user agent, region, endpoint and TLS settings."""
    exceptions = _botocore('exceptions')
    session = session or aws_session(options)
    try:
        return session.create_client(service, **aws_client_kwargs(options))
    except exceptions.NoRegionError as exc:
        raise AwsOptionsError('no AWS region for %s: set region (or AWS_REGION), or a region in the profile' % service) from exc


class SharedAws:
    """Credentials and clients for threads that work on many targets at once: each resolved or created once per set of
    AWS options and service, under a lock, because a botocore Session is not safe to use from several threads (its
    clients are)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._made = {}

    def _once(self, key, make):
        with self._lock:
            if key not in self._made:
                self._made[key] = make()
            return self._made[key]

    def credentials(self, options):
        return self._once(('credentials', _session_cache_key(options)), lambda: resolve_credentials(options))

    def client(self, options, service):
        return self._once(('client', service, _session_cache_key(options)), lambda: aws_client(options, service))


def aws_error_message(exc, operation, subject):
    """'<operation> on <subject> failed: <code>: <message>' for ClientError / BotoCoreError; credentials never appear."""
    error = (getattr(exc, 'response', None) or {}).get('Error') or {}
    code = error.get('Code') or type(exc).__name__
    message = error.get('Message') or str(exc)
    return '%s on %s failed: %s: %s' % (operation, subject, code, message)


# ---- the one way AWS is called ----

# Extra retries a caller declares (botocore's standard mode already retries throttling and 5xx): attempts in all,
# and the cap of the first jittered pause in seconds, doubling per attempt.
_DECLARED_RETRY_ATTEMPTS = 4
_DECLARED_RETRY_BACKOFF = 0.5
_ACCESS_DENIED = ('AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation')
# What to do about an error code, by service (the client's signing name), appended to the message.
_FIXES = {
    'iam': {
        'NoSuchEntity': 'create the principal first or fix its name',
        'LimitExceeded': 'an IAM quota is reached (managed policies per principal, policy versions or policy size): detach other '
                         'policies from the principal or ask AWS for a higher quota',
        'MalformedPolicyDocument': 'IAM refused the document: check the db user names and targets of the grants',
        'InvalidInput': 'check the name, path, description and tags',
        'ConcurrentModification': 'another change to this policy was in progress: run again',
    },
    'sts': {
        'AccessDenied': "the role's trust policy must allow the calling identity, and the identity needs sts:AssumeRole on the role",
    },
}


def is_missing_resource(code):
    """Whether an AWS error code says the named resource does not exist (IAM, RDS, Secrets Manager spellings)."""
    return bool(code) and (code == 'NoSuchEntity' or code.endswith(('NotFound', 'NotFoundFault', 'NotFoundException')))


def api_name(client, operation):
    """'rds:DescribeDBInstances' for (an RDS client, 'describe_db_instances'): the name IAM permissions and CloudTrail use."""
    meta = getattr(client, 'meta', None)
    mapped = getattr(meta, 'method_to_api_mapping', {}).get(operation) if meta is not None else None
    prefix = getattr(getattr(meta, 'service_model', None), 'signing_name', None)
    if not isinstance(mapped, str):
        mapped = ''.join(part.capitalize() for part in operation.split('_'))
    return '%s:%s' % (prefix, mapped) if isinstance(prefix, str) else mapped


def aws_call(client, operation, subject, result_key=None, missing_ok=False, retry=(), fixes=None, **params):
    """client.<operation>(**params), the only place the collection catches botocore's errors.

    result_key: go through botocore's paginator and return every page's items under that key, as one list
    (a tuple of keys: {key: list}).
    missing_ok: an answer that the resource does not exist (NoSuchEntity, *NotFound*) returns None.
    retry: AWS error codes this call may meet from a concurrent writer (ConcurrentModification, or NoSuchEntity
    just after a create); they are retried a few times after jittered pauses.
    fixes: {error code: what to do}, appended to the message.
    Any other failure raises AwsCallError naming the operation, the subject, AWS's code and message, and the fix.
    """
    exceptions = _botocore('exceptions')
    for attempt in range(_DECLARED_RETRY_ATTEMPTS):
        try:
            if result_key is None:
                return getattr(client, operation)(**params)
            return _all_pages(client, operation, result_key, params)
        except exceptions.ClientError as exc:
            code = (exc.response.get('Error') or {}).get('Code')
            if code in retry and attempt + 1 < _DECLARED_RETRY_ATTEMPTS:
                # Full jitter: two runs that collided once should not collide again on the same beat.
                time.sleep(random.uniform(0, _DECLARED_RETRY_BACKOFF * 2 ** attempt))
                continue
            if missing_ok and is_missing_resource(code):
                return None
            raise _call_error(exc, client, operation, subject, code, fixes) from None
        except exceptions.BotoCoreError as exc:
            raise _call_error(exc, client, operation, subject, None, fixes) from None
    return None  # unreachable: the last attempt returns or raises


def _all_pages(client, operation, result_key, params):
    keys = result_key if isinstance(result_key, tuple) else (result_key,)
    found = {key: [] for key in keys}
    for page in client.get_paginator(operation).paginate(**params):
        for key in keys:
            found[key].extend(page.get(key) or ())
    return found if isinstance(result_key, tuple) else found[result_key]


def _call_error(exc, client, operation, subject, code, fixes):
    name = api_name(client, operation)
    fix = (fixes or {}).get(code) or _FIXES.get(name.split(':')[0], {}).get(code)
    if code in _ACCESS_DENIED and not fix:
        fix = 'grant the calling identity %s' % name
    # Not chained by the caller: botocore's exception holds nothing the message lacks.
    return AwsCallError(aws_error_message(exc, name, subject) + (': ' + fix if fix else ''), code=code, operation=name)
