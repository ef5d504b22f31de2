"""The sandbox fleet: which RDS targets exist, and registering them in moto."""
import dataclasses
import json

REGION = "us-east-1"
OPERATOR_USER = "sandbox-operator"
# The second account: a management (or monitoring) account whose principals reach the fleet's account only through
# roles there whose trust policies name them. Its resources are created in it with moto's x-moto-account-id header;
# afterwards moto finds the account from the access key alone, as AWS does.
MANAGEMENT_ACCOUNT = "111122223333"


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    """One RDS target and the local server that stands in for it."""

    identifier: str
    kind: str  # instance | cluster
    engine: str  # RDS engine name: postgres, aurora-postgresql, mariadb, mysql
    engine_version: str
    master_username: str
    tags: dict
    members: tuple = ()  # Aurora member instance identifiers

    @property
    def server_kind(self):
        return "postgres" if "postgres" in self.engine else "mariadb"


DEFAULT_FLEET = (
    TargetSpec("sbx-postgres", "instance", "postgres", "15.7", "postgres", {"env": "dev", "team": "payments"}),
    TargetSpec("sbx-aurora-pg", "cluster", "aurora-postgresql", "15.7", "postgres", {"env": "prod", "team": "payments"},
               members=("sbx-aurora-pg-1",)),
    TargetSpec("sbx-mariadb", "instance", "mariadb", "10.11.9", "admin", {"env": "prod", "team": "data"}),
    TargetSpec("sbx-mysql", "instance", "mysql", "8.0.39", "admin", {"env": "dev", "team": "data"}),
)


def _tags(tags):
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def _register_instance(rds, spec, port):
    db = rds.create_db_instance(
        DBInstanceIdentifier=spec.identifier, DBInstanceClass="db.t4g.micro", Engine=spec.engine,
        EngineVersion=spec.engine_version, MasterUsername=spec.master_username, ManageMasterUserPassword=True,
        Port=port, AllocatedStorage=20, Tags=_tags(spec.tags),
    )["DBInstance"]
    return {
        "endpoint": db["Endpoint"]["Address"], "resource_id": db["DbiResourceId"], "arn": db["DBInstanceArn"],
        "secret_arn": db["MasterUserSecret"]["SecretArn"], "extra_names": [],
    }


def _register_cluster(rds, spec, port):
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=spec.identifier, Engine=spec.engine, EngineVersion=spec.engine_version,
        MasterUsername=spec.master_username, ManageMasterUserPassword=True, Port=port, Tags=_tags(spec.tags),
    )["DBCluster"]
    member_names = []
    for member in spec.members:
        db = rds.create_db_instance(
            DBInstanceIdentifier=member, DBInstanceClass="db.r6g.large", Engine=spec.engine, Port=port,
            DBClusterIdentifier=spec.identifier, Tags=_tags(spec.tags),
        )["DBInstance"]
        member_names.append(db["Endpoint"]["Address"])
    return {
        "endpoint": cluster["Endpoint"], "resource_id": cluster["DbClusterResourceId"], "arn": cluster["DBClusterArn"],
        "secret_arn": cluster["MasterUserSecret"]["SecretArn"],
        "extra_names": [cluster["ReaderEndpoint"], *member_names],
    }


def register_target(session, spec, port):
    """Create the target in moto; return its endpoint names, resource id, ARN and master login."""
    rds = session.client("rds")
    register = _register_cluster if spec.kind == "cluster" else _register_instance
    target = register(rds, spec, port)
    secret = json.loads(session.client("secretsmanager").get_secret_value(SecretId=target["secret_arn"])["SecretString"])
    target.update(master_username=secret["username"], master_password=secret["password"])
    return target


def in_account(client, account_id):
    """client, its calls made in account_id: moto's x-moto-account-id header (moto only; AWS has no such thing)."""
    def add_header(request, **_):
        request.headers["x-moto-account-id"] = account_id

    client.meta.events.register("before-sign.*.*", add_header)
    return client


def _admin_user(iam):
    iam.create_user(UserName=OPERATOR_USER, Tags=[{"Key": "role", "Value": "operator"}])
    iam.put_user_policy(UserName=OPERATOR_USER, PolicyName="operator-admin", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }))
    key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def create_operator(session):
    """An IAM user with full access whose key the env file exports: the person running the demo.

    Its "management_account" entry is the same kind of user in MANAGEMENT_ACCOUNT, for cross-account set-ups.
    """
    operator = _admin_user(session.client("iam"))
    operator["account_id"] = session.client("sts").get_caller_identity()["Account"]
    management = _admin_user(in_account(session.client("iam"), MANAGEMENT_ACCOUNT))
    operator["management_account"] = dict(management, account_id=MANAGEMENT_ACCOUNT)
    return operator


def describe_fleet(session):
    """Instances and clusters as moto reports them now, for `sandbox fleet` and the demo."""
    rds = session.client("rds")
    rows = []
    for cluster in rds.describe_db_clusters()["DBClusters"]:
        rows.append(("cluster", cluster["DBClusterIdentifier"], cluster["Engine"], cluster["Endpoint"], cluster["Port"],
                     cluster["DbClusterResourceId"], cluster["IAMDatabaseAuthenticationEnabled"], cluster.get("TagList", [])))
    for db in rds.describe_db_instances()["DBInstances"]:
        kind = "member" if db.get("DBClusterIdentifier") else "instance"
        rows.append((kind, db["DBInstanceIdentifier"], db["Engine"], db["Endpoint"]["Address"], db["Endpoint"]["Port"],
                     db["DbiResourceId"], db["IAMDatabaseAuthenticationEnabled"], db.get("TagList", [])))
    return rows


def format_fleet(rows):
    headers = ("KIND", "IDENTIFIER", "ENGINE", "ENDPOINT", "PORT", "RESOURCE ID", "IAM AUTH", "TAGS")
    table = [headers] + [
        (kind, ident, engine, endpoint, str(port), rid, "on" if iam else "off",
         ",".join(f"{t['Key']}={t['Value']}" for t in tags))
        for kind, ident, engine, endpoint, port, rid, iam, tags in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table)
