# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Reading and writing IAM policies for rds_iam_policy: managed policies (versions, tags,
# attachments) and inline policies on one role, user or group. Every failure is reported by its
# AWS error code, naming the policy, the principal and the fix.

import time

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError, aws_error_message
from ansible_collections.rdsiam.auth.plugins.module_utils._common import import_library

MAX_VERSIONS = 5
PRINCIPAL_TYPES = ('role', 'user', 'group')
_PRINCIPAL_KEY = {'role': 'RoleName', 'user': 'UserName', 'group': 'GroupName'}
_ENTITY_LISTS = {'role': 'PolicyRoles', 'user': 'PolicyUsers', 'group': 'PolicyGroups'}

_FIXES = {
    'NoSuchEntity': 'create the principal first or fix its name',
    'LimitExceeded': 'an IAM quota is reached (managed policies per principal, policy versions or policy size): detach other '
                     'policies from the principal or ask AWS for a higher quota',
    'MalformedPolicyDocument': 'IAM refused the document: check the db user names and targets of the grants',
    'AccessDenied': 'grant the calling identity this IAM permission',
    'EntityAlreadyExists': 'a policy with this name already exists under another path: set path to its path or use another name',
    'InvalidInput': 'check the name, path, description and tags',
    'ConcurrentModification': 'another change to this policy was in progress: run again',
}
# botocore's standard retry mode does not treat IAM's ConcurrentModification as retryable; AWS asks to retry it.
_CONCURRENT_ATTEMPTS = 4
_CONCURRENT_BACKOFF = 0.5


def _exceptions():
    return import_library('botocore.exceptions', 'botocore', reason='to call AWS APIs')


def error_code(exc):
    return ((getattr(exc, 'response', None) or {}).get('Error') or {}).get('Code')


