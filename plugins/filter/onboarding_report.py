# -*- coding: utf-8 -*-
# Copyright: rdsiam.auth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the onboard/offboard roles use to report: one row per database user and target from the results the role
registered (what changed, what would change in check mode, where a target failed), and the summary table.

Kept in Python rather than Jinja so that what a row says has one implementation that the unit tests exercise directly.
User names and policy names come from onboarding_inputs, the same derivation the policies were written with.
"""

from __future__ import annotations

from ansible_collections.rdsiam.auth.plugins.filter.onboarding_inputs import policy_name, user_names
from ansible_collections.rdsiam.auth.plugins.module_utils._text_table import aligned_lines

REPORT_COLUMNS = (('target', 'target'), ('engine', 'engine'), ('iam_auth', 'IAM auth'), ('user', 'user'),
                  ('policy', 'policy'), ('login', 'login verified'), ('changed', 'what changed'))


def _by_name(items, key='name'):
    return {item.get(key): item for item in items or [] if isinstance(item, dict)}


def _iam_auth(target, flag, check_mode):
    if flag and not flag.get('skipped'):
        state = 'pending' if flag.get('pending_maintenance') else 'on' if flag.get('iam_auth_enabled') else 'off'
        return 'would be %s' % state if check_mode and flag.get('changed') else state
    return 'on' if target.get('iam_auth_enabled') else 'off'


def _target_changes(flag, group):
    changes = []
    if flag and flag.get('changed'):
        changes.append('IAM auth %s' % ('scheduled' if flag.get('pending_maintenance') else 'turned on' if flag.get('iam_auth_enabled') else 'turned off'))
    if group and not group.get('skipped'):
        if group.get('changed'):
            changes.append('parameter group %s' % (group.get('parameter_group') or {}).get('name', ''))
        if group.get('pending_reboot') and not group.get('rebooted'):
            changes.append('reboot pending')
        if group.get('rebooted'):
            changes.append('rebooted')
    return changes


def _user_changes(result):
    if not result:
        return []
    changes = []
    for key, words in (('created', 'created'), ('converted', 'converted to IAM'), ('dropped', 'dropped'),
                       ('locked', 'locked'), ('unlocked', 'unlocked')):
        if result.get(key):
            changes.append(words)
    if result.get('roles_granted'):
        changes.append('+' + ','.join(result['roles_granted']))
    if result.get('roles_revoked'):
        changes.append('-' + ','.join(result['roles_revoked']))
    for key, sign in (('privileges_granted', '+'), ('privileges_revoked', '-')):
        for scope, privileges in sorted((result.get(key) or {}).items()):
            changes.append('%s%s on %s' % (sign, ','.join(privileges), scope))
    if result.get('changed') and not changes:
        changes.append('updated')
    return changes


def _policy_cell(policy_result, name, state, check_mode):
    if not policy_result or policy_result.get('skipped'):
        return 'not managed'
    entry = _by_name(policy_result.get('policies')).get(name)
    changed = bool(entry and entry.get('changed'))
    if state == 'absent':
        return '%s %s' % (('would remove' if check_mode else 'removed') if changed else 'absent', name)
    if entry is None:
        return '%s (not written)' % name
    return '%s (%s)' % (name, ('would change' if check_mode else 'changed') if changed else 'in place')


def _login_cell(login, name, expect_failure, check_mode):
    if not login or login.get('skipped'):
        # Check mode creates no user and writes no policy, so there is nothing a login could prove.
        return 'not checked (check mode)' if check_mode else 'not checked'
    entry = _by_name(login.get('logins'), 'db_user').get(name)
    if entry is None:
        return 'FAILED' if login.get('failed') else 'not checked'
    if entry.get('logged_in'):
        return 'LOGGED IN (expected refusal)' if expect_failure else 'yes (TLS %s)' % entry.get('tls_version', '?')
    return 'refused, as expected' if expect_failure else 'FAILED'


def _changed_cell(changes, failure, check_mode):
    done = ', '.join(changes)
    if failure:
        before = ' (%s: %s)' % ('would change' if check_mode else 'done', done) if done else ''
        return 'FAILED at %s%s' % (failure.get('step', '?'), before)
    if check_mode:
        return 'would change: %s' % done if done else 'nothing would change'
    return done or 'nothing'


def target_report(target, users, steps=None, mode='per_user', prefix=None, policy_state='present', expect_login_failure=False,
                  check_mode=False):
    """One summary row per database user on one target, from the results the role registered.

    `steps` holds the registered results by step name (iam_auth, parameter_group, db_users, policy, login) and, if a
    step failed, `failure` as {step, msg}: the row then says the step, the reason and what was done before it. In
    `check_mode` the results are what would change, and the row says so.
    """
    steps = steps or {}
    failure = steps.get('failure') or {}
    db_result = steps.get('db_users') or {}
    per_user = _by_name(db_result.get('users'))
    target_changes = _target_changes(steps.get('iam_auth'), steps.get('parameter_group'))
    rows = []
    for name in user_names(users):
        if mode == 'abac':
            name_of_policy = policy_name('abac', prefix)
        else:
            name_of_policy = policy_name(name, prefix)
        row = {
            'target': target.get('identifier', '?'),
            'engine': target.get('engine') or '?',
            'iam_auth': _iam_auth(target, steps.get('iam_auth'), check_mode),
            'user': name,
            'policy': _policy_cell(steps.get('policy'), name_of_policy, policy_state, check_mode),
            'login': _login_cell(steps.get('login'), name, expect_login_failure, check_mode),
            'changed': _changed_cell(target_changes + _user_changes(per_user.get(name)), failure, check_mode),
            'failed': bool(failure),
            'error': failure.get('msg', '') if failure else '',
        }
        if failure:
            row['step'] = failure.get('step', '?')
        rows.append(row)
    return rows


def unreported_row(target):
    """The row of a target whose host stopped before it could report (an unexpected error, shown in the task output)."""
    target = target if isinstance(target, dict) else {'identifier': str(target)}
    return {'target': target.get('identifier', '?'), 'engine': target.get('engine') or '?',
            'iam_auth': 'on' if target.get('iam_auth_enabled') else 'off', 'user': '-', 'policy': '-', 'login': 'not checked',
            'changed': 'FAILED at an unexpected step', 'failed': True, 'step': 'an unexpected step',
            'error': 'the host stopped before reporting; see its failed task above'}


def summary_table(rows):
    """The rows as aligned text lines, header first, for `ansible.builtin.debug`."""
    return aligned_lines(REPORT_COLUMNS, [row for row in rows or [] if isinstance(row, dict)])


def failed_targets(rows):
    """`target: step: reason` once per failed target, for the closing failure message."""
    seen, out = set(), []
    for row in rows or []:
        if isinstance(row, dict) and row.get('failed') and row.get('target') not in seen:
            seen.add(row['target'])
            step = row.get('step') or row.get('changed', '').replace('FAILED at ', '')
            out.append('%s: %s: %s' % (row['target'], step, row.get('error', '')))
    return out


def target_entry(run, target):
    """This target's entry of a module run over many targets (its `results`, matched by identifier and region), the run
    itself when it failed before reaching any target, or {} when it left the target out or was skipped."""
    run = run or {}
    if 'results' not in run:
        return run if run.get('failed') else {}
    for entry in run['results']:
        if (entry.get('identifier'), entry.get('region')) == (target.get('identifier'), target.get('region')):
            return entry
    return {}


def succeeded_targets(targets, runs):
    """The targets whose entry failed in none of these runs over many targets (see target_entry)."""
    return [target for target in targets or [] if not any(target_entry(run, target).get('failed') for run in runs)]


class FilterModule(object):
    def filters(self):
        return {
            'target_report': target_report,
            'summary_table': summary_table,
            'failed_targets': failed_targets,
            'unreported_row': unreported_row,
            'target_entry': target_entry,
            'succeeded_targets': succeeded_targets,
        }
