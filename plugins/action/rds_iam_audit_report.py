# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rds_iam_audit_report: the audit join and its reports, on the controller.

An action plugin rather than a module because everything it needs is already on the controller: shipping megabytes of
registered results to a module, or joining them in a set_fact and templating them into three copy tasks, cost more than
every read of the audit together. The join and the rendering are module_utils (_audit_findings, _audit_report), pure
functions with their own unit tests; this file only validates, writes and summarises.
"""

from __future__ import annotations

import datetime
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.rdsiam.auth.plugins.module_utils._audit_findings import SEVERITIES, build_audit, failing_findings
from ansible_collections.rdsiam.auth.plugins.module_utils._audit_report import to_console, to_csv, to_html

ARGUMENT_SPEC = dict(
    targets=dict(type='list', elements='dict', required=True),
    db_user_info=dict(type='raw', required=True),
    grants_info=dict(type='dict', required=True),
    hardening=dict(type='raw'),
    dest=dict(type='path', default='rdsiam-audit'),
    fail_on=dict(type='str', choices=list(SEVERITIES) + ['never'], default='never'),
    generated_at=dict(type='str'),
)
REPORTS = (('json', 'audit.json'), ('csv', 'access.csv'), ('html', 'audit.html'))


def target_results(run, option):
    """A module run over many targets (its registered result) or its results list, as the list of per-target entries.

    A skipped or absent run (None, or a result without results) is no entry at all."""
    if run is None:
        return []
    if isinstance(run, dict):
        if run.get('failed'):
            raise AnsibleActionFail('%s is a failed run (%s): the audit needs its per-target results; fix the failing task '
                                    'or leave %s out' % (option, run.get('msg') or 'no message', option))
        run = run.get('results') or []
    if not isinstance(run, list) or not all(isinstance(entry, dict) for entry in run):
        raise AnsibleActionFail('%s must be a registered result with results, or its results list of dicts; got %s'
                                % (option, type(run).__name__))
    return run


def write_private(directory, name, text):
    """Write text to directory/name readable by its owner only, replacing the file whole so that no reader sees half a report."""
    fd, temporary = tempfile.mkstemp(dir=directory, prefix='.%s.' % name)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8', newline='') as handle:
            handle.write(text)
        os.replace(temporary, os.path.join(directory, name))
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_reports(audit, dest):
    """The three reports of the audit in dest (created 0700 when missing): {format: absolute path}."""
    import json  # the only caller, once per play: kept off the import of the plugin

    directory = os.path.abspath(dest)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        texts = dict(json=json.dumps(audit, indent=4, sort_keys=True) + '\n', csv=to_csv(audit), html=to_html(audit))
        for key, name in REPORTS:
            write_private(directory, name, texts[key])
    except OSError as error:
        raise AnsibleActionFail('cannot write the audit reports to %s: %s; give a dest the controller user may write to'
                                % (directory, error.strerror or error))
    return dict((key, os.path.join(directory, name)) for key, name in REPORTS)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        generated_at = args['generated_at'] or datetime.datetime.now(datetime.timezone.utc).isoformat()
        audit = build_audit(args['targets'], target_results(args['db_user_info'], 'db_user_info'), args['grants_info'],
                            target_results(args['hardening'], 'hardening'), generated_at)
        result.update(
            changed=False, reports=write_reports(audit, args['dest']), summary=to_console(audit), counts=audit['summary'],
            failing=['%s %s - %s' % (finding['severity'], finding['id'], finding['evidence'])
                     for finding in failing_findings(audit, args['fail_on'])])
        return result
