# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: rds_iam_token
author:
  - rdsiam.auth contributors (@rdsiam)
short_description: Mint an IAM database authentication token for Amazon RDS, Aurora or RDS Proxy
version_added: 0.1.0
description:
  - Returns a 15-minute IAM authentication token for logging in to an RDS or Aurora database (PostgreSQL, MySQL, MariaDB)
    or an RDS Proxy as O(db_user), the token RDS expects as the password.
  - The token is signed on the controller (SigV4, service C(rds-db)); it is byte for byte what botocore's
    C(generate_db_auth_token) returns for the same credentials, endpoint, port, user and time. No AWS API is called
    except STS C(AssumeRole) when O(assume_role_arn) needs fresh credentials, and what the credential source itself needs
    (SSO, a container or an instance role).
  - Each term is C(db_user@endpoint:port); C(db_user@) and C(:port) may be left out and then come from O(db_user) and O(port).
    Without terms, one token is minted for O(db_user), O(endpoint) and O(port).
  - The region is taken from the endpoint host name (C(*.REGION.rds.amazonaws.com), C(*.rds.REGION.amazonaws.com.cn) in
    China, GovCloud and ISO partitions). A O(region) given to the lookup that contradicts the host name is an error; a
    region that only comes from E(AWS_REGION) or E(AWS_DEFAULT_REGION) gives way to the host name. A custom DNS name
    (CNAME) needs O(region), and RDS checks the token against the real endpoint, so sign for that endpoint and connect
    through the custom name if you must.
  - The token is a password for 15 minutes. The lookup never writes it anywhere and never shows it in warnings, errors or
    verbose output; set C(no_log) on tasks that would display it.
options:
  _terms:
    description:
      - Targets as C(db_user@endpoint:port), C(db_user@endpoint) or C(endpoint). The user is what comes before the last C(@).
    type: list
    elements: str
    required: false
  endpoint:
    description:
      - The RDS instance, Aurora cluster (writer or reader) or RDS Proxy endpoint host name the token is for.
      - Only the host name, without scheme, port or path. Used when a term gives no endpoint.
    type: str
    aliases: [db_host, hostname]
  port:
    description:
      - The port of the database endpoint, which is part of what is signed.
      - Use V(3306) for MySQL and MariaDB.
    type: int
    default: 5432
  db_user:
    description:
      - The database user to log in as. Used when a term gives no C(db_user@).
      - Rejected when no RDS database could have that name, for example empty, with a NUL or control character, or longer
        than the O(engine) allows (PostgreSQL 63 bytes, MySQL 32 characters, MariaDB 80 characters).
    type: str
    aliases: [user, username]
  engine:
    description:
      - The database engine, used only to check the length of O(db_user).
      - When not set, PostgreSQL's limit applies on port V(5432) (PostgreSQL would silently truncate a longer name) and
        MariaDB's, the largest, elsewhere.
    type: str
    choices: [postgres, mysql, mariadb]
  output:
    description:
      - V(token) returns the token string.
      - V(dict) returns a mapping with C(host), C(port), C(user), C(password) (the token), C(region), C(expires_at)
        (ISO 8601 UTC), C(ssl_mode), C(check_hostname) and C(ca_cert), ready for the login options of this collection's
        modules and of community.postgresql and community.mysql (see EXAMPLES).
    type: str
    choices: [token, dict]
    default: token
  ssl_mode:
    description:
      - The TLS mode put into the V(dict) output. RDS accepts IAM logins only over TLS, so there is no V(disable).
    type: str
    choices: [require, verify-ca, verify-full]
    default: verify-full
  ca_cert:
    description:
      - The CA bundle path put into the V(dict) output, for example the RDS global bundle.
    type: path
    aliases: [ssl_rootcert]
extends_documentation_fragment:
  - rdsiam.auth.aws
  - rdsiam.auth.aws.plugins
