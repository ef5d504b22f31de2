"""AssumeRole as AWS answers it: the caller, read from moto, checked against the role's trust policy.

The decision itself is trust_policy.decide (pure); this module finds what it needs in moto's
backends: who the request's access key belongs to (the verifier's MotoDirectory, so a caller
has the same policies, boundary, session policy and tags here as at login) and the role.
shims._shim_trust_policy calls authorize() before moto issues anything.
"""
import datetime

from moto.core.exceptions import AccessDeniedError, InvalidClientTokenIdError, ServiceException
from moto.iam.models import iam_backends

from sandbox.aws import trust_policy


class StsError(ServiceException):
    """An STS error with AWS's code and message (HTTP 400)."""


def _access_denied(caller_arn, action, role_arn):
    # moto's AccessDeniedError answers HTTP 403 as AWS does, with "User: ARN is not authorized to perform: ACTION".
    return AccessDeniedError(caller_arn, f"{action} on resource: {role_arn}")


def _caller(principal):
    """trust_policy.Caller for a verifier Principal (an IAM user or a role session)."""
    role_arn = principal.context.get("aws:PrincipalArn")
    own = (principal.arn,) if role_arn in (None, principal.arn) else (role_arn, principal.arn)
    return trust_policy.Caller(arn=principal.arn, account_id=principal.account_id, own_arns=own, policies=principal.policies,
                               context=principal.context, session_policies=principal.session_policies,
                               boundary_policies=principal.boundary_policies)


def _role(role_arn):
    parts = (role_arn or "").split(":")
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    if parts[4] not in iam_backends:  # an account nothing has been created in yet
        return None
    account = iam_backends[parts[4]]
    return next((role for role in list(account["aws"].roles.values()) if role.arn == role_arn), None)


def caller_of(access_key_id):
    """The Caller behind a request's access key; AWS's error for an unknown, inactive or expired key."""
    from sandbox.aws.credentials_api import DIRECTORY  # imports moto's backends: only once a request comes in

    principal = DIRECTORY.principal(access_key_id)
    if principal is None or principal.status != "Active":
        raise InvalidClientTokenIdError()
    if principal.expiration is not None and principal.expiration <= datetime.datetime.now(datetime.timezone.utc):
        raise StsError("ExpiredToken", "The security token included in the request is expired")
    return _caller(principal)


def authorize(access_key_id, role_arn, session_name, external_id, tags, transitive_tag_keys):
    """Raise AccessDenied unless the caller may assume role_arn (and tag the session, when tags are given)."""
    caller = caller_of(access_key_id)
    role = _role(role_arn)
    if role is None:  # AWS does not say whether the role exists: the same refusal as an untrusted caller
        raise _access_denied(caller.arn, trust_policy.ASSUME_ROLE, role_arn)
    context = trust_policy.request_context(session_name, external_id, tags, transitive_tag_keys)
    actions = [trust_policy.ASSUME_ROLE] + ([trust_policy.TAG_SESSION] if tags or transitive_tag_keys else [])
    for action in actions:
        decision = trust_policy.decide(role.assume_role_policy_document, role_arn, caller, context, action)
        if not decision.allowed:
            raise _access_denied(caller.arn, action, role_arn)
