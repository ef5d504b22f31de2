"""moto shims for parameter groups, pending changes and reboots (rds_iam_parameter_group, rds_iam_auth).

moto 5.2 stores whatever parameters it is given and reports nothing back: describe_db_parameters
on a default group is empty, unknown names and default groups are accepted, every group is
always `in-sync`, ApplyImmediately=False applies at once, Aurora clusters point at a
`default.aurora8.0` group that does not exist, and a reboot changes nothing. RDS behaves
otherwise on each point, and the collection depends on it. Each shim below has a test in
sandbox/tests/test_shims_rds_params.py that fails when moto closes the gap.

The parameter catalogue here is the sandbox's own, written from the RDS parameter-group pages;
it must not be shared with the collection's table, since it is what that table is checked against.
"""
import time

# Tag on an instance or cluster that makes an immediate IAM-flag change (or a reboot) take this many
# seconds, as it does on RDS (minutes there); tests use it to exercise waiting and its timeout.
APPLY_DELAY_TAG = "sandbox:apply-delay-seconds"


def _param(name, apply_type, data_type, allowed, default=None, source="engine-default"):
    entry = {"ParameterName": name, "Description": name, "Source": source, "ApplyType": apply_type,
             "DataType": data_type, "AllowedValues": allowed, "IsModifiable": True, "ApplyMethod": "pending-reboot"}
    if default is not None:
        entry["ParameterValue"] = default
    return entry


def _postgres(force_ssl_default):
    return [
        _param("rds.force_ssl", "dynamic", "boolean", "0,1", force_ssl_default, source="system"),
        _param("log_connections", "dynamic", "boolean", "0,1"),
        _param("log_disconnections", "dynamic", "boolean", "0,1"),
        _param("rds.restrict_password_commands", "static", "boolean", "0,1"),
        _param("password_encryption", "dynamic", "string", "md5,scram-sha-256", "scram-sha-256", source="system"),
        _param("shared_preload_libraries", "static", "list", "pg_stat_statements,pgaudit,pg_cron",
               "pg_stat_statements", source="system"),
        _param("pgaudit.log", "dynamic", "list", "ddl,function,misc,read,role,write,none,all"),
        _param("rds.logical_replication", "static", "boolean", "0,1", "0", source="system"),
    ]


def _postgres_instance_level():
    return [
        _param("log_min_duration_statement", "dynamic", "integer", "-1-2147483647"),
        _param("work_mem", "dynamic", "integer", "64-2147483647"),
    ]


def _mysql_common():
    return [
        _param("require_secure_transport", "dynamic", "boolean", "0,1", "0", source="system"),
        _param("general_log", "dynamic", "boolean", "0,1"),
        _param("tls_version", "static", "list", "TLSv1.2,TLSv1.3", "TLSv1.2,TLSv1.3", source="system"),
    ]


def _mariadb_audit():
    return [
        _param("server_audit_logging", "dynamic", "boolean", "0,1", "0", source="system"),
        _param("server_audit_events", "dynamic", "list", "CONNECT,QUERY,TABLE,QUERY_DDL,QUERY_DML,QUERY_DCL"),
        _param("server_audit_excl_users", "dynamic", "string", None),
    ]


def _major(family, prefix):
    try:
        return int(family[len(prefix):].split(".")[0])
    except ValueError:
        return 0


def catalogue(family, level):
    """The parameters RDS lists for a family at 'instance' or 'cluster' level (Aurora has both)."""
    family = (family or "").lower()
    max_connections = _param("max_connections", "dynamic", "integer", "1-100000")
    if family.startswith("aurora-postgresql"):
        force_ssl = "1" if _major(family, "aurora-postgresql") >= 15 else "0"
        return _postgres(force_ssl) if level == "cluster" else _postgres_instance_level()
    if family.startswith("postgres"):
        force_ssl = "1" if _major(family, "postgres") >= 15 else "0"
        return _postgres(force_ssl) + _postgres_instance_level() + [_param("max_connections", "static", "integer", "6-8388607")]
    if family.startswith("aurora-mysql"):
        return _mysql_common() + _mariadb_audit() if level == "cluster" else [max_connections]
    if family.startswith("mariadb"):
        return _mysql_common() + _mariadb_audit() + [max_connections]
    if family.startswith("mysql"):
        return _mysql_common() + [max_connections]
    return []


