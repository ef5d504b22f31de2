"""The collection's version as AWS sees it (User-Agent) must be the one galaxy.yml ships."""
import yaml

from ansible_collections.rdsiam.auth.plugins.module_utils import _common


def test_user_agent_version_matches_galaxy_yml(request):
    with open(request.config.rootpath / "galaxy.yml", encoding="utf-8") as handle:
        galaxy = yaml.safe_load(handle)
    assert _common.COLLECTION_VERSION == galaxy["version"]
    assert _common.USER_AGENT_EXTRA == f"rdsiam.auth/{galaxy['version']}"


def test_lookup_policies_and_db_users_refuse_the_same_user_names():
    """One table of name limits: a name one part accepts, the others accept too (and the reverse)."""
    import pytest

    from ansible_collections.rdsiam.auth.plugins.module_utils import _iam_policy, _identifiers

    cases = {"postgres": ("é" * 31 + "a", "é" * 32), "mysql": ("m" * 32, "m" * 33), "mariadb": ("m" * 80, "m" * 81)}
    for engine, (longest, too_long) in cases.items():
        assert _identifiers.check_db_user_name(longest, engine) == longest
        assert _iam_policy.db_user_problems(longest, engines={engine}) == []
        with pytest.raises(_identifiers.IdentifierError):
            _identifiers.check_db_user_name(too_long, engine)
        assert _iam_policy.db_user_problems(too_long, engines={engine}) != []
        if engine == "postgres":
            _identifiers.check_pg_new_role_name(longest)
            with pytest.raises(_identifiers.IdentifierError):
                _identifiers.check_pg_new_role_name(too_long)
        else:
            _identifiers.check_mysql_user(longest, engine)
            with pytest.raises(_identifiers.IdentifierError):
                _identifiers.check_mysql_user(too_long, engine)