notes:
  - Static credentials (options or E(AWS_ACCESS_KEY_ID)/E(AWS_SECRET_ACCESS_KEY)) and fresh cached assumed-role credentials
    are used without loading boto3 or botocore; minting takes about a millisecond, and each task adds roughly 10 ms for
    Ansible to load the plugin in its worker process, against well over 100 ms for a lookup that creates a boto3 client.
    Other credential sources are resolved through botocore's chain once per Ansible worker process.
  - Assumed-role credentials are cached between tasks in a mode 0600 file under C($XDG_CACHE_HOME/rdsiam.auth) (default
    C(~/.cache/rdsiam.auth)), like the AWS CLI does, and refreshed 15 minutes before they expire, so a token signed
    with them lives its full 15 minutes. Set O(credential_cache=false) to always call STS.
  - A token signed with temporary credentials stops working when they expire, even within its 15 minutes; C(expires_at)
    in the V(dict) output accounts for that.
seealso:
  - name: IAM database authentication
    description: Connecting to a DB instance using IAM authentication.
    link: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.IAMDBAuth.Connecting.html
"""

EXAMPLES = r"""
- name: A token for one user (term form)
  ansible.builtin.set_fact:
    pg_token: "{{ lookup('rdsiam.auth.rds_iam_token', 'app_user@db1.abcdefghijkl.eu-west-1.rds.amazonaws.com:5432') }}"
  no_log: true

- name: The same with options, for MySQL, through a role in another account
  ansible.builtin.set_fact:
    mysql_token: >-
      {{ lookup('rdsiam.auth.rds_iam_token', endpoint=mysql_endpoint, port=3306, db_user='reporting',
                assume_role_arn='arn:aws:iam::210987654321:role/db-connect', session_tags={'userName': 'reporting'}) }}
  no_log: true

- name: Log in with community.postgresql (login options from the dict output)
  vars:
    db: "{{ lookup('rdsiam.auth.rds_iam_token', endpoint=pg_endpoint, db_user='app_user', output='dict',
                   ca_cert='/etc/ssl/rds-global-bundle.pem') }}"
  community.postgresql.postgresql_query:
    login_host: "{{ db.host }}"
    port: "{{ db.port }}"
    login_user: "{{ db.user }}"
    login_password: "{{ db.password }}"
    ssl_mode: "{{ db.ssl_mode }}"
    ca_cert: "{{ db.ca_cert }}"
    db: postgres
    query: SELECT current_user
  no_log: true

- name: Log in with community.mysql
  vars:
    db: "{{ lookup('rdsiam.auth.rds_iam_token', endpoint=mysql_endpoint, port=3306, db_user='reporting', output='dict',
                   ca_cert='/etc/ssl/rds-global-bundle.pem') }}"
  community.mysql.mysql_query:
    login_host: "{{ db.host }}"
    login_port: "{{ db.port }}"
    login_user: "{{ db.user }}"
    login_password: "{{ db.password }}"
    ca_cert: "{{ db.ca_cert }}"
    check_hostname: "{{ db.check_hostname }}"
    query: SELECT CURRENT_USER()
  no_log: true

# This collection's modules take the same values as endpoint, login_port, login_user, login_password, ssl_mode and
# ca_cert (or mint the token themselves with login_iam=true).
- name: One token per database of a list
  ansible.builtin.debug:
    msg: "{{ lookup('rdsiam.auth.rds_iam_token', *endpoints, db_user='app_user', wantlist=True) | length }} tokens"
"""

RETURN = r"""
_raw:
  description:
    - One token per term (or one for the options), or with O(output=dict) one mapping per term.
  type: list
  elements: raw
  contains:
    host:
      description: The endpoint the token is for.
      type: str
    port:
      description: The endpoint port.
      type: int
    user:
      description: The database user.
      type: str
    password:
      description: The token.
      type: str
    region:
      description: The region the token was signed for.
      type: str
    expires_at:
      description: When the token stops working (ISO 8601, UTC).
      type: str
    ssl_mode:
      description: The TLS mode to connect with (O(ssl_mode)).
      type: str
    check_hostname:
      description: Whether the server certificate's host name must be checked (community.mysql's C(check_hostname)).
      type: bool
    ca_cert:
      description: The CA bundle path (O(ca_cert)), or null.
      type: str
