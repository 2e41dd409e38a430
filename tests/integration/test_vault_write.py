"""KV v2 writes (module_utils/vault.py write_secret, the vault_kv_write module) through hvac over real HTTP(S).

Like test_vault.py, each test taking ``vault`` runs against the stand-in over HTTP and HTTPS, the stand-in prepared
through the Vault API only (policies with capabilities), and a real Vault when VAULT_ADDR / VAULT_TOKEN are set.
"""

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.ierahkwa.platform.plugins.module_utils import vault as v

MODULE = 'ansible_collections.ierahkwa.platform.plugins.modules.vault_kv_write'


def settings(backend, **options):
    return v.VaultSettings.from_options(backend.options(**options))


def write(backend, path, data, **kwargs):
    token = kwargs.pop('token', None)
    s = settings(backend, token=token) if token else settings(backend)
    return v.write_secret(s, path, data, **kwargs)


def newest(backend, path, version=None):
    s = settings(backend, version=version) if version else settings(backend)
    return v.read_all(s, [path])[0]


def test_write_creates_a_new_version_and_keeps_the_old_one(vault):
    path = vault.put('rotate', {'user': 'app', 'password': 'write-Old-Secret'})
    r = write(vault, path, {'user': 'app', 'password': 'write-New-Secret'})
    assert r == {'changed': True, 'version': 2, 'previous_version': 1}
    assert newest(vault, path) == {'user': 'app', 'password': 'write-New-Secret'}
    assert newest(vault, path, version=1)['password'] == 'write-Old-Secret'
    meta = v.read_all(settings(vault, metadata=True), [path])[0]
    assert meta['current_version'] == 2


def test_same_data_again_writes_nothing(vault):
    path = vault.put('same', {'password': 'same-Secret'})
    assert write(vault, path, {'password': 'same-Secret'}) == {'changed': False, 'version': 1, 'previous_version': 1}
    assert v.read_all(settings(vault, metadata=True), [path])[0]['current_version'] == 1
    # only_if_different=False: a new version with the same value (a rollback does this on purpose).
    assert write(vault, path, {'password': 'same-Secret'}, only_if_different=False)['version'] == 2


def test_check_mode_reads_and_writes_nothing(vault):
    path = vault.put('check', {'password': 'check-Secret'})
    assert write(vault, path, {'password': 'check-Other'}, check_mode=True) == {
        'changed': True,
        'version': 2,
        'previous_version': 1,
    }
    assert newest(vault, path) == {'password': 'check-Secret'}


def test_new_secret_and_cas(vault):
    path = vault.prefix + '/fresh'
    assert write(vault, path, {'k': 'fresh-Secret'}, cas=0) == {'changed': True, 'version': 1, 'previous_version': 0}
    with pytest.raises(v.VaultKVError) as exc:
        write(vault, path, {'k': 'other-Secret'}, cas=0)
    assert str(exc.value) == 'cannot write secret/%s: the current version is 1, not 0 (cas)' % path
    assert 'other-Secret' not in str(exc.value)
    assert write(vault, path, {'k': 'other-Secret'}, cas=1)['version'] == 2


def test_cas_race_refused_by_the_server(vault):
    """Someone writes between our read and our write: the server's check-and-set refuses ours."""
    path = vault.put('race', {'k': 'race-v1'})
    s = settings(vault)
    writer = v.VaultWriter(s)
    assert writer.current(path)[0] == 1
    vault.put('race', {'k': 'race-v2-by-someone-else'})
    with pytest.raises(v.VaultKVError) as exc:
        writer.write(path, {'k': 'race-ours'}, cas=1)
    assert 'check-and-set refused the write' in str(exc.value) and 'race-ours' not in str(exc.value)
    assert newest(vault, path) == {'k': 'race-v2-by-someone-else'}


def test_policy_read_only_token_cannot_write(vault):
    path = vault.put('ro', {'password': 'ro-Secret'})
    token = vault.limited_token('ro')
    assert newest(vault, path) == {'password': 'ro-Secret'}
    with pytest.raises(v.VaultKVError) as exc:
        write(vault, path, {'password': 'ro-New-Secret'}, token=token)
    assert str(exc.value) == 'cannot write secret/%s: permission denied (HTTP 403)' % path
    assert token not in str(exc.value) and 'ro-New-Secret' not in str(exc.value)
    assert newest(vault, path) == {'password': 'ro-Secret'}


def test_policy_update_token_writes_its_path_only(vault):
    path = vault.put('rw', {'password': 'rw-Secret'})
    other = vault.put('rw-other', {'password': 'rw-Other-Secret'})
    token = vault.limited_token('rw', capabilities=('read', 'update'))
    assert write(vault, path, {'password': 'rw-New-Secret'}, token=token)['version'] == 2
    with pytest.raises(v.VaultKVError) as exc:
        write(vault, other, {'password': 'x-Secret'}, token=token)
    assert 'permission denied (HTTP 403)' in str(exc.value)
    assert newest(vault, path)['password'] == 'rw-New-Secret'


def test_the_module_as_ansible_runs_it(vault, tmp_path):
    path = vault.put('module', {'user': 'app', 'password': 'module-Old-Secret'})
    args = {
        'path': path,
        'data': {'user': 'app', 'password': 'module-New-Secret'},
        'url': vault.url,
        'token': vault.root_token,
        'ca_cert': vault.ca_cert,
        'cas': 1,
        'retry_delay': 0.01,
    }

    def run(check=False):
        args_file = tmp_path / 'args.json'
        args_file.write_text(
            json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=check, _ansible_tmpdir=str(tmp_path))})
        )
        r = subprocess.run(
            [sys.executable, '-m', MODULE, str(args_file)],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            check=False,
            timeout=60,
        )
        assert 'module-New-Secret' not in r.stdout + r.stderr and vault.root_token not in r.stdout
        return json.loads(r.stdout)

    r = run(check=True)
    assert (r['changed'], r['version'], r['previous_version']) == (True, 2, 1)
    assert newest(vault, path)['password'] == 'module-Old-Secret'
    r = run()
    assert (r['changed'], r['version'], r['path']) == (True, 2, 'secret/' + path)
    assert newest(vault, path)['password'] == 'module-New-Secret'
    r = run()  # the same data again: nothing to write; cas 1 no longer matches but is not needed
    assert r.get('failed') and 'the current version is 2, not 1 (cas)' in r['msg']
    args.pop('cas')
    r = run()
    assert (r['changed'], r['version']) == (False, 2)
