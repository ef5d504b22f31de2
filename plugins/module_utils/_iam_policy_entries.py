# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# The policies one rds_iam_policy call manages, as entries: the single form (top-level name) is a
# one-entry policies list, so there is one code path for both forms. An entry's options default
# to the top-level ones. Every check that needs no AWS call runs here, for all entries before any
# call, and problems are worded per entry: with the single form exactly as the policy's own
# problems, with policies naming the entry.

import os
import re

from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_policy as docs
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_resources import UnknownTargetError, parse_ref

# The options an entry of `policies` may set; the top-level value of each is its default.
PER_POLICY_OPTIONS = ('name', 'state', 'policy_type', 'path', 'description', 'tags', 'grants', 'attach_to', 'purge_attachments',
                      'allow_wildcard_users')
_PATH_RE = re.compile(r'^/(?:[\x21-\x7e]+/)?$')
_ATTACH_KEYS = {'role': 'roles', 'user': 'users', 'group': 'groups'}


class PolicyEntriesError(RdsIamError):
    """One or more entries cannot be written; the message names each of them (with policies:)."""


def wanted_attachments(attach_to):
    attach_to = attach_to or {}
    return {kind: sorted(set(attach_to.get(key) or ())) for kind, key in _ATTACH_KEYS.items()}


def entry_params(params, entry):
    """The full options of one entry: the module's options (AWS ones included), each per-policy option the entry sets replacing
    the top-level value (a dict such as attach_to is replaced, not merged)."""
    merged = {key: value for key, value in params.items() if key != 'policies'}
    for key in PER_POLICY_OPTIONS:
        if entry.get(key) is not None:
            merged[key] = entry[key]
    return merged


def check_input(params):
    """Problems with one policy's options that need no AWS call, as one list."""
    problems = []
    attachments = wanted_attachments(params['attach_to'])
    count = sum(len(values) for values in attachments.values())
    if params['policy_type'] == 'inline' and count != 1:
        problems.append('policy_type inline needs exactly one principal in attach_to (one role, user or group), got %d: '
                        'name one principal, or use policy_type managed to attach to several' % count)
    if params['path'] and not _PATH_RE.match(params['path']):
        problems.append("path '%s' is not an IAM path: start and end it with / (for example /rdsiam/)" % params['path'])
    if params['state'] == 'present' and not params['grants']:
        problems.append('state present needs grants: list at least one {db_users, targets} entry')
    for index, grant in enumerate(params['grants'] or ()):
        if not grant.get('db_users') or not grant.get('targets'):
            problems.append('grants[%d] needs at least one db user and one target' % index)
        for target in (grant.get('targets') or ()) if params['state'] == 'present' else ():
            try:
                parse_ref(target, params['region'])
            except UnknownTargetError as exc:
                problems.append(str(exc))
    try:
        docs.check_policy_name(params['name'])
    except docs.PolicyInputError as exc:
        problems.append(str(exc))
    return problems


class PolicyEntries:
    """The entries of one call (`params` as the module got them) and the wording of their problems."""

    def __init__(self, params):
        self.single = params['policies'] is None
        self.entries = [entry_params(params, entry) for entry in ([dict(name=params['name'])] if self.single else params['policies'])]

    def label(self, index):
        return "policy '%s' (policies[%d])" % (self.entries[index]['name'], index)

    def problem(self, index, text):
        """text as a problem of entry index: the single form's problems need no label."""
        return text if self.single else '%s: %s' % (self.label(index), text)

    def problems(self):
        """Problems with the entries that need no AWS call, each naming its entry: all of them, before any call."""
        found = [] if self.single else self._name_problems()
        for index, entry in enumerate(self.entries):
            found.extend(self.problem(index, problem) for problem in check_input(entry))
        return found

    def error(self, problems):
        """One error for the problems of all entries."""
        if self.single:
            return PolicyEntriesError('; '.join(problems))
        return PolicyEntriesError('no policy was written, because of %s: %s' % (
            'this entry' if len(problems) == 1 else '%d problems' % len(problems), '; '.join(problems)))

    def managed_path_prefix(self):
        """The longest IAM path the paths of every managed entry start with ('/' at least): one list of IAM covers all."""
        paths = [entry['path'] for entry in self.entries if entry['policy_type'] == 'managed']
        prefix = os.path.commonprefix(sorted(paths)) if paths else '/'
        return prefix[:prefix.rindex('/') + 1]

    def _name_problems(self):
        """Entry names must be unique, and no entry may be named like a numbered part (NAME-1, ...) of another: should that
        other's grants ever be split, the two would need the same name."""
        problems, names, seen = [], [entry['name'] for entry in self.entries], set()
        for index, name in enumerate(names):
            if name in seen:
                problems.append('%s: the name is used by an earlier entry too; each entry needs its own name' % self.label(index))
            seen.add(name)
            owner = next((other for other in names if other != name and docs.part_number(other, name)), None)
            if owner:
                problems.append("%s: the name is what policy '%s' calls its numbered part when its grants are split, so both "
                                'would need that name; rename one of them' % (self.label(index), owner))
        return problems
