"""The Vault logic of the collection through the real hvac client over real HTTP(S).

Each test taking ``vault`` runs against the stand-in over HTTP, over HTTPS, and against a real Vault when
``VAULT_ADDR`` / ``VAULT_TOKEN`` are set (skipped otherwise); tests taking ``standin`` need what only the stand-in
can do (seal itself, fail on purpose, count requests).
"""

import multiprocessing
import os
import time

import pytest
from vault_backends import standin_backend

from ansible_collections.ierahkwa.platform.plugins.module_utils import vault as v


def read(backend, path, reader=None, **options):
    settings = v.VaultSettings.from_options(backend.options(**options))
    reader = reader or v.VaultReader(settings)
    return v.read_all(settings, [path], reader=reader)[0]


def failure(backend, path, **options):
    settings = v.VaultSettings.from_options(backend.options(**options))
    reader = v.VaultReader(settings)
    with pytest.raises(v.VaultKVError) as exc:
        v.read_all(settings, [path], reader=reader)
    return str(exc.value), reader


def test_kv2_whole_secret_and_one_field(vault):
    path = vault.put('db', {'user': 'app', 'password': 'kv2-Secret-1'})
    assert read(vault, path) == {'user': 'app', 'password': 'kv2-Secret-1'}
    assert read(vault, path, field='password') == 'kv2-Secret-1'


def test_kv2_pinned_version_and_metadata(vault):
    vault.put('rotating', {'password': 'first-Secret'})
    path = vault.put('rotating', {'password': 'second-Secret'})
    assert read(vault, path, field='password') == 'second-Secret'
    assert read(vault, path, field='password', version=1) == 'first-Secret'
    meta = read(vault, path, metadata=True)
    assert meta['current_version'] == 2
    assert sorted(meta['versions']) == ['1', '2']


def test_kv1(vault):
    path = vault.put_v1('legacy', {'api_key': 'kv1-Secret'})
    assert read(vault, path, engine_mount_point=vault.kv1_mount, kv_version=1, field='api_key') == 'kv1-Secret'


def test_not_found_names_path_and_is_not_retried(vault):
    message, reader = failure(vault, vault.prefix + '/missing', retries=3)
    assert message == 'cannot read secret/%s/missing: not found (HTTP 404)' % vault.prefix
    assert reader.attempts == 1


def test_missing_field_names_the_field_not_the_values(vault):
    path = vault.put('fields', {'password': 'field-Secret'})
    message = failure(vault, path, field='passwd')[0]
    assert "has no field 'passwd'" in message and 'field-Secret' not in message


def test_permission_denied_is_not_retried_and_hides_the_token(vault):
    vault.put('allowed', {'k': 'allowed-Secret'})
    denied = vault.put('denied', {'k': 'denied-Secret'})
    token = vault.limited_token('allowed')
    assert read(vault, vault.prefix + '/allowed', token=token) == {'k': 'allowed-Secret'}
    message, reader = failure(vault, denied, token=token, retries=3)
    assert message == 'cannot read secret/%s: permission denied (HTTP 403)' % denied
    assert reader.attempts == 1
    assert token not in message and 'denied-Secret' not in message


def test_approle_login_then_read(vault):
    path = vault.put('approle', {'k': 'approle-Secret'})
    role_id, secret_id = vault.approle('approle')
    assert read(vault, path, auth_method='approle', token=None, role_id=role_id, secret_id=secret_id) == {
        'k': 'approle-Secret'
    }
    message, reader = failure(
        vault, path, auth_method='approle', token=None, role_id=role_id, secret_id='wrong-' + secret_id
    )
    assert message.startswith('AppRole login at auth/approle: ') and '(HTTP 400)' in message
    assert secret_id not in message and reader.attempts == 1


def test_jwt_login_then_read(standin):
    path = standin.put('jwt', {'k': 'jwt-Secret'})
    standin.standin.state.jwt_roles['ci'] = ('eyJ.test.jwt', ['secret/%s' % path])
    assert read(standin, path, auth_method='jwt', token=None, role_id='ci', jwt='eyJ.test.jwt') == {'k': 'jwt-Secret'}
    message = failure(standin, path, auth_method='jwt', token=None, role_id='ci', jwt='eyJ.wrong')[0]
    assert message == 'JWT login at auth/jwt: invalid request (HTTP 400)'


def test_namespaces_are_separate(standin):
    path = standin.put('ns', {'k': 'in-team-a'}, namespace='team-a')
    assert read(standin, path, namespace='team-a') == {'k': 'in-team-a'}
    message = failure(standin, path)[0]
    assert 'not found' in message
    assert standin.standin.state.reads('secret', path, 'team-a') == 1


