# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The audit document (schema rdsiam.auth/audit/1) rendered for people: access.csv, a self-contained audit.html and the
console summary.

Pure functions of the audit dict, no I/O: the audit playbook writes what they return. The CSV opens in a spreadsheet,
so a cell that a spreadsheet would run as a formula is neutralised. The HTML page must open on an auditor's machine
without any network and must not be turned against its reader by the names it shows (principal names, reasons and
evidence come from IAM and the databases, i.e. from whoever could write there): every value is escaped, the page
loads nothing from anywhere (inline CSS and JS only, and a Content-Security-Policy that forbids everything else),
and no data is handed to the script except through escaped DOM attributes.

This is a private helper of the rdsiam.auth collection, for internal use only.
Its names and behaviour may change without notice; do not import it from other collections.
"""

from __future__ import annotations

import csv
import io
from html import escape

from ansible_collections.rdsiam.auth.plugins.module_utils._text_table import aligned_lines

CSV_COLUMNS = ('principal', 'principal_kind', 'target', 'db_user', 'decision', 'can_connect', 'how', 'reason')
SEVERITIES = ('critical', 'high', 'medium', 'low', 'info')
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
# OWASP's list: a spreadsheet evaluates a cell starting with these (tab and carriage return hide the others).
_FORMULA_STARTS = ('=', '+', '-', '@', '\t', '\r')
_FINDING_COLUMNS = (('id', 'id'), ('rule', 'rule'), ('target', 'target'), ('db_user', 'database user'),
                    ('principal', 'principal'), ('evidence', 'evidence'), ('fix', 'fix'))
_CONSOLE_COLUMNS = (('target', 'target'), ('engine', 'engine'), ('iam_auth', 'IAM auth'), ('accounts', 'logins'),
                    ('iam_users', 'IAM users'), ('can_connect', 'principal x user pairs that connect'), ('findings', 'findings'))
_SUMMARY = (('targets', 'targets'), ('unreadable_targets', 'unreadable targets'), ('principals', 'principals'),
            ('db_users', 'database users'), ('can_connect', 'principal x user pairs that can connect'))


# --- CSV -------------------------------------------------------------------------------------------

def _csv_text(value):
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def safe_cell(value):
    """The cell's text, with a leading ' when a spreadsheet would read it as a formula."""
    text = _csv_text(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def to_csv(audit):
    """access.csv: a header, then one row per access entry (RFC 4180: CRLF line ends, quotes only where needed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\r\n', quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    for entry in (audit or {}).get('access') or []:
        row = dict(entry)
        if row.get('can_connect') is None:
            row['can_connect'] = 'unknown'
        writer.writerow([safe_cell(row.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()


# --- HTML ------------------------------------------------------------------------------------------

def _e(value):
    """Text or attribute value, escaped (quotes too); None is empty."""
    return escape('' if value is None else str(value), quote=True)


def cell_text(entry):
    """What a matrix cell shows: 'yes' (can connect), '?' (conditional), 'unknown', or '' (no access)."""
    if not entry:
        return ''
    if entry.get('can_connect') is True:
        return 'yes'
    decision = entry.get('decision')
    if decision == 'conditional':
        return '?'
    if decision == 'unknown' or (decision == 'allowed' and entry.get('can_connect') is None):
        return 'unknown'
    return ''


def _summary_html(audit):
    summary = audit.get('summary') or {}
    items = ['<dt>%s</dt><dd data-summary="%s">%s</dd>' % (_e(title), _e(key), _e(summary.get(key, 0))) for key, title in _SUMMARY]
    counts = summary.get('findings') or {}
    items += ['<dt>%s findings</dt><dd data-summary="findings-%s">%s</dd>' % (_e(severity), _e(severity), _e(counts.get(severity, 0)))
              for severity in SEVERITIES]
    meta = 'account %s, regions %s, generated %s' % (_e(audit.get('account')), _e(', '.join(audit.get('regions') or [])),
                                                     _e(audit.get('generated_at')))
    return '<section id="summary"><h2>Summary</h2><p class="meta">%s</p><dl>%s</dl></section>' % (meta, ''.join(items))


def _findings_html(findings):
    boxes = ''.join('<label><input type="checkbox" class="severity-filter" value="%s" checked> %s</label>' % (severity, severity)
                    for severity in SEVERITIES)
    head = ''.join('<th>%s</th>' % _e(title) for _key, title in _FINDING_COLUMNS)
    groups = []
    for severity in SEVERITIES:
        rows = [finding for finding in findings if finding.get('severity') == severity]
        body = ''.join('<tr class="finding" data-severity="%s" data-finding-id="%s">%s</tr>' % (
            _e(severity), _e(finding.get('id')), ''.join('<td>%s</td>' % _e(finding.get(key)) for key, _title in _FINDING_COLUMNS))
            for finding in rows)
        groups.append('<section class="severity-group sev-%s" data-severity="%s"><h3>%s <span class="count" data-severity-count="%s">%d</span>'
                      '</h3><table><thead><tr>%s</tr></thead><tbody>%s</tbody></table></section>'
                      % (severity, severity, severity, severity, len(rows), head, body))
    return ('<section id="findings"><h2>Findings</h2><div class="filters">%s <input type="search" id="finding-filter" '
            'placeholder="filter findings" aria-label="filter findings"></div>%s</section>' % (boxes, ''.join(groups)))


def _matrix_html(access):
    columns = sorted({(entry.get('target') or '', entry.get('db_user') or '') for entry in access})
    principals = sorted({entry.get('principal') or '' for entry in access})
    cells = {(entry.get('principal') or '', entry.get('target') or '', entry.get('db_user') or ''): entry for entry in access}
    head = '<tr><th>principal</th>%s</tr>' % ''.join('<th><span class="target">%s</span><br>%s</th>' % (_e(target), _e(user))
                                                     for target, user in columns)
    rows = []
    for principal in principals:
        tds = []
        for target, user in columns:
            entry = cells.get((principal, target, user))
            if entry is None:
                # No access row: nothing allows it. A bare cell keeps a fleet's mostly empty grid small.
                tds.append('<td></td>')
                continue
            text = cell_text(entry)
            tds.append('<td class="cell c-%s" data-principal="%s" data-target="%s" data-db-user="%s" data-decision="%s" title="%s">%s</td>' % (
                {'yes': 'yes', '?': 'cond', 'unknown': 'unknown'}.get(text, 'none'), _e(principal), _e(target), _e(user),
                _e(entry.get('decision')), _e(entry.get('reason')), _e(text)))
        rows.append('<tr class="matrix-row" data-principal="%s"><th>%s</th>%s</tr>' % (_e(principal), _e(principal), ''.join(tds)))
    return ('<section id="matrix"><h2>Access matrix</h2><p class="legend">yes = can connect, ? = conditional, unknown = not '
            'readable, empty = no access</p><input type="search" id="principal-filter" placeholder="filter principals" '
            'aria-label="filter principals"><table id="access-matrix"><thead>%s</thead><tbody>%s</tbody></table></section>'
            % (head, ''.join(rows)))


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dd{margin:0;font-weight:bold}
.meta,.legend{color:#555}.target{font-weight:bold}.hidden{display:none}
.cell{text-align:center;min-width:4em}.c-yes{background:#d4f7d4}.c-cond{background:#fff3c4}.c-unknown{background:#e4e4e4}
.sev-critical h3{color:#900}.sev-high h3{color:#c30}.sev-medium h3{color:#a70}.sev-low h3{color:#357}.sev-info h3{color:#555}
.filters label{margin-right:1em}
"""

# Reads only the DOM: the filters hide rows; data-script on <body> shows the inline script ran under the CSP.
_SCRIPT = """
(function () {
  function text(el) { return (el.textContent || '').toLowerCase(); }
  function applyFindings() {
    var shown = {};
    document.querySelectorAll('.severity-filter').forEach(function (box) { shown[box.value] = box.checked; });
    var needle = document.getElementById('finding-filter').value.toLowerCase();
    document.querySelectorAll('.severity-group').forEach(function (group) {
      group.classList.toggle('hidden', !shown[group.getAttribute('data-severity')]);
    });
    document.querySelectorAll('tr.finding').forEach(function (row) {
      row.classList.toggle('hidden', needle !== '' && text(row).indexOf(needle) < 0);
    });
  }
  function applyPrincipals() {
    var needle = document.getElementById('principal-filter').value.toLowerCase();
    document.querySelectorAll('tr.matrix-row').forEach(function (row) {
      var name = (row.getAttribute('data-principal') || '').toLowerCase();
      row.classList.toggle('hidden', needle !== '' && name.indexOf(needle) < 0);
    });
  }
  document.querySelectorAll('.severity-filter').forEach(function (box) { box.addEventListener('change', applyFindings); });
  document.getElementById('finding-filter').addEventListener('input', applyFindings);
  document.getElementById('principal-filter').addEventListener('input', applyPrincipals);
  applyFindings();
  applyPrincipals();
  document.body.setAttribute('data-script', 'ran');
})();
"""


def to_html(audit):
    """audit.html: summary, findings by severity (filterable), the access matrix (filterable); self-contained."""
    audit = audit or {}
    access = [entry for entry in audit.get('access') or [] if isinstance(entry, dict)]
    findings = [finding for finding in audit.get('findings') or [] if isinstance(finding, dict)]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta http-equiv="Content-Security-Policy" content="%s">'
            '<meta name="referrer" content="no-referrer"><title>rdsiam.auth audit %s</title><style>%s</style></head>'
            '<body><h1>rdsiam.auth audit</h1>%s%s%s<script>%s</script></body></html>\n'
            % (CSP, _e(audit.get('account')), _STYLE, _summary_html(audit), _findings_html(findings), _matrix_html(access), _SCRIPT))


# --- console ---------------------------------------------------------------------------------------

def _severity_counts(findings):
    counts = [(severity, len([finding for finding in findings if finding.get('severity') == severity])) for severity in SEVERITIES]
    return ', '.join('%d %s' % (count, severity) for severity, count in counts if count) or 'none'


def to_console(audit):
    """One aligned line per target, header and rule first, then the account-wide findings: the audit's console summary."""
    findings = {}
    for finding in audit.get('findings') or []:
        findings.setdefault(finding.get('target'), []).append(finding)
    connecting = {}
    for row in audit.get('access') or []:
        if row.get('can_connect'):
            connecting[row.get('target')] = connecting.get(row.get('target'), 0) + 1
    rows = []
    for target in audit.get('targets') or []:
        identifier = target['identifier']
        readable = target.get('readable')
        accounts = target.get('accounts') or []
        rows.append(dict(
            target=identifier, engine=target.get('engine'), iam_auth='on' if target.get('iam_auth_enabled') else 'off',
            accounts=len(accounts) if readable else 'UNREADABLE',
            iam_users=len([account for account in accounts if account.get('iam')]) if readable else '?',
            can_connect=connecting.get(identifier, 0), findings=_severity_counts(findings.get(identifier, []))))
    rows.append(dict(target='(account-wide)', engine='', iam_auth='', accounts='', iam_users='', can_connect='',
                     findings=_severity_counts(findings.get(None, []))))
    return aligned_lines(_CONSOLE_COLUMNS, rows)
