# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Resolving the targets of rds_iam_policy grants to the resource ids IAM needs. An ARN of
# rds-db:connect names the DbiResourceId / DbClusterResourceId / proxy id, never the identifier
# the user typed. One describe per kind and region, whatever the number of targets;
# every unknown target is reported at once, before anything is written.

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import aws_call, aws_client
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import describe_region, targets_of_region
from ansible_collections.rdsiam.auth.plugins.module_utils._target_dict import (
    is_valid_identifier,
    parse_target_ref,
    resource_id_kind,
)

WILDCARD = '*'


class UnknownTargetError(RdsIamError):
    """Some grant targets do not exist or cannot be read."""


def parse_ref(value, default_region):
    """(kind or None, identifier or resource id, region, how) for one grant target; how is 'name', 'arn', 'id' or '*'."""
    if value == WILDCARD:
        return None, WILDCARD, default_region, '*'
    kind, identifier, region = parse_target_ref(value)
    if kind:
        return kind, identifier, region, 'arn'
    kind = resource_id_kind(value)
    if kind:
        return kind, value, default_region, 'id'
    if is_valid_identifier(value):
        return None, value.lower(), default_region, 'name'  # RDS stores identifiers in lower case
    raise UnknownTargetError("grant target '%s' is not an instance or cluster identifier, a proxy name, a resource id "
                             "(db-..., cluster-..., prx-...), an RDS ARN or '*': fix the target" % value)


def _kinds_needed(refs):
    """{region: set(kinds)} to describe; proxies only when a target can only be a proxy (others add them lazily)."""
    needed = {}
    for kind, _ident, region, how in refs:
        if how == '*':
            continue
        kinds = needed.setdefault(region, set())
        if kind in (None, 'instance'):
            kinds.update(('instance', 'cluster'))  # an Aurora member resolves to its cluster
        else:
            kinds.add(kind)
    return needed


class _RegionIndex:
    def __init__(self, targets):
        self.targets = targets
        self.by_resource_id = {target['resource_id']: target for target in targets if target['resource_id']}
        self.clusters = {target['identifier']: target for target in targets if target['kind'] == 'cluster'}

    def find(self, kind, identifier, how):
        if how == 'id' or (how == 'arn' and kind == 'proxy'):
            found = self.by_resource_id.get(identifier)
            return [found] if found and found['kind'] == kind else []
        return [target for target in self.targets
                if target['identifier'] == identifier and kind in (None, target['kind'])]


def _describe(options, region, kinds):
    return targets_of_region(describe_region(options, region, kinds, proxy_tags=False), region)


def caller_account(options):
    """(partition, account id) of the calling identity: one sts:GetCallerIdentity."""
    arn = aws_call(aws_client(options, 'sts'), 'get_caller_identity', 'the current credentials')['Arn']
    parts = arn.split(':')
    return parts[1], parts[4]


def resolve_targets(options, values, default_region, caller=None):
    """{target value: [resolved]} and warnings; resolved = dict(resource_id, region, account_id, partition, dialect, label).

    Raises UnknownTargetError naming every target that was not found.
    """
    resolved, warnings, unknown = lookup_targets(options, values, default_region, caller)
    if unknown:
        raise UnknownTargetError(unknown_targets_message(unknown))
    return resolved, warnings


def unknown_targets_message(unknown):
    """The message for {target value: region} of targets that were not found."""
    return ('grant targets not found: %s; nothing was changed: check the identifiers, proxy names or resource ids '
            'and the region (an ARN names its own region)' % ', '.join(sorted("'%s' (%s)" % item for item in unknown.items())))


def lookup_targets(options, values, default_region, caller=None):
    """resolve_targets without raising for unknown targets: (resolved, warnings, {unknown value: region}).

    One call serves the grants of many policies (rds_iam_policy's bulk form), which then names the policies
    whose targets are missing. caller, when given, returns (partition, account id) instead of asking STS.
    """
    refs = {value: parse_ref(value, default_region) for value in values}
    needed = _kinds_needed(refs.values())
    indexes, described = {}, {}
    for region, kinds in sorted(needed.items()):
        described[region] = set(kinds)
        indexes[region] = _RegionIndex(_describe(options, region, kinds))
    # A plain name not found among instances and clusters may be a proxy: one more describe for that region.
    for region in sorted({ref[2] for ref in refs.values() if ref[3] == 'name'}):
        missing = [ref for ref in refs.values() if ref[3] == 'name' and ref[2] == region and not indexes[region].find(*ref[0:2], 'name')]
        if missing and 'proxy' not in described[region]:
            described[region].add('proxy')
            indexes[region] = _RegionIndex(indexes[region].targets + _describe(options, region, ['proxy']))
    resolved, warnings, unknown = {}, [], {}
    for value, (kind, identifier, region, how) in refs.items():
        if how == '*':
            continue
        found = indexes[region].find(kind, identifier, how)
        if not found:
            unknown[value] = region
            continue
        resolved[value] = [_as_resolved(target, indexes[region], warnings) for target in found]
    _add_wildcards(options, refs, resolved, caller)
    return resolved, warnings, unknown


def _as_resolved(target, index, warnings):
    if target['kind'] == 'instance' and target['cluster_identifier']:
        cluster = index.clusters.get(target['cluster_identifier'])
        if cluster:
            warnings.append("db instance '%s' is a member of cluster '%s': IAM database authentication uses the cluster's resource "
                            "id %s, so the grant names the cluster (all its instances)" % (target['identifier'], cluster['identifier'],
                                                                                           cluster['resource_id']))
            target = cluster
    partition = (target['arn'] or 'arn:aws').split(':')[1]
    return dict(resource_id=target['resource_id'], region=target['region'], account_id=target['account_id'], partition=partition,
                dialect=target['dialect'], label='%s %s' % (target['kind'], target['identifier']))


def _add_wildcards(options, refs, resolved, caller=None):
    wildcard_regions = sorted({ref[2] for ref in refs.values() if ref[3] == '*'})
    if not wildcard_regions:
        return
    known = [entry for entries in resolved.values() for entry in entries]
    if known:
        partition, account = known[0]['partition'], known[0]['account_id']
    else:
        partition, account = caller() if caller else caller_account(options)
    resolved[WILDCARD] = [dict(resource_id=WILDCARD, region=region, account_id=account, partition=partition, dialect=None,
                               label='every target in %s' % region) for region in wildcard_regions]
