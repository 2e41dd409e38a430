"""The Vaults the integration tests run against: the stand-in over HTTP and HTTPS (always) and a real Vault when
``VAULT_ADDR`` and ``VAULT_TOKEN`` (a token that may write secrets, policies and auth methods) are set.

The tests write their secrets through hvac under a fresh ``ierahkwa-test/<random>/`` prefix, the same way on
both, so that one test body proves the same thing against both.
"""

import os
import secrets
import subprocess

import hvac
import pytest
from vault_standin import VaultStandin

ROOT_TOKEN = 'hvs.standin-root-' + secrets.token_hex(8)


def make_certs(directory):
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, with the openssl CLI."""
    d = str(directory)

    def run(*args):
        subprocess.run(['openssl', *args], check=True, capture_output=True, cwd=d)

    run(
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        '2',
        '-subj',
        '/CN=ierahkwa test CA',
    )
    exts = (('server', 'subjectAltName=DNS:localhost,IP:127.0.0.1'), ('client', 'extendedKeyUsage=clientAuth'))
    for name, ext in exts:
        run(
            'req',
            '-newkey',
            'rsa:2048',
            '-nodes',
            '-keyout',
            name + '.key',
            '-out',
            name + '.csr',
            '-subj',
            '/CN=ierahkwa-test-' + name,
        )
        with open(os.path.join(d, name + '.ext'), 'w') as f:
            f.write(ext + '\n')
        run(
            'x509',
            '-req',
            '-in',
            name + '.csr',
            '-CA',
            'ca.pem',
            '-CAkey',
            'ca.key',
            '-CAcreateserial',
            '-out',
            name + '.pem',
            '-days',
            '2',
            '-extfile',
            name + '.ext',
        )
    return {
        key: os.path.join(d, name)
        for key, name in (
            ('ca', 'ca.pem'),
            ('server', 'server.pem'),
            ('server_key', 'server.key'),
            ('client', 'client.pem'),
            ('client_key', 'client.key'),
        )
    }


class Backend(object):
    """One Vault: its address, a root token, how to write secrets and to get narrower credentials."""

    standin = None  # the VaultStandin, or None for a real Vault
    kv1_mount = 'kv'
    ca_cert = None

    def __init__(self, kind, url, token):
        self.kind, self.url, self.root_token = kind, url, token
        self.prefix = 'ierahkwa-test/' + secrets.token_hex(4)

    def client(self, namespace=None):
        return hvac.Client(url=self.url, token=self.root_token, verify=self.ca_cert or True, namespace=namespace)

    def put(self, name, data, mount='secret', namespace=None):
        """Writes a new KV v2 version of <prefix>/<name>; returns the path the lookup reads."""
        path = '%s/%s' % (self.prefix, name)
        c = self.client(namespace)
        c.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point=mount)
        return path

    def put_v1(self, name, data):
        path = '%s/%s' % (self.prefix, name)
        self.client().secrets.kv.v1.create_or_update_secret(path=path, secret=data, mount_point=self.kv1_mount)
        return path

    def options(self, **extra):
        o = {
            'url': self.url,
            'token': self.root_token,
            'ca_cert': self.ca_cert,
            'retry_delay': 0.01,
            'timeout': 5,
            'cache': False,
        }
        o.update(extra)
        return o

    def limited_token(self, allowed_name, capabilities=('read',)):
        """A token that may only do ``capabilities`` on <prefix>/<allowed_name> of the KV v2 mount secret."""
        if self.standin:
            return self.standin.state.issue([('secret/%s/%s' % (self.prefix, allowed_name), frozenset(capabilities))])
        c = self.client()
        policy = 'ierahkwa-test-%s-%s' % (self.prefix.rsplit('/', 1)[1], '-'.join(capabilities))
        c.sys.create_or_update_policy(
            name=policy,
            policy='path "secret/data/%s/%s" { capabilities = [%s] }'
            % (self.prefix, allowed_name, ', '.join('"%s"' % c for c in capabilities)),
        )
        return c.auth.token.create(policies=[policy], ttl='10m')['auth']['client_token']

    def approle(self, allowed_name):
        """(role_id, secret_id) of an AppRole that may read <prefix>/<allowed_name>."""
        if self.standin:
            role_id, secret_id = 'role-' + secrets.token_hex(4), 'sid-' + secrets.token_hex(8)
            self.standin.state.approles[role_id] = (secret_id, ['secret/%s/%s' % (self.prefix, allowed_name)])
            return role_id, secret_id
        c = self.client()
        if 'approle/' not in c.sys.list_auth_methods()['data']:
            c.sys.enable_auth_method('approle')
        policy = 'ierahkwa-test-%s' % self.prefix.rsplit('/', 1)[1]
        c.sys.create_or_update_policy(
            name=policy, policy='path "secret/data/%s/%s" { capabilities = ["read"] }' % (self.prefix, allowed_name)
        )
        role = policy
        c.auth.approle.create_or_update_approle(role_name=role, token_policies=[policy])
        role_id = c.auth.approle.read_role_id(role_name=role)['data']['role_id']
        secret_id = c.auth.approle.generate_secret_id(role_name=role)['data']['secret_id']
        return role_id, secret_id

    def need_standin(self, why):
        if not self.standin:
            pytest.skip('stand-in only: %s' % why)


def standin_backend(kind, tls=None, require_client_cert=False):
    server = VaultStandin(ROOT_TOKEN, tls=tls, require_client_cert=require_client_cert).start()
    b = Backend(kind, server.url, ROOT_TOKEN)
    b.standin = server
    b.ca_cert = tls[2] if tls else None
    return b


def real_backend():
    if not (os.environ.get('VAULT_ADDR') and os.environ.get('VAULT_TOKEN')):
        pytest.skip('no real Vault: set VAULT_ADDR and VAULT_TOKEN (a token that may write) to run these')
    return real_backend_at(os.environ['VAULT_ADDR'], os.environ['VAULT_TOKEN'], os.environ.get('VAULT_CACERT'))


def real_backend_at(url, token, ca_cert=None):
    """A Vault prepared only through its API (policies, tokens, AppRole), as a real one is."""
    b = Backend('real', url, token)
    b.ca_cert = ca_cert
    b.kv1_mount = os.environ.get('IERAHKWA_TEST_KV1_MOUNT', 'kv')
    return b