def effective_parameters(family, level, user_parameters):
    """The catalogue with the group's own values laid over it (Source 'user'), as describe_*_parameters shows it."""
    merged = {entry["ParameterName"]: dict(entry) for entry in catalogue(family, level)}
    for name, values in user_parameters.items():
        entry = merged.setdefault(name, {"ParameterName": name})
        entry.update({key: value for key, value in values.items() if key in ("ParameterValue", "ApplyMethod")})
        entry["Source"] = "user"
    return list(merged.values())


def effective_values(family, level, user_parameters):
    return {entry["ParameterName"]: entry.get("ParameterValue") for entry in effective_parameters(family, level, user_parameters)}


def _client_error(code, message):
    from moto.rds.exceptions import RDSClientError

    return RDSClientError(code, message)


def validate_modification(group_name, family, level, parameters):
    """Refuse what RDS refuses: default groups, unknown names, values outside AllowedValues, static+immediate."""
    if group_name.startswith("default."):
        raise _client_error("InvalidParameterValue", "Cannot modify a default parameter group.")
    known = {entry["ParameterName"]: entry for entry in catalogue(family, level)}
    for parameter in parameters:
        name = parameter.get("ParameterName")
        entry = known.get(name)
        if entry is None:
            raise _client_error("InvalidParameterValue", f"Could not find parameter with name: {name}")
        value, allowed = parameter.get("ParameterValue"), entry.get("AllowedValues")
        if entry["DataType"] == "boolean" and allowed and value not in allowed.split(","):
            raise _client_error("InvalidParameterValue", f"Value: {value} is outside of range: {allowed} for parameter: {name}")
        if entry["ApplyType"] == "static" and parameter.get("ApplyMethod") == "immediate":
            raise _client_error("InvalidParameterCombination", f"cannot use immediate apply method for static parameter {name}")


def _static_names(family, level, parameters):
    static = {entry["ParameterName"] for entry in catalogue(family, level) if entry["ApplyType"] == "static"}
    return [parameter["ParameterName"] for parameter in parameters if parameter["ParameterName"] in static]


# --- the servers behind the moto targets ----------------------------------------------------------

def _apply_to_server(identifier, values):
    from sandbox.db import server_parameters

    server_parameters.apply_safely(identifier, values)


def _instance_group(db):
    return db.db_parameter_groups()[0]


def _cluster_group(backend, cluster):
    return backend.db_cluster_parameter_groups.get(cluster.parameter_group)


def _server_values(backend, db):
    """What a (re)started instance runs with: its own group, overlaid by its cluster's group for Aurora."""
    group = _instance_group(db)
    values = effective_values(group.family, "instance", group.parameters)
    cluster = backend.clusters.get(getattr(db, "db_cluster_identifier", None) or "")
    cluster_group = _cluster_group(backend, cluster) if cluster else None
    if cluster_group is not None:
        values.update(effective_values(cluster_group.db_parameter_group_family, "cluster", cluster_group.parameters))
    return values


# --- shims ---------------------------------------------------------------------------------------

def _shim_default_cluster_parameter_group():
    # moto names every Aurora cluster's group "default.aurora8.0" and never creates it; RDS uses
    # default.<family> (default.aurora-postgresql15) and describe_db_cluster_parameters works on it.
    from moto.rds.models import DBCluster, DBClusterParameterGroup

    original_init = DBCluster.__init__

    def __init__(self, backend, *args, **kwargs):
        original_init(self, backend, *args, **kwargs)
        if self.parameter_group == "default.aurora8.0" and self.engine.startswith("aurora-"):
            version = str(self.engine_version or "")
            major = version.split(".")[0] if self.engine == "aurora-postgresql" else ".".join(version.split(".")[:2])
            family = f"{self.engine}{major}"
            self.parameter_group = f"default.{family}"
            if self.parameter_group not in backend.db_cluster_parameter_groups:
                backend.db_cluster_parameter_groups[self.parameter_group] = DBClusterParameterGroup(
                    backend=backend, db_cluster_parameter_group_name=self.parameter_group,
                    description=f"Default cluster parameter group for {family}", db_parameter_group_family=family)

    DBCluster.__init__ = __init__


