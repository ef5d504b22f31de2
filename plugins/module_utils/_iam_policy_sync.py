# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# rds_iam_policy's work, for one policy or many (the single form is a one-entry call): grants ->
# resolved resource ids (one describe per kind and region for all entries) -> documents -> compare
# with IAM (read once for all, see _iam_policy_reads) -> write only what differs (nothing in check
# mode). Every entry is planned before the first write, so a bad entry fails the call while
# nothing has changed.

from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_policy as docs
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError, aws_client
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_entries import PolicyEntries, PolicyEntriesError, wanted_attachments
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_reads import IamReads
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_store import PRINCIPAL_TYPES, IamStore
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_resources import UnknownTargetError, lookup_targets, unknown_targets_message


def _subject(name, attachments):
    principals = ['%s %s' % (kind, principal) for kind in PRINCIPAL_TYPES for principal in attachments[kind]]
    return "policy '%s'%s" % (name, ' for ' + ', '.join(principals) if principals else '')


def plan_resources(params, resolved):
    """{db_user: set of (partition, region, account, resource id)} and the engines each user will log in to."""
    user_targets, user_engines = {}, {}
    for grant in params['grants']:
        for user in grant['db_users']:
            keys = user_targets.setdefault(user, set())
            engines = user_engines.setdefault(user, set())
            for target in grant['targets']:
                for entry in resolved[target]:
                    keys.add((entry['partition'], entry['region'], entry['account_id'], entry['resource_id']))
                    if entry['dialect']:
                        engines.add(entry['dialect'])
    return user_targets, user_engines


def build_wanted_documents(params, resolved, limit):
    user_targets, user_engines = plan_resources(params, resolved)
    problems = []
    for user in sorted(user_targets):
        problems.extend(docs.db_user_problems(user, params['allow_wildcard_users'], user_engines[user]))
    if problems:
        raise docs.PolicyInputError('; '.join(problems))
    groups = [[docs.connect_arn(*key, user) for key in targets for user in users]
              for targets, users in docs.group_by_target_set(user_targets)]
    return docs.build_documents(groups, limit)


