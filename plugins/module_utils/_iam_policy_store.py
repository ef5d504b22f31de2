# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Reading and writing IAM policies for rds_iam_policy: managed policies (versions, tags,
# attachments) and inline policies on one role, user or group. Every failure is reported by its
# AWS error code, naming the policy, the principal and the fix.
#
# Concurrent runs (two onboardings, job slices) write the same policies at the same moment, so every
# write tolerates the other run having done the same thing a moment earlier: a create that finds the
# policy under the same path reports it as existing, a detach or a version delete that finds nothing
# left counts as done, and IAM's ConcurrentModification is retried where a call declares it.

from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_policy as docs
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError, aws_call

MAX_VERSIONS = 5
PRINCIPAL_TYPES = ('role', 'user', 'group')
_PRINCIPAL_KEY = {'role': 'RoleName', 'user': 'UserName', 'group': 'GroupName'}
_ENTITY_LISTS = {'role': 'PolicyRoles', 'user': 'PolicyUsers', 'group': 'PolicyGroups'}

# What a write declares retryable: botocore's standard retry mode does not treat IAM's ConcurrentModification as
# retryable, but AWS asks callers to retry it, and concurrent runs of this module meet it on the same policy.
WRITE_RETRIES = ('ConcurrentModification',)
# What a read of a policy another run has just created declares retryable: IAM is eventually consistent, so the policy
# CreatePolicy said exists may not be readable for a moment.
JUST_CREATED_RETRIES = ('NoSuchEntity',)
# CreatePolicyVersion's LimitExceeded while a concurrent run adds or prunes versions: list, prune and create again this often.
_VERSION_ATTEMPTS = 3


def tags_of(policy):
    """{key: value} of the tags of a policy as iam:GetPolicy gives it."""
    return {tag['Key']: tag['Value'] for tag in policy.get('Tags') or ()}


