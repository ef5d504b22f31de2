"""Unit tests never see the AWS settings of the machine running them."""
import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _aws

FALLBACK_ENV = sorted({name for spec in _aws.AWS_ARGUMENT_SPEC.values() if "fallback" in spec for name in spec["fallback"][1]})


@pytest.fixture(autouse=True)
def isolated_aws(monkeypatch, tmp_path):
    """No AWS variable, config file or instance metadata from the host; no session left cached."""
    for name in FALLBACK_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # The assumed-role credential cache lives under the cache dir: keep each test's own.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    _aws.clear_session_cache()
    yield
    _aws.clear_session_cache()
