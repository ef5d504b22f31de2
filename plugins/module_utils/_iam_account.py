# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# The one place the audit reads IAM: every user, group, role and managed policy of the account from
# iam:GetAccountAuthorizationDetails (a few pages for the whole account, never one call per principal), the AWS
# managed policies principals use (iam:GetPolicy / GetPolicyVersion once per distinct policy: the listing leaves them
# out unless asked for all of AWS's), and the organization's service control policies when the caller may read them.
# What comes back is plain data: principals with their policy Statements (see _iam_eval), boundary, tags and, for
# roles, who may assume them; _iam_grants turns it into grant and access rows without another AWS call.

import json
from urllib.parse import unquote

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AwsCallError, api_name, aws_call, aws_client
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_eval import statement_action_matches, statements_of

_DETAIL_LISTS = ('UserDetailList', 'GroupDetailList', 'RoleDetailList', 'Policies')
# AWS managed policies are left out of the listing: all of AWS's would be most of its pages, and few are in use.
_DETAIL_FILTER = ['User', 'Role', 'Group', 'LocalManagedPolicy']
_ACCESS_DENIED = ('AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation')
_NOT_IN_ORGANIZATION = 'AWSOrganizationsNotInUseException'
_ASSUME_ACTIONS = ('sts:assumerole', 'sts:assumerolewithsaml', 'sts:assumerolewithwebidentity', 'sts:*', '*')
IDENTITY_CENTER_ROLE_PREFIX = 'AWSReservedSSO_'
_IDENTITY_CENTER_PATH = '/aws-reserved/sso.amazonaws.com/'
_SERVICE_LINKED_PATH = '/aws-service-role/'
_IDENTITY_CENTER_SAML = ':saml-provider/AWSSSO_'


class CallCounter:
    """aws_call that counts each request (each page of a paged one) by IAM action name, for the aws_calls result."""

    def __init__(self):
        self.counts = {}

    def call(self, client, operation, subject, **params):
        name = api_name(client, operation)
        self.counts[name] = self.counts.get(name, 0) + 1
        return aws_call(client, operation, subject, **params)

    def pages(self, client, operation, subject, keys, token_in, token_out, **params):
        """Every page of a paged call, one counted request each, the items under keys gathered as {key: list}."""
        found = dict((key, []) for key in keys)
        while True:
            page = self.call(client, operation, subject, **params)
            for key in keys:
                found[key].extend(page.get(key) or ())
            token = page.get(token_out)
            if not token or (token_out == 'Marker' and not page.get('IsTruncated')):
                return found
            params[token_in] = token


def decode_document(document):
    """A policy document as a dict: botocore decodes IAM's URL-encoded JSON, but raw or cached answers may still hold it."""
    if isinstance(document, dict):
        return document
    text = document.decode('utf-8') if isinstance(document, (bytes, bytearray)) else str(document or '')
    stripped = text.strip()
    if not stripped.startswith(('{', '[')):
        stripped = unquote(stripped)
    loaded = json.loads(stripped)
    if not isinstance(loaded, dict):
        raise ValueError('policy document is not a JSON object')
    return loaded


def caller_identity(options, counter):
    """(partition, account id, caller ARN): one sts:GetCallerIdentity."""
    arn = counter.call(aws_client(options, 'sts'), 'get_caller_identity', 'the current credentials')['Arn']
    parts = arn.split(':')
    return parts[1], parts[4], arn


def _tags(entity):
    return dict((tag['Key'], tag['Value']) for tag in entity.get('Tags') or ())


def _default_document(policy):
    for version in policy.get('PolicyVersionList') or ():
        if version.get('IsDefaultVersion'):
            return version.get('Document')
    return None


def _policy_name(policy):
    return policy.get('PolicyName') or policy['Arn'].rsplit('/', 1)[-1]


