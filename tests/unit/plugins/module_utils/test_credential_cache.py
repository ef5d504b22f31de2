"""The on-disk cache of assumed-role credentials: file mode, keys, freshness, and distrust of odd files."""
import datetime
import json
import os
import stat

import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _credential_cache as cache

NOW = datetime.datetime(2026, 11, 25, 10, 0, 0, tzinfo=datetime.timezone.utc)
PARAMS = {'RoleArn': 'arn:aws:iam::123456789012:role/dba', 'RoleSessionName': 'alice', 'ExternalId': 'ext-1',
          'Tags': [{'Key': 'userName', 'Value': 'alice'}, {'Key': 'team', 'Value': 'dba'}]}
SECRET = 'tmp-secret-DO-NOT-SHOW'


def credentials(minutes=60):
    return {'AccessKeyId': 'ASIATEMPKEY', 'SecretAccessKey': SECRET, 'SessionToken': 'tmp-token', 'Expiration': NOW + datetime.timedelta(minutes=minutes)}


@pytest.fixture
def directory(tmp_path):
    return str(tmp_path / 'cache')


def test_cache_dir_follows_xdg_and_defaults_to_dot_cache(monkeypatch):
    assert cache.cache_dir({'XDG_CACHE_HOME': '/x/cache'}) == '/x/cache/rdsiam.auth'
    monkeypatch.setenv('HOME', '/home/jane')
    assert cache.cache_dir({}) == '/home/jane/.cache/rdsiam.auth'


def test_saved_file_is_0600_in_a_0700_directory_and_round_trips(directory):
    key = cache.cache_key(PARAMS, 'AKIASOURCE')
    assert cache.save(key, credentials(), directory)
    path = os.path.join(directory, 'assume-role-%s.json' % key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert cache.load(key, directory, now=NOW) == credentials()
    assert os.listdir(directory) == [os.path.basename(path)]  # no temporary file left behind


def test_only_credentials_are_stored(directory):
    key = cache.cache_key(PARAMS, 'AKIASOURCE')
    cache.save(key, dict(credentials(), Token='rds-token-must-not-be-written'), directory)
    data = json.loads(open(os.path.join(directory, 'assume-role-%s.json' % key), encoding='utf-8').read())
    assert sorted(data) == ['AccessKeyId', 'Expiration', 'SecretAccessKey', 'SessionToken']


@pytest.mark.parametrize('change', [
    {'RoleArn': 'arn:aws:iam::123456789012:role/other'}, {'RoleSessionName': 'bob'}, {'ExternalId': 'ext-2'},
    {'Tags': [{'Key': 'userName', 'Value': 'bob'}]}, {'Tags': []},
])
def test_key_depends_on_every_assume_role_input(change):
    assert cache.cache_key(dict(PARAMS, **change), 'AKIASOURCE') != cache.cache_key(PARAMS, 'AKIASOURCE')


def test_key_depends_on_source_identity_and_endpoint_but_not_tag_order():
    base = cache.cache_key(PARAMS, 'AKIASOURCE')
    assert cache.cache_key(PARAMS, 'AKIAOTHER') != base
    assert cache.cache_key(PARAMS, 'AKIASOURCE', 'http://127.0.0.1:5000') != base
    assert cache.cache_key(dict(PARAMS, Tags=PARAMS['Tags'][::-1]), 'AKIASOURCE') == base


def test_key_holds_no_input_in_clear():
    key = cache.cache_key(PARAMS, 'AKIASOURCE')
    assert len(key) == 64 and 'alice' not in key and 'AKIA' not in key


# A token dies with the credentials that signed it: cached ones must outlive a token minted now (15 minutes).
@pytest.mark.parametrize('minutes,fresh', [(60, True), (16, True), (14, False), (6, False), (4, False), (-1, False)])
def test_credentials_close_to_expiry_are_a_miss(directory, minutes, fresh):
    key = cache.cache_key(PARAMS, 'AKIASOURCE')
    cache.save(key, credentials(minutes), directory)
    assert (cache.load(key, directory, now=NOW) is not None) == fresh


def test_missing_corrupt_or_incomplete_files_are_a_miss(directory):
    key = cache.cache_key(PARAMS, 'AKIASOURCE')
    assert cache.load(key, directory, now=NOW) is None
    os.makedirs(directory, mode=0o700)
    path = os.path.join(directory, 'assume-role-%s.json' % key)
    for content in ('{not json', '[]', '{"AccessKeyId": "A"}', json.dumps(dict(credentials(), Expiration='2030-01-01T00:00:00'))):
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write(content if isinstance(content, str) else json.dumps(content))
        os.chmod(path, 0o600)
        assert cache.load(key, directory, now=NOW) is None, content


def test_a_file_others_can_read_is_not_trusted(directory):
    key = cache.cache_key(PARAMS, 'AKIASOURCE')
    cache.save(key, credentials(), directory)
    path = os.path.join(directory, 'assume-role-%s.json' % key)
    os.chmod(path, 0o644)
    assert cache.load(key, directory, now=NOW) is None
    cache.save(key, credentials(), directory)  # replaced by a private file again
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and cache.load(key, directory, now=NOW)


def test_save_failure_is_not_an_error(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    assert cache.save('k', credentials(), str(blocker / 'sub')) is False


def test_forget_removes_the_entry(directory):
    key = cache.cache_key(PARAMS, 'AKIASOURCE')
    cache.save(key, credentials(), directory)
    cache.forget(key, directory)
    cache.forget(key, directory)  # twice is fine
    assert cache.load(key, directory, now=NOW) is None


def test_cached_credentials_for_options(monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    options = {'assume_role_arn': PARAMS['RoleArn'], 'role_session_name': 'alice', 'session_tags': {'team': 'dba'}}
    key, found = cache.cached_credentials(options, 'AKIASOURCE')
    assert found is None and key == cache.cache_key(cache.assume_role_params(options), 'AKIASOURCE')
    cache.save(key, dict(credentials(), Expiration=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)))
    found = cache.cached_credentials(options, 'AKIASOURCE')[1]
    assert (found.access_key, found.session_token, found.source) == ('ASIATEMPKEY', 'tmp-token', 'assume-role (cached)')
    assert SECRET not in repr(found)
    assert cache.cached_credentials(dict(options, credential_cache=False), 'AKIASOURCE')[1] is None
    assert cache.cached_credentials(options, 'AKIAOTHERSOURCE')[1] is None
