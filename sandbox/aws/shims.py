"""Small patches that make moto 5.2 behave like AWS where this project depends on it.

Each shim fixes one documented gap and has a test in sandbox/tests/test_shims.py that fails
when moto changes underneath it (the gap closes, or the patched code moves).
"""
import json
import secrets
import string

from sandbox.aws import iam_changes

_APPLIED = False
_ALNUM_UPPER = string.ascii_uppercase + string.digits


def new_dbi_resource_id():
    """A resource id in RDS's shape: 'db-' and 26 upper-case letters and digits."""
    return "db-" + "".join(secrets.choice(_ALNUM_UPPER) for _ in range(26))


def _shim_distinct_dbi_resource_id():
    # moto hard-codes one DbiResourceId for every instance; IAM ARNs are built from it,
    # so two targets sharing one id would make every policy test meaningless.
    from moto.rds.models import DBInstance

    original_init = DBInstance.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.dbi_resource_id = new_dbi_resource_id()

    DBInstance.__init__ = __init__


def _shim_cluster_iam_flag():
    # moto's modify_db_cluster stores EnableIAMDatabaseAuthentication under a name nothing
    # reads; RDS flips the cluster flag (and its members report the cluster's value).
    from moto.rds.models import DBInstance, RDSBackend

    original_modify = RDSBackend.modify_db_cluster

    def modify_db_cluster(self, kwargs):
        flag = kwargs.get("enable_iam_database_authentication")
        # moto rewrites kwargs["db_cluster_identifier"], so note where the cluster ends up first.
        cluster_id = kwargs.get("new_db_cluster_identifier") or kwargs["db_cluster_identifier"]
        result = original_modify(self, kwargs)
        if flag is not None:
            result.iam_auth = bool(flag)
            self.clusters[cluster_id].iam_auth = bool(flag)
        return result

    RDSBackend.modify_db_cluster = modify_db_cluster

    own_flag = DBInstance.iam_database_authentication_enabled

    def member_flag(self):
        cluster_id = getattr(self, "db_cluster_identifier", None)
        cluster = self.backend.clusters.get(cluster_id) if cluster_id else None
        if cluster is not None:
            return bool(cluster.iam_auth)
        return own_flag.fget(self)

    DBInstance.iam_database_authentication_enabled = property(member_flag)


def _shim_session_tags():
    # moto's AssumeRole drops Tags; ABAC policies (${aws:PrincipalTag/KEY}) need them per
    # issued credential. They are kept on the AssumedRole, so /moto-api/data.json shows them.
    from moto.sts.responses import TokenResponse

    original_assume_role = TokenResponse.assume_role

    def assume_role(self):
        tags = self.params.get("Tags") or []
        result = original_assume_role(self)
        role = result.result["Credentials"]
        role.session_tags = {tag["Key"]: tag["Value"] for tag in tags}
        role.transitive_tag_keys = list(self.params.get("TransitiveTagKeys") or [])
        iam_changes.bump()  # the session's principal now has its tags: the verifier must not keep one read without them
        return result

    TokenResponse.assume_role = assume_role


def _shim_trust_policy():
    # moto lets any key assume any role, existing or not, whatever its trust policy says; AWS checks
    # the trust policy and the caller's own policies (sandbox/aws/trust_policy.py says how far this goes).
    from moto.sts.responses import TokenResponse

    from sandbox.aws import sts_trust

    issue = TokenResponse.assume_role

    def assume_role(self):
        tags = {tag["Key"]: tag["Value"] for tag in self.params.get("Tags") or []}
        sts_trust.authorize(self.get_access_key(), self._get_param("RoleArn"), self._get_param("RoleSessionName"),
                            self._get_param("ExternalId"), tags, list(self.params.get("TransitiveTagKeys") or []))
        return issue(self)

    TokenResponse.assume_role = assume_role


def _shim_master_secret():
    # moto writes the same username/password into every RDS-managed master secret; RDS uses
    # the master username and a fresh password, and a shared value would hide cross-wiring.
    from moto.rds.models import MasterUserSecret

    def _generate_secret_string(self):
        alphabet = string.ascii_letters + string.digits
        password = "".join(secrets.choice(alphabet) for _ in range(28))
        return json.dumps({"username": self.resource.master_username, "password": password})

    MasterUserSecret._generate_secret_string = _generate_secret_string


SHIMS = (
    _shim_distinct_dbi_resource_id,
    _shim_cluster_iam_flag,
    _shim_session_tags,
    _shim_trust_policy,  # after _shim_session_tags: it wraps the tagging AssumeRole
    _shim_master_secret,
)


# Shims for one area live in their own module, each exporting a SHIMS tuple.
SHIM_MODULES = ("sandbox.aws.shims_rds_params", "sandbox.aws.shims_fleet", "sandbox.aws.shims_rds_logs")


def all_shims():
    import importlib

    shims = list(SHIMS)
    for name in SHIM_MODULES:
        shims.extend(importlib.import_module(name).SHIMS)
    return shims


def apply_shims():
    """Patch moto in this process; safe to call more than once."""
    global _APPLIED
    if _APPLIED:
        return
    for shim in all_shims():
        shim()
    _APPLIED = True
