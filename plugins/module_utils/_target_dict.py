# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one shape of an RDS target (instance, Aurora cluster or RDS proxy) the collection returns, and engine names.

This is a private helper of the rdsiam.auth collection, for internal use only.
Its names and behaviour may change without notice; do not import it from other collections.

Pure functions over describe_* items: no AWS call happens here, so any module can turn
what it already described into the same dict rds_iam_fleet_info returns.

Public functions:
- ``target_from_instance(item, region=None)``: one ``describe_db_instances`` item -> target dict.
- ``target_from_cluster(item, region=None)``: one ``describe_db_clusters`` item -> target dict.
- ``target_from_proxy(item, region=None, tags=None)``: one ``describe_db_proxies`` item -> target dict
  (proxies carry no TagList in describe responses; pass the tags if they were fetched).
- ``dialect(engine)``: an RDS engine name or proxy EngineFamily -> ``postgres``, ``mysql``, ``mariadb`` or None.
- ``parse_target_ref(value)``: an identifier or RDS ARN -> ``(kind, identifier, region)``; kind and
  region are None for a plain identifier.
- ``resource_id_kind(value)``: ``instance``/``cluster``/``proxy`` when value is shaped like a resource id, else None.
- ``is_valid_identifier(value)``: whether value follows RDS's identifier rules (instances, clusters, proxies).
- ``tags_to_dict(tag_list)``, ``account_id_from_arn(arn)``, ``region_from_arn(arn)``.

