# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import multiprocessing
import os
import subprocess
import sys
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.ierahkwa.platform.plugins.module_utils import vault as v

BASE = {'url': 'https://vault.example.com:8200', 'token': 'hvs.unit-test-token'}


def settings(**options):
    return v.VaultSettings.from_options(dict(BASE, **options))


def error(**options):
    with pytest.raises(v.VaultKVError) as exc:
        settings(**options)
    return str(exc.value)


def test_defaults():
    s = settings()
    assert (s.auth_method, s.mount_point, s.kv_version, s.version, s.timeout, s.retries, s.retry_delay) == (
        'token',
        'secret',
        2,
        None,
        30,
        3,
        0.5,
    )
    assert s.verify is True and s.cache is True and s.url == 'https://vault.example.com:8200'


@pytest.mark.parametrize(
    'options, message',
    [
        ({'url': None}, 'option url (VAULT_ADDR) must be an http:// or https:// address'),
        ({'url': 'vault.example.com'}, 'must be an http:// or https:// address'),
        ({'url': 8200}, 'must be an http:// or https:// address'),
        ({'auth_method': 'ldap'}, 'option auth_method must be one of token, approle, jwt'),
        ({'kv_version': 3}, 'option kv_version must be 1 or 2'),
        ({'kv_version': 'two'}, "option kv_version must be an integer, got 'two'"),
        ({'version': True}, 'option version must be an integer, got a boolean'),
        ({'version': 0}, 'option version must be 1 or more'),
        ({'version': 2, 'kv_version': 1}, 'needs kv_version 2'),
        ({'metadata': True, 'kv_version': 1}, 'option metadata needs kv_version 2'),
        ({'field': ''}, 'option field must be a non-empty string'),
        ({'field': ['a']}, 'option field must be a non-empty string'),
        ({'timeout': 0}, 'option timeout must be 1 or more'),
        ({'retries': -1}, 'option retries must be 0 or more'),
        ({'retry_delay': 'soon'}, 'option retry_delay must be a number of seconds'),
        ({'client_key': '/k.pem'}, 'option client_key needs client_cert'),
        ({'engine_mount_point': 'se cret'}, "malformed mount point 'se cret'"),
        ({'auth_method': 'approle', 'auth_mount_point': '../x', 'role_id': 'r'}, 'malformed mount point'),
    ],
)
def test_bad_options_are_named(options, message):
    assert message in error(**options)


def test_missing_auth(tmp_path):
    assert 'no Vault token: set the token option, VAULT_TOKEN or the token file' in error(token=None)
    assert str(tmp_path / 'none') in error(token=None, token_file=str(tmp_path / 'none'))
    assert 'auth_method approle needs role_id' in error(token=None, auth_method='approle')
    assert 'auth_method jwt needs jwt (VAULT_JWT) and role_id' in error(token=None, auth_method='jwt', role_id='ci')


def test_token_file(tmp_path):
    (tmp_path / 'tok').write_text('hvs.from-file\n')
    assert settings(token=None, token_file=str(tmp_path / 'tok')).token == 'hvs.from-file'


def test_tls_options():
    assert settings(ca_cert='/ca.pem').verify == '/ca.pem'
    assert settings(ca_cert='/ca.pem', validate_certs=False).verify is False
    assert settings(client_cert='/c.pem').cert == '/c.pem'
    assert settings(client_cert='/c.pem', client_key='/k.pem').cert == ('/c.pem', '/k.pem')


@pytest.mark.parametrize(
    'path', ['', '/', 'a//b', '../etc', 'a/../b', 'a/./b', 'a b', 'a\nb', 'a?version=2', 'é', None, 12, ['a']]
)
def test_malformed_paths(path):
    with pytest.raises(v.VaultKVError) as exc:
        v.check_path(path)
    assert 'secret path' in str(exc.value)


def test_good_paths():
    assert v.check_path('/app/db/') == 'app/db'
    assert v.check_path('team-a/app_1/db.v2') == 'team-a/app_1/db.v2'


@given(st.one_of(st.text(max_size=40), st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2)))
def test_check_path_never_crashes(path):
    try:
        clean = v.check_path(path)
    except v.VaultKVError as exc:
        assert 'secret path' in str(exc)
    else:
        assert clean and '..' not in clean.split('/') and ' ' not in clean


def test_identity_and_cache_key_hold_no_credential():
    s = settings(token='hvs.very-secret-token')
    assert 'very-secret' not in s.identity()
    a = settings(auth_method='approle', token=None, role_id='r', secret_id='sid-secret')
    assert (
        'sid-secret' not in a.identity()
        and a.identity() != settings(auth_method='approle', token=None, role_id='r', secret_id='other').identity()
    )
    keys = {
        v.cache_key(settings(**o), 'app/db')
        for o in (
            {},
            {'version': 1},
            {'namespace': 'ns'},
            {'token': 'other'},
            {'engine_mount_point': 'kv2'},
            {'metadata': True},
        )
    }
    assert len(keys) == 6
    assert v.cache_key(settings(), '/app/db/') == v.cache_key(settings(), 'app/db')


def test_where_names_namespace_mount_path_version():
    assert settings(namespace='ns', version=3).where('app/db') == 'namespace ns, secret/app/db (version 3)'


