# -*- coding: utf-8 -*-
# Copyright: rdsiam.auth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filter audit.yml uses between its reads: each target's IAM users, the cells rds_iam_grants_info fills.

The join of the audit and its reports are the rds_iam_audit_report action, on the controller.
"""

from __future__ import annotations


def audit_db_users(db_info):
    """{identifier: [names of its IAM users]} from rds_iam_db_user_info with targets: the cells the access matrix fills."""
    entries = db_info.get('results') or [] if isinstance(db_info, dict) else db_info or []
    return dict((entry['identifier'], sorted(set(account['name'] for account in entry.get('accounts') or [] if account.get('iam'))))
                for entry in entries if not entry.get('failed'))


class FilterModule(object):
    def filters(self):
        return {'audit_db_users': audit_db_users}