class _Documents:
    """Managed policy documents by ARN: from the listing, else read once per ARN (AWS managed policies)."""

    def __init__(self, iam, counter, listed):
        self.iam = iam
        self.counter = counter
        self.known = {}
        self.failed = {}
        for policy in listed:
            document = _default_document(policy)
            if document is not None:
                self.known[policy['Arn']] = (_policy_name(policy), decode_document(document))

    def get(self, arn):
        """(name, document) or (name, None) when it cannot be read; self.failed[arn] says why."""
        if arn not in self.known and arn not in self.failed:
            self._read(arn)
        return self.known.get(arn) or (arn.rsplit('/', 1)[-1], None)

    def _read(self, arn):
        subject = "managed policy '%s'" % arn
        try:
            policy = self.counter.call(self.iam, 'get_policy', subject, missing_ok=True, PolicyArn=arn)
            if policy is None:
                self.failed[arn] = 'the policy does not exist'
                return
            policy = policy['Policy']
            version = self.counter.call(self.iam, 'get_policy_version', subject, PolicyArn=arn, VersionId=policy['DefaultVersionId'])
            self.known[arn] = (_policy_name(policy), decode_document(version['PolicyVersion']['Document']))
        except AwsCallError as exc:
            self.failed[arn] = str(exc)
        except ValueError as exc:
            self.failed[arn] = 'its document is not JSON: %s' % exc


def _inline(entity, list_key, kind, holder):
    statements = []
    for policy in entity.get(list_key) or ():
        source = dict(policy=policy['PolicyName'], policy_arn=None, kind=kind, holder=holder)
        statements.extend(statements_of(decode_document(policy['PolicyDocument']), source))
    return statements


def _attached(entity, kind, holder, documents, problems):
    statements = []
    for attached in entity.get('AttachedManagedPolicies') or ():
        name, document = documents.get(attached['PolicyArn'])
        if document is None:
            problems.append("managed policy '%s' cannot be read: %s" % (attached['PolicyArn'], documents.failed.get(attached['PolicyArn'])))
            continue
        statements.extend(statements_of(document, dict(policy=name, policy_arn=attached['PolicyArn'], kind=kind, holder=holder)))
    return statements


def _boundary(entity, holder, documents, problems):
    arn = (entity.get('PermissionsBoundary') or {}).get('PermissionsBoundaryArn')
    if not arn:
        return None, None
    name, document = documents.get(arn)
    if document is None:
        problems.append("permissions boundary '%s' cannot be read: %s" % (arn, documents.failed.get(arn)))
        return arn, []
    return arn, statements_of(document, dict(policy=name, policy_arn=arn, kind='boundary', holder=holder))


def _principal(entity, kind, name_key, id_key, account):
    return dict(arn=entity['Arn'], kind=kind, name=entity[name_key], id=entity.get(id_key), account=account,
                path=entity.get('Path') or '/', tags=_tags(entity), labels=[], groups=[], members=[], readable=True,
                problems=[], statements=[], boundary=None, boundary_arn=None, assumable_by=[])


def _groups(details, account, documents):
    groups = {}
    for entity in details['GroupDetailList']:
        group = _principal(entity, 'group', 'GroupName', 'GroupId', account)
        group['statements'] = (_inline(entity, 'GroupPolicyList', 'group_inline', entity['Arn'])
                               + _attached(entity, 'group_managed', entity['Arn'], documents, group['problems']))
        groups[entity['GroupName']] = group
    return groups


def _users(details, account, documents, groups):
    users = []
    for entity in details['UserDetailList']:
        user = _principal(entity, 'user', 'UserName', 'UserId', account)
        problems = user['problems']
        statements = _inline(entity, 'UserPolicyList', 'inline', entity['Arn']) + _attached(entity, 'managed', entity['Arn'], documents, problems)
        for group_name in sorted(entity.get('GroupList') or ()):
            group = groups.get(group_name)
            user['groups'].append(group_name)
            if group is None:
                problems.append("group '%s' is not in the account listing" % group_name)
                continue
            group['members'].append(entity['UserName'])
            statements.extend(group['statements'])
            problems.extend(group['problems'])
        user['statements'] = statements
        user['boundary_arn'], user['boundary'] = _boundary(entity, entity['Arn'], documents, problems)
        users.append(user)
    return users