class Fake(Exception):
    pass


def fake(name, errors=None):
    cls = type(name, (Fake,), {})
    exc = cls('x')
    exc.errors = errors
    return exc


@pytest.mark.parametrize(
    'name, errors, cause, retryable',
    [
        ('Forbidden', ['permission denied'], 'permission denied (HTTP 403)', False),
        ('InvalidPath', [], 'not found (HTTP 404)', False),
        ('InvalidRequest', ['bad'], 'invalid request (HTTP 400)', False),
        ('Unauthorized', [], 'not authenticated (missing or expired token) (HTTP 401)', False),
        ('RateLimitExceeded', [], 'rate limited (HTTP 429)', False),
        ('VaultDown', ['Vault is sealed'], 'Vault is sealed', True),
        ('VaultDown', ['node is in standby mode'], 'Vault is in standby', True),
        ('VaultDown', None, 'Vault is unavailable (HTTP 503)', True),
        ('InternalServerError', ['boom'], 'server error (HTTP 500)', True),
        ('BadGateway', [], 'bad gateway (HTTP 502)', True),
        ('UnexpectedError', [], 'unexpected answer from Vault', True),
    ],
)
def test_translate(name, errors, cause, retryable):
    e = v.translate(fake(name, errors), settings(), 'cannot read secret/app/db')
    assert str(e) == 'cannot read secret/app/db: ' + cause
    assert e.retryable is retryable


def test_translate_hides_server_text():
    e = v.translate(fake('InternalServerError', ['token hvs.leak in message']), settings(), 'x')
    assert 'hvs.leak' not in str(e)


def test_select():
    s = settings(field='password')
    assert v.select(s, 'app/db', {'data': {'password': 'p'}}) == 'p'
    with pytest.raises(v.VaultKVError) as exc:
        v.select(s, 'app/db', {'data': {'user': 'secret-value'}})
    assert str(exc.value) == "secret/app/db has no field 'password' (it has 1 fields)"
    assert v.select(settings(), 'app/db', {'data': {'a': 1}}) == {'a': 1}


def test_missing_hvac(monkeypatch):
    monkeypatch.setitem(sys.modules, 'hvac', None)
    with pytest.raises(v.MissingLibraryError) as exc:
        v.import_hvac()
    assert 'the hvac Python library is required on the controller' in str(exc.value)


class CountingReader(object):
    def __init__(self):
        self.reads = []

    def read(self, path):
        self.reads.append(path)
        return {'data': {'value': 'v-' + path}, 'metadata': {}}


def test_run_cache_one_read_per_key(tmp_path):
    cache = v.RunCache(base=str(tmp_path), run=(os.getpid(), v._process_start(os.getpid())))
    reader = CountingReader()
    s = settings(field='value')
    for _round in range(5):
        assert v.read_all(s, ['a', '/a', 'b'], reader=reader, cache=cache) == ['v-a', 'v-a', 'v-b']
    assert reader.reads == ['a', 'b']
    assert os.stat(cache.dir).st_mode & 0o777 == 0o700
    assert {os.stat(os.path.join(cache.dir, f)).st_mode & 0o777 for f in os.listdir(cache.dir)} == {0o600}


def test_cache_off_reads_every_time(tmp_path):
    reader = CountingReader()
    v.read_all(settings(cache=False), ['a', 'a'], reader=reader)
    assert reader.reads == ['a', 'a']


def test_run_cache_sweeps_dead_runs_and_refuses_a_shared_dir(tmp_path):
    dead = tmp_path / ('%s%d-999999999-5' % (v.CACHE_PREFIX, os.getuid()))
    dead.mkdir()
    other_user = tmp_path / ('%s%d-1-5' % (v.CACHE_PREFIX, os.getuid() + 1))
    other_user.mkdir()
    cache = v.RunCache(base=str(tmp_path), run=(os.getpid(), v._process_start(os.getpid())))
    v.read_all(settings(), ['a'], reader=CountingReader(), cache=cache)
    assert not dead.exists() and other_user.exists()
    os.chmod(cache.dir, 0o755)  # noqa: S103 - the case under test
    with pytest.raises(v.VaultKVError) as exc:
        v.read_all(settings(), ['a'], reader=CountingReader(), cache=cache)
    assert 'is not a private directory' in str(exc.value)


def test_run_id_of_a_worker_is_its_parent():
    with multiprocessing.get_context('fork').Pool(1) as pool:
        assert pool.apply(v.run_id)[0] == os.getpid()
    assert v.run_id()[0] == os.getpid()


def test_run_cache_is_removed_when_the_run_ends(tmp_path):
    # a stand-in for the run's main process; the cache must disappear once it exits
    run = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        cache = v.RunCache(base=str(tmp_path), run=(run.pid, v._process_start(run.pid)))
        assert cache.get_or_read('k', lambda: {'data': 's3cret'}) == {'data': 's3cret'}
        assert os.path.isdir(cache.dir)
        time.sleep(1.0)
        assert os.path.isdir(cache.dir), 'removed while the run was still alive'
    finally:
        run.kill()
        run.wait()
    deadline = time.time() + 10
    while os.path.exists(cache.dir) and time.time() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(cache.dir), 'the run ended but its cache (with secrets) is still there'
