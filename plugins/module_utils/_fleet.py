# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Fleet discovery: describe every instance, cluster and proxy of a region with botocore
# paginators, and filter client-side. The number of AWS calls depends on regions, kinds and
# pages only, never on how many targets there are: tags come from the describe responses
# (TagList) and, for proxies, which describe without tags, from one paginated Resource Groups
# Tagging API call per region.

import fnmatch

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError, aws_client, aws_error_message
from ansible_collections.rdsiam.auth.plugins.module_utils._common import import_library
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_targets import (
    KINDS,
    target_from_cluster,
    target_from_instance,
    target_from_proxy,
    tags_to_dict,
)

_DESCRIBE = {
    'instance': ('describe_db_instances', 'DBInstances'),
    'cluster': ('describe_db_clusters', 'DBClusters'),
    'proxy': ('describe_db_proxies', 'DBProxies'),
}


def _paginate(client, operation, result_key, subject, hint='', **kwargs):
    exceptions = import_library('botocore.exceptions', 'botocore', reason='to call AWS APIs')
    try:
        items = []
        for page in client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(result_key) or ())
        return items
    except (exceptions.ClientError, exceptions.BotoCoreError) as exc:
        raise AwsCallError(aws_error_message(exc, operation, subject) + hint) from exc


def describe_region(options, region, kinds=KINDS, proxy_tags=True):
    """Raw describe items of one region: {'instance': [...], 'cluster': [...], 'proxy': [...], 'proxy_tags': {arn: tags}}.

    proxy_tags=False skips the tagging call for callers that need no tags.
    """
    region_options = dict(options, region=region)
    rds = aws_client(region_options, 'rds')
    described = {}
    for kind in KINDS:
        if kind in kinds:
            operation, key = _DESCRIBE[kind]
            described[kind] = _paginate(rds, operation, key, 'region %s' % region)
    described['proxy_tags'] = {}
    if proxy_tags and described.get('proxy'):
        # describe_db_proxies has no TagList; one paginated tagging call covers every proxy of the region.
        tagging = aws_client(region_options, 'resourcegroupstaggingapi')
        mappings = _paginate(tagging, 'get_resources', 'ResourceTagMappingList', 'the RDS proxies of region %s' % region,
                             hint=' (proxy tags need the tag:GetResources permission)', ResourceTypeFilters=['rds:db-proxy'])
        described['proxy_tags'] = {entry['ResourceARN']: tags_to_dict(entry.get('Tags')) for entry in mappings}
    return described


def targets_of_region(described, region):
    """Target dicts (see _rds_targets) for one region's describe items."""
    targets = [target_from_instance(item, region) for item in described.get('instance') or ()]
    targets += [target_from_cluster(item, region) for item in described.get('cluster') or ()]
    proxy_tags = described.get('proxy_tags') or {}
    targets += [target_from_proxy(item, region, proxy_tags.get(item.get('DBProxyArn'))) for item in described.get('proxy') or ()]
    return targets


def _identifier_matches(target, patterns):
    # RDS stores identifiers in lower case and matches them case-insensitively; ARNs and resource ids match exactly.
    identifier = (target['identifier'] or '').lower()
    return any(fnmatch.fnmatchcase(identifier, pattern.lower()) or pattern in (target['arn'], target['resource_id'])
               for pattern in patterns)


def _engine_matches(target, engines):
    # A normalised name (postgres) matches every variant; an RDS name (aurora-postgresql) only itself.
    for engine in engines:
        engine = engine.lower()
        if engine == target['engine'] or engine == (target['engine_family'] or '').lower():
            return True
    return False


def filter_targets(targets, identifiers=None, engines=None, tags=None, iam_auth_enabled=None):
    """Client-side filters; every given filter must match (tags: every key with exactly that value)."""
    selected = []
    for target in targets:
        if identifiers and not _identifier_matches(target, identifiers):
            continue
        if engines and not _engine_matches(target, engines):
            continue
        if tags and any(target['tags'].get(key) != str(value) for key, value in tags.items()):
            continue
        if iam_auth_enabled is not None and target['iam_auth_enabled'] != iam_auth_enabled:
            continue
        selected.append(target)
    return selected


def discover(options, regions, kinds=KINDS, **filters):
    """Every target of the regions and kinds that passes the filters, sorted by region, kind and identifier."""
    targets = []
    for region in regions:
        targets.extend(targets_of_region(describe_region(options, region, kinds), region))
    order = {kind: index for index, kind in enumerate(KINDS)}
    targets = filter_targets(targets, **filters)
    return sorted(targets, key=lambda target: (target['region'] or '', order[target['kind']], target['identifier'] or ''))
