"""Sessions the sandbox's STS issues only the way AWS would: from the management account, and through SAML.

The sandbox has two accounts: the fleet's (its operator is `sandbox.state["operator"]`) and a
management account (`sandbox.state["operator"]["management_account"]`, sandbox/fleet.py). Its STS
checks trust policies, so a role that trusts another account is assumed from that account, and an
Identity Center role (trust: a SAML provider) is reached through AssumeRoleWithSAML, as people reach
it. Credentials come back in the shape sandbox/iam_login.py uses. (No tests live here.)
"""
import base64
import json
import urllib.request
from urllib.parse import parse_qs

import boto3

from sandbox import fleet, reference_client

SAML_ATTRIBUTES = "https://aws.amazon.com/SAML/Attributes/"


def management(sandbox):
    """The management account's administrator: account_id, access_key_id, secret_access_key."""
    return sandbox.state["operator"]["management_account"]


def client_as(sandbox, service, keys):
    """A boto3 client on the sandbox's moto with keys (a credentials dict, session token optional)."""
    return boto3.client(service, endpoint_url=sandbox.moto_url, region_name=sandbox.region,
                        aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"],
                        aws_session_token=keys.get("session_token"))


def management_iam(sandbox):
    return client_as(sandbox, "iam", management(sandbox))


def assume_role_as(sandbox, keys, role_arn, session_name, *, session_tags=None):
    """Temporary credentials for role_arn, asked for with keys (any account's)."""
    return reference_client.assume_role(client_as(sandbox, "sts", keys), role_arn, session_name, session_tags=session_tags)


def management_role(sandbox, name, statements):
    """A role in the management account its administrator may assume, with an inline policy; returns its ARN."""
    iam = management_iam(sandbox)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{fleet.MANAGEMENT_ACCOUNT}:root"},
                                                     "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="own", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return arn


def delete_management_role(sandbox, name):
    iam = management_iam(sandbox)
    try:
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        iam.delete_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        pass


def _saml_response(role_arn, provider_arn, session_name):
    """An unsigned SAML response carrying the attributes AWS reads (moto checks neither signature nor issuer)."""
    attributes = {"RoleSessionName": session_name, "Role": f"{role_arn},{provider_arn}"}
    values = "".join(f'<saml:Attribute Name="{SAML_ATTRIBUTES}{name}"><saml:AttributeValue>{value}</saml:AttributeValue></saml:Attribute>'
                     for name, value in attributes.items())
    document = ('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">'
                f"<saml:Assertion><saml:AttributeStatement>{values}</saml:AttributeStatement></saml:Assertion></samlp:Response>")
    return base64.b64encode(document.encode()).decode()


def saml_session(sandbox, role_arn, provider_arn, session_name):
    """Credentials of an AssumeRoleWithSAML session of role_arn, as an Identity Center user gets them."""
    sts = boto3.client("sts", endpoint_url=sandbox.moto_url, region_name=sandbox.region)
    issued = sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider_arn,
                                       SAMLAssertion=_saml_response(role_arn, provider_arn, session_name))
    keys = issued["Credentials"]
    return dict(reference_client.credentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"]),
                arn=issued["AssumedRoleUser"]["Arn"], user_id=issued["AssumedRoleUser"]["AssumedRoleId"])


def credentials_of(sandbox, token):
    """Who signed an RDS auth token, as the sandbox's credentials endpoint knows the key (type, account_id, arn, ...)."""
    access_key = parse_qs(token.partition("/?")[2])["X-Amz-Credential"][0].split("/")[0]
    with urllib.request.urlopen(f"{sandbox.moto_url}/_sandbox/credentials/{access_key}", timeout=10) as response:
        return json.load(response)