"""

import datetime
import importlib

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.rdsiam.auth.plugins.module_utils import _token
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._identifiers import IdentifierError, check_db_user_name

display = Display()

# Every Ansible task runs in a new worker process, which compiles the collection's Python from source again.
# Static keys need nothing but _token, and static keys with a fresh cached role only _credential_cache too;
# _aws (the credential chain, STS and option checks) is imported only when these cannot serve.
_ASSUME_ROLE_OPTIONS = ('assume_role_arn', 'role_session_name', 'external_id', 'session_tags')
_MODULE_UTILS = 'ansible_collections.rdsiam.auth.plugins.module_utils.'


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return [self._mint(term) for term in (terms or [None])]
        except RdsIamError as exc:
            # Not chained: the causes are AWS/botocore exceptions whose text is already in the message.
            raise AnsibleLookupError('rds_iam_token: %s' % exc) from None

    def _mint(self, term):
        user, endpoint, port = self._target(term)
        region_option, origin = self.get_option_and_origin('region')
        region = _token.signing_region(endpoint, region_option, region_is_explicit=not str(origin).startswith('env'))
        credentials = self._credentials(region)
        now = datetime.datetime.now(datetime.timezone.utc)
        token = _token.generate_db_auth_token(credentials.access_key, credentials.secret_key, credentials.session_token,
                                              endpoint, port, user, region, now=now)
        # The access key id identifies, it does not authenticate; the token is never displayed.
        display.vvvv('rds_iam_token: signed for %s@%s:%s in %s with %s credentials (access key %s)'
                     % (user, endpoint, port, region, credentials.source, credentials.access_key))
        if self.get_option('output') == 'token':
            return token
        ssl_mode = self.get_option('ssl_mode')
        expires_at = _token.token_expiry(now, credentials.expiration)
        return dict(host=endpoint, port=port, user=user, password=token, region=region,
                    expires_at=expires_at.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
                    ssl_mode=ssl_mode, check_hostname=ssl_mode == 'verify-full', ca_cert=self.get_option('ca_cert'))

    def _credentials(self, region):
        options = self.get_options()
        static = options.get('access_key') and options.get('secret_key') and not options.get('profile')
        if static and not any(options.get(name) for name in _ASSUME_ROLE_OPTIONS):
            return _token.Credentials.from_options(options)
        if static and options.get('assume_role_arn') and isinstance(options.get('session_tags') or {}, dict):
            # Only options that once passed the full checks and STS can be in the cache, so a hit needs no more checks.
            cache = importlib.import_module(_MODULE_UTILS + '_credential_cache')
            try:
                cached = cache.cached_credentials(options, options['access_key'])[1]
            except (TypeError, ValueError):  # odd session_tags: let _aws report them properly
                cached = None
            if cached:
                return cached
        aws = importlib.import_module(_MODULE_UTILS + '_aws')
        aws_options = {name: options.get(name) for name in aws.AWS_ARGUMENT_SPEC}
        aws_options['region'] = region
        return aws.resolve_credentials(aws_options)

    def _target(self, term):
        """(user, endpoint, port) from the term and the options, checked before anything is signed."""
        user, endpoint, port = None, None, None
        if term is not None:
            if not isinstance(term, str):
                raise AnsibleLookupError('rds_iam_token: a term must be a string db_user@endpoint:port, not %s' % type(term).__name__)
            try:
                user, endpoint, port = _token.parse_target(term)
            except ValueError as exc:
                raise AnsibleLookupError('rds_iam_token: %s' % exc) from None
        user = user if user is not None else self.get_option('db_user')
        endpoint = endpoint or self.get_option('endpoint')
        port = port if port is not None else self.get_option('port')
        engine = self.get_option('engine') or ('postgres' if port == 5432 else None)
        problems = [problem for problem in (_token.endpoint_problem(endpoint), _token.port_problem(port)) if problem]
        try:
            check_db_user_name(user, engine, 'db_user')
        except IdentifierError as exc:
            problems.append(str(exc))
        if problems:
            raise AnsibleLookupError('rds_iam_token: %s' % '; '.join(problems))
        return user, endpoint, port