def test_sealed_is_retried_with_backoff_then_named(standin):
    path = standin.put('sealed', {'k': 'v'})
    standin.standin.state.sealed = True
    sleeps = []
    settings = v.VaultSettings.from_options(standin.options(retries=3, retry_delay=0.05))
    reader = v.VaultReader(settings, sleep=sleeps.append)
    with pytest.raises(v.VaultKVError) as exc:
        v.read_all(settings, [path], reader=reader)
    assert str(exc.value) == 'cannot read secret/%s: Vault is sealed (after 4 attempts)' % path
    assert sleeps == [0.05, 0.1, 0.2]
    assert standin.standin.state.reads('secret', path) == 4


def test_fails_twice_with_503_then_answers(standin):
    path = standin.put('flaky', {'k': 'after-standby'})
    standin.standin.state.flaky['secret/' + path] = 2
    assert read(standin, path, retries=3) == {'k': 'after-standby'}
    assert standin.standin.state.reads('secret', path) == 3


def test_unreachable_is_retried_and_named():
    backend = type('B', (), {})()
    backend.options = lambda **o: dict(
        {'url': 'http://127.0.0.1:9', 'token': 't', 'retry_delay': 0.01, 'cache': False}, **o
    )
    message, reader = failure(backend, 'app/db', retries=2)
    assert (
        message == 'cannot read secret/app/db: Vault at http://127.0.0.1:9 is unreachable (ConnectionError) '
        '(after 3 attempts)'
    )
    assert reader.attempts == 3


def test_timeout(standin):
    path = standin.put('slow', {'k': 'v'})
    standin.standin.state.slow['secret/' + path] = 1.5
    started = time.time()
    message, reader = failure(standin, path, timeout=1, retries=1)
    assert 'is unreachable (ReadTimeout) (after 2 attempts)' in message
    assert reader.attempts == 2 and time.time() - started < 5


@pytest.mark.filterwarnings('ignore::urllib3.exceptions.InsecureRequestWarning')
def test_https_ca_bundle_client_cert_and_verification(certs):
    b = standin_backend('standin-https', (certs['server'], certs['server_key'], certs['ca']), require_client_cert=True)
    try:
        state = b.standin.state  # written directly: the test's writer has no client certificate
        state.kv2[('', 'secret', b.prefix + '/tls')] = [
            {'data': {'k': 'tls-Secret'}, 'created_time': 'x', 'deletion_time': '', 'destroyed': False}
        ]
        path = b.prefix + '/tls'
        assert read(b, path, client_cert=certs['client'], client_key=certs['client_key']) == {'k': 'tls-Secret'}
        assert state.client_certs == ['ierahkwa-test-client']
        message, reader = failure(b, path, ca_cert=None, retries=2)  # the system CAs do not know the test CA
        assert 'TLS error talking to %s' % b.url in message and reader.attempts == 1
        message = failure(b, path)[0]  # no client certificate: the server refuses the handshake
        assert 'cannot read secret/%s' % path in message
        assert read(
            b, path, ca_cert=None, validate_certs=False, client_cert=certs['client'], client_key=certs['client_key']
        ) == {'k': 'tls-Secret'}
    finally:
        b.standin.stop()


def _worker(args):
    settings_options, path, cache_dir, run = args
    settings = v.VaultSettings.from_options(settings_options)
    return v.read_all(settings, [path], cache=v.RunCache(base=cache_dir, run=run))[0]


def test_run_cache_shared_by_forked_workers(standin, tmp_path):
    """Sixteen forked processes of one run read three paths: three reads in all."""
    paths = [standin.put('shared%d' % i, {'k': 'shared-%d' % i}) for i in range(3)]
    options = standin.options(cache=True)
    run = v.run_id()
    jobs = [(options, p, str(tmp_path), run) for p in paths for _n in range(16)]
    with multiprocessing.get_context('fork').Pool(16) as pool:
        results = pool.map(_worker, jobs)
    assert results == [{'k': 'shared-%d' % i} for i in range(3) for _n in range(16)]
    assert [standin.standin.state.reads('secret', p) for p in paths] == [1, 1, 1]
    # Another version, another identity: other keys, so other reads.
    _worker((dict(options, version=1), paths[0], str(tmp_path), run))
    _worker((dict(options, token=standin.limited_token('shared0')), paths[0], str(tmp_path), run))
    assert standin.standin.state.reads('secret', paths[0]) == 3
    entries = os.listdir(tmp_path)
    assert len(entries) == 1 and os.stat(tmp_path / entries[0]).st_mode & 0o777 == 0o700