def _shim_describe_parameters():
    # moto lists only values someone set, without Source/ApplyType/AllowedValues; RDS lists the
    # family's whole catalogue (and honours the Source filter), which is how unknown names are found.
    from moto.core.responses import ActionResult
    from moto.rds.exceptions import DBClusterParameterGroupNotFoundError, DBParameterGroupNotFoundError
    from moto.rds.responses import RDSResponse

    def _filtered(parameters, source):
        return [entry for entry in parameters if not source or entry.get("Source") == source]

    def describe_db_parameters(self):
        name = self.params.get("DBParameterGroupName")
        groups = self.backend.describe_db_parameter_groups({"db_parameter_group_name": name})
        if not groups:
            raise DBParameterGroupNotFoundError(name)
        parameters = effective_parameters(groups[0].family, "instance", groups[0].parameters)
        return ActionResult({"Parameters": _filtered(parameters, self.params.get("Source"))})

    def describe_db_cluster_parameters(self):
        name = self.params.get("DBClusterParameterGroupName")
        group = self.backend.db_cluster_parameter_groups.get(name)
        if group is None:
            raise DBClusterParameterGroupNotFoundError(name)
        parameters = effective_parameters(group.db_parameter_group_family, "cluster", group.parameters)
        return ActionResult({"Parameters": _filtered(parameters, self.params.get("Source"))})

    RDSResponse.describe_db_parameters = describe_db_parameters
    RDSResponse.describe_db_cluster_parameters = describe_db_cluster_parameters


def _shim_modify_parameter_groups():
    # moto accepts any name on any group, default groups included, and applies nothing. RDS refuses
    # those, marks attached instances pending-reboot for static changes and applies dynamic
    # `immediate` ones at once (here: to the sandbox server behind the target).
    from moto.rds.models import RDSBackend

    original_instance_modify = RDSBackend.modify_db_parameter_group
    original_cluster_modify = RDSBackend.modify_db_cluster_parameter_group

    def modify_db_parameter_group(self, db_parameter_group_name, db_parameter_group_parameters):
        parameters = list(db_parameter_group_parameters)
        group = self.db_parameter_groups.get(db_parameter_group_name)
        if group is not None:
            validate_modification(group.name, group.family, "instance", parameters)
        result = original_instance_modify(self, db_parameter_group_name, parameters)
        attached = [db for db in list(self.databases.values()) if _instance_group(db).name == result.name]
        _after_change(self, attached, _static_names(result.family, "instance", parameters), "_sandbox_param_status")
        return result

    def modify_db_cluster_parameter_group(self, db_cluster_parameter_group_name, db_cluster_parameter_group_parameters):
        parameters = list(db_cluster_parameter_group_parameters)
        group = self.db_cluster_parameter_groups.get(db_cluster_parameter_group_name)
        if group is not None:
            validate_modification(group.name, group.db_parameter_group_family, "cluster", parameters)
        result = original_cluster_modify(self, db_cluster_parameter_group_name, parameters)
        clusters = [cluster.db_cluster_identifier for cluster in list(self.clusters.values()) if cluster.parameter_group == result.name]
        members = [db for db in list(self.databases.values()) if getattr(db, "db_cluster_identifier", None) in clusters]
        static = _static_names(result.db_parameter_group_family, "cluster", parameters)
        _after_change(self, members, static, "_sandbox_cluster_param_status")
        return result

    RDSBackend.modify_db_parameter_group = modify_db_parameter_group
    RDSBackend.modify_db_cluster_parameter_group = modify_db_cluster_parameter_group


