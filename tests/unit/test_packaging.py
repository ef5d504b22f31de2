"""`ansible-galaxy collection build` ships the collection and nothing else."""
import os
import subprocess
import sys
import tarfile

import pytest
import yaml

_NOT_SHIPPED = ("sandbox/", "bench/", ".venv/", ".build/", ".ci/", "scripts/", "tests/output/", ".pytest_cache/")


@pytest.fixture(scope="module")
def built_members(request, tmp_path_factory):
    root = request.config.rootpath
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([galaxy, "collection", "build", "--output-path", str(out), str(root)], check=True, capture_output=True)
    with open(root / "galaxy.yml", encoding="utf-8") as handle:
        version = yaml.safe_load(handle)["version"]
    with tarfile.open(out / f"rdsiam-auth-{version}.tar.gz") as tarball:
        return tarball.getnames()


def test_build_leaves_out_everything_that_is_not_the_collection(built_members):
    leaked = [name for name in built_members if name.startswith(_NOT_SHIPPED) or "__pycache__" in name or name.endswith(".pyc")]
    assert leaked == []


def test_build_ships_the_collection(built_members):
    for required in ("MANIFEST.json", "meta/runtime.yml", "plugins/module_utils/_aws.py", "plugins/module_utils/_db.py",
                     "plugins/module_utils/_common.py", "plugins/doc_fragments/aws.py", "plugins/doc_fragments/db.py",
                     "README.md", "LICENSE", "requirements.txt", "changelogs/config.yaml",
                     "meta/execution-environment.yml", "bindep.txt"):
        assert required in built_members, required