class PolicySync:
    """One policy: plan() reads IAM and checks, apply() writes what differs (nothing in check mode).

    A call plans all its policies before applying any, sharing one IamReads.
    """

    def __init__(self, params, check_mode, warn, reads=None):
        self.params = dict(params)
        if params['tags'] is not None:  # IAM tag values are strings; YAML may have given numbers or booleans
            self.params['tags'] = {str(key): str(value) for key, value in params['tags'].items()}
        self.check_mode = check_mode
        self.warn = warn
        self.attachments = wanted_attachments(params['attach_to'])
        self.reads = reads or IamReads(params, aws_client(params, 'iam'), params['path'] if params['policy_type'] == 'managed' else '/')
        self.store = IamStore(self.reads.store.iam, _subject(params['name'], self.attachments))
        self.changed = False
        self.before, self.after = {}, {}
        self.policies, self.resource_arns = [], []
        self._writes = []

    def documents(self, resolved):
        """The documents the grants need, from resolved targets; checks the db users and the policy name."""
        wanted = build_wanted_documents(self.params, resolved, self._limit())
        docs.check_policy_name(self.params['name'], len(wanted))
        self.resource_arns = docs.arns_of(wanted)
        return wanted

    def plan(self, wanted):
        """Read the policy as it is and queue the writes that make it `wanted`; raises before queueing on bad input."""
        if self.params['policy_type'] == 'inline':
            self.policies = self._sync_inline(wanted)
        else:
            self.policies = self._sync_managed(wanted)

    def apply(self):
        """Make the queued writes. changed then says what this run did: a write that finds its work done already by a
        concurrent run (see IamStore) does not count."""
        writes, self._writes = self._writes, []
        if writes:
            self.changed = False
        for action, args in writes:
            # A write returns False when it found its work done already; anything else changed IAM.
            self.changed = action(*args) is not False or self.changed

    def result(self):
        return dict(changed=self.changed, policies=self.policies, resource_arns=self.resource_arns,
                    diff=dict(before=self.before, after=self.after))

    def _limit(self):
        if self.params['policy_type'] == 'inline':
            return docs.SIZE_LIMITS[self._inline_principal()[0]]
        return docs.SIZE_LIMITS['managed']

    def _inline_principal(self):
        return next((kind, names[0]) for kind, names in self.attachments.items() if names)

    # --- inline ----------------------------------------------------------------------------

    def _sync_inline(self, wanted):
        kind, principal = self._inline_principal()
        name = self.params['name']
        ignored = [option for option in ('description', 'tags') if self.params[option]] + (['path'] if self.params['path'] != '/' else [])
        if ignored:
            self.warn('%s only apply to managed policies; inline policy %s ignores them' % (', '.join(ignored), name))
        if len(wanted) > 1:
            # Inline quotas count every inline policy of the principal together: splitting would not fit either.
            raise docs.PolicyInputError(
                "the grants need %d documents but inline policy '%s' of %s '%s' must fit in %d characters (a quota on all its inline "
                'policies together): use policy_type managed, which splits into %s-1, %s-2, ...'
                % (len(wanted), name, kind, principal, docs.SIZE_LIMITS[kind], name, name))
        current = self.store.read_inline(kind, principal, name)
        if current is None and wanted:
            self._check_principals([(kind, principal)])
        if current:
            self.before[name] = docs.normalise(current['document'])
        if not wanted:
            if current:
                self._write(self.store.delete_inline, kind, principal, name)
            return []
        self.after[name] = docs.normalise(wanted[0])
        if not current or not docs.same_document(current['document'], wanted[0]):
            self._write(self.store.put_inline, kind, principal, name, docs.serialise(wanted[0]))
        return [dict(arn=None, name=name, version=None, document=wanted[0])]

    # --- managed ---------------------------------------------------------------------------

    def _policy_arn(self, name):
        partition, account = self.reads.account()
        return 'arn:%s:iam::%s:policy%s%s' % (partition, account, self.params['path'], name)

    def _attached_from_principals(self):
        """{(kind, principal): ARNs of its attached policies under path, or None if it does not exist}: one list per principal,
        so attachments cost the same whatever the number of numbered parts."""
        return {(kind, principal): self.reads.attached(kind, principal) for kind in PRINCIPAL_TYPES for principal in self.attachments[kind]}

    def _sync_managed(self, wanted):
        self.reads.account()
        by_principal = self._attached_from_principals()
        details = self.params['tags'] is not None or bool(self.params['description'])
        existing, others = self.reads.read_managed(self.params['name'], self.params['path'], details)
        if not wanted and not existing:
            self._refuse_other_path()
        for name, current in existing.items():
            self.before[name] = dict(document=docs.normalise(current['document']), attachments=current['attachments'])
        names = docs.part_names(self.params['name'], len(wanted)) if wanted else []
        taken = [name for name in names if name in others]
        if taken:
            raise docs.PolicyInputError("the grants need %d policies, %s, but %s; nothing was changed: choose another name, or rename "
                                        'that policy' % (len(names), ', '.join(names), self._not_a_part(taken[0], others[taken[0]])))
        if names:
            self._check_principals(sorted(pair for pair, arns in by_principal.items() if arns is None), known_missing=True)
        policies = [self._sync_one(name, doc, existing.get(name)) for name, doc in zip(names, wanted)]
        for name in sorted(set(existing) - set(names)):  # numbers (or the unsplit name) no longer needed
            self._write(self.store.delete_managed, existing[name])
        return policies

    def _not_a_part(self, name, document):
        if not docs.is_connect_document(document):
            return "'%s' exists and is not an rds-db:connect policy this module wrote" % name
        return ("'%s' exists and is not a part of policy '%s' (it has no tag %s=%s): it is another policy, such as the one of "
                'another database user' % (name, self.params['name'], docs.PART_TAG, self.params['name']))

    def _refuse_other_path(self):
        """state absent found nothing under path: if the policy lives under another path, saying 'ok' would hide that it stays."""
        elsewhere = self.reads.elsewhere(self.params['name'], self.params['path'])
        if elsewhere:
            raise docs.PolicyInputError('nothing to delete under path %s, but %s exist under %s; nothing was changed: set path to delete them'
                                        % (self.params['path'], ', '.join(sorted(elsewhere)), ', '.join(sorted(set(elsewhere.values())))))

    def _check_principals(self, pairs, known_missing=False):
        """Fail before any write when a principal to attach to does not exist."""
        missing = ["%s '%s'" % pair for pair in pairs if known_missing or not self.reads.principal_exists(*pair)]
        if missing:
            raise docs.PolicyInputError('%s do not exist in IAM; nothing was changed: create them first or fix the names in attach_to'
                                        % ', '.join(missing))

    def _sync_one(self, name, doc, current):
        policy = dict(arn=self._policy_arn(name), name=name, version=None, document=doc)
        if current is None:
            self.after[name] = dict(document=docs.normalise(doc), attachments=self._wanted_attached(None))
            self._write(self._create, name, doc, policy)
        else:
            self._sync_existing(name, doc, current, policy, self._write)
        return policy

    def _wanted_attached(self, current):
        attached = current['attachments'] if current else {kind: [] for kind in PRINCIPAL_TYPES}
        return {kind: sorted(set(self.attachments[kind]) | (set() if self.params['purge_attachments'] else set(attached[kind])))
                for kind in PRINCIPAL_TYPES}

    def _sync_existing(self, name, doc, current, policy, write):
        """Queue with write() what turns the existing policy `current` into doc with the wanted tags and attachments."""
        arn = policy['arn']
        wanted_attached = self._wanted_attached(current)
        self.after[name] = dict(document=docs.normalise(doc), attachments=wanted_attached)
        policy['version'] = current['version']
        if not docs.same_document(current['document'], doc):
            write(self._new_version, name, doc, policy)
        tags = self._wanted_tags(name, current['tags'])
        if tags is not None and current['tags'] != tags:
            write(self.store.set_tags, arn, name, current['tags'] or {}, tags)
        if self.params['description'] and self.params['description'] != (current['description'] or ''):
            self.warn("policy '%s' keeps its description: IAM cannot change a managed policy's description; delete the policy "
                      'to set a new one' % name)
        for kind in PRINCIPAL_TYPES:
            for principal in sorted(set(wanted_attached[kind]) - set(current['attachments'][kind])):
                write(self.store.attach, arn, name, kind, principal)
            for principal in sorted(set(current['attachments'][kind]) - set(wanted_attached[kind])):
                write(self.store.detach, arn, name, kind, principal)

    def _wanted_tags(self, name, current):
        """The tags the policy name should carry, or None to leave them alone: the tags option when set, and on a numbered part
        the tag naming the policy it belongs to (added to a part written before that tag existed)."""
        marker = {} if name == self.params['name'] else {docs.PART_TAG: self.params['name']}
        if self.params['tags'] is not None:
            return dict(self.params['tags'], **marker)
        if marker and (current or {}).get(docs.PART_TAG) != self.params['name']:
            return dict(current or {}, **marker)
        return None

    def _new_version(self, name, doc, policy):
        """A new default version with doc; False when a concurrent run made the same document the default first."""
        policy['version'], wrote = self.store.new_version(policy['arn'], name, docs.serialise(doc), seen_default=policy['version'])
        return wrote

    def _create(self, name, doc, policy):
        """Create the policy and attach it; when a concurrent run created it after plan() read IAM, adopt it instead."""
        created = self.store.create_managed(name, self.params['path'], docs.serialise(doc), self.params['description'],
                                            self._wanted_tags(name, {}))
        if created is None:
            return self._adopt(name, doc, policy)
        policy.update(arn=created[0], version=created[1])
        for kind in PRINCIPAL_TYPES:
            for principal in self.attachments[kind]:
                self.store.attach(policy['arn'], name, kind, principal)
        return True

    def _adopt(self, name, doc, policy):
        """The policy another run created a moment ago: read it and write only what differs, exactly as if it had existed when
        plan() read IAM (the same comparison, version pruning, tags and attachments). Whether this run changed anything."""
        current = self.store.read_managed(policy['arn'], name, just_created=True)
        if current is None:
            raise AwsCallError("iam:CreatePolicy said policy '%s' exists under path %s, but it cannot be read there: another run is "
                               'probably deleting it at the same time; nothing else was changed for it: run again once the other '
                               'run is done' % (name, self.params['path']))
        self.before[name] = dict(document=docs.normalise(current['document']), attachments=current['attachments'])
        changed = []
        self._sync_existing(name, doc, current, policy, lambda action, *args: changed.append(action(*args) is not False))
        return any(changed)

    def _write(self, action, *args):
        """Queue a write for apply(); it completes the result itself (ARN, version). Check mode queues nothing."""
        self.changed = True
        if not self.check_mode:
            self._writes.append((action, args))