def _after_change(backend, instances, static_names, status_attribute):
    for db in instances:
        if static_names:
            setattr(db, status_attribute, "pending-reboot")
        # Dynamic values take effect without a reboot; re-applying the unchanged static ones is harmless
        # for what the sandbox emulates (TLS enforcement only).
        _apply_to_server(db.db_instance_identifier, _dynamic_values(backend, db))


def _dynamic_values(backend, db):
    values = _server_values(backend, db)
    group = _instance_group(db)
    static = {entry["ParameterName"] for entry in catalogue(group.family, "instance") + catalogue(group.family, "cluster")
              if entry["ApplyType"] == "static"}
    return {name: value for name, value in values.items() if name not in static}


def _shim_parameter_apply_status():
    # moto reports every group `in-sync` (and writes that onto the shared group object); RDS keeps
    # the status per instance: `pending-reboot` after a static change or a group swap, until a reboot.
    from moto.rds.models import DBCluster, DBInstance

    def db_parameter_group_status_list(self):
        status = getattr(self, "_sandbox_param_status", "in-sync")
        return [{"DBParameterGroupName": group.name, "ParameterApplyStatus": status} for group in self.db_parameter_groups()]

    DBInstance.db_parameter_group_status_list = property(db_parameter_group_status_list)

    original_members = DBCluster.db_cluster_members

    def db_cluster_members(self):
        members = original_members.fget(self)
        by_id = {member.db_instance_identifier: member for member in self.members}
        for entry in members:
            member = by_id.get(entry["DBInstanceIdentifier"])
            entry["DBClusterParameterGroupStatus"] = getattr(member, "_sandbox_cluster_param_status", "in-sync")
        return members

    DBCluster.db_cluster_members = property(db_cluster_members)


def _delay_seconds(resource):
    tags = {tag["Key"]: tag["Value"] for tag in resource.tags or []}
    try:
        return float(tags.get(APPLY_DELAY_TAG, 0))
    except ValueError:
        return 0.0


def _defer_iam_flag(resource, kwargs, current):
    """Take the IAM flag out of a modify call RDS would not apply at once; note it as pending instead."""
    flag = kwargs.get("enable_iam_database_authentication")
    if flag is None:
        return
    delay = _delay_seconds(resource)
    pending = dict(getattr(resource, "pending_modified_values", None) or {})
    pending.pop("IAMDatabaseAuthenticationEnabled", None)  # a new request replaces an earlier one
    if kwargs.get("apply_immediately") and not delay:
        resource.pending_modified_values = pending or None
        return
    del kwargs["enable_iam_database_authentication"]
    if bool(flag) != bool(current):
        pending["IAMDatabaseAuthenticationEnabled"] = bool(flag)
        if kwargs.get("apply_immediately"):
            resource.sandbox_apply_at = time.monotonic() + delay
            resource.status = "modifying"
    resource.pending_modified_values = pending or None


def _shim_pending_modifications():
    # moto applies EnableIAMDatabaseAuthentication at once even with ApplyImmediately=False, and
    # never reports PendingModifiedValues; RDS leaves it for the maintenance window and says so.
    # A group swap makes RDS report `pending-reboot` until the next reboot.
    from moto.rds.models import RDSBackend

    original_modify_instance = RDSBackend.modify_db_instance
    original_modify_cluster = RDSBackend.modify_db_cluster

    def modify_db_instance(self, db_instance_identifier, db_kwargs):
        db = self.describe_db_instances(db_instance_identifier)[0]
        before = _instance_group(db).name
        _defer_iam_flag(db, db_kwargs, db.enable_iam_database_authentication)
        result = original_modify_instance(self, db_instance_identifier, db_kwargs)
        if _instance_group(result).name != before:
            result._sandbox_param_status = "pending-reboot"
        return result

    def modify_db_cluster(self, kwargs):
        cluster = self.clusters.get(kwargs.get("db_cluster_identifier"))
        if cluster is None:
            return original_modify_cluster(self, kwargs)
        new_group = kwargs.get("db_cluster_parameter_group_name")
        if new_group and new_group not in self.db_cluster_parameter_groups:
            from moto.rds.exceptions import DBClusterParameterGroupNotFoundError

            raise DBClusterParameterGroupNotFoundError(new_group)
        before = cluster.parameter_group
        _defer_iam_flag(cluster, kwargs, cluster.iam_auth)
        result = original_modify_cluster(self, kwargs)
        if result.parameter_group != before:
            for member in result.members:
                member._sandbox_cluster_param_status = "pending-reboot"
        return result

    RDSBackend.modify_db_instance = modify_db_instance
    RDSBackend.modify_db_cluster = modify_db_cluster