def _roles(details, account, documents):
    roles = []
    for entity in details['RoleDetailList']:
        role = _principal(entity, 'role', 'RoleName', 'RoleId', account)
        problems = role['problems']
        role['statements'] = _inline(entity, 'RolePolicyList', 'inline', entity['Arn']) + _attached(entity, 'managed', entity['Arn'], documents, problems)
        role['boundary_arn'], role['boundary'] = _boundary(entity, entity['Arn'], documents, problems)
        try:
            trust = decode_document(entity.get('AssumeRolePolicyDocument') or {})
        except ValueError as exc:
            problems.append('the trust policy is not JSON: %s' % exc)
            trust = {}
        role['assumable_by'] = assumable_by(trust, account)
        role['labels'] = role_labels(role)
        roles.append(role)
    return roles


def _values(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _aws_principal_type(value, account):
    if value == '*':
        return 'any'
    if value.isdigit():
        return 'account' if value == account else 'cross_account'
    parts = value.split(':')
    if len(parts) < 6 or parts[2] != 'iam':
        return 'any' if '*' in value else 'cross_account'
    if parts[4] != account:
        return 'cross_account'
    resource = parts[5]
    if resource == 'root':
        return 'account'
    if resource.startswith('role/'):
        return 'role'
    if resource.startswith('user/'):
        return 'user'
    return 'account'


def _federated_type(value):
    return 'identity_center' if _IDENTITY_CENTER_SAML in value else 'federated'


def assumable_by(trust, account):
    """[{principal, type, conditions, tag_session}] from a role's trust policy: who may assume it, sorted. type is account
    | role | user | identity_center | service | federated | cross_account | any; conditions is the Condition block as
    written ({} when there is none); tag_session says whether the statement also allows sts:TagSession, without which
    the sessions carry no session tags (an ABAC grant on a tag the role lacks then grants nothing). Deny statements of a
    trust policy are left out: they never let anyone in."""
    entries = []
    for statement in statements_of(trust, dict(policy='trust policy', policy_arn=None, kind='trust', holder=None)):
        if statement.effect != 'Allow':
            continue
        actions = [action.lower() for action in statement.action or ()]
        if statement.action is not None and not any(action in _ASSUME_ACTIONS or action.startswith('sts:assumerole') for action in actions):
            continue
        principal = statement.principal
        conditions = statement.condition or {}
        tag_session = statement_action_matches(statement, 'sts:TagSession')
        if statement.not_principal is not None or principal == '*':
            entries.append(dict(principal='*', type='any', conditions=conditions, tag_session=tag_session))
            continue
        for key, values in sorted((principal or {}).items()):
            for value in _values(values):
                if key == 'AWS':
                    kind = _aws_principal_type(value, account)
                elif key == 'Service':
                    kind = 'service'
                elif key == 'Federated':
                    kind = _federated_type(value)
                else:
                    kind = 'federated'
                entries.append(dict(principal=value, type=kind, conditions=conditions, tag_session=tag_session))
    return sorted(entries, key=lambda entry: (entry['type'], entry['principal'], json.dumps(entry['conditions'], sort_keys=True)))


def role_labels(role):
    labels = set()
    if role['name'].startswith(IDENTITY_CENTER_ROLE_PREFIX) or role['path'].startswith(_IDENTITY_CENTER_PATH) \
            or any(entry['type'] == 'identity_center' for entry in role['assumable_by']):
        labels.add('identity_center')
    if role['path'].startswith(_SERVICE_LINKED_PATH):
        labels.add('service_linked')
    if any(entry['type'] in ('cross_account', 'any') for entry in role['assumable_by']):
        labels.add('cross_account_trust')
    if any(entry['type'] == 'service' for entry in role['assumable_by']):
        labels.add('service_trust')
    if role['boundary_arn']:
        labels.add('permissions_boundary')
    return sorted(labels)


def read_principals(options, counter, account):
    """Every user, group and role of the account with its Statements: a few iam:GetAccountAuthorizationDetails pages,
    plus two reads per distinct AWS managed policy in use. Sorted by ARN."""
    iam = aws_client(options, 'iam')
    details = counter.pages(iam, 'get_account_authorization_details', 'the IAM users, groups, roles and policies of the account',
                            _DETAIL_LISTS, 'Marker', 'Marker', Filter=_DETAIL_FILTER)
    return principals_from_details(details, account, _Documents(iam, counter, details['Policies']))


def principals_from_details(details, account, documents):
    """The principals of a GetAccountAuthorizationDetails answer ({list name: items}), sorted by ARN; documents gives
    managed policy documents by ARN (see _Documents)."""
    groups = _groups(details, account, documents)
    principals = _users(details, account, documents, groups) + list(groups.values()) + _roles(details, account, documents)
    for principal in principals:
        if principal['kind'] == 'user' and principal['boundary_arn']:
            principal['labels'] = ['permissions_boundary']
        principal['members'].sort()
        principal['readable'] = not principal['problems']
    return sorted(principals, key=lambda principal: principal['arn'])


# ---- service control policies ----

def read_scps(options, counter, account):
    """{status: read | not_readable | not_in_organization, msg, policies: [{id, name, targets}], levels, applies}.

    levels: the SCP Statements that apply to the account, one list per level of the organization (root, each OU, the
    account), or None when unknown or not applicable (SCPs do not restrict the management account)."""
    org = aws_client(options, 'organizations')
    try:
        organization = counter.call(org, 'describe_organization', 'the organization of the account')['Organization']
        listed = counter.pages(org, 'list_policies', 'the service control policies', ('Policies',), 'NextToken', 'NextToken',
                               Filter='SERVICE_CONTROL_POLICY')['Policies']
        policies = []
        for policy in sorted(listed, key=lambda item: item['Id']):
            subject = "service control policy '%s'" % policy.get('Name', policy['Id'])
            content = counter.call(org, 'describe_policy', subject, PolicyId=policy['Id'])['Policy']['Content']
            targets = counter.pages(org, 'list_targets_for_policy', subject, ('Targets',), 'NextToken', 'NextToken', PolicyId=policy['Id'])['Targets']
            policies.append(dict(id=policy['Id'], name=policy.get('Name'), arn=policy.get('Arn'), document=decode_document(content),
                                 targets=sorted(target['TargetId'] for target in targets)))
        chain = _account_chain(org, counter, account)
    except AwsCallError as exc:
        if exc.code == _NOT_IN_ORGANIZATION:
            return dict(status='not_in_organization', msg='the account is not a member of an organization: no SCP applies',
                        policies=[], levels=None)
        if exc.code in _ACCESS_DENIED:
            return dict(status='not_readable', msg='%s; access is evaluated without service control policies' % exc, policies=[], levels=None)
        raise
    public = [dict(id=policy['id'], name=policy['name'], targets=policy['targets']) for policy in policies]
    if organization.get('MasterAccountId') == account:
        return dict(status='read', msg='the account is the management account of its organization: SCPs do not restrict it',
                    policies=public, levels=None)
    levels = []
    for node in chain:
        level = []
        for policy in policies:
            if node in policy['targets']:
                level.extend(statements_of(policy['document'], dict(policy=policy['name'], policy_arn=policy['arn'], kind='scp', holder=node)))
        levels.append(level)
    return dict(status='read', msg='%d service control policies read' % len(policies), policies=public, levels=levels)


def _account_chain(org, counter, account):
    """[root id, OU ids..., account id]: the nodes an SCP can be attached to above and at the account."""
    chain = [account]
    child = account
    while True:
        parents = counter.call(org, 'list_parents', "the parents of '%s'" % child, ChildId=child)['Parents']
        if not parents:
            break
        child = parents[0]['Id']
        chain.insert(0, child)
        if parents[0]['Type'] == 'ROOT':
            break
    return chain


def read_account(options, counter=None):
    """Everything the grants evaluation needs, read once: {partition, account, caller, principals, scps, aws_calls}."""
    counter = counter or CallCounter()
    partition, account, caller = caller_identity(options, counter)
    principals = read_principals(options, counter, account)
    scps = read_scps(options, counter, account)
    return dict(partition=partition, account=account, caller=caller, principals=principals, scps=scps, aws_calls=counter.counts)
