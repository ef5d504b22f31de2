# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# The IAM database authentication flag of an instance or cluster: where it lives (on Aurora, the
# cluster), what a run has to do about it (plan_iam_auth_change, pure), doing it, and knowing when
# RDS has applied it. One run may set it on many targets: every change is asked for first, then the
# waits share one deadline, so RDS applies them side by side.

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import aws_call
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._rds_describe import (
    RdsTargetError,
    WaitTimeout,
    as_target,
    check_engine,
    describe,
    target_client,
    wait_for,
)

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


def start_change(options, check_mode):
    """Describe one target, plan, and ask RDS for the change (not in check mode): the state finish_change works from."""
    enabled, apply_immediately = options['enabled'], options['apply_immediately']
    kind, identifier, rds = target_client(options)
    kind, identifier, item = flag_holder(rds, kind, identifier, options['follow_cluster'])
    before, pending_before, _status = flag_state(item)
    plan = plan_iam_auth_change(item, enabled, apply_immediately)
    if plan['modify'] and not check_mode:
        item = modify_iam_auth(rds, kind, identifier, enabled, apply_immediately)
    return dict(kind=kind, identifier=identifier, rds=rds, item=item, plan=plan, before=before, pending_before=pending_before)


def wait_until_applied(change, options, deadline):
    """Wait (until deadline, a time.monotonic() value) for RDS to show the flag applied; the item is updated in change."""
    rds, kind, identifier = change['rds'], change['kind'], change['identifier']
    try:
        change['item'] = wait_for(lambda: describe(rds, kind, identifier), lambda found: flag_applied(found, options['enabled']),
                                  options['wait_timeout'], describe_wait, deadline=deadline)
    except WaitTimeout as exc:
        # The change was asked for; say so, and show where the target stands.
        raise RdsIamError(str(exc), result=dict(changed=change['plan']['modify'],
                                                target=as_target(kind, exc.last, rds.meta.region_name))) from None


def change_result(change, options, check_mode, diff):
    """The module's result for one target."""
    enabled, apply_immediately = options['enabled'], options['apply_immediately']
    kind, identifier, plan = change['kind'], change['identifier'], change['plan']
    changed = plan['modify']
    now = enabled if (changed and check_mode and apply_immediately) else flag_state(change['item'])[0]
    pending_maintenance = plan['scheduled']
    state = 'on' if enabled else 'off'
    if pending_maintenance:
        msg = 'IAM database authentication for %s %s will be turned %s in the next maintenance window' % (kind, identifier, state)
    elif changed:
        msg = 'IAM database authentication %s %s for %s %s' % ('would be turned' if check_mode else 'turned', state, kind, identifier)
    else:
        msg = 'IAM database authentication is already %s for %s %s' % (state, kind, identifier)
    result = dict(changed=changed, iam_auth_enabled=now, pending_maintenance=pending_maintenance, msg=msg,
                  acted_on=dict(kind=kind, identifier=identifier), target=as_target(kind, change['item'], change['rds'].meta.region_name))
    if diff:
        after_pending = enabled if pending_maintenance else None
        result['diff'] = dict(before=dict(iam_auth_enabled=change['before'], pending_iam_auth_enabled=change['pending_before']),
                              after=dict(iam_auth_enabled=now, pending_iam_auth_enabled=after_pending))
    return result
