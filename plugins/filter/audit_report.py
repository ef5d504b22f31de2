# -*- coding: utf-8 -*-
# Copyright: rdsiam.auth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that render an audit document for people: access.csv and the self-contained audit.html.

Thin: the rendering is plugins/module_utils/_audit_report.py, pure functions with their own unit tests.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.rdsiam.auth.plugins.module_utils._audit_report import to_csv, to_html


def _audit(audit, name):
    if not isinstance(audit, Mapping):
        raise AnsibleFilterError('%s expects the audit document (a dict from rdsiam.auth.audit_document), not %s; '
                                 'pass the audit dict itself' % (name, type(audit).__name__))
    return audit


def audit_csv(audit):
    """The access entries of an audit as CSV text (access.csv)."""
    return to_csv(_audit(audit, 'audit_csv'))


def audit_html(audit):
    """The audit as one self-contained HTML page (audit.html)."""
    return to_html(_audit(audit, 'audit_html'))


class FilterModule(object):
    def filters(self):
        return {'audit_csv': audit_csv, 'audit_html': audit_html}