class IamStore:
    """IAM calls for one rds_iam_policy run; `subject` (the policy and its principals) goes into every error."""

    def __init__(self, iam, subject):
        self.iam = iam
        self.subject = subject

    # --- managed policies --------------------------------------------------------------------

    def attached_policy_arns(self, kind, principal, path):
        """ARNs of the managed policies under path attached to the principal, or None when the principal does not exist."""
        found = aws_call(self.iam, 'list_attached_%s_policies' % kind, "%s '%s'" % (kind, principal), result_key='AttachedPolicies',
                         missing_ok=True, PathPrefix=path, **{_PRINCIPAL_KEY[kind]: principal})
        return None if found is None else {policy['PolicyArn'] for policy in found}

    def read_managed(self, arn, name, known_attachments=None, listed=None, just_created=False):
        """{arn, name, version, document, description, tags, attachments} of a managed policy, or None if it does not exist.

        known_attachments ({kind: [principal]}, read from the principals' side) saves listing the policy's entities when
        IAM's AttachmentCount says there are no others. listed (the policy as list_managed gave it) saves get_policy; its
        description and tags are then None, since IAM's list leaves them out. just_created: CreatePolicy has just said the
        policy exists, so a NoSuchEntity is IAM's eventual consistency and is retried before it counts.
        """
        retry = JUST_CREATED_RETRIES if just_created else ()
        policy = listed or self.describe_managed(arn, name, retry)
        if policy is None:
            return None
        document = self.default_document(arn, policy, name, retry)
        return self.managed_state(arn, policy, name, document, known_attachments, described=listed is None)

    def describe_managed(self, arn, name, retry=()):
        """The policy as iam:GetPolicy gives it (with its Description and Tags), or None if it does not exist."""
        found = aws_call(self.iam, 'get_policy', "policy '%s'" % name, missing_ok=True, retry=retry, PolicyArn=arn)
        return found and found['Policy']

    def default_document(self, arn, policy, name, retry=()):
        """The document of the policy's default version (policy as get_policy or list_managed gave it)."""
        return aws_call(self.iam, 'get_policy_version', "policy '%s'" % name, retry=retry, PolicyArn=arn,
                        VersionId=policy['DefaultVersionId'])['PolicyVersion']['Document']

    def managed_state(self, arn, policy, name, document, known_attachments=None, described=True):
        """read_managed's result from what was read already; lists the policy's entities only when known_attachments cannot
        account for IAM's AttachmentCount. described: policy came from get_policy, so its description and tags are IAM's."""
        known = known_attachments or {kind: [] for kind in PRINCIPAL_TYPES}
        if policy.get('AttachmentCount') == sum(len(principals) for principals in known.values()):
            attachments = {kind: sorted(known.get(kind) or ()) for kind in PRINCIPAL_TYPES}
        else:
            entities = aws_call(self.iam, 'list_entities_for_policy', "policy '%s'" % name, result_key=tuple(_ENTITY_LISTS.values()),
                                PolicyArn=arn)
            attachments = {kind: sorted(entity[_PRINCIPAL_KEY[kind]] for entity in entities[key]) for kind, key in _ENTITY_LISTS.items()}
        tags = tags_of(policy) if described else None
        return dict(arn=arn, name=name, version=policy['DefaultVersionId'], document=document, description=policy.get('Description'),
                    tags=tags, attachments=attachments)

    def list_managed(self, path_prefix):
        """{arn: policy} of every customer managed policy under path_prefix: one paged list (1,000 a page) instead of a
        get_policy per name, however many policies a run manages. Each policy has its DefaultVersionId and AttachmentCount."""
        found = aws_call(self.iam, 'list_policies', 'the customer managed policies under %s' % path_prefix, result_key='Policies',
                         Scope='Local', PathPrefix=path_prefix, PaginationConfig={'PageSize': 1000})
        return {policy['Arn']: policy for policy in found}

    # Writes return False when they found their work already done by someone else (nothing left to detach or delete);
    # anything else means they changed IAM.

    def create_managed(self, name, path, document_text, description, tags):
        """(arn, default version id) of the new policy, or None when IAM says a policy of this name exists under this same
        path: a concurrent run created it after this run read IAM, and the caller reads it and treats it as existing.

        IAM policy names are unique across paths, so when the name is taken under another path the error says which one.
        """
        params = dict(PolicyName=name, Path=path, PolicyDocument=document_text)
        if description:
            params['Description'] = description
        if tags:
            params['Tags'] = [{'Key': key, 'Value': value} for key, value in sorted(tags.items())]
        try:
            policy = aws_call(self.iam, 'create_policy', "policy '%s' (%s)" % (name, self.subject), retry=WRITE_RETRIES, **params)['Policy']
        except AwsCallError as exc:
            if exc.code != 'EntityAlreadyExists':
                raise
            # Read where the existing policy lives before blaming the path. Not found at all (IAM's lists are eventually
            # consistent too) means it was created a moment ago, under this path, since plan() saw nothing there.
            elsewhere = self.paths_of(name).get(name)
            if elsewhere is not None and elsewhere != path:
                raise AwsCallError("%s: a policy with this name already exists under another path, %s (this run writes under %s): "
                                   'set path to %s to manage that policy, or use another name' % (exc, elsewhere, path, elsewhere),
                                   code=exc.code, operation=exc.operation) from exc
            return None
        return policy['Arn'], policy['DefaultVersionId']

    def new_version(self, arn, name, document_text, seen_default=None):
        """Make document_text the default version: (its version id, True). With five versions, first delete the oldest
        non-default one.

        A concurrent run may add or prune versions between this run's reads and its writes. When the default is no longer
        seen_default (the version this run compared with) and holds this same document, that run wrote it first: it stays,
        and the result is (its version id, False). A version that run deleted first counts as deleted. When its new version
        took the last free place (CreatePolicyVersion's LimitExceeded), the versions are listed, compared and pruned again.
        """
        subject = "policy '%s'" % name
        for attempt in range(_VERSION_ATTEMPTS):
            versions = aws_call(self.iam, 'list_policy_versions', subject, PolicyArn=arn)['Versions']
            default = next((item for item in versions if item['IsDefaultVersion']), None)
            if default and (attempt or seen_default not in (None, default['VersionId'])):
                written = aws_call(self.iam, 'get_policy_version', subject, PolicyArn=arn, VersionId=default['VersionId'])['PolicyVersion']
                if docs.same_document(written['Document'], document_text):
                    return default['VersionId'], False
            if len(versions) >= MAX_VERSIONS:
                oldest = min((item for item in versions if not item['IsDefaultVersion']), key=lambda item: item['CreateDate'])
                aws_call(self.iam, 'delete_policy_version', subject, missing_ok=True, retry=WRITE_RETRIES, PolicyArn=arn, VersionId=oldest['VersionId'])
            try:
                created = aws_call(self.iam, 'create_policy_version', subject, retry=WRITE_RETRIES, PolicyArn=arn, PolicyDocument=document_text,
                                   SetAsDefault=True)
            except AwsCallError as exc:
                if exc.code == 'LimitExceeded' and attempt + 1 < _VERSION_ATTEMPTS:
                    continue
                raise
            return created['PolicyVersion']['VersionId'], True
        return None, False  # unreachable: the last attempt returns or raises

    def set_tags(self, arn, name, current, wanted):
        subject = "policy '%s'" % name
        stale = sorted(key for key in current if key not in wanted)
        if stale:
            aws_call(self.iam, 'untag_policy', subject, retry=WRITE_RETRIES, PolicyArn=arn, TagKeys=stale)
        changed = {key: value for key, value in wanted.items() if current.get(key) != value}
        if changed:
            aws_call(self.iam, 'tag_policy', subject, retry=WRITE_RETRIES, PolicyArn=arn,
                     Tags=[{'Key': key, 'Value': value} for key, value in sorted(changed.items())])

    def attach(self, arn, name, kind, principal):
        # AttachXPolicy is idempotent in IAM: a concurrent run's attachment of the same policy is no error.
        aws_call(self.iam, 'attach_%s_policy' % kind, "policy '%s' to %s '%s'" % (name, kind, principal), retry=WRITE_RETRIES, PolicyArn=arn,
                 **{_PRINCIPAL_KEY[kind]: principal})

    def detach(self, arn, name, kind, principal):
        """True when this call detached the policy; False when it was not attached any more (a concurrent run detached it)."""
        return aws_call(self.iam, 'detach_%s_policy' % kind, "policy '%s' from %s '%s'" % (name, kind, principal), missing_ok=True,
                        retry=WRITE_RETRIES, PolicyArn=arn, **{_PRINCIPAL_KEY[kind]: principal}) is not None

    def delete_managed(self, current):
        """Detach everywhere, delete the non-default versions, then the policy (IAM's required order). What a concurrent run
        removed first counts as removed; False when there was nothing left for this call to remove."""
        arn, name = current['arn'], current['name']
        subject = "policy '%s'" % name
        removed = False
        for kind in PRINCIPAL_TYPES:
            for principal in current['attachments'][kind]:
                removed = self.detach(arn, name, kind, principal) or removed
        listed = aws_call(self.iam, 'list_policy_versions', subject, missing_ok=True, PolicyArn=arn)
        for version in (listed or {}).get('Versions') or ():
            if not version['IsDefaultVersion']:
                removed = aws_call(self.iam, 'delete_policy_version', subject, missing_ok=True, retry=WRITE_RETRIES, PolicyArn=arn,
                                   VersionId=version['VersionId']) is not None or removed
        return aws_call(self.iam, 'delete_policy', subject, missing_ok=True, retry=WRITE_RETRIES, PolicyArn=arn) is not None or removed

    def paths_of(self, name):
        """{policy name: path} of the customer managed policies named name or name-N, under any path (one paged list)."""
        found = aws_call(self.iam, 'list_policies', "policy '%s'" % name, result_key='Policies', Scope='Local')
        return {policy['PolicyName']: policy.get('Path') or '/' for policy in found
                if policy['PolicyName'] == name or docs.part_number(name, policy['PolicyName'])}

    def principal_exists(self, kind, principal):
        return aws_call(self.iam, 'get_%s' % kind, "%s '%s'" % (kind, principal), missing_ok=True, **{_PRINCIPAL_KEY[kind]: principal}) is not None

    # --- inline policies -----------------------------------------------------------------------

    def read_inline(self, kind, principal, name):
        found = aws_call(self.iam, 'get_%s_policy' % kind, "inline policy '%s' of %s '%s'" % (name, kind, principal), missing_ok=True,
                         PolicyName=name, **{_PRINCIPAL_KEY[kind]: principal})
        if found is None:
            return None
        return dict(arn=None, name=name, version=None, document=found['PolicyDocument'])

    def put_inline(self, kind, principal, name, document_text):
        aws_call(self.iam, 'put_%s_policy' % kind, "inline policy '%s' of %s '%s'" % (name, kind, principal), retry=WRITE_RETRIES, PolicyName=name,
                 PolicyDocument=document_text, **{_PRINCIPAL_KEY[kind]: principal})

    def delete_inline(self, kind, principal, name):
        """True when this call deleted the inline policy; False when it was gone already (a concurrent run deleted it)."""
        return aws_call(self.iam, 'delete_%s_policy' % kind, "inline policy '%s' of %s '%s'" % (name, kind, principal), missing_ok=True,
                        retry=WRITE_RETRIES, PolicyName=name, **{_PRINCIPAL_KEY[kind]: principal}) is not None
