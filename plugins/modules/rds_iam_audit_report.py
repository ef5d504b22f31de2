#!/usr/bin/python
# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_audit_report
short_description: Join what an audit read into the audit document and write audit.json, access.csv and audit.html
version_added: 0.1.0
description:
  - Joins the fleet (M(rdsiam.auth.rds_iam_fleet_info)), the logins of every target (M(rdsiam.auth.rds_iam_db_user_info)),
    who may connect as whom (M(rdsiam.auth.rds_iam_grants_info)) and, optionally, the missing hardening (a check mode run of
    M(rdsiam.auth.rds_iam_parameter_group)) into one audit document (schema C(rdsiam.auth/audit/1)), with its findings.
  - Writes it to O(dest) as C(audit.json) (keys sorted), C(access.csv) (one row per principal, database user and target)
    and C(audit.html) (one self-contained page, no external assets). See the collection's C(docs/audit.md) for the schema
    and the findings.
  - An action plugin that runs on the controller only, whatever the play's hosts. The reports are written on the controller
    and nothing is sent to a managed host. It reads no AWS API and no database.
  - The reports describe this run, they are not managed state, so the task never reports a change, and it writes them in
    check mode too. O(dest) is created with mode C(0700) and the files with C(0600); they name principals and database users
    but hold no token, password or secret, as nothing the audit reads does.
  - Returns the console summary and the findings at O(fail_on) or worse, not the document itself, so that the play does not
    carry megabytes of facts for a large fleet; read C(audit.json) for the rest.
author:
  - rdsiam.auth contributors (@rdsiam)
options:
  targets:
    description: The targets the audit covers, the RV(rdsiam.auth.rds_iam_fleet_info#module:targets) of a fleet run.
    type: list
    elements: dict
    required: true
  db_user_info:
    description:
      - The registered result of M(rdsiam.auth.rds_iam_db_user_info) with O(rdsiam.auth.rds_iam_db_user_info#module:targets),
        or its RV(rdsiam.auth.rds_iam_db_user_info#module:results) list.
      - A target missing from it or whose entry failed is reported as unreadable, its cells unknown.
    type: raw
    required: true
  grants_info:
    description: The registered result of M(rdsiam.auth.rds_iam_grants_info).
    type: dict
    required: true
  hardening:
    description:
      - The registered result of a check mode run of M(rdsiam.auth.rds_iam_parameter_group) over the same targets with the
        recommended settings, or its results list. Each setting it would change is a finding.
      - Omitted or V(null) (also a skipped task's result), no hardening finding is made.
    type: raw
  dest:
    description: The directory the reports are written to, on the controller. Created when missing; relative to the current directory.
    type: path
    default: rdsiam-audit
  fail_on:
    description:
      - RV(failing) lists the findings at this severity or worse; V(never) lists none. The task itself does not fail on them,
        so that the play can show the summary first (C(playbooks/audit.yml) fails afterwards).
    type: str
    choices: [critical, high, medium, low, info, never]
    default: never
  generated_at:
    description: The time the audit document says it was made, ISO 8601. Default is now, in UTC.
    type: str
attributes:
  check_mode:
    support: full
    description: The reports are written in check mode too; nothing else is changed in any mode.
  diff_mode:
    support: none
    description: The reports are not managed state, so there is no diff to show.
notes:
  - The audit playbook C(rdsiam.auth.audit) runs this after its reads; use it directly to audit with reads of your own.
seealso:
  - module: rdsiam.auth.rds_iam_grants_info
  - module: rdsiam.auth.rds_iam_db_user_info
"""

EXAMPLES = r"""
- name: Write the audit of the fleet and show its summary
  rdsiam.auth.rds_iam_audit_report:
    targets: "{{ fleet.targets }}"
    db_user_info: "{{ db_info }}"
    grants_info: "{{ grants }}"
    hardening: "{{ hardening }}"
    dest: /var/lib/audits/{{ now(utc=true).strftime('%Y-%m-%d') }}
    fail_on: high
  register: audit

- name: Show the summary
  ansible.builtin.debug:
    msg: "{{ audit.summary }}"

- name: Stop the pipeline on a high finding
  ansible.builtin.fail:
    msg: "{{ audit.failing | join('; ') }}"
  when: audit.failing | length > 0
"""

RETURN = r"""
reports:
  description: The absolute paths of the reports written.
  returned: always
  type: dict
  contains:
    json:
      description: C(audit.json), the whole audit document.
      type: str
      sample: /home/alice/rdsiam-audit/audit.json
    csv:
      description: C(access.csv), the access rows.
      type: str
      sample: /home/alice/rdsiam-audit/access.csv
    html:
      description: C(audit.html), the access matrix and the findings for people.
      type: str
      sample: /home/alice/rdsiam-audit/audit.html
summary:
  description: The console summary, one aligned line per target after a header and a rule, then the account-wide findings.
  returned: always
  type: list
  elements: str
  sample:
    - "target | engine   | IAM auth | logins | IAM users | principal x user pairs that connect | findings"
counts:
  description: The audit document's C(summary), the counts of targets, principals, database users, connecting pairs and findings by severity.
  returned: always
  type: dict
  sample: {targets: 3, unreadable_targets: 0, principals: 12, db_users: 40, can_connect: 25,
           findings: {critical: 0, high: 1, medium: 2, low: 0, info: 3}}
failing:
  description: C(severity id - evidence) for each finding at O(fail_on) or worse, worst first; empty for V(never).
  returned: always
  type: list
  elements: str
  sample: ["high iam_user_with_password:orders:alice:* - alice is an IAM user and also has a password"]
"""
