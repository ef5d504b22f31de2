# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # AWS connection options, shared by every module and lookup of the collection.
    # Names, aliases and environment variables follow amazon.aws so existing setups keep working.
    # Modules use the base fragment (rdsiam.auth.aws); lookups add rdsiam.auth.aws.plugins for
    # the env/vars sources (listed lowest precedence first: the last one set wins).

    DOCUMENTATION = r"""
options:
  region:
    description:
      - The AWS region to use, for example V(us-east-1).
      - If not set, the E(AWS_REGION) or E(AWS_DEFAULT_REGION) environment variable is used, then the region of the profile.
      - Where the region is needed to sign an IAM database auth token and is not set anywhere, it is taken from the RDS
        endpoint host name (C(*.REGION.rds.amazonaws.com)).
    type: str
    aliases: [aws_region, ec2_region]
  profile:
    description:
      - A named profile from the AWS config and credentials files.
      - If not set, the E(AWS_PROFILE) or E(AWS_DEFAULT_PROFILE) environment variable is used.
      - Cannot be combined with O(access_key), O(secret_key) or O(session_token), whether those come from options or environment variables.
    type: str
    aliases: [aws_profile]
  access_key:
    description:
      - The AWS access key id for static credentials. Requires O(secret_key).
      - If not set, the E(AWS_ACCESS_KEY_ID), E(AWS_ACCESS_KEY) or E(EC2_ACCESS_KEY) environment variable is used.
      - When no credentials are given, the default AWS credential chain is used (environment, shared files, container or instance role).
    type: str
    aliases: [aws_access_key_id, aws_access_key, ec2_access_key]
  secret_key:
    description:
      - The AWS secret access key for static credentials. Requires O(access_key).
      - If not set, the E(AWS_SECRET_ACCESS_KEY), E(AWS_SECRET_KEY) or E(EC2_SECRET_KEY) environment variable is used.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key, ec2_secret_key]
  session_token:
    description:
      - The AWS session token that goes with temporary O(access_key) and O(secret_key).
      - If not set, the E(AWS_SESSION_TOKEN) or E(AWS_SECURITY_TOKEN) environment variable is used.
    type: str
    aliases: [aws_session_token, security_token, aws_security_token]
  endpoint_url:
    description:
      - The URL to send AWS API calls to instead of the default endpoints, for example a VPC endpoint or a local test service.
      - Must include the scheme, V(https://) or V(http://).
      - If not set, the E(AWS_ENDPOINT_URL), E(AWS_URL) or E(EC2_URL) environment variable is used.
    type: str
    aliases: [aws_endpoint_url, ec2_url]
  validate_certs:
    description:
      - Whether to verify the TLS certificates of AWS API endpoints.
      - Set to V(false) only for a local test endpoint with a self-signed certificate.
    type: bool
    default: true
  aws_ca_bundle:
    description:
      - The path to a CA bundle used to verify the TLS certificates of AWS API endpoints.
      - If not set, the E(AWS_CA_BUNDLE) environment variable is used.
      - Ignored when O(validate_certs=false).
    type: path
  aws_config:
    description:
      - Overrides for the botocore client configuration, as keyword arguments of C(botocore.config.Config), for example
        C(connect_timeout), C(read_timeout), C(proxies) or C(retries).
      - By default clients use botocore's V(standard) retry mode; set C(retries) to a mapping with C(mode) and C(max_attempts) to change it.
    type: dict
  assume_role_arn:
    description:
      - The ARN of an IAM role to assume with STS C(AssumeRole) before any other AWS call, for example to reach another account.
      - The credentials from the other options (or the default chain) are used to assume the role.
    type: str
  role_session_name:
    description:
      - The session name for O(assume_role_arn); it shows in CloudTrail and in C(aws:userid).
      - Defaults to V(rdsiam-auth-) followed by the local user name, limited to the 64 characters STS allows.
      - Requires O(assume_role_arn).
    type: str
  external_id:
    description:
      - The external id the trust policy of O(assume_role_arn) requires, if any.
      - Requires O(assume_role_arn).
    type: str
  session_tags:
    description:
      - Session tags to pass with O(assume_role_arn), as a mapping of tag key to tag value.
      - They become C(aws:PrincipalTag/KEY) values, which attribute-based (ABAC) policies can use as the database user name.
      - At most 50 tags; keys up to 128 and values up to 256 characters; values must be strings.
      - Requires O(assume_role_arn).
    type: dict
  credential_cache:
    description:
      - Whether to keep the temporary credentials of O(assume_role_arn) between tasks, as the AWS CLI does, in a file
        readable only by the user under C($XDG_CACHE_HOME/rdsiam.auth) (default C(~/.cache/rdsiam.auth)).
      - Cached credentials are used until 15 minutes before they expire, so that a token signed with them lives its full
        15 minutes; the cache entry is specific to the role, session name, external id, session tags, source access key
        and O(endpoint_url).
      - Set to V(false) to call STS C(AssumeRole) in every task instead. Tokens and passwords are never cached.
      - If not set, the E(RDSIAM_CREDENTIAL_CACHE) environment variable is used.
    type: bool
    default: true
notes:
  - Credentials are resolved once per run for each distinct set of options and reused by every AWS client of that run.
  - AWS calls retry with botocore's V(standard) retry mode and identify themselves with the C(rdsiam.auth) user agent.
requirements:
  - botocore >= 1.34.0
"""

    # Extra sources for lookups (and other non-module plugins). Only env/vars live here;
    # the options themselves are documented in DOCUMENTATION above.
    PLUGINS = r"""
options:
  region:
    env:
      - name: AWS_DEFAULT_REGION
      - name: AWS_REGION
    vars:
      - name: rdsiam_aws_region
  profile:
    env:
      - name: AWS_DEFAULT_PROFILE
      - name: AWS_PROFILE
    vars:
      - name: rdsiam_aws_profile
  access_key:
    env:
      - name: EC2_ACCESS_KEY
      - name: AWS_ACCESS_KEY
      - name: AWS_ACCESS_KEY_ID
    vars:
      - name: rdsiam_aws_access_key
  secret_key:
    env:
      - name: EC2_SECRET_KEY
      - name: AWS_SECRET_KEY
      - name: AWS_SECRET_ACCESS_KEY
    vars:
      - name: rdsiam_aws_secret_key
  session_token:
    env:
      - name: AWS_SECURITY_TOKEN
      - name: AWS_SESSION_TOKEN
    vars:
      - name: rdsiam_aws_session_token
  endpoint_url:
    env:
      - name: EC2_URL
      - name: AWS_URL
      - name: AWS_ENDPOINT_URL
    vars:
      - name: rdsiam_aws_endpoint_url
  validate_certs:
    vars:
      - name: rdsiam_aws_validate_certs
  aws_ca_bundle:
    env:
      - name: AWS_CA_BUNDLE
    vars:
      - name: rdsiam_aws_ca_bundle
  aws_config:
    vars:
      - name: rdsiam_aws_config
  assume_role_arn:
    vars:
      - name: rdsiam_aws_assume_role_arn
  role_session_name:
    vars:
      - name: rdsiam_aws_role_session_name
  external_id:
    vars:
      - name: rdsiam_aws_external_id
  session_tags:
    vars:
      - name: rdsiam_aws_session_tags
  credential_cache:
    env:
      - name: RDSIAM_CREDENTIAL_CACHE
    vars:
      - name: rdsiam_aws_credential_cache
"""
