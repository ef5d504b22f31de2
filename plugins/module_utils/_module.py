# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# The one skeleton of every rdsiam.auth module: an AnsibleModule that adds the AWS options (always),
# the options naming one RDS instance or cluster, and the database login options when asked; exposes
# them as plain dicts for the helpers; and turns every RdsIamError into one fail_json. A module is
# DOCUMENTATION / EXAMPLES / RETURN, its own argument spec, run(module) and
#
#     def main():
#         RdsIamModule(argument_spec(), db=True).run(run)

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AWS_ARGUMENT_KWARGS, AWS_ARGUMENT_SPEC
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError

# A target as rdsiam.auth.rds_iam_fleet_info returns it: one value instead of identifier, endpoint, port, engine, region
# and admin secret. Options given beside it win.
TARGET_SPEC = dict(type='dict')
RDS_TARGET_ARGUMENT_SPEC = dict(
    target=TARGET_SPEC,
    # Many targets in one run: what only talks to AWS runs once per play, not once per host.
    targets=dict(type='list', elements='dict'),
    db_instance_identifier=dict(type='str', aliases=['instance_id']),
    db_cluster_identifier=dict(type='str', aliases=['cluster_id']),
)
_RDS_TARGET_OPTIONS = tuple(RDS_TARGET_ARGUMENT_SPEC)
# Where to open the TCP connection when it is not the endpoint (a tunnel, a bastion's forwarded port, the sandbox).
LOGIN_OVERRIDE_SPEC = dict(type='dict', options=dict(login_host=dict(type='str'), login_port=dict(type='int')))
_ADMIN_LOGIN_OPTIONS = ('login_user', 'login_password', 'login_secret', 'login_iam')
# What each target of a database module's targets brings itself, so not to be given beside it.
_PER_TARGET_DB_OPTIONS = ('target', 'endpoint', 'endpoint_port', 'login_host', 'login_port', 'login_override')
_CONSTRAINTS = ('mutually_exclusive', 'required_one_of', 'required_together', 'required_if')


class RdsIamModule(AnsibleModule):
    """AnsibleModule with the collection's option sets merged in, check mode on, and one error path.

    rds_target: add target / targets / db_instance_identifier / db_cluster_identifier (exactly one of them).
    db: add the database options, all of DB_ARGUMENT_SPEC (True) or the names given, plus target and login_override, or
    targets and login_overrides for many targets in one run (see db_targets).
    """

    def __init__(self, argument_spec, rds_target=False, db=False, **kwargs):
        spec, constraints, self._db_names = merged_argument_spec(argument_spec, rds_target, db)
        for key in _CONSTRAINTS:
            constraints[key] = list(kwargs.pop(key, None) or ()) + constraints[key]
        constraints['required_by'].update(kwargs.pop('required_by', None) or {})
        super().__init__(argument_spec=spec, supports_check_mode=True,
                         **dict((key, value) for key, value in constraints.items() if value), **kwargs)
        # Set by run() when every message should start the same way (rds_iam_policy names its policy).
        self.fail_prefix = ''

    @property
    def target(self):
        return self.params.get('target') or {}

    @property
    def aws_options(self):
        """The AWS options; the region defaults to the target's."""
        return self.aws_options_for(self.target)

    def aws_options_for(self, target):
        """The AWS options for one target: the region defaults to the target's."""
        options = dict((name, self.params[name]) for name in AWS_ARGUMENT_SPEC)
        options['region'] = options['region'] or target.get('region')
        return options

    @property
    def db_options(self):
        """The database options for the target and login_override this module was given."""
        return self.db_options_for(self.target, self.params.get('login_override'))

    def db_options_for(self, target, override=None):
        """The database options, completed from target and override where not set: endpoint and port, the engine's
        dialect for engine auto, and the target's RDS-managed master secret when no admin login is given."""
        options = dict((name, self.params.get(name)) for name in self._db_names)
        override = override or {}
        options['endpoint'] = options.get('endpoint') or target.get('endpoint')
        options['endpoint_port'] = options.get('endpoint_port') or target.get('port')
        options['login_host'] = options.get('login_host') or override.get('login_host')
        options['login_port'] = options.get('login_port') or override.get('login_port')
        if self.params.get('engine', 'auto') == 'auto' and target.get('dialect'):
            options['engine'] = target['dialect']
        elif 'engine' in self.params:
            options['engine'] = self.params['engine']
        if 'login_secret' in self._db_names and not any(options.get(name) for name in _ADMIN_LOGIN_OPTIONS):
            options['login_secret'] = target.get('master_user_secret_arn')
        return options

    def db_targets(self):
        """[(target, db options, AWS options)] for each of a database module's targets, each completed from its own
        target dict and login_overrides entry as db_options and aws_options are for the one target."""
        overrides = checked_login_overrides(self.params.get('login_overrides'))
        return [(target, self.db_options_for(target, overrides.get(target.get('identifier'))), self.aws_options_for(target))
                for target in self.params['targets']]

    def run(self, run):
        """exit_json with run(self)'s result, or fail_json for an RdsIamError: its message, AWS error code and operation,
        and the result fields it carries."""
        try:
            result = run(self)
        except RdsIamError as exc:
            self.fail_json(**failure_result(exc, self.fail_prefix))
        self.exit_json(**result)


