# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Reading RDS: the one instance or cluster a module acts on (from its identifier, ARN or target dict),
# every instance, cluster and proxy of a region (fleet discovery, filtered client-side), and waiting
# for RDS to finish a change. Discovery's AWS calls depend on regions, kinds and pages only, never
# on how many targets there are: tags come from the describe responses (TagList) and, for proxies,
# which describe without tags, from one paginated Resource Groups Tagging API call per region.

import concurrent.futures
import fnmatch
import time

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import aws_call, aws_client
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._target_dict import (
    ENGINE_DIALECTS,
    KINDS,
    is_valid_identifier,
    parse_target_ref,
    tags_to_dict,
    target_from_cluster,
    target_from_instance,
    target_from_proxy,
)

# Engines with IAM database authentication (and this collection's SQL): everything else is refused by name.
IAM_AUTH_ENGINES = tuple(name for name in ENGINE_DIALECTS if name != 'postgresql')
TARGET_OPTIONS = {'instance': 'db_instance_identifier', 'cluster': 'db_cluster_identifier'}
# Targets a module works on at once in a run over many targets: each waits on its server and the network.
MAX_CONCURRENT_TARGETS = 4

_DESCRIBE = {
    'instance': ('describe_db_instances', 'DBInstanceIdentifier', 'DBInstances'),
    'cluster': ('describe_db_clusters', 'DBClusterIdentifier', 'DBClusters'),
    'proxy': ('describe_db_proxies', 'DBProxyName', 'DBProxies'),
}

# Poll quickly first (a local test endpoint answers at once), then back off to what RDS needs (minutes).
_FIRST_POLL_INTERVAL = 1.0
_MAX_POLL_INTERVAL = 15.0


class RdsTargetError(RdsIamError):
    """The target is missing, of the wrong kind, or on an engine this cannot act on."""


class WaitTimeout(RdsIamError):
    """RDS did not finish a change within wait_timeout; ``last`` holds the last describe_* item seen."""

    def __init__(self, message, last=None):
        super().__init__(message)
        self.last = last


# ---- the one target a module acts on ----

def as_target(kind, item, region):
    """The describe item in the shape rds_iam_fleet_info returns."""
    return target_from_instance(item, region) if kind == 'instance' else target_from_cluster(item, region)


def target_reference(options):
    """(kind, identifier, arn_region) from the target dict, db_instance_identifier or db_cluster_identifier; ARNs accepted.

    The identifier comes back in lower case, as RDS stores it (RDS matches identifiers case-insensitively), so it
    compares equal to the identifiers describe_* returns.
    """
    target = options.get('target')
    if target:
        kind = target.get('kind')
        if kind not in TARGET_OPTIONS or not target.get('identifier'):
            raise RdsTargetError('target must be an instance or cluster as rdsiam.auth.rds_iam_fleet_info returns it (kind, '
                                 'identifier, region); got kind %s, identifier %s' % (kind, target.get('identifier')))
        options = {TARGET_OPTIONS[kind]: target['identifier']}
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
    raise RdsTargetError('no target given: set target, db_instance_identifier or db_cluster_identifier')


def target_client(options):
    """(kind, identifier, rds client) for the module's target; an ARN or target dict is looked up in the region it names."""
    kind, identifier, arn_region = target_reference(options)
    region = arn_region or (options.get('target') or {}).get('region') or options.get('region')
    return kind, identifier, aws_client(dict(options, region=region), 'rds')


def describe(rds, kind, identifier):
    """The describe_db_instances / describe_db_clusters item for identifier; RdsTargetError when it does not exist."""
    operation, key, items = _DESCRIBE[kind]
    found = aws_call(rds, operation, identifier, missing_ok=True, **{key: identifier})
    if not found or not found[items]:
        raise RdsTargetError("%s %s '%s' does not exist in region %s: check the identifier and the region" % (
            'DB instance' if kind == 'instance' else 'DB cluster', key, identifier, rds.meta.region_name))
    return found[items][0]


def check_engine(item, identifier):
    """Refuse engines without IAM database authentication (SQL Server, Oracle, Db2, RDS Custom, ...), naming the engine."""
    engine = (item.get('Engine') or '').lower()
    if engine not in IAM_AUTH_ENGINES:
        raise RdsTargetError("'%s' runs engine %s, which has no IAM database authentication: rdsiam.auth works with "
                             "PostgreSQL, MySQL and MariaDB on RDS and Aurora (engines %s)" % (identifier, engine or 'unknown',
                                                                                               ', '.join(IAM_AUTH_ENGINES)))
    return engine


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