class IamStore:
    """IAM calls for one rds_iam_policy run; `subject` (the policy and its principals) goes into every error."""

    def __init__(self, iam, subject):
        self.iam = iam
        self.subject = subject

    def call(self, operation, subject=None, missing_ok=False, **kwargs):
        exceptions = _exceptions()
        for attempt in range(_CONCURRENT_ATTEMPTS):
            try:
                return getattr(self.iam, operation)(**kwargs)
            except exceptions.ClientError as exc:
                code = error_code(exc)
                if missing_ok and code == 'NoSuchEntity':
                    return None
                if code == 'ConcurrentModification' and attempt + 1 < _CONCURRENT_ATTEMPTS:
                    time.sleep(_CONCURRENT_BACKOFF * 2 ** attempt)
                    continue
                raise self._error(exc, operation, subject, code) from exc
            except exceptions.BotoCoreError as exc:
                raise self._error(exc, operation, subject, None) from exc
        return None  # unreachable: the last attempt returns or raises

    def _error(self, exc, operation, subject, code):
        message = aws_error_message(exc, 'iam:' + ''.join(part.title() for part in operation.split('_')), subject or self.subject)
        fix = _FIXES.get(code)
        if code == 'AccessDenied':
            fix = 'grant the calling identity iam:%s' % ''.join(part.title() for part in operation.split('_'))
        return AwsCallError(message + (': ' + fix if fix else ''))

    def paginate(self, operation, result_keys, subject=None, **kwargs):
        exceptions = _exceptions()
        results = {key: [] for key in result_keys}
        try:
            for page in self.iam.get_paginator(operation).paginate(**kwargs):
                for key in result_keys:
                    results[key].extend(page.get(key) or ())
        except exceptions.ClientError as exc:
            raise self._error(exc, operation, subject, error_code(exc)) from exc
        except exceptions.BotoCoreError as exc:
            raise self._error(exc, operation, subject, None) from exc
        return results

    # --- managed policies --------------------------------------------------------------------

    def attached_policy_arns(self, kind, principal, path):
        """ARNs of the managed policies under path attached to the principal, or None when the principal does not exist."""
        exceptions = _exceptions()
        subject = "%s '%s'" % (kind, principal)
        try:
            pages = self.iam.get_paginator('list_attached_%s_policies' % kind).paginate(PathPrefix=path, **{_PRINCIPAL_KEY[kind]: principal})
            return {policy['PolicyArn'] for page in pages for policy in page.get('AttachedPolicies') or ()}
        except exceptions.ClientError as exc:
            if error_code(exc) == 'NoSuchEntity':
                return None
            raise self._error(exc, 'list_attached_%s_policies' % kind, subject, error_code(exc)) from exc
        except exceptions.BotoCoreError as exc:
            raise self._error(exc, 'list_attached_%s_policies' % kind, subject, None) from exc

    def read_managed(self, arn, name, known_attachments=None, listed=None):
        """{arn, name, version, document, description, tags, attachments} of a managed policy, or None if it does not exist.

        known_attachments ({kind: [principal]}, read from the principals' side) saves listing the policy's entities when
        IAM's AttachmentCount says there are no others. listed (the policy as list_managed gave it) saves get_policy; its
        description and tags are then None, since IAM's list leaves them out.
        """
        policy = listed
        if policy is None:
            policy = self.call('get_policy', "policy '%s'" % name, missing_ok=True, PolicyArn=arn)
            if policy is None:
                return None
            policy = policy['Policy']
        version = self.call('get_policy_version', "policy '%s'" % name, PolicyArn=arn, VersionId=policy['DefaultVersionId'])
        known = known_attachments or {kind: [] for kind in PRINCIPAL_TYPES}
        if policy.get('AttachmentCount') == sum(len(principals) for principals in known.values()):
            attachments = {kind: sorted(known.get(kind) or ()) for kind in PRINCIPAL_TYPES}
        else:
            entities = self.paginate('list_entities_for_policy', list(_ENTITY_LISTS.values()), "policy '%s'" % name, PolicyArn=arn)
            attachments = {kind: sorted(entity[_PRINCIPAL_KEY[kind]] for entity in entities[key]) for kind, key in _ENTITY_LISTS.items()}
        tags = None if listed else {tag['Key']: tag['Value'] for tag in policy.get('Tags') or ()}
        return dict(arn=arn, name=name, version=policy['DefaultVersionId'], document=version['PolicyVersion']['Document'],
                    description=policy.get('Description'), tags=tags, attachments=attachments)

    def list_managed(self, path_prefix):
        """{arn: policy} of every customer managed policy under path_prefix: one paged list (1,000 a page) instead of a
        get_policy per name, for runs that manage many policies. Each policy has its DefaultVersionId and AttachmentCount."""
        found = self.paginate('list_policies', ['Policies'], 'the customer managed policies under %s' % path_prefix, Scope='Local',
                              PathPrefix=path_prefix, PaginationConfig={'PageSize': 1000})['Policies']
        return {policy['Arn']: policy for policy in found}

    def create_managed(self, name, path, document_text, description, tags):
        params = dict(PolicyName=name, Path=path, PolicyDocument=document_text)
        if description:
            params['Description'] = description
        if tags:
            params['Tags'] = [{'Key': key, 'Value': value} for key, value in sorted(tags.items())]
        policy = self.call('create_policy', "policy '%s' (%s)" % (name, self.subject), **params)['Policy']
        return policy['Arn'], policy['DefaultVersionId']

    def new_version(self, arn, name, document_text):
        """Make document_text the default version; with five versions, first delete the oldest non-default one."""
        subject = "policy '%s'" % name
        versions = self.call('list_policy_versions', subject, PolicyArn=arn)['Versions']
        if len(versions) >= MAX_VERSIONS:
            oldest = min((item for item in versions if not item['IsDefaultVersion']), key=lambda item: item['CreateDate'])
            self.call('delete_policy_version', subject, PolicyArn=arn, VersionId=oldest['VersionId'])
        created = self.call('create_policy_version', subject, PolicyArn=arn, PolicyDocument=document_text, SetAsDefault=True)
        return created['PolicyVersion']['VersionId']

    def set_tags(self, arn, name, current, wanted):
        subject = "policy '%s'" % name
        stale = sorted(key for key in current if key not in wanted)
        if stale:
            self.call('untag_policy', subject, PolicyArn=arn, TagKeys=stale)
        changed = {key: value for key, value in wanted.items() if current.get(key) != value}
        if changed:
            self.call('tag_policy', subject, PolicyArn=arn, Tags=[{'Key': key, 'Value': value} for key, value in sorted(changed.items())])

    def attach(self, arn, name, kind, principal):
        self.call('attach_%s_policy' % kind, "policy '%s' to %s '%s'" % (name, kind, principal), PolicyArn=arn,
                  **{_PRINCIPAL_KEY[kind]: principal})

    def detach(self, arn, name, kind, principal):
        self.call('detach_%s_policy' % kind, "policy '%s' from %s '%s'" % (name, kind, principal), missing_ok=True, PolicyArn=arn,
                  **{_PRINCIPAL_KEY[kind]: principal})

    def delete_managed(self, current):
        """Detach everywhere, delete the non-default versions, then the policy (IAM's required order)."""
        arn, name = current['arn'], current['name']
        for kind in PRINCIPAL_TYPES:
            for principal in current['attachments'][kind]:
                self.detach(arn, name, kind, principal)
        for version in self.call('list_policy_versions', "policy '%s'" % name, PolicyArn=arn)['Versions']:
            if not version['IsDefaultVersion']:
                self.call('delete_policy_version', "policy '%s'" % name, PolicyArn=arn, VersionId=version['VersionId'])
        self.call('delete_policy', "policy '%s'" % name, missing_ok=True, PolicyArn=arn)

    def paths_of(self, name, listed=None):
        """{policy name: path} of the customer managed policies named name or name-N, under any path (one paged list, or
        listed: list_managed('/') already made)."""
        found = listed if listed is not None else self.paginate('list_policies', ['Policies'], "policy '%s'" % name, Scope='Local')['Policies']
        numbered = name + '-'
        return {policy['PolicyName']: policy.get('Path') or '/' for policy in found
                if policy['PolicyName'] == name or (policy['PolicyName'].startswith(numbered) and policy['PolicyName'][len(numbered):].isdigit())}

    def principal_exists(self, kind, principal):
        return self.call('get_%s' % kind, "%s '%s'" % (kind, principal), missing_ok=True, **{_PRINCIPAL_KEY[kind]: principal}) is not None

    # --- inline policies -----------------------------------------------------------------------

    def read_inline(self, kind, principal, name):
        found = self.call('get_%s_policy' % kind, "inline policy '%s' of %s '%s'" % (name, kind, principal), missing_ok=True,
                          PolicyName=name, **{_PRINCIPAL_KEY[kind]: principal})
        if found is None:
            return None
        return dict(arn=None, name=name, version=None, document=found['PolicyDocument'])

    def put_inline(self, kind, principal, name, document_text):
        self.call('put_%s_policy' % kind, "inline policy '%s' of %s '%s'" % (name, kind, principal), PolicyName=name,
                  PolicyDocument=document_text, **{_PRINCIPAL_KEY[kind]: principal})

    def delete_inline(self, kind, principal, name):
        self.call('delete_%s_policy' % kind, "inline policy '%s' of %s '%s'" % (name, kind, principal), missing_ok=True,
                  PolicyName=name, **{_PRINCIPAL_KEY[kind]: principal})
