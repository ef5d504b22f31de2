# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# rds_iam_policy's work: grants -> resolved resource ids -> documents -> compare with IAM -> write
# only what differs (nothing in check mode). Returns the module result without `changed`
# bookkeeping spread over the module.

import re

from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_policy as docs
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError, aws_client
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_store import PRINCIPAL_TYPES, IamStore
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_targets import caller_account, resolve_targets

_PATH_RE = re.compile(r'^/(?:[\x21-\x7e]+/)?$')
_ATTACH_KEYS = {'role': 'roles', 'user': 'users', 'group': 'groups'}


def wanted_attachments(attach_to):
    attach_to = attach_to or {}
    return {kind: sorted(set(attach_to.get(key) or ())) for kind, key in _ATTACH_KEYS.items()}


def _subject(name, attachments):
    principals = ['%s %s' % (kind, principal) for kind in PRINCIPAL_TYPES for principal in attachments[kind]]
    return "policy '%s'%s" % (name, ' for ' + ', '.join(principals) if principals else '')


def check_input(params):
    """Problems with the options that need no AWS call, as one list."""
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
    return problems


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
                    if entry['engine']:
                        engines.add(entry['engine'])
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


class IamReads:
    """The IAM and STS reads of one run, each made at most once however many policies need it.

    The single form probes its policy and numbered parts with get_policy (a few calls, whatever else the account holds).
    The bulk form (listing=True) lists the customer managed policies under the policies' common path once instead, so
    N policies cost one paged list rather than 2N probes. Attachments are listed once per principal in both.
    """

    def __init__(self, options, iam, path_prefix, listing=False):
        self.options = options
        self.store = IamStore(iam, 'the IAM reads of rds_iam_policy')
        self.path_prefix = path_prefix
        self.listing = listing
        self._account = None
        self._attached = {}
        self._exists = {}
        self._listed = {}

    def account(self):
        """(partition, account id) of the caller: one sts:GetCallerIdentity per run."""
        if self._account is None:
            self._account = caller_account(self.options)
        return self._account

    def attached(self, kind, principal):
        """ARNs of the managed policies under the common path attached to the principal, or None if it does not exist."""
        if (kind, principal) not in self._attached:
            self._attached[(kind, principal)] = self.store.attached_policy_arns(kind, principal, self.path_prefix)
        return self._attached[(kind, principal)]

    def holders(self, arn):
        """{kind: [principal]} of the principals read so far that hold arn."""
        return {kind: sorted(principal for (each, principal), arns in self._attached.items() if each == kind and arns and arn in arns)
                for kind in PRINCIPAL_TYPES}

    def principal_exists(self, kind, principal):
        if (kind, principal) in self._attached:  # listing its attached policies already told
            return self._attached[(kind, principal)] is not None
        if (kind, principal) not in self._exists:
            self._exists[(kind, principal)] = self.store.principal_exists(kind, principal)
        return self._exists[(kind, principal)]

    def _policies_under(self, prefix):
        if prefix not in self._listed:
            self._listed[prefix] = self.store.list_managed(prefix)
        return self._listed[prefix]

    def read_managed(self, arn, name, known, details):
        """The managed policy (see IamStore.read_managed) or None; details: its description and tags are needed."""
        if not self.listing:
            return self.store.read_managed(arn, name, known)
        listed = self._policies_under(self.path_prefix).get(arn)
        if listed is None:
            return None
        return self.store.read_managed(arn, name, known, listed=None if details else listed)

    def paths_of(self, name):
        if not self.listing:
            return self.store.paths_of(name)
        return self.store.paths_of(name, list(self._policies_under('/').values()))


