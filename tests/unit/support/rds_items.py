"""RDS describe_* items as botocore returns them, for the unit tests that stub fleet discovery."""

ACCOUNT = "123456789012"


def instance(name, engine="postgres", tags=None, iam=False, cluster=None):
    item = {"DBInstanceIdentifier": name, "DBInstanceArn": f"arn:aws:rds:us-east-1:{ACCOUNT}:db:{name}", "Engine": engine,
            "DbiResourceId": "db-" + name.upper().replace("-", "").ljust(26, "X"), "IAMDatabaseAuthenticationEnabled": iam,
            "Endpoint": {"Address": f"{name}.x.us-east-1.rds.amazonaws.com", "Port": 5432},
            "TagList": [{"Key": key, "Value": value} for key, value in (tags or {}).items()]}
    if cluster:
        item["DBClusterIdentifier"] = cluster
    return item


def cluster(name, engine="aurora-postgresql", tags=None):
    return {"DBClusterIdentifier": name, "DBClusterArn": f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:{name}", "Engine": engine,
            "DbClusterResourceId": "cluster-" + name.upper().replace("-", "").ljust(26, "X"), "Endpoint": f"{name}.cluster-x",
            "Port": 5432, "IAMDatabaseAuthenticationEnabled": True,
            "TagList": [{"Key": key, "Value": value} for key, value in (tags or {}).items()]}


PROXY_ARN = f"arn:aws:rds:us-east-1:{ACCOUNT}:db-proxy:prx-0123456789abcdef0"
PROXY = {"DBProxyName": "app-proxy", "DBProxyArn": PROXY_ARN, "EngineFamily": "MYSQL", "Auth": [{"IAMAuth": "REQUIRED"}]}
