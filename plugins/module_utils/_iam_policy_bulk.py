# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# rds_iam_policy's bulk form: many policies in one run (one per database user, as the onboard
# playbook writes them). Every entry is checked, every target resolved (one describe per kind and
# region for all entries together) and every policy read and planned before the first write, so a
# bad entry fails the run naming it while nothing has changed. IAM state is read once for all
# entries: one list of the managed policies under their common path, one attachment list per
# principal, one sts:GetCallerIdentity.

import os

from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_policy as docs
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import aws_client
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_sync import IamReads, PolicySync, check_input
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_targets import (
    UnknownTargetError,
    lookup_targets,
    parse_ref,
    unknown_targets_message,
)

# The options an entry of `policies` may set; the top-level value of each is its default.
PER_POLICY_OPTIONS = ('name', 'state', 'policy_type', 'path', 'description', 'tags', 'grants', 'attach_to', 'purge_attachments',
                      'allow_wildcard_users')


class BulkPolicyError(RdsIamError):
    """One or more entries of `policies` cannot be written; the message names each of them."""


def entry_params(params, entry):
    """The full options of one entry: the module's options (AWS ones included), each per-policy option the entry sets replacing
    the top-level value (a dict such as attach_to is replaced, not merged)."""
    merged = {key: value for key, value in params.items() if key != 'policies'}
    for key in PER_POLICY_OPTIONS:
        if entry.get(key) is not None:
            merged[key] = entry[key]
    return merged


def _label(index, params):
    return "policy '%s' (policies[%d])" % (params['name'], index)


def _name_problems(entries):
    """Entry names must be unique, and no entry may be named like a numbered part (NAME-1, ...) of another."""
    problems, names = [], [params['name'] for params in entries]
    seen = set()
    for index, name in enumerate(names):
        if name in seen:
            problems.append("%s: the name is used by an earlier entry too; each entry needs its own name" % _label(index, entries[index]))
        seen.add(name)
        owner = next((other for other in names if other != name and name.startswith(other + '-') and name[len(other) + 1:].isdigit()),
                     None)
        if owner:
            problems.append("%s: the name is what policy '%s' calls its numbered part when its grants are split, so one would delete "
                            "the other; rename one of them" % (_label(index, entries[index]), owner))
    return problems


def check_entries(params):
    """Problems with the entries that need no AWS call, each naming its entry: all of them, before any call."""
    entries = [entry_params(params, entry) for entry in params['policies']]
    problems = _name_problems(entries)
    for index, entry in enumerate(entries):
        found = list(check_input(entry))
        try:
            docs.check_policy_name(entry['name'])
        except docs.PolicyInputError as exc:
            found.append(str(exc))
        grants = entry['grants'] if entry['state'] == 'present' else None
        for grant in grants or ():
            for target in grant.get('targets') or ():
                try:
                    parse_ref(target, entry['region'])
                except UnknownTargetError as exc:
                    found.append(str(exc))
        problems.extend('%s: %s' % (_label(index, entry), problem) for problem in found)
    return entries, problems


def _common_path(paths):
    """The longest IAM path every path starts with ('/' at least)."""
    prefix = os.path.commonprefix(sorted(paths)) if paths else '/'
    return prefix[:prefix.rindex('/') + 1]


def problems_error(problems):
    """One error for the problems of all entries, each naming its entry."""
    return BulkPolicyError('no policy was written, because of %s: %s' % ('this entry' if len(problems) == 1 else '%d problems' % len(problems),
                                                                         '; '.join(problems)))


class BulkSync:
    def __init__(self, params, check_mode, warn):
        self.params = params
        self.check_mode = check_mode
        self.warn = warn

    def run(self):
        entries, problems = check_entries(self.params)
        if problems:
            raise problems_error(problems)
        managed_paths = [entry['path'] for entry in entries if entry['policy_type'] == 'managed']
        reads = IamReads(self.params, aws_client(self.params, 'iam'), _common_path(managed_paths), listing=True)
        syncs = [PolicySync(entry, self.check_mode, self.warn, reads) for entry in entries]
        wanted = self._documents(syncs, reads)
        for index, (sync, documents) in enumerate(zip(syncs, wanted)):
            try:
                sync.plan(documents)
            except docs.PolicyInputError as exc:
                problems.append('%s: %s' % (_label(index, sync.params), exc))
            except RdsIamError as exc:  # an AWS error while reading: the run stops here, before any write
                raise BulkPolicyError('%s: %s; nothing was changed' % (_label(index, sync.params), exc)) from exc
        if problems:
            raise problems_error(problems)
        self._apply(syncs)
        results = [dict(name=sync.params['name'], **{key: value for key, value in sync.result().items() if key != 'diff'})
                   for sync in syncs]
        before, after = {}, {}
        for sync in syncs:
            before.update(sync.before)
            after.update(sync.after)
        return dict(changed=any(sync.changed for sync in syncs), policies=results, diff=dict(before=before, after=after))

    def _documents(self, syncs, reads):
        """The documents of every entry, with the targets of all entries resolved in one go."""
        present = [sync for sync in syncs if sync.params['state'] == 'present']
        targets = sorted({target for sync in present for grant in sync.params['grants'] for target in grant['targets']})
        resolved, unknown = {}, {}
        if targets:
            resolved, warnings, unknown = lookup_targets(self.params, targets, self.params['region'], reads.account)
            for warning in warnings:
                self.warn(warning)
        wanted, problems = [], []
        for index, sync in enumerate(syncs):
            documents = []
            if sync in present:
                missing = {target: unknown[target] for grant in sync.params['grants'] for target in grant['targets'] if target in unknown}
                try:
                    if missing:
                        raise UnknownTargetError(unknown_targets_message(missing))
                    documents = sync.documents(resolved)
                except RdsIamError as exc:
                    problems.append('%s: %s' % (_label(index, sync.params), exc))
            wanted.append(documents)
        if problems:
            raise problems_error(problems)
        return wanted

    def _apply(self, syncs):
        done = []
        for index, sync in enumerate(syncs):
            try:
                sync.apply()
            except RdsIamError as exc:
                written = [each.params['name'] for each in done if each.changed]
                raise BulkPolicyError('%s: %s; this policy may be partly written, %s: run again once the cause is fixed' % (
                    _label(index, sync.params), exc,
                    'and so are the policies before it: %s' % ', '.join(written) if written else 'no other policy was changed')) from exc
            done.append(sync)


def sync_policies(params, check_mode, warn):
    """The bulk form's result: changed, policies (one result per entry, as the single form gives it, with its name) and diff."""
    return BulkSync(params, check_mode, warn).run()
