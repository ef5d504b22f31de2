"""Each doc fragment documents exactly the options its argument spec accepts."""
import pytest
import yaml

from ansible_collections.rdsiam.auth.plugins.doc_fragments import aws, db
from ansible_collections.rdsiam.auth.plugins.module_utils._aws import AWS_ARGUMENT_SPEC
from ansible_collections.rdsiam.auth.plugins.module_utils._db import DB_ARGUMENT_SPEC


@pytest.mark.parametrize("fragment, spec", [(aws.ModuleDocFragment, AWS_ARGUMENT_SPEC), (db.ModuleDocFragment, DB_ARGUMENT_SPEC)],
                         ids=["aws", "db"])
def test_doc_fragment_matches_argument_spec(fragment, spec):
    documented = yaml.safe_load(fragment.DOCUMENTATION)["options"]
    assert set(documented) == set(spec)
    for name, option in spec.items():
        doc = documented[name]
        assert doc["type"] == option["type"], name
        assert doc.get("default") == option.get("default"), name
        assert sorted(doc.get("aliases", [])) == sorted(option.get("aliases", [])), name
        assert doc.get("choices") == option.get("choices"), name
        assert doc["description"], name


def test_plugins_fragment_env_matches_module_fallbacks_in_lookup_precedence():
    plugins = yaml.safe_load(aws.ModuleDocFragment.PLUGINS)['options']
    assert set(plugins) == set(AWS_ARGUMENT_SPEC)
    for name, spec in AWS_ARGUMENT_SPEC.items():
        assert set(plugins[name]) <= {'env', 'vars'}, name
        env_names = [entry['name'] for entry in plugins[name].get('env', [])]
        module_names = list(spec['fallback'][1]) if 'fallback' in spec else []
        # Plugin config lets the last listed variable win; env_fallback takes the first.
        assert env_names == module_names[::-1], name
        assert [entry['name'] for entry in plugins[name]['vars']] == ['rdsiam_aws_' + name.replace('aws_', '', 1)], name
