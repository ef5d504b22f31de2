"""ansible-builder reads the collection's execution environment metadata: an image built from docs/examples names
the collection, and the collection brings its Python and system packages. Building the image itself needs a
container engine, which these machines do not have; `create` and `introspect` are what the build runs first."""
import os
import shutil
import subprocess
import sys

import yaml

from tests.integration.support.harness import COLLECTIONS_PATH

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDER = os.path.join(os.path.dirname(sys.executable), "ansible-builder")


def _requirements(path):
    with open(path, encoding="utf-8") as handle:
        return [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()]


def test_create_makes_a_build_context_that_installs_the_collection(tmp_path):
    example = tmp_path / "execution-environment.yml"
    shutil.copy(os.path.join(ROOT, "docs", "examples", "execution-environment.yml"), example)
    context = tmp_path / "context"
    run = subprocess.run([BUILDER, "create", "-f", str(example), "-c", str(context), "--output-filename", "Containerfile"],
                         capture_output=True, text=True, check=False, cwd=str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    with open(context / "_build" / "requirements.yml", encoding="utf-8") as handle:
        galaxy = yaml.safe_load(handle)
    assert galaxy == {"collections": [{"name": "rdsiam.auth", "version": ">=0.1.0"}]}
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile and "introspect" in containerfile
    assert 'ARG EE_BASE_IMAGE="quay.io/ansible/awx-ee:latest"' in containerfile


def test_introspect_names_the_collections_python_and_system_packages():
    run = subprocess.run([BUILDER, "introspect", "--sanitize", COLLECTIONS_PATH], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    found = yaml.safe_load(run.stdout.split("\n", 1)[1])
    assert [entry.split("#")[0].strip() for entry in found["python"]] == _requirements(os.path.join(ROOT, "requirements.txt"))
    assert [entry.split("#")[0].strip() for entry in found["system"]] == _requirements(os.path.join(ROOT, "bindep.txt"))
    assert all(entry.endswith("# from collection rdsiam.auth") for entry in found["python"] + found["system"])
    assert {"libpq5 [platform:dpkg]", "libpq [platform:rpm]"} <= set(_requirements(os.path.join(ROOT, "bindep.txt")))
    assert {"botocore>=1.34.0", "psycopg2-binary>=2.9", "PyMySQL>=1.1"} == set(_requirements(os.path.join(ROOT, "requirements.txt")))
