import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._module import checked_login_overrides, merged_argument_spec


@pytest.mark.parametrize('overrides, match', [
    ({'db1': {'login_host': '127.0.0.1', 'login_prot': 5432}}, r"login_overrides\['db1'\] is .*login_prot"),
    ({'db1': '127.0.0.1:5432'}, r"login_overrides\['db1'\] is '127.0.0.1:5432': give a dict"),
    ({'db1': {'login_port': 'five'}}, r"login_overrides\['db1'\] is .*\(a number\)"),
])
def test_login_overrides_must_be_dicts_of_host_and_port(overrides, match):
    with pytest.raises(RdsIamError, match=match):
        checked_login_overrides(overrides)


def test_login_overrides_ports_written_as_text_become_numbers():
    assert checked_login_overrides({'db1': {'login_host': 'localhost', 'login_port': '15432'}, 'db2': {'login_host': 'b'}}) == {
        'db1': {'login_host': 'localhost', 'login_port': 15432}, 'db2': {'login_host': 'b', 'login_port': None}}
    assert checked_login_overrides(None) == {}


def test_database_modules_take_many_targets_instead_of_what_each_target_brings():
    spec, constraints, _names = merged_argument_spec({}, db=('endpoint', 'login_host', 'login_db'))
    assert spec['targets'] == dict(type='list', elements='dict') and spec['login_overrides'] == dict(type='dict')
    assert set(pair for pair in constraints['mutually_exclusive'] if pair[0] == 'targets') == {
        ('targets', 'target'), ('targets', 'endpoint'), ('targets', 'login_host'), ('targets', 'login_override')}
    assert constraints['required_by']['login_overrides'] == 'targets'


def test_modules_without_a_database_have_no_targets_to_log_in_to():
    spec, constraints, _names = merged_argument_spec({'name': dict(type='str')})
    assert 'targets' not in spec and 'login_overrides' not in spec
    assert 'login_overrides' not in constraints['required_by']
