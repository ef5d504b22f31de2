"""A fleet that exists only in moto, for bench/fleet_info, bench/enable and bench/policy: a private moto server with the
sandbox shims, bulk RDS targets in it (instances, clusters, proxies; no database servers), and AWS call counting with
botocore's before-call event."""
import collections
import contextlib
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("RDSIAM_BUILD") or os.path.join(ROOT, ".build")
COLLECTIONS = os.path.join(BUILD, "collections")
sys.path[:0] = [COLLECTIONS, ROOT]

from sandbox.network import free_port, wait_for_port  # noqa: E402

REGION = "us-east-1"
KEYS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}


@contextlib.contextmanager
def moto_server():
    """A moto server on loopback with the sandbox's shims; yields its URL, stops it afterwards."""
    port = free_port("127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="rdsiam-bench-") as state_dir:
        process = subprocess.Popen([sys.executable, "-m", "sandbox.aws.moto_server", "127.0.0.1", str(port), state_dir], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port("127.0.0.1", port, "moto server", timeout=60, alive=lambda: process.poll() is None)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)


def _aws():
    """The collection's AWS helpers, from the build (imported on first use: bench/verifier needs no build)."""
    from ansible_collections.rdsiam.auth.plugins.module_utils import _aws as aws  # pylint: disable=import-outside-toplevel

    return aws


def options(url, region=REGION):
    values = dict.fromkeys(_aws().AWS_ARGUMENT_SPEC)
    values.update(validate_certs=True, region=region, endpoint_url=url, access_key="bench", secret_key="bench")
    return values


def module_env(url):
    return dict(os.environ, AWS_ENDPOINT_URL=url, PYTHONPATH=COLLECTIONS, **KEYS)


class Fleet:
    """Grows a fleet of instances, clusters and proxies in one region of the moto server."""

    def __init__(self, url, region=REGION):
        import boto3

        session = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=region)
        self.rds = session.client("rds", endpoint_url=url)
        ec2 = session.client("ec2", endpoint_url=url)
        vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{n}.0/24", AvailabilityZone=f"{region}{zone}")["Subnet"]["SubnetId"]
                        for n, zone in ((1, "a"), (2, "b"))]
        self.count = collections.Counter()

    def grow(self, total):
        """Up to total targets: 3 of every 5 instances, 1 cluster, 1 proxy."""
        while sum(self.count.values()) < total:
            number = sum(self.count.values())
            kind = ("instance", "instance", "instance", "cluster", "proxy")[number % 5]
            name = f"bench-{kind}-{self.count[kind]:04d}"
            if kind == "instance":
                self.rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t4g.micro", Engine="postgres",
                                            MasterUsername="u", MasterUserPassword="p4ssword!", AllocatedStorage=20,
                                            Tags=[{"Key": "env", "Value": "bench"}])
            elif kind == "cluster":
                self.rds.create_db_cluster(DBClusterIdentifier=name, Engine="aurora-postgresql", MasterUsername="u",
                                           MasterUserPassword="p4ssword!", Tags=[{"Key": "env", "Value": "bench"}])
            else:
                self.rds.create_db_proxy(DBProxyName=name, EngineFamily="POSTGRESQL", RoleArn="arn:aws:iam::123456789012:role/r",
                                         VpcSubnetIds=self.subnets, Tags=[{"Key": "env", "Value": "bench"}],
                                         Auth=[{"AuthScheme": "SECRETS", "IAMAuth": "REQUIRED",
                                                "SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s"}])
            self.count[kind] += 1

    def names(self, total):
        """The first `total` target names, in creation order."""
        names, seen = [], collections.Counter()
        for number in range(total):
            kind = ("instance", "instance", "instance", "cluster", "proxy")[number % 5]
            names.append(f"bench-{kind}-{seen[kind]:04d}")
            seen[kind] += 1
        return names


def counted(opts, function, *args, **kwargs):
    """(result, Counter of AWS operations, seconds) for one in-process call."""
    _aws().clear_session_cache()
    calls = collections.Counter()
    _aws().aws_session(opts).register("before-call", lambda model, **_: calls.update([model.name]))
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, calls, time.perf_counter() - start


def run_module(name, args, url, check=False):
    """Wall seconds of one real module run (a fresh Python process, as Ansible runs it) and its JSON."""
    import json

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check)}, handle)
    try:
        start = time.perf_counter()
        process = subprocess.run([sys.executable, "-m", f"ansible_collections.rdsiam.auth.plugins.modules.{name}", handle.name],
                                 capture_output=True, text=True, env=module_env(url), check=False)
        elapsed = time.perf_counter() - start
    finally:
        os.unlink(handle.name)
    result = json.loads(process.stdout)
    if result.get("failed"):
        raise SystemExit(f"{name} failed: {result.get('msg')}")
    return elapsed, result


def table(headers, rows):
    widths = [max(len(str(row[i])) for row in [headers] + rows) for i in range(len(headers))]
    return "\n".join("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)) for row in [headers] + rows)