Target dict keys: kind, identifier, arn, engine (as RDS reports it: aurora-postgresql, mysql, ...; a proxy's
EngineFamily), dialect (postgres, mysql or mariadb: the SQL and IAM mechanism), engine_version, endpoint, port,
reader_endpoint, resource_id, iam_auth_enabled, master_username, master_user_secret_arn,
parameter_group ({name, apply_status} or None), cluster_identifier, region, account_id, tags, status, log_exports
(the log types exported to CloudWatch Logs; None for a proxy).
"""

from __future__ import annotations

import re

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import region_from_arn

KINDS = ('instance', 'cluster', 'proxy')
TARGET_KEYS = ('kind', 'identifier', 'arn', 'engine', 'dialect', 'engine_version', 'endpoint', 'port',
               'reader_endpoint', 'resource_id', 'iam_auth_enabled', 'master_username', 'master_user_secret_arn',
               'parameter_group', 'cluster_identifier', 'region', 'account_id', 'tags', 'status', 'log_exports')

# RDS engine names (and proxy engine families, lower-cased) -> the SQL dialect and IAM mechanism that apply.
ENGINE_DIALECTS = {
    'postgres': 'postgres',
    'aurora-postgresql': 'postgres',
    'postgresql': 'postgres',  # proxy EngineFamily POSTGRESQL
    'mysql': 'mysql',
    'aurora-mysql': 'mysql',
    'aurora': 'mysql',  # Aurora MySQL 5.6 compatible
    'mariadb': 'mariadb',
}
# Proxy endpoints listen on the engine's default port; describe_db_proxies does not report one.
_PROXY_PORTS = {'POSTGRESQL': 5432, 'MYSQL': 3306, 'SQLSERVER': 1433}

_ARN_RE = re.compile(r'^arn:(aws[a-z-]*):rds:([a-z0-9-]+):(\d{12}):(db|cluster|db-proxy):([A-Za-z0-9-]+)$')
_ARN_KINDS = {'db': 'instance', 'cluster': 'cluster', 'db-proxy': 'proxy'}
# Resource ids as RDS issues them: upper-case for instances and clusters, lower-case for proxies.
_RESOURCE_ID_RES = (
    ('instance', re.compile(r'^db-[A-Z0-9]{16,}$')),
    ('cluster', re.compile(r'^cluster-[A-Z0-9]{16,}$')),
    ('proxy', re.compile(r'^prx-[a-z0-9]{12,}$')),
)
# 1-63 letters, digits and hyphens, starting with a letter, no trailing or double hyphen.
_IDENTIFIER_RE = re.compile(r'^[A-Za-z](?:[A-Za-z0-9]|-(?!-)){0,62}$')


def tags_to_dict(tag_list):
    """[{'Key': k, 'Value': v}, ...] -> {k: v}."""
    return {tag['Key']: tag.get('Value', '') for tag in tag_list or ()}


def _arn_field(arn, index):
    parts = (arn or '').split(':')
    return parts[index] if len(parts) > 5 and parts[0] == 'arn' and parts[index] else None


def account_id_from_arn(arn):
    return _arn_field(arn, 4)


def dialect(engine):
    """'postgres', 'mysql' or 'mariadb' for an engine name as RDS spells it (aurora-postgresql, aurora-mysql, a proxy's
    POSTGRESQL, or a dialect name itself); None for engines without IAM database authentication or SQL here."""
    return ENGINE_DIALECTS.get((engine or '').lower())


def is_valid_identifier(value):
    return isinstance(value, str) and bool(_IDENTIFIER_RE.match(value)) and not value.endswith('-')


def resource_id_kind(value):
    for kind, pattern in _RESOURCE_ID_RES:
        if isinstance(value, str) and pattern.match(value):
            return kind
    return None


def parse_target_ref(value):
    """(kind, identifier, region) for an RDS ARN of an instance, cluster or proxy; (None, value, None) otherwise.

    For a proxy ARN the identifier is the proxy's resource id (prx-...), which is all the ARN holds.
    """
    match = _ARN_RE.match(value or '')
    if not match:
        return None, value, None
    return _ARN_KINDS[match.group(4)], match.group(5), match.group(2)


def _target(**fields):
    target = dict.fromkeys(TARGET_KEYS)
    target.update(fields)
    target['dialect'] = dialect(target['engine'])
    target['account_id'] = account_id_from_arn(target['arn'])
    target['region'] = target['region'] or region_from_arn(target['arn'])
    target['tags'] = target['tags'] or {}
    return target


def _secret_arn(item):
    return (item.get('MasterUserSecret') or {}).get('SecretArn')


def target_from_instance(item, region=None):
    """A describe_db_instances item as a target; an Aurora member keeps its cluster_identifier."""
    endpoint = item.get('Endpoint') or {}
    groups = item.get('DBParameterGroups') or []
    parameter_group = None
    if groups:
        parameter_group = {'name': groups[0].get('DBParameterGroupName'), 'apply_status': groups[0].get('ParameterApplyStatus')}
    return _target(
        kind='instance', identifier=item.get('DBInstanceIdentifier'), arn=item.get('DBInstanceArn'),
        engine=item.get('Engine'), engine_version=item.get('EngineVersion'), endpoint=endpoint.get('Address'),
        port=endpoint.get('Port') or item.get('DbInstancePort') or None, resource_id=item.get('DbiResourceId'),
        iam_auth_enabled=bool(item.get('IAMDatabaseAuthenticationEnabled')), master_username=item.get('MasterUsername'),
        master_user_secret_arn=_secret_arn(item), parameter_group=parameter_group,
        cluster_identifier=item.get('DBClusterIdentifier'), region=region, tags=tags_to_dict(item.get('TagList')),
        status=item.get('DBInstanceStatus'), log_exports=sorted(item.get('EnabledCloudwatchLogsExports') or ()),
    )


def _cluster_apply_status(members):
    # The cluster parameter group status lives on each member; one pending member means a reboot is pending.
    statuses = [member.get('DBClusterParameterGroupStatus') for member in members or () if member.get('DBClusterParameterGroupStatus')]
    if not statuses:
        return None
    pending = [status for status in statuses if status != 'in-sync']
    return pending[0] if pending else 'in-sync'


def target_from_cluster(item, region=None):
    """A describe_db_clusters item as a target (Aurora or Multi-AZ DB cluster)."""
    parameter_group = None
    if item.get('DBClusterParameterGroup'):
        parameter_group = {'name': item['DBClusterParameterGroup'], 'apply_status': _cluster_apply_status(item.get('DBClusterMembers'))}
    return _target(
        kind='cluster', identifier=item.get('DBClusterIdentifier'), arn=item.get('DBClusterArn'),
        engine=item.get('Engine'), engine_version=item.get('EngineVersion'), endpoint=item.get('Endpoint'),
        port=item.get('Port'), reader_endpoint=item.get('ReaderEndpoint'), resource_id=item.get('DbClusterResourceId'),
        iam_auth_enabled=bool(item.get('IAMDatabaseAuthenticationEnabled')), master_username=item.get('MasterUsername'),
        master_user_secret_arn=_secret_arn(item), parameter_group=parameter_group, region=region,
        tags=tags_to_dict(item.get('TagList')), status=item.get('Status'),
        log_exports=sorted(item.get('EnabledCloudwatchLogsExports') or ()),
    )


def target_from_proxy(item, region=None, tags=None):
    """A describe_db_proxies item as a target; its resource id (prx-...) is the last field of its ARN."""
    arn = item.get('DBProxyArn')
    family = item.get('EngineFamily')
    iam = any((auth.get('IAMAuth') or 'DISABLED') != 'DISABLED' for auth in item.get('Auth') or ())
    return _target(
        kind='proxy', identifier=item.get('DBProxyName'), arn=arn, engine=family, endpoint=item.get('Endpoint'),
        port=_PROXY_PORTS.get((family or '').upper()), resource_id=arn.rsplit(':', 1)[-1] if arn else None,
        iam_auth_enabled=iam, region=region, tags=dict(tags or {}), status=item.get('Status'),
    )
