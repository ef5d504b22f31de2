# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The audit: who can connect as whom on the fleet, and where IAM and the databases drift apart.

This is a private helper of the rdsiam.auth collection, for internal use only.
Its names and behaviour may change without notice; do not import it from other collections.

A pure join over what was read once: the targets as rds_iam_fleet_info returns them, every target's accounts from
rds_iam_db_user_info (with targets), the grants and access rows of rds_iam_grants_info, and optionally a check mode
run of rds_iam_parameter_group that says which hardening parameters are missing. build_audit() returns the document
audit.yml writes as audit.json; nothing here calls AWS or a database, so every finding has a unit test.

A target that could not be read is a finding for that target, and its cells are unknown (can_connect None), never
"cannot connect"; the same holds for a principal whose policies could not be read.
"""

from __future__ import annotations

import re

SCHEMA = 'rdsiam.auth/audit/1'
SEVERITIES = ('critical', 'high', 'medium', 'low', 'info')
AUTH_ERROR_LOG = 'iam-db-auth-error'
_VARIABLE_RE = re.compile(r'\$\{aws:PrincipalTag/([^}]+)\}')
# What a missing hardening parameter lets happen, by the parameter the parameter group module would set.
_HARDENING = {
    'rds.force_ssl': ('high', 'clients may connect without TLS', 'turn on force_ssl with rds_iam_parameter_group'),
    'require_secure_transport': ('high', 'clients may connect without TLS', 'turn on force_ssl with rds_iam_parameter_group'),
    'log_connections': ('medium', 'connections are not logged, so logins cannot be traced',
                        'turn on log_connections with rds_iam_parameter_group'),
    'rds.restrict_password_commands': ('medium', 'IAM users may give themselves a password',
                                       'turn on restrict_password_commands with rds_iam_parameter_group and reboot'),
}
_DECIDED = ('allowed', 'conditional')


def severity_rank(severity):
    """0 for critical up to 4 for info; what rdsiam_audit_fail_on compares."""
    return SEVERITIES.index(severity)


def _finding(rule, severity, target, db_user, principal, evidence, fix, key=None):
    """One finding; its id is rule:target:db_user:principal, or rule:target:key when something else (a parameter name)
    tells one finding of the rule from another on the target."""
    parts = [rule, target or '*'] + ([key] if key else [db_user or '*', principal or '*'])
    return dict(id=':'.join(parts), rule=rule, severity=severity, target=target, db_user=db_user, principal=principal,
                evidence=evidence, fix=fix)


def _is_plain_name(value):
    return bool(value) and not any(char in value for char in '*?$')


class _Fleet(object):
    """The targets and their accounts, indexed for the join."""

    def __init__(self, targets, db_info):
        self.targets = sorted(targets or [], key=lambda target: (target.get('region') or '', target.get('identifier') or ''))
        by_id = dict((entry.get('identifier'), entry) for entry in db_info or [])
        self.read = {}
        self.errors = {}
        for target in self.targets:
            entry = by_id.get(target.get('identifier'))
            if entry is None:
                self.errors[target['identifier']] = 'not read: no rds_iam_db_user_info result for it'
            elif entry.get('failed'):
                self.errors[target['identifier']] = entry.get('msg') or 'could not be read'
            else:
                self.read[target['identifier']] = entry.get('accounts') or []
        self.by_resource_id = dict((target.get('resource_id'), target) for target in self.targets)
        # One lookup per access row: a fleet of 10 targets and 200 principals has about 100 000 of them.
        self._by_name = {}
        for identifier, accounts in self.read.items():
            for account in accounts:
                self._by_name.setdefault((identifier, account.get('name')), []).append(account)

    def accounts(self, identifier, name):
        return self._by_name.get((identifier, name), [])

    def iam_users(self, identifier):
        return [account for account in self.read.get(identifier, []) if account.get('iam')]


def _can_connect(target, readable, accounts, decision):
    """True, False, or None when it cannot be known (principal or, for a principal IAM allows, target unreadable; or
    conditional)."""
    if decision == 'unknown':
        return None
    if decision not in _DECIDED or not target.get('iam_auth_enabled'):
        return False
    if not readable:
        return None
    usable = [account for account in accounts if account.get('iam') and account.get('can_login') and not account.get('locked')]
    if not usable:
        return False
    return True if decision == 'allowed' else None


def access_rows(fleet, access):
    rows = []
    targets = dict((target.get('identifier'), target) for target in fleet.targets)
    for row in access or []:
        identifier = row.get('target')
        target = targets.get(identifier, {})
        readable = identifier in fleet.read
        accounts = fleet.accounts(identifier, row.get('db_user'))
        rows.append(dict(
            principal=row.get('principal'), principal_kind=row.get('principal_kind'), target=identifier,
            db_user=row.get('db_user'), decision=row.get('decision'), how=row.get('how'), reason=row.get('reason'),
            conditions=row.get('conditions') or [],
            db_user_exists=bool(accounts) if readable else None,
            db_user_iam=any(account.get('iam') for account in accounts) if readable else None,
            can_connect=_can_connect(target, readable, accounts, row.get('decision'))))
    return sorted(rows, key=lambda row: (row['principal'] or '', row['target'] or '', row['db_user'] or ''))


def _target_findings(fleet, hardening):
    findings = []
    changes = dict((entry.get('identifier'), entry) for entry in hardening or [])
    for target in fleet.targets:
        identifier = target['identifier']
        if identifier in fleet.errors:
            findings.append(_finding(
                'unreadable_target', 'high', identifier, None, None, fleet.errors[identifier],
                'make the target reachable with a working admin login (login_overrides, login_secret), then audit again'))
        iam_users = fleet.iam_users(identifier)
        if iam_users and not target.get('iam_auth_enabled'):
            findings.append(_finding(
                'iam_users_flag_off', 'high', identifier, None, None,
                '%d IAM user(s) (%s) but IAM database authentication is off: none of them can log in'
                % (len(iam_users), ', '.join(sorted(set(account['name'] for account in iam_users)))),
                'turn IAM database authentication on with rds_iam_auth, or drop the IAM users'))
        for account in iam_users:
            findings.extend(_account_findings(identifier, account))
        if target.get('kind') != 'proxy' and AUTH_ERROR_LOG not in (target.get('log_exports') or []):
            findings.append(_finding(
                'auth_error_log_not_exported', 'low', identifier, None, None,
                'the %s log is not exported to CloudWatch Logs (exports: %s)' % (AUTH_ERROR_LOG, ', '.join(target.get('log_exports') or []) or 'none'),
                'add %s to the target\'s CloudWatch Logs exports so refused logins are kept' % AUTH_ERROR_LOG))
        findings.extend(_hardening_findings(identifier, changes.get(identifier)))
    return findings


def _account_findings(identifier, account):
    findings = []
    name = account['name']
    if account.get('has_password'):
        findings.append(_finding(
            'iam_user_with_password', 'high', identifier, name, None,
            '%s is an IAM user and also has a password' % name,
            'remove the password (ALTER ROLE ... PASSWORD NULL, or recreate the account with the plugin only)'))
    via = account.get('iam_via') or []
    if len(via) > 1:
        findings.append(_finding(
            'inherited_rds_iam', 'high', identifier, name, None,
            '%s inherits rds_iam through %s: it can only log in with a token, so a password login is locked out'
            % (name, ' -> '.join(via)),
            'revoke %s from %s, or grant rds_iam to %s directly if it is meant to be an IAM user' % (via[0], name, name)))
    return findings


def _hardening_findings(identifier, entry):
    if not entry:
        return []
    if entry.get('failed'):
        return [_finding('hardening_unknown', 'low', identifier, None, None, entry.get('msg') or 'the parameter group could not be read',
                         'give the audit rds:DescribeDBParameters on the target\'s parameter group')]
    findings = []
    for change in entry.get('changes') or []:
        severity, risk, fix = _HARDENING.get(change.get('name'), ('low', 'not set as recommended', 'set it with rds_iam_parameter_group'))
        findings.append(_finding(
            'hardening_missing', severity, identifier, None, None,
            '%s is %s, not %s: %s' % (change.get('name'), change.get('before') if change.get('before') is not None else 'unset',
                                      change.get('after'), risk), fix, key=change.get('name')))
    return findings


def _grant_findings(fleet, grants, regions):
    findings = []
    any_user = set()
    for grant in grants or []:
        if grant.get('effect') != 'allow':
            continue
        principal, db_user, target = grant.get('principal'), grant.get('db_user'), grant.get('target')
        where = '%s statement %s' % (grant.get('policy'), grant.get('statement'))
        if grant.get('how') == 'administrator' or (db_user == '*' and grant.get('resource_id') == '*'):
            if principal not in any_user:
                any_user.add(principal)
                findings.append(_finding(
                    'any_user_principal', 'high', None, '*', principal,
                    '%s may connect as any database user on every target (%s, %s)' % (principal, grant.get('how'), where),
                    'replace the grant with rds_iam_policy grants for the users this principal needs'))
            continue
        kind = grant.get('resource_id_kind')
        if kind == 'identifier':
            findings.append(_finding(
                'identifier_not_resource_id', 'high', grant.get('resource_id'), db_user, principal,
                '%s names the target by its identifier %s instead of its resource id: it grants nothing'
                % (where, grant.get('resource_id')),
                'write the target\'s resource id (%s) in the ARN; rds_iam_policy resolves it'
                % ((_target_by_identifier(fleet, grant.get('resource_id')) or {}).get('resource_id') or 'db-... / cluster-...')))
            continue
        if grant.get('how') == 'wildcard':
            findings.append(_finding(
                'wildcard_grant', 'medium', target, db_user, principal,
                '%s allows %s' % (where, grant.get('resource')),
                'grant explicit database users on explicit resource ids with rds_iam_policy'))
        if kind == 'resource_id' and target is None and grant.get('region') in regions:
            findings.append(_finding(
                'deleted_target_grant', 'medium', grant.get('resource_id'), db_user, principal,
                '%s grants %s, a resource id no audited target has (deleted, or outside the selection)' % (where, grant.get('resource')),
                'remove the grant with rds_iam_policy (state absent) if the database is gone'))
        elif target in fleet.read and _is_plain_name(db_user) and not fleet.accounts(target, db_user):
            findings.append(_finding(
                'dangling_grant', 'medium', target, db_user, principal,
                '%s allows %s on %s, where no such database user exists' % (where, db_user, target),
                'create the user with rds_iam_db_user, or remove the grant with rds_iam_policy'))
    return findings


def _target_by_identifier(fleet, identifier):
    return next((target for target in fleet.targets if target.get('identifier') == identifier), None)


def _abac_findings(principals, grants):
    findings = []
    by_arn = dict((principal.get('arn'), principal) for principal in principals or [])
    for grant in grants or []:
        match = _VARIABLE_RE.search(grant.get('db_user') or '')
        if grant.get('effect') != 'allow' or not match:
            continue
        key = match.group(1)
        principal = by_arn.get(grant.get('principal')) or {}
        carries = key in (principal.get('tags') or {})
        if principal.get('kind') == 'role':
            # A role's sessions may be tagged at assume time, when its trust policy allows sts:TagSession.
            carries = carries or any(entry.get('tag_session') for entry in principal.get('assumable_by') or [])
        if not carries:
            findings.append(_finding(
                'abac_tag_uncarried', 'medium', grant.get('target'), grant.get('db_user'), grant.get('principal'),
                '%s grants ${aws:PrincipalTag/%s} but %s has no tag %s and its sessions cannot be tagged: it grants nothing'
                % (grant.get('policy'), key, grant.get('principal'), key),
                'tag the principal with %s=<database user>, or allow sts:TagSession in the role\'s trust policy' % key))
    return findings


def _orphan_findings(fleet, access, unreadable_principals):
    findings = []
    # An administrator may connect as anyone, which makes no user its own: such users stay orphans.
    granted = set((row.get('target'), row.get('db_user')) for row in access or []
                  if row.get('decision') in _DECIDED and row.get('how') != 'administrator')
    for identifier in sorted(fleet.read):
        for name in sorted(set(account['name'] for account in fleet.iam_users(identifier))):
            if (identifier, name) in granted:
                continue
            evidence = 'no IAM principal may connect as %s on %s' % (name, identifier)
            if unreadable_principals:
                evidence += ' (%d principal(s) could not be read)' % unreadable_principals
            findings.append(_finding(
                'orphan_user', 'medium' if not unreadable_principals else 'low', identifier, name, None, evidence,
                'drop or lock the user with rds_iam_db_user, or grant it to its owner with rds_iam_policy'))
    return findings


def _principal_findings(principals, scps):
    findings = []
    for principal in principals or []:
        if principal.get('readable') is False:
            findings.append(_finding(
                'unknown_principal', 'medium', None, None, principal.get('arn'),
                'the policies of %s could not be read: its access is unknown' % principal.get('arn'),
                'give the audit iam:GetAccountAuthorizationDetails (the IAM read-only policy)'))
    status = (scps or {}).get('status')
    if status == 'not_readable':
        findings.append(_finding(
            'scps_not_readable', 'info', None, None, None,
            'service control policies could not be read: %s' % ((scps or {}).get('msg') or 'access denied'),
            'run the audit with a principal that may read Organizations policies to include SCPs'))
    return findings


def _cells(access):
    """rds_iam_grants_info's access entries (one per principal, target and decision, with the db_users it covers) as
    one row per cell, the shape of the audit's access matrix."""
    for entry in access or []:
        for db_user in entry.get('db_users') or []:
            yield dict(entry, db_user=db_user)