# ---- one run, many targets ----

def each_target(options):
    """The options for each target a module acts on: the one it names, or one per entry of targets (fleet_info dicts).

    Options that hold for the whole run are checked here, once, before any target is touched.
    """
    if options.get('wait_timeout', 0) < 0:
        raise RdsTargetError('wait_timeout is %d: use 0 or more seconds' % options['wait_timeout'])
    if options.get('targets') is None:
        return [options]
    return [dict(options, target=target, targets=None, db_instance_identifier=None, db_cluster_identifier=None)
            for target in options['targets']]


def attempt(action, *args):
    """action(*args), or the RdsIamError it raised: one target's failure must not stop the others."""
    try:
        return action(*args)
    except RdsIamError as exc:
        return exc


def attempt_each(action, targets):
    """[(target, action(target) or the RdsIamError it raised)] in the order given, MAX_CONCURRENT_TARGETS at a time."""
    if not targets:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_TARGETS, len(targets))) as pool:
        return list(zip(targets, pool.map(lambda target: attempt(action, target), targets)))


def one_or_many(options, outcomes):
    """The module result: the single target's own (its error raised), or for targets a list of per-target results.

    outcomes: [(target options, result dict or RdsIamError)]. With targets, each result carries the target's kind and
    identifier and region, a failed one its msg; the run fails after all were tried when any failed, keeping every result.
    """
    if options.get('targets') is None:
        outcome = outcomes[0][1]
        if isinstance(outcome, RdsIamError):
            raise outcome
        return outcome
    results = []
    for target_options, outcome in outcomes:
        target = target_options['target'] or {}
        entry = dict(kind=target.get('kind'), identifier=target.get('identifier'), region=target.get('region'))
        if isinstance(outcome, RdsIamError):
            entry.update(outcome.result, failed=True, msg=str(outcome))
        else:
            entry.update(outcome)
        results.append(entry)
    changed = any(entry.get('changed') for entry in results)
    failed = [entry for entry in results if entry.get('failed')]
    msg = '%d of %d targets changed' % (sum(1 for entry in results if entry.get('changed')), len(results))
    if failed:
        reasons = '; '.join('%s %s: %s' % (entry['kind'], entry['identifier'], entry['msg']) for entry in failed)
        raise RdsIamError('%s; %d failed: %s' % (msg, len(failed), reasons), result=dict(changed=changed, results=results))
    return dict(changed=changed, results=results, msg=msg)


# ---- every target of a region ----

def describe_region(options, region, kinds=KINDS, proxy_tags=True):
    """Raw describe items of one region: {'instance': [...], 'cluster': [...], 'proxy': [...], 'proxy_tags': {arn: tags}}.

    proxy_tags=False skips the tagging call for callers that need no tags.
    """
    region_options = dict(options, region=region)
    rds = aws_client(region_options, 'rds')
    described = {}
    for kind in KINDS:
        if kind in kinds:
            operation, _key, items = _DESCRIBE[kind]
            described[kind] = aws_call(rds, operation, 'region %s' % region, result_key=items)
    described['proxy_tags'] = {}
    if proxy_tags and described.get('proxy'):
        # describe_db_proxies has no TagList; one paginated tagging call covers every proxy of the region.
        tagging = aws_client(region_options, 'resourcegroupstaggingapi')
        mappings = aws_call(tagging, 'get_resources', 'the RDS proxies of region %s' % region, result_key='ResourceTagMappingList',
                            fixes={'AccessDeniedException': 'proxy tags need the tag:GetResources permission'},
                            ResourceTypeFilters=['rds:db-proxy'])
        described['proxy_tags'] = {entry['ResourceARN']: tags_to_dict(entry.get('Tags')) for entry in mappings}
    return described


def targets_of_region(described, region):
    """Target dicts (see _target_dict) for one region's describe items."""
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
    # A dialect (postgres) matches every engine of it; an RDS engine name (aurora-postgresql) only itself.
    return any(engine.lower() in (target['dialect'], (target['engine'] or '').lower()) for engine in engines)


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