def _settle(backend):
    """Finish what was in progress: delayed IAM-flag changes whose time has come, reboots."""
    now = time.monotonic()
    for resource in list(backend.databases.values()) + list(backend.clusters.values()):
        due = getattr(resource, "sandbox_apply_at", None)
        if due is not None and due <= now:
            pending = dict(resource.pending_modified_values or {})
            flag = pending.pop("IAMDatabaseAuthenticationEnabled", None)
            if flag is not None:
                if hasattr(resource, "iam_auth"):
                    resource.iam_auth = flag
                else:
                    resource.enable_iam_database_authentication = flag
            resource.pending_modified_values = pending or None
            resource.sandbox_apply_at = None
            resource.status = "available"
        elif due is None and getattr(resource, "status", None) == "rebooting":
            resource.status = "available"


def _shim_reboot():
    # moto's reboot changes nothing; RDS restarts the instance with its groups' current values, so
    # pending-reboot turns in-sync and, here, the sandbox server picks the values up.
    from moto.rds.models import RDSBackend

    original_reboot = RDSBackend.reboot_db_instance
    original_describe_instances = RDSBackend.describe_db_instances
    original_describe_clusters = RDSBackend.describe_db_clusters

    def reboot_db_instance(self, db_instance_identifier):
        db = original_reboot(self, db_instance_identifier)
        _apply_to_server(db.db_instance_identifier, _server_values(self, db))
        db._sandbox_param_status = "in-sync"
        db._sandbox_cluster_param_status = "in-sync"
        db.status = "rebooting"
        delay = _delay_seconds(db)
        if delay:
            db.sandbox_apply_at = time.monotonic() + delay
        return db

    def describe_db_instances(self, *args, **kwargs):
        _settle(self)
        return original_describe_instances(self, *args, **kwargs)

    def describe_db_clusters(self, *args, **kwargs):
        _settle(self)
        return original_describe_clusters(self, *args, **kwargs)

    RDSBackend.reboot_db_instance = reboot_db_instance
    RDSBackend.describe_db_instances = describe_db_instances
    RDSBackend.describe_db_clusters = describe_db_clusters


DB2_ENGINES = ("db2-se", "db2-ae")


def _shim_db2_engines():
    # RDS for Db2 exists (and has no IAM database authentication); moto refuses to create it, so
    # the refusal of such engines could not be shown against moto.
    from moto.rds.models import DBInstance
    from moto.rds.utils import DbInstanceEngine

    original = DbInstanceEngine.valid_db_instance_engine

    def valid_db_instance_engine(cls):
        return sorted(set(original()) | set(DB2_ENGINES))

    DbInstanceEngine.valid_db_instance_engine = classmethod(valid_db_instance_engine)

    original_port = DBInstance.default_port

    def default_port(engine):
        return 50000 if engine in DB2_ENGINES else original_port(engine)

    DBInstance.default_port = staticmethod(default_port)


SHIMS = (
    _shim_db2_engines,
    _shim_default_cluster_parameter_group,
    _shim_describe_parameters,
    _shim_modify_parameter_groups,
    _shim_parameter_apply_status,
    _shim_pending_modifications,
    _shim_reboot,
)