def build_audit(targets, db_info, grants_info, hardening=None, generated_at=None):
    """The audit document (audit.json) from what the audit read; see the module docstring."""
    fleet = _Fleet(targets, db_info)
    grants_info = grants_info or {}
    principals = grants_info.get('principals') or []
    grants = grants_info.get('grants') or []
    access = list(_cells(grants_info.get('access')))
    regions = set(target.get('region') for target in fleet.targets)
    unreadable = len([principal for principal in principals if principal.get('readable') is False])
    findings = (_target_findings(fleet, hardening) + _grant_findings(fleet, grants, regions)
                + _abac_findings(principals, grants) + _orphan_findings(fleet, access, unreadable)
                + _principal_findings(principals, grants_info.get('scps')))
    findings = sorted(dict((finding['id'], finding) for finding in findings).values(),
                      key=lambda finding: (severity_rank(finding['severity']), finding['id']))
    rows = access_rows(fleet, access)
    return dict(
        schema=SCHEMA, generated_at=generated_at,
        account=next((target.get('account_id') for target in fleet.targets if target.get('account_id')), None),
        regions=sorted(region for region in regions if region),
        targets=[_target_entry(target, fleet) for target in fleet.targets],
        principals=sorted((_principal_entry(principal) for principal in principals), key=lambda entry: entry.get('arn') or ''),
        scps=grants_info.get('scps'),
        access=rows, findings=findings,
        summary=dict(
            targets=len(fleet.targets), unreadable_targets=len(fleet.errors), principals=len(principals),
            db_users=sum(len(accounts) for accounts in fleet.read.values()),
            can_connect=len([row for row in rows if row['can_connect']]),
            findings=dict((severity, len([finding for finding in findings if finding['severity'] == severity])) for severity in SEVERITIES)))


def _target_entry(target, fleet):
    identifier = target.get('identifier')
    return dict(
        identifier=identifier, kind=target.get('kind'), engine=target.get('engine'), dialect=target.get('dialect'),
        region=target.get('region'), resource_id=target.get('resource_id'), endpoint=target.get('endpoint'),
        port=target.get('port'), iam_auth_enabled=bool(target.get('iam_auth_enabled')), readable=identifier in fleet.read,
        error=fleet.errors.get(identifier), accounts=fleet.read.get(identifier))


def _principal_entry(principal):
    return dict((key, value) for key, value in principal.items() if key != 'tags')


def failing_findings(audit, fail_on):
    """The findings at fail_on's severity or worse (fail_on None or 'never': none)."""
    if not fail_on or fail_on == 'never':
        return []
    return [finding for finding in audit.get('findings') or [] if severity_rank(finding['severity']) <= severity_rank(fail_on)]
