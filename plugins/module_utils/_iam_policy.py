# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Pure rds-db:connect policy logic: validating db users, building ARNs, one deterministic
# document per grant set (sorted, one statement per target set, content-derived Sids), splitting
# into numbered documents that fit IAM's size limits, telling a policy's numbered parts from
# look-alikes, and normalising documents for comparison. No AWS call happens here.

import hashlib
import json
import re

from ansible_collections.rdsiam.auth.plugins.module_utils._common import DB_USER_NAME_LIMITS, RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._identifiers import IdentifierError, check_db_user_name

POLICY_VERSION = '2012-10-17'
ACTION = 'rds-db:connect'

# IAM size quotas, counted without whitespace (the documents written here contain none).
SIZE_LIMITS = {'managed': 6144, 'role': 10240, 'user': 2048, 'group': 5120}
POLICY_NAME_MAX = 128
# The tag every numbered part carries, naming the policy it is a part of: NAME-1 is NAME's part only with this tag, so a
# policy that merely has such a name (the policy of a database user called app-1 next to app's) is never NAME's.
PART_TAG = 'rdsiam:part-of'

# The IAM policy variables that can stand for a database user (ABAC); written verbatim.
_VARIABLE_RE = re.compile(r'\$\{(?:aws:username|aws:userid|aws:PrincipalTag/[\w+=,.@:/-]{1,128})\}')
# The characters of IAM policy names, for re.ASCII patterns: IAM's \w is [A-Za-z0-9_], Python's takes any letter.
POLICY_NAME_CHARS = r'\w+=,.@-'
# \Z: '$' would let a trailing newline through.
_POLICY_NAME_RE = re.compile(r'[%s]+\Z' % POLICY_NAME_CHARS, re.ASCII)


class PolicyInputError(RdsIamError):
    """The grants cannot become a valid policy."""


def db_user_problems(db_user, allow_wildcard_users=False, engines=()):
    """Reasons db_user cannot go into an rds-db:connect ARN (empty list when it can)."""
    if not isinstance(db_user, str) or not db_user:
        return ['a db user is empty: name the database user (or an IAM policy variable such as ${aws:username})']
    if re.search(r'[\s\x00-\x1f\x7f]', db_user):
        return ["db user %r contains whitespace or a control character, which no IAM token can name: fix the name" % db_user]
    problems = []
    without_variables = _VARIABLE_RE.sub('', db_user)
    if '${' in without_variables:
        problems.append("db user '%s' uses a policy variable IAM does not resolve for rds-db:connect: use ${aws:username}, "
                        "${aws:userid} or ${aws:PrincipalTag/KEY}" % db_user)
    if ('*' in without_variables or '?' in without_variables) and not allow_wildcard_users:
        problems.append("db user '%s' is a wildcard: it would let the principal connect as any matching database user, master "
                        "user included; list the users, or set allow_wildcard_users: true if that is really meant" % db_user)
    if without_variables == db_user:
        # A literal name: the engines it will log in to must keep it as written (engine unknown: some engine must).
        for engine in sorted(set(engines) & set(DB_USER_NAME_LIMITS)) or [None]:
            try:
                check_db_user_name(db_user, engine)
            except IdentifierError as exc:
                problems.append(str(exc))
    return problems


def check_policy_name(name, parts=1):
    longest = name if parts == 1 else '%s-%d' % (name, parts)
    if not name or not _POLICY_NAME_RE.match(name):
        raise PolicyInputError("policy name '%s' is not valid: use letters, digits and +=,.@_-" % name)
    if len(longest) > POLICY_NAME_MAX:
        raise PolicyInputError("policy name '%s' is longer than %d characters: shorten it" % (longest, POLICY_NAME_MAX))


def connect_arn(partition, region, account_id, resource_id, db_user):
    return 'arn:%s:rds-db:%s:%s:dbuser:%s/%s' % (partition, region, account_id, resource_id, db_user)


def group_by_target_set(user_targets):
    """{db_user: set(resource keys)} -> [(sorted resource keys, sorted users)], one entry per distinct target set, sorted."""
    groups = {}
    for user, targets in user_targets.items():
        groups.setdefault(tuple(sorted(targets)), []).append(user)
    return sorted((targets, sorted(users)) for targets, users in groups.items())


def statement(resources):
    resources = sorted(set(resources))
    digest = hashlib.sha256('\n'.join(resources).encode('utf-8')).hexdigest()[:16].upper()
    return {'Sid': 'RdsIamConnect' + digest, 'Effect': 'Allow', 'Action': ACTION, 'Resource': resources}


def document(statements):
    return {'Version': POLICY_VERSION, 'Statement': sorted(statements, key=lambda item: item['Sid'])}


def serialise(doc):
    """The exact text written to IAM: sorted keys, no whitespace, so its length is what IAM counts."""
    return json.dumps(doc, sort_keys=True, separators=(',', ':'))


