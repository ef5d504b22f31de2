# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Finding the one RDS instance or cluster a module acts on (identifier or ARN), refusing engines
# IAM database authentication does not cover, and waiting for RDS to finish a change. Shared by
# rds_iam_auth and rds_iam_parameter_group; the target dict itself comes from _rds_targets.

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AWS_ARGUMENT_KWARGS, AWS_ARGUMENT_SPEC, AwsCallError, aws_client, aws_error_message
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError, import_library
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_targets import (
    is_valid_identifier,
    parse_target_ref,
    target_from_cluster,
    target_from_instance,
)

# Engines with IAM database authentication (and this collection's SQL): everything else is refused by name.
IAM_AUTH_ENGINES = ('postgres', 'aurora-postgresql', 'mysql', 'aurora-mysql', 'aurora', 'mariadb')
TARGET_OPTIONS = {'instance': 'db_instance_identifier', 'cluster': 'db_cluster_identifier'}

# Poll quickly first (a local test endpoint answers at once), then back off to what RDS needs (minutes).
_FIRST_POLL_INTERVAL = 1.0
_MAX_POLL_INTERVAL = 15.0


# The options naming the one target a module acts on; documented in each module.
TARGET_ARGUMENT_SPEC = dict(
    db_instance_identifier=dict(type='str', aliases=['instance_id']),
    db_cluster_identifier=dict(type='str', aliases=['cluster_id']),
)


class RdsTargetError(RdsIamError):
    """The target is missing, of the wrong kind, or on an engine this cannot act on."""


class WaitTimeout(RdsIamError):
    """RDS did not finish a change within wait_timeout; ``last`` holds the last describe_* item seen."""

    def __init__(self, message, last=None):
        super().__init__(message)
        self.last = last


def target_argument_spec(argument_spec):
    """A module's own options plus the target and AWS options."""
    spec = dict(TARGET_ARGUMENT_SPEC, **argument_spec)
    spec.update(AWS_ARGUMENT_SPEC)
    return spec


def target_module(argument_spec):
    """The AnsibleModule of a module acting on one instance or cluster: target options, AWS options, check mode, wait_timeout >= 0."""
    module = AnsibleModule(argument_spec=target_argument_spec(argument_spec), supports_check_mode=True,
                           mutually_exclusive=[tuple(TARGET_OPTIONS.values())], required_one_of=[tuple(TARGET_OPTIONS.values())],
                           **AWS_ARGUMENT_KWARGS)
    if module.params.get('wait_timeout', 0) < 0:
        module.fail_json(msg='wait_timeout is %d: use 0 or more seconds' % module.params['wait_timeout'])
    return module


def as_target(kind, item, region):
    """The describe item in the shape rds_iam_fleet_info returns."""
    return target_from_instance(item, region) if kind == 'instance' else target_from_cluster(item, region)


def target_reference(options):
    """(kind, identifier, arn_region) from db_instance_identifier or db_cluster_identifier; ARNs accepted.

    The identifier comes back in lower case, as RDS stores it (RDS matches identifiers case-insensitively), so it
    compares equal to the identifiers describe_* returns.
    """
    for kind, option in TARGET_OPTIONS.items():
        value = options.get(option)
        if not value:
            continue
        arn_kind, identifier, region = parse_target_ref(value)
        if arn_kind and arn_kind != kind:
            raise RdsTargetError("%s '%s' is the ARN of a %s, not of a %s: pass it as %s" % (
                option, value, arn_kind, kind, TARGET_OPTIONS.get(arn_kind, 'a different option')))
        if not is_valid_identifier(identifier):
            raise RdsTargetError("%s '%s' is not an RDS identifier: use 1 to 63 letters, digits and single hyphens, starting with a "
                                 "letter, or the resource's ARN" % (option, value))
        return kind, identifier.lower(), region
    raise RdsTargetError('no target given: set db_instance_identifier or db_cluster_identifier')


def target_client(options):
    """(kind, identifier, rds client) for the module's target; an ARN is looked up in the region it names."""
    kind, identifier, arn_region = target_reference(options)
    return kind, identifier, aws_client(dict(options, region=arn_region or options.get('region')), 'rds')


def _client_errors():
    return import_library('botocore.exceptions', 'botocore', reason='to call AWS APIs')


def describe(rds, kind, identifier):
    """The describe_db_instances / describe_db_clusters item for identifier; RdsTargetError when it does not exist."""
    exceptions = _client_errors()
    operation, key, items = (('rds:DescribeDBInstances', 'DBInstanceIdentifier', 'DBInstances') if kind == 'instance'
                             else ('rds:DescribeDBClusters', 'DBClusterIdentifier', 'DBClusters'))
    try:
        call = rds.describe_db_instances if kind == 'instance' else rds.describe_db_clusters
        found = call(**{key: identifier})[items]
    except exceptions.ClientError as exc:
        code = exc.response.get('Error', {}).get('Code', '')
        if code in ('DBInstanceNotFound', 'DBInstanceNotFoundFault', 'DBClusterNotFoundFault', 'DBClusterNotFound'):
            raise RdsTargetError("%s %s '%s' does not exist in region %s: check the identifier and the region" % (
                'DB instance' if kind == 'instance' else 'DB cluster', key, identifier, rds.meta.region_name)) from None
        raise AwsCallError(aws_error_message(exc, operation, identifier)) from None
    except exceptions.BotoCoreError as exc:
        raise AwsCallError(aws_error_message(exc, operation, identifier)) from None
    if not found:
        raise RdsTargetError("%s '%s' does not exist in region %s" % (kind, identifier, rds.meta.region_name))
    return found[0]


def check_engine(item, identifier):
    """Refuse engines without IAM database authentication (SQL Server, Oracle, Db2, RDS Custom, ...), naming the engine."""
    engine = (item.get('Engine') or '').lower()
    if engine not in IAM_AUTH_ENGINES:
        raise RdsTargetError("'%s' runs engine %s, which has no IAM database authentication: rdsiam.auth works with "
                             "PostgreSQL, MySQL and MariaDB on RDS and Aurora (engines %s)" % (identifier, engine or 'unknown',
                                                                                               ', '.join(IAM_AUTH_ENGINES)))
    return engine


def call(rds, operation, subject, **params):
    """rds.<operation>(**params) with failures as AwsCallError naming the operation and the subject."""
    exceptions = _client_errors()
    try:
        return getattr(rds, operation)(**params)
    except (exceptions.ClientError, exceptions.BotoCoreError) as exc:
        api_name = 'rds:' + ''.join(part.capitalize() for part in operation.split('_')).replace('Db', 'DB')
        raise AwsCallError(aws_error_message(exc, api_name, subject)) from None


def wait_for(fetch, done, timeout, describe_wait, clock=time.monotonic, sleep=time.sleep, deadline=None):
    """Call fetch() until done(item) or timeout seconds pass (or the clock reaches deadline); returns the item.

    Raises WaitTimeout naming describe_wait(item). The first check runs at once; intervals then grow from
    1 s to 15 s, never past the deadline.
    """
    deadline = clock() + timeout if deadline is None else deadline
    interval = _FIRST_POLL_INTERVAL
    while True:
        item = fetch()
        if done(item):
            return item
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeout('gave up after wait_timeout=%s s: %s; raise wait_timeout, or look again later' % (timeout, describe_wait(item)),
                              last=item)
        sleep(min(interval, remaining))
        interval = min(interval * 2, _MAX_POLL_INTERVAL)
