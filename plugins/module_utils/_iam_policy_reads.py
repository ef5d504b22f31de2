# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# What rds_iam_policy reads from IAM and STS before it plans anything, read one way for one policy
# or fifty: one sts:GetCallerIdentity, one list of attached policies per principal, one paged list
# of the customer managed policies under the entries' common path. What remains per policy is its
# document, plus iam:GetPolicy when its tags or description matter and for each policy named like
# one of its numbered parts, whose tag says whether it is one (see _iam_policy.own_parts).

from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_policy as docs
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_store import PRINCIPAL_TYPES, IamStore, tags_of
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy_resources import caller_account


class IamReads:
    """The IAM and STS reads of one call, each made at most once however many policies need it."""

    def __init__(self, options, iam, path_prefix):
        self.options = options
        self.store = IamStore(iam, 'the IAM reads of rds_iam_policy')
        self.path_prefix = path_prefix
        self._account = None
        self._attached = {}
        self._exists = {}
        self._listed = {}

    def account(self):
        """(partition, account id) of the caller: one sts:GetCallerIdentity per call."""
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

    def read_managed(self, name, path, details):
        """(existing, others) for the managed policy name under path.

        existing: {name: state (see IamStore.read_managed)} of the policy and its numbered parts as they exist now; details:
        the policy's description and tags are needed. others: {name-N: document} of the policies under path only named like
        its parts, which this policy never changes or deletes.
        """
        listed = [policy for policy in self._policies_under(self.path_prefix).values() if (policy.get('Path') or '/') == path]
        existing = {}
        for policy in listed:
            if policy['PolicyName'] == name:
                current = self.store.read_managed(policy['Arn'], name, self.holders(policy['Arn']), listed=None if details else policy)
                existing.update({name: current} if current else {})
        candidates = self._described({policy['PolicyName']: policy for policy in listed if docs.part_number(name, policy['PolicyName'])})
        own = docs.own_parts(name, {candidate: (tags, document) for candidate, (_policy, tags, document) in candidates.items()})
        for candidate in sorted(own, key=lambda part: docs.part_number(name, part)):
            policy, _tags, document = candidates[candidate]
            existing[candidate] = self.store.managed_state(policy['Arn'], policy, candidate, document, self.holders(policy['Arn']))
        return existing, {candidate: document for candidate, (_policy, _tags, document) in candidates.items() if candidate not in own}

    def elsewhere(self, name, path):
        """{policy name: path} of the managed policy name and its numbered parts under any other path than path."""
        found, candidates = {}, {}
        for policy in self._policies_under('/').values():
            other = policy.get('Path') or '/'
            if other != path and policy['PolicyName'] == name:
                found[name] = other
            elif other != path and docs.part_number(name, policy['PolicyName']):
                candidates.setdefault(other, {})[policy['PolicyName']] = policy
        for other, listed in sorted(candidates.items()):
            described = self._described(listed)
            found.update(dict.fromkeys(docs.own_parts(name, {part: (tags, document) for part, (_p, tags, document) in described.items()}),
                                       other))
        return found

    def _described(self, listed):
        """{name: (policy as iam:GetPolicy gives it, its tags, its default document)} of the listed policies still there."""
        found = {}
        for name, policy in sorted(listed.items()):
            described = self.store.describe_managed(policy['Arn'], name)
            if described is not None:
                found[name] = (described, tags_of(described), self.store.default_document(policy['Arn'], described, name))
        return found
