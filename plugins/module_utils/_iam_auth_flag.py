# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# The IAM database authentication flag of an instance or cluster: where it lives (on Aurora, the
# cluster), what a run has to do about it (plan_iam_auth_change, pure), doing it, and knowing when
# RDS has applied it.

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import aws_call
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import RdsTargetError, check_engine, describe

PENDING_KEY = 'IAMDatabaseAuthenticationEnabled'


def flag_holder(rds, kind, identifier, follow_cluster=False):
    """(kind, identifier, item) of the resource that holds the flag; a cluster member is refused or followed to its cluster."""
    item = describe(rds, kind, identifier)
    check_engine(item, identifier)
    cluster_id = item.get('DBClusterIdentifier') if kind == 'instance' else None
    if cluster_id:
        if not follow_cluster:
            raise RdsTargetError("DB instance '%s' is a member of cluster '%s', and IAM database authentication is set on the cluster: "
                                 "use db_cluster_identifier: %s (or follow_cluster: true)" % (identifier, cluster_id, cluster_id))
        kind, identifier = 'cluster', cluster_id
        item = describe(rds, kind, identifier)
        check_engine(item, identifier)
    return kind, identifier, item


def flag_state(item):
    """(enabled now, pending value or None, status) from a describe item."""
    pending = (item.get('PendingModifiedValues') or {}).get(PENDING_KEY)
    status = item.get('DBInstanceStatus') or item.get('Status')
    return bool(item.get('IAMDatabaseAuthenticationEnabled')), pending, status


def plan_iam_auth_change(item, enabled, apply_immediately):
    """What to do: {'modify': bool, 'wait': bool, 'scheduled': bool}.

    modify: call modify_db_* now; wait: the change is applied immediately and may take a while to
    show; scheduled: it waits for the maintenance window (asked now, or by an earlier run).
    """
    current, pending, status = flag_state(item)
    if apply_immediately:
        in_flight = pending is not None and bool(pending) == enabled and status == 'modifying'
        needs_call = not in_flight and (current != enabled or (pending is not None and bool(pending) != enabled))
        return {'modify': needs_call, 'wait': needs_call or in_flight, 'scheduled': False}
    if pending is not None and bool(pending) == enabled:
        return {'modify': False, 'wait': False, 'scheduled': True}
    if current == enabled and pending is None:
        return {'modify': False, 'wait': False, 'scheduled': False}
    return {'modify': True, 'wait': False, 'scheduled': current != enabled}


def modify_iam_auth(rds, kind, identifier, enabled, apply_immediately):
    """modify_db_instance / modify_db_cluster with EnableIAMDatabaseAuthentication; returns the item RDS sent back."""
    if kind == 'instance':
        return aws_call(rds, 'modify_db_instance', identifier, DBInstanceIdentifier=identifier,
                        EnableIAMDatabaseAuthentication=enabled, ApplyImmediately=apply_immediately)['DBInstance']
    return aws_call(rds, 'modify_db_cluster', identifier, DBClusterIdentifier=identifier,
                    EnableIAMDatabaseAuthentication=enabled, ApplyImmediately=apply_immediately)['DBCluster']


def flag_applied(item, enabled):
    """True once describe_* shows the flag at enabled, nothing pending for it, and the resource available."""
    current, pending, status = flag_state(item)
    return current == enabled and pending is None and status == 'available'


def describe_wait(item):
    current, pending, status = flag_state(item)
    return 'IAMDatabaseAuthenticationEnabled is %s, pending %s, status %s' % (current, pending, status)