def merged_argument_spec(argument_spec, rds_target=False, db=False):
    """(spec, constraints, db option names): a module's own options with the option sets RdsIamModule adds, and the
    AnsibleModule constraints (mutually_exclusive, required_one_of, ...) that come with them."""
    spec = dict(argument_spec)
    constraints = dict((key, []) for key in _CONSTRAINTS)
    constraints['required_by'] = {}
    if rds_target:
        spec.update(RDS_TARGET_ARGUMENT_SPEC)
        constraints['mutually_exclusive'].append(_RDS_TARGET_OPTIONS)
        constraints['required_one_of'].append(_RDS_TARGET_OPTIONS)
    db_names = ()
    if db:
        # Here, not at the top: modules that only talk to AWS need not load the database helpers.
        from ansible_collections.rdsiam.auth.plugins.module_utils._db import DB_ARGUMENT_KWARGS, DB_ARGUMENT_SPEC

        db_names = tuple(DB_ARGUMENT_SPEC) if db is True else tuple(db)
        for name in db_names:
            spec.setdefault(name, dict(DB_ARGUMENT_SPEC[name]))
        spec.setdefault('target', TARGET_SPEC)
        spec['login_override'] = LOGIN_OVERRIDE_SPEC
        spec['targets'] = dict(type='list', elements='dict')
        spec['login_overrides'] = dict(type='dict')
        for key in ('mutually_exclusive', 'required_if'):
            constraints[key].extend(rule for rule in DB_ARGUMENT_KWARGS[key] if set(_rule_options(rule)) <= set(db_names))
        constraints['mutually_exclusive'].extend(('targets', name) for name in _PER_TARGET_DB_OPTIONS if name in spec)
        constraints['required_by']['login_overrides'] = 'targets'
    spec.update(AWS_ARGUMENT_SPEC)
    constraints['required_together'].extend(AWS_ARGUMENT_KWARGS['required_together'])
    constraints['required_by'].update(AWS_ARGUMENT_KWARGS['required_by'])
    return spec, constraints, db_names


def checked_login_overrides(overrides):
    """login_overrides checked, with each port as a number: the values of a dict option come as they were written."""
    checked = {}
    for identifier, override in (overrides or {}).items():
        port = override.get('login_port') if isinstance(override, dict) else None
        if not isinstance(override, dict) or set(override) - set(LOGIN_OVERRIDE_SPEC['options']) or not _is_port(port):
            raise RdsIamError("login_overrides['%s'] is %r: give a dict with login_host and/or login_port (a number)"
                              % (identifier, override))
        checked[identifier] = dict(override, login_port=int(port) if port is not None else None)
    return checked


def _is_port(value):
    return value is None or str(value).isdigit()


def _rule_options(rule):
    """The option names a mutually_exclusive or required_if rule mentions."""
    if len(rule) >= 3 and isinstance(rule[2], (list, tuple)):
        return (rule[0],) + tuple(rule[2])
    return tuple(rule)


def failure_result(exc, prefix=''):
    """fail_json's arguments for an RdsIamError."""
    result = dict(exc.result)
    result['msg'] = prefix + str(exc)
    if exc.code or exc.operation:
        result['error'] = dict(code=exc.code, operation=exc.operation)
    return result