class PolicySync:
    """One policy: plan() reads IAM and checks, apply() writes what differs (nothing in check mode).

    The single form runs one; the bulk form plans all its policies before applying any, sharing one IamReads.
    """

    def __init__(self, params, check_mode, warn, reads=None):
        self.params = dict(params)
        if params['tags'] is not None:  # IAM tag values are strings; YAML may have given numbers or booleans
            self.params['tags'] = {str(key): str(value) for key, value in params['tags'].items()}
        self.check_mode = check_mode
        self.warn = warn
        self.attachments = wanted_attachments(params['attach_to'])
        self.reads = reads or IamReads(params, aws_client(params, 'iam'), params['path'])
        self.store = IamStore(self.reads.store.iam, _subject(params['name'], self.attachments))
        self.changed = False
        self.before, self.after = {}, {}
        self.policies, self.resource_arns = [], []
        self._writes = []

    def run(self):
        params = self.params
        wanted = []
        if params['state'] == 'present':
            targets = sorted({target for grant in params['grants'] for target in grant['targets']})
            resolved, warnings = resolve_targets(params, targets, params['region'])
            for warning in warnings:
                self.warn(warning)
            wanted = self.documents(resolved)
        self.plan(wanted)
        self.apply()
        return self.result()

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

    def _read_parts(self):
        """The policy and its numbered parts as they exist now: NAME, then NAME-1, NAME-2, ... until one is missing."""
        name = self.params['name']
        details = self.params['tags'] is not None or bool(self.params['description'])
        existing = {}
        self._foreign_part = None
        for candidate in [name] + ['%s-%d' % (name, number) for number in range(1, 1000)]:
            arn = self._policy_arn(candidate)
            current = self.reads.read_managed(arn, candidate, self.reads.holders(arn), details)
            if current is None and candidate != name:
                break
            if current is not None and candidate != name and not docs.is_connect_document(current['document']):
                self._foreign_part = candidate  # someone else's policy that only looks like a part: never touched
                break
            if current is not None:
                existing[candidate] = current
        return existing

    def _sync_managed(self, wanted):
        self.reads.account()
        by_principal = self._attached_from_principals()
        existing = self._read_parts()
        if not wanted and not existing:
            self._refuse_other_path()
        for name, current in existing.items():
            self.before[name] = dict(document=docs.normalise(current['document']), attachments=current['attachments'])
        names = docs.part_names(self.params['name'], len(wanted)) if wanted else []
        if self._foreign_part in names:
            raise docs.PolicyInputError("the grants need %d policies, %s, but '%s' exists and is not an rds-db:connect policy this module "
                                        "wrote; nothing was changed: choose another name, or rename that policy"
                                        % (len(names), ', '.join(names), self._foreign_part))
        if names:
            self._check_principals(sorted(pair for pair, arns in by_principal.items() if arns is None), known_missing=True)
        policies = [self._sync_one(name, doc, existing.get(name)) for name, doc in zip(names, wanted)]
        for name in sorted(set(existing) - set(names)):  # numbers (or the unsplit name) no longer needed
            self._write(self.store.delete_managed, existing[name])
        return policies

    def _refuse_other_path(self):
        """state absent found nothing under path: if the policy lives under another path, saying 'ok' would hide that it stays."""
        elsewhere = {name: path for name, path in self.reads.paths_of(self.params['name']).items() if path != self.params['path']}
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
        if self.params['tags'] is not None and current['tags'] != self.params['tags']:
            write(self.store.set_tags, arn, name, current['tags'], self.params['tags'])
        if self.params['description'] and self.params['description'] != (current['description'] or ''):
            self.warn("policy '%s' keeps its description: IAM cannot change a managed policy's description; delete the policy "
                      'to set a new one' % name)
        for kind in PRINCIPAL_TYPES:
            for principal in sorted(set(wanted_attached[kind]) - set(current['attachments'][kind])):
                write(self.store.attach, arn, name, kind, principal)
            for principal in sorted(set(current['attachments'][kind]) - set(wanted_attached[kind])):
                write(self.store.detach, arn, name, kind, principal)

    def _new_version(self, name, doc, policy):
        """A new default version with doc; False when a concurrent run made the same document the default first."""
        policy['version'], wrote = self.store.new_version(policy['arn'], name, docs.serialise(doc), seen_default=policy['version'])
        return wrote

    def _create(self, name, doc, policy):
        """Create the policy and attach it; when a concurrent run created it after plan() read IAM, adopt it instead."""
        created = self.store.create_managed(name, self.params['path'], docs.serialise(doc), self.params['description'],
                                            self.params['tags'])
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


def sync_policy(params, check_mode, warn):
    return PolicySync(params, check_mode, warn).run()
