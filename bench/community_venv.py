"""The venv with the `ansible` 14.x package that bench/db_user and bench/fleet compare against (one for both)."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_VENV = os.environ.get("RDSIAM_BENCH_VENV") or "/tmp/rdsiam-bench/venv"
# boto3 for the amazon.aws modules (and rdsiam.auth's AWS modules when they run with this interpreter).
BENCH_PACKAGES = ["ansible>=14,<15", "psycopg2-binary", "PyMySQL", "boto3"]
_PROBE = "import boto3, psycopg2, pymysql, ansible_collections.ansible.mysql.plugins.modules.mysql_user"


def ensure_bench_venv():
    """Create the venv (Python 3.12) and install what is missing, once: (python, (ansible version, core version))."""
    python = os.path.join(BENCH_VENV, "bin", "python")
    if not os.path.exists(os.path.join(BENCH_VENV, "bin", "ansible-playbook")):
        base = subprocess.run([os.path.join(ROOT, "scripts", "find-python")], capture_output=True, text=True, check=True).stdout.strip()
        print("creating %s with %s (ansible 14.x, once)..." % (BENCH_VENV, base), flush=True)
        subprocess.run([base, "-m", "venv", BENCH_VENV], check=True)
    if subprocess.run([python, "-c", _PROBE], capture_output=True, check=False).returncode != 0:
        print("installing %s into %s (once)..." % (", ".join(BENCH_PACKAGES), BENCH_VENV), flush=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet"] + BENCH_PACKAGES, check=True)
    version = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('ansible'), m.version('ansible-core'))"],
                             capture_output=True, text=True, check=True).stdout.split()
    return python, version
