# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# AWS options (amazon.aws names) and the single place that builds boto3 sessions and clients.
# Everything works on a plain mapping of option values, so a module (AnsibleModule.params) and
# a lookup (self.get_options()) share one implementation. Errors are raised as RdsIamError
# subclasses; the caller turns them into fail_json / AnsibleLookupError.
# boto3 and botocore are imported inside functions only: importing this file must stay cheap
# for modules that never talk to AWS.

import getpass
import hashlib
import hmac
import json
import os
import re
import time
from urllib.parse import urlparse

from ansible.module_utils.basic import env_fallback

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

# Plausible region names: us-east-1, eu-central-2, cn-north-1, us-gov-west-1, us-isob-east-1.
REGION_RE = re.compile(r'^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$')
_RDS_HOSTNAME_RE = re.compile(r'\.([a-z]{2}(?:-[a-z]+)+-\d{1,2})\.rds\.amazonaws\.com(?:\.cn)?\.?$')
_ROLE_ARN_RE = re.compile(r'^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$')
_SESSION_NAME_RE = re.compile(r'^[\w+=,.@-]{2,64}$')
_SESSION_NAME_BAD_CHARS_RE = re.compile(r'[^\w+=,.@-]')
_EXTERNAL_ID_RE = re.compile(r'^[\w+=,.@:/-]{2,1224}$')

# STS AssumeRole limits for session tags.
_MAX_SESSION_TAGS = 50
_MAX_TAG_KEY_LEN = 128
_MAX_TAG_VALUE_LEN = 256

# Refresh assumed-role credentials this long before STS says they expire.
_EXPIRY_MARGIN_SECONDS = 300
_MAX_CACHED_SESSIONS = 16


class AwsOptionsError(RdsIamError):
    """The AWS options are invalid or contradict each other."""


class AwsCallError(RdsIamError):
    """An AWS API call failed."""


def _boto3():
    return import_library('boto3', reason='to call AWS APIs')


def _botocore(submodule):
    return import_library('botocore.' + submodule, 'botocore', reason='to call AWS APIs')


def region_is_plausible(region):
    return bool(REGION_RE.match(region or ''))


def region_from_rds_hostname(hostname):
    """The region in an RDS/Aurora/Proxy endpoint (``*.REGION.rds.amazonaws.com[.cn]``), or None."""
    match = _RDS_HOSTNAME_RE.search((hostname or '').lower())
    return match.group(1) if match else None


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


# Sessions resolve credentials once (profile files, IMDS, STS); a module that builds several
# clients should pay for that once. The key holds no secret: secret values enter only through an
# HMAC with a per-process random key, so a changed secret still gets its own session.
_SESSION_CACHE = {}
_CACHE_HMAC_KEY = os.urandom(32)


def clear_session_cache():
    _SESSION_CACHE.clear()


def _session_cache_key(options):
    public = {name: options.get(name) for name in AWS_ARGUMENT_SPEC if name not in _SECRET_OPTIONS}
    secrets = json.dumps([options.get(name) for name in _SECRET_OPTIONS])
    digest = hmac.new(_CACHE_HMAC_KEY, secrets.encode('utf-8'), hashlib.sha256).hexdigest()
    return json.dumps(public, sort_keys=True, default=str) + digest


def aws_session(options):
    """A boto3 Session for the options: static keys, profile or default chain, then AssumeRole if asked."""
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


def _base_session(options):
    boto3 = _boto3()
    exceptions = _botocore('exceptions')
    try:
        return boto3.Session(
            aws_access_key_id=options.get('access_key') or None,
            aws_secret_access_key=options.get('secret_key') or None,
            aws_session_token=options.get('session_token') or None,
            profile_name=options.get('profile') or None,
            region_name=options.get('region') or None,
        )
    except exceptions.ProfileNotFound as exc:
        raise AwsOptionsError("profile '%s' is not defined in the AWS config or credentials file: "
                              'check the name, or set AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE' % options.get('profile')) from exc


def _assume_role(base_session, options):
    """Call STS AssumeRole once; return a session on the temporary credentials and when to refresh them."""
    exceptions = _botocore('exceptions')
    params = assume_role_params(options)
    try:
        sts = aws_client(options, 'sts', session=base_session)
        credentials = sts.assume_role(**params)['Credentials']
    except (exceptions.ClientError, exceptions.BotoCoreError) as exc:
        raise AwsCallError(aws_error_message(exc, 'sts:AssumeRole', params['RoleArn'])) from exc
    session = _boto3().Session(
        aws_access_key_id=credentials['AccessKeyId'],
        aws_secret_access_key=credentials['SecretAccessKey'],
        aws_session_token=credentials['SessionToken'],
        region_name=options.get('region') or base_session.region_name,
    )
    expiration = credentials.get('Expiration')
    refresh_at = expiration.timestamp() - _EXPIRY_MARGIN_SECONDS if hasattr(expiration, 'timestamp') else None
    return session, refresh_at


def tls_verify_setting(options):
    """botocore's ``verify``: False when validate_certs is off, the CA bundle path if given, else None (botocore default)."""
    if options.get('validate_certs') is False:
        return False
    return options.get('aws_ca_bundle') or None


def aws_client_kwargs(options):
    """Keyword arguments for Session.client(): the one client configuration the collection uses."""
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
    """The one place boto3 clients are created: shared retry mode, user agent, region, endpoint and TLS settings."""
    exceptions = _botocore('exceptions')
    session = session or aws_session(options)
    try:
        return session.client(service, **aws_client_kwargs(options))
    except exceptions.NoRegionError as exc:
        raise AwsOptionsError('no AWS region for %s: set region (or AWS_REGION), or a region in the profile' % service) from exc


def aws_error_message(exc, operation, subject):
    """'<operation> on <subject> failed: <code>: <message>' for ClientError / BotoCoreError; credentials never appear."""
    error = (getattr(exc, 'response', None) or {}).get('Error') or {}
    code = error.get('Code') or type(exc).__name__
    message = error.get('Message') or str(exc)
    return '%s on %s failed: %s: %s' % (operation, subject, code, message)
