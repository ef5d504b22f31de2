# -*- coding: utf-8 -*-
# Copyright: rdsiam.auth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters audit.yml uses: the audit document from what it read, its console table, and the findings that fail a CI gate.

Thin: the join and the findings are plugins/module_utils/_audit_findings.py, pure functions with their own unit tests.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.rdsiam.auth.plugins.module_utils._audit_findings import SEVERITIES, build_audit, failing_findings
from ansible_collections.rdsiam.auth.plugins.module_utils._text_table import aligned_lines

TABLE_COLUMNS = (('target', 'target'), ('engine', 'engine'), ('iam_auth', 'IAM auth'), ('accounts', 'logins'),
                 ('iam_users', 'IAM users'), ('can_connect', 'principal x user pairs that connect'), ('findings', 'findings'))


def audit_document(targets, db_info, grants_info, hardening=None, generated_at=None):
    """The audit document (audit.json): targets, principals, access rows with can_connect, findings and a summary."""
    return build_audit(targets, _results(db_info), grants_info, _results(hardening), generated_at)


def audit_db_users(db_info):
    """{identifier: [names of its IAM users]} from rds_iam_db_user_info with targets: the cells the access matrix fills."""
    return dict((entry['identifier'], sorted(set(account['name'] for account in entry.get('accounts') or [] if account.get('iam'))))
                for entry in _results(db_info) if not entry.get('failed'))


def _results(run):
    """A module run over many targets, or its results list, as the list of per-target entries."""
    if isinstance(run, dict):
        return run.get('results') or []
    return run or []


def _findings_cell(findings):
    counts = [(severity, len([finding for finding in findings if finding['severity'] == severity])) for severity in SEVERITIES]
    return ', '.join('%d %s' % (count, severity) for severity, count in counts if count) or 'none'


def audit_table(audit):
    """One aligned line per target, header first, then the totals: for ansible.builtin.debug."""
    rows = []
    for target in audit.get('targets') or []:
        identifier = target['identifier']
        findings = [finding for finding in audit.get('findings') or [] if finding.get('target') == identifier]
        accounts = target.get('accounts')
        rows.append(dict(
            target=identifier, engine=target.get('engine'), iam_auth='on' if target.get('iam_auth_enabled') else 'off',
            accounts=len(accounts) if target.get('readable') else 'UNREADABLE',
            iam_users=len([account for account in accounts or [] if account.get('iam')]) if target.get('readable') else '?',
            can_connect=len([row for row in audit.get('access') or [] if row.get('target') == identifier and row.get('can_connect')]),
            findings=_findings_cell(findings)))
    fleet_wide = [finding for finding in audit.get('findings') or [] if not finding.get('target')]
    rows.append(dict(target='(account-wide)', engine='', iam_auth='', accounts='', iam_users='', can_connect='',
                     findings=_findings_cell(fleet_wide)))
    return aligned_lines(TABLE_COLUMNS, rows)


def audit_failing(audit, fail_on):
    """`severity id - evidence` for each finding at fail_on's severity or worse; [] for fail_on never."""
    if fail_on not in SEVERITIES + ('never', None):
        raise AnsibleFilterError('rdsiam_audit_fail_on is %r: give one of %s or never' % (fail_on, ', '.join(SEVERITIES)))
    return ['%s %s - %s' % (finding['severity'], finding['id'], finding['evidence']) for finding in failing_findings(audit, fail_on)]


class FilterModule(object):
    def filters(self):
        return {'audit_db_users': audit_db_users, 'audit_document': audit_document, 'audit_table': audit_table, 'audit_failing': audit_failing}