def document_size(doc):
    return len(serialise(doc))


def _chunks(resources, room):
    """Split one statement's sorted resources into pieces whose statement fits in room characters."""
    empty = len(serialise(statement([])))  # Sids have a fixed length, so this holds for every statement
    pieces, current, size = [], [], empty
    for arn in resources:
        cost = len(json.dumps(arn)) + (1 if current else 0)
        if current and size + cost > room:
            pieces.append(current)
            current, size = [], empty
            cost = len(json.dumps(arn))
        current.append(arn)
        size += cost
    if current:
        pieces.append(current)
    return pieces


def build_documents(resource_groups, limit):
    """[[arn, ...] per target set] -> documents, each at most limit characters; one document when everything fits.

    Statements stay whole where they can; a statement larger than one document is cut into pieces, and pieces
    are packed in order, so the same grants always give the same documents.
    """
    statements = [statement(resources) for resources in resource_groups if resources]
    whole = document(statements)
    if document_size(whole) <= limit:
        return [whole]
    room = limit - document_size(document([]))
    pieces = []
    for stmt in sorted(statements, key=lambda item: item['Resource']):
        pieces.extend(statement(chunk) for chunk in _chunks(stmt['Resource'], room - 1))
    documents, current = [], []
    for piece in pieces:
        if current and document_size(document(current + [piece])) > limit:
            documents.append(document(current))
            current = []
        current.append(piece)
    if current:
        documents.append(document(current))
    for doc in documents:
        if document_size(doc) > limit:  # a single ARN longer than a whole document
            raise PolicyInputError('a resource ARN does not fit in a %d-character policy document: shorten the db user name' % limit)
    return documents


def part_names(name, count):
    return [name] if count == 1 else ['%s-%d' % (name, number) for number in range(1, count + 1)]


def part_number(name, candidate):
    """N when candidate is named like part N of name (name-N, N from 1 without leading zero, as part_names writes it), else None."""
    suffix = candidate[len(name) + 1:] if candidate.startswith(name + '-') else ''
    return int(suffix) if suffix.isdigit() and suffix[0] != '0' and suffix.isascii() else None


def own_parts(name, candidates):
    """The names among candidates ({name-N: (tags, document)}) that are name's numbered parts.

    A part is an rds-db:connect document this module wrote, tagged PART_TAG=name. Parts written before the tag existed have no
    tag: an untagged run name-1, name-2, ... (at least two, numbered from 1 without a gap, as the module numbered them) is
    taken as name's parts when all are such documents and together they would not fit in one managed policy, the only reason
    this module ever split. A standalone policy named like a part (one per database user: app-1 next to app) is small, so it
    stays someone else's; so does any name-N tagged for another policy.
    """
    connect = {candidate: tags or {} for candidate, (tags, doc) in candidates.items() if is_connect_document(doc)}
    parts = {candidate for candidate, tags in connect.items() if tags.get(PART_TAG) == name}
    run = []
    while '%s-%d' % (name, len(run) + 1) in connect and connect['%s-%d' % (name, len(run) + 1)].get(PART_TAG, name) == name:
        run.append('%s-%d' % (name, len(run) + 1))
    if len(run) >= 2 and sum(document_size(normalise(candidates[candidate][1])) for candidate in run) > SIZE_LIMITS['managed']:
        parts.update(run)
    return parts


def _as_sorted_list(value):
    values = value if isinstance(value, list) else [value]
    return sorted(values, key=lambda item: json.dumps(item, sort_keys=True))


def normalise(doc):
    """A document in a canonical form for comparison: parsed, single values as lists, lists sorted, statements sorted."""
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            return doc
    if not isinstance(doc, dict):
        return doc
    statements = doc.get('Statement') or []
    if isinstance(statements, dict):
        statements = [statements]
    canonical = []
    for stmt in statements:
        item = dict(stmt)
        for key in ('Action', 'NotAction', 'Resource', 'NotResource'):
            if key in item:
                item[key] = _as_sorted_list(item[key])
        canonical.append(dict(sorted(item.items())))
    return {'Version': doc.get('Version', '2008-10-17'), 'Statement': _as_sorted_list(canonical)}


def is_connect_document(doc):
    """Whether doc is one this module writes: only rds-db:connect statements with the Sids statement() gives them.

    A policy named like a numbered part (NAME-1) that is not such a document belongs to someone else and is never deleted.
    """
    doc = normalise(doc)
    statements = doc.get('Statement') if isinstance(doc, dict) else None
    return bool(statements) and all(str(stmt.get('Sid', '')).startswith('RdsIamConnect') and stmt.get('Action') == [ACTION]
                                    for stmt in statements)


def same_document(left, right):
    return normalise(left) == normalise(right)


def arns_of(documents):
    return sorted({arn for doc in documents for stmt in doc['Statement'] for arn in _as_sorted_list(stmt['Resource'])})