def _resolve(params, call, syncs, reads, warn):
    """The documents of every entry, with the targets of all entries resolved in one go; raises naming each bad entry."""
    present = [sync for sync in syncs if sync.params['state'] == 'present']
    targets = sorted({target for sync in present for grant in sync.params['grants'] for target in grant['targets']})
    resolved, unknown = {}, {}
    if targets:
        resolved, warnings, unknown = lookup_targets(params, targets, params['region'], reads.account)
        for warning in warnings:
            warn(warning)
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
                problems.append(call.problem(index, str(exc)))
        wanted.append(documents)
    if problems:
        raise call.error(problems)
    return wanted


def _plan(call, syncs, wanted):
    """Read and plan every entry before any write; raises naming each entry that cannot be written."""
    problems = []
    for index, (sync, documents) in enumerate(zip(syncs, wanted)):
        try:
            sync.plan(documents)
        except docs.PolicyInputError as exc:
            problems.append(call.problem(index, str(exc)))
        except RdsIamError as exc:  # an AWS error while reading: the call stops here, before any write
            if call.single:
                raise
            raise PolicyEntriesError('%s: %s; nothing was changed' % (call.label(index), exc)) from exc
    if problems:
        raise call.error(problems)


def _apply(call, syncs):
    for index, sync in enumerate(syncs):
        try:
            sync.apply()
        except RdsIamError as exc:
            if call.single:
                raise
            written = [each.params['name'] for each in syncs[:index] if each.changed]
            raise PolicyEntriesError('%s: %s; this policy may be partly written, %s: run again once the cause is fixed' % (
                call.label(index), exc,
                'and so are the policies before it: %s' % ', '.join(written) if written else 'no other policy was changed')) from exc


def sync_policies(params, check_mode, warn):
    """rds_iam_policy's result for its options (either form): changed, policies, diff, and with the single form resource_arns.

    With policies, one item per entry, with its name and what the single form returns for it; the single form is a one-entry
    call whose item is that result.
    """
    call = PolicyEntries(params)
    problems = call.problems()
    if problems:
        raise call.error(problems)
    reads = IamReads(params, aws_client(params, 'iam'), call.managed_path_prefix())
    syncs = [PolicySync(entry, check_mode, warn, reads) for entry in call.entries]
    _plan(call, syncs, _resolve(params, call, syncs, reads, warn))
    _apply(call, syncs)
    before, after = {}, {}
    for sync in syncs:
        before.update(sync.before)
        after.update(sync.after)
    items = [dict(name=sync.params['name'], **{key: value for key, value in sync.result().items() if key != 'diff'}) for sync in syncs]
    if call.single:
        return dict(changed=items[0]['changed'], policies=items[0]['policies'], resource_arns=items[0]['resource_arns'],
                    diff=dict(before=before, after=after))
    return dict(changed=any(sync.changed for sync in syncs), policies=items, diff=dict(before=before, after=after))
