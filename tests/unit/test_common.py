"""The collection's version as AWS sees it (User-Agent) must be the one galaxy.yml ships."""
import yaml

from ansible_collections.rdsiam.auth.plugins.module_utils import _common


def test_user_agent_version_matches_galaxy_yml(request):
    with open(request.config.rootpath / "galaxy.yml", encoding="utf-8") as handle:
        galaxy = yaml.safe_load(handle)
    assert _common.COLLECTION_VERSION == galaxy["version"]
    assert _common.USER_AGENT_EXTRA == f"rdsiam.auth/{galaxy['version']}"
