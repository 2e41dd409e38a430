"""A stand-in for the HashiCorp Vault HTTP API, for the integration tests (no Vault binary is installable here).

It serves, over HTTP or HTTPS (optionally asking for a client certificate), what the collection's plugins use:

- ``POST /v1/auth/<approle mount>/login`` (``role_id``, ``secret_id``) and ``POST /v1/auth/<jwt mount>/login``
  (``role``, ``jwt``): a client token; wrong credentials give 400 like Vault.
- KV v2 at the mounts of ``kv2_mounts``: ``GET /v1/<mount>/data/<path>[?version=N]``,
  ``POST|PUT /v1/<mount>/data/<path>`` (a new version, optional ``options.cas``),
  ``GET /v1/<mount>/metadata/<path>``.
- KV v1 at the mounts of ``kv1_mounts``: ``GET`` and ``POST|PUT /v1/<mount>/<path>``.
- The ``X-Vault-Namespace`` header: each namespace has its own secrets.
- Tokens with a list of allowed ``mount/path`` patterns (fnmatch), each with every capability or with the
  capabilities of a policy's path block: a read needs ``read``, a write ``create`` (new secret) or ``update``
  (a new version of an existing one); anything else is 403 "permission denied"; an unknown or missing token is
  403 too; a missing secret is 404.
- ``sealed = True``: every ``/v1/`` request answers 503 "Vault is sealed".
- ``flaky[path] = n``: the next n requests for that ``mount/path`` answer 503 "node is in standby mode";
  ``slow[path] = s``: requests for it wait s seconds before answering.

- Setting up (root token only): ``GET /v1/sys/auth``, ``POST /v1/sys/auth/<path>``, ``PUT /v1/sys/policy/<name>``
  (the ``path "..." { capabilities = [...] }`` blocks of the HCL), ``POST /v1/auth/token/create`` (``policies``),
  ``POST /v1/auth/approle/role/<name>``, ``GET .../role/<name>/role-id``, ``POST .../role/<name>/secret-id``: what
  the integration tests call to prepare a real Vault, so that the same preparation runs against the stand-in.

Test-only endpoints (no token): ``GET /_standin/requests`` (every ``/v1/`` request seen, as
``[method, path, namespace]``) and ``POST /_standin/reset`` (forget them). In-process tests use the attributes.

Run alone: ``python vault_standin.py PORT TOKEN`` serves HTTP on 0.0.0.0:PORT with one root token.
"""

import fnmatch
import json
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def now():
    return time.strftime('%Y-%m-%dT%H:%M:%S.000000Z', time.gmtime())


class StandinState(object):
    def __init__(self, root_token):
        self.lock = threading.Lock()
        self.kv2_mounts = {'secret'}
        self.kv1_mounts = {'kv'}
        self.kv2 = {}  # (namespace, mount, path) -> list of versions {data, created_time, ...}
        self.kv1 = {}  # (namespace, mount, path) -> data
        self.tokens = {root_token: ['*']}
        self.approles = {}  # role_id -> (secret_id, patterns)
        self.jwt_roles = {}  # role -> (jwt, patterns)
        self.sealed = False
        self.flaky = {}
        self.slow = {}  # mount/path -> seconds to wait before answering
        self.requests = []
        self.policies = {}  # name -> allowed mount/path patterns
        self.auth_mounts = {'approle', 'jwt'}
        self.approle_roles = {}  # role name -> {role_id, policies}
        self.client_certs = []  # subject CNs of the client certificates seen
        self.issued = 0

    def reads(self, mount, path, namespace=''):
        """How many GET requests read the data of ``mount/path`` (KV v2 or v1)."""
        wanted = {'/v1/%s/data/%s' % (mount, path), '/v1/%s/%s' % (mount, path)}
        return sum(1 for m, p, ns in self.requests if m == 'GET' and p in wanted and ns == namespace)

    def issue(self, patterns):
        with self.lock:
            self.issued += 1
            token = 'hvs.standin-%d' % self.issued
            self.tokens[token] = patterns
        return token


class Handler(BaseHTTPRequestHandler):
    server_version = 'vault-standin'
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    @property
    def state(self):
        return self.server.state

    def answer(self, status, body=None):
        data = b'' if status == 204 else json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def errors(self, status, *messages):
        self.answer(status, {'errors': list(messages)})

    def body(self):
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length else b''
        try:
            return json.loads(raw or b'{}')
        except ValueError:
            return None

    def do_GET(self):
        self.route('GET')

    def do_POST(self):
        self.route('POST')

    def do_PUT(self):
        self.route('POST')

    def route(self, method):  # noqa: PLR0911 - a router
        url = urlparse(self.path)
        path = url.path
        if path.startswith('/_standin/'):
            return self.control(method, path)
        namespace = (self.headers.get('X-Vault-Namespace') or '').strip('/')
        st = self.state
        with st.lock:
            st.requests.append([method, path, namespace])
        cert = getattr(self.connection, 'getpeercert', lambda: None)()
        if cert:
            st.client_certs.append(dict(x[0] for x in cert.get('subject', ())).get('commonName'))
        if not path.startswith('/v1/'):
            return self.errors(404, 'unsupported path')
        if st.sealed:
            return self.errors(503, 'Vault is sealed')
        rest = path[len('/v1/') :]
        if rest.startswith('auth/') and rest.endswith('/login') and method == 'POST':
            return self.login(rest[len('auth/') : -len('/login')])
        if rest.startswith(('sys/', 'auth/')):
            return self.admin(method, rest)
        mount, _sep, sub = rest.partition('/')
        secret = sub.partition('/')[2] if mount in st.kv2_mounts else sub
        with st.lock:
            remaining = st.flaky.get(mount + '/' + secret, 0)
            if remaining:
                st.flaky[mount + '/' + secret] = remaining - 1
        if remaining:
            return self.errors(503, 'node is in standby mode')
        time.sleep(st.slow.get(mount + '/' + secret, 0))
        if mount in st.kv2_mounts:
            kind = sub.partition('/')[0]
            if kind not in ('data', 'metadata') or not secret:
                return self.errors(404, 'unsupported path')
            capability = 'read'
            if method == 'POST':
                with st.lock:
                    capability = 'update' if st.kv2.get((namespace, mount, secret)) else 'create'
            if not self.allowed(mount + '/' + secret, capability):
                return self.errors(403, 'permission denied')
            return self.kv2(method, kind, (namespace, mount, secret), parse_qs(url.query))
        if mount in st.kv1_mounts and sub:
            if not self.allowed(mount + '/' + sub, 'update' if method == 'POST' else 'read'):
                return self.errors(403, 'permission denied')
            return self.kv1(method, (namespace, mount, sub))
        return self.errors(404, 'no handler for route "%s"' % rest)

    def allowed(self, target, capability='read'):
        """A pattern is a string (every capability) or ``(pattern, capabilities)``, as a policy's path block."""
        patterns = self.state.tokens.get(self.headers.get('X-Vault-Token') or '')
        for entry in patterns or []:
            pattern, caps = (entry, None) if isinstance(entry, str) else entry
            if fnmatch.fnmatchcase(target, pattern) and (caps is None or capability in caps):
                return True
        return False

    def login(self, mount):
        st, body = self.state, self.body() or {}
        if mount == 'approle' or mount.startswith('approle'):
            known = st.approles.get(body.get('role_id'))
            ok = known is not None and known[0] == body.get('secret_id')
        elif mount == 'jwt' or mount.startswith('jwt'):
            known = st.jwt_roles.get(body.get('role'))
            ok = known is not None and known[0] == body.get('jwt')
        else:
            return self.errors(404, 'no handler for route "auth/%s/login"' % mount)
        if not ok:
            return self.errors(400, 'invalid credentials')
        token = st.issue(known[1])
        return self.answer(
            200, {'auth': {'client_token': token, 'policies': ['default'], 'lease_duration': 3600, 'renewable': True}}
        )

    def admin(self, method, rest):  # noqa: PLR0911 - a router
        """What the tests need to set a Vault up: policies, tokens, the AppRole method and its roles (root only)."""
        st, body = self.state, self.body() or {}
        if st.tokens.get(self.headers.get('X-Vault-Token') or '') != ['*']:
            return self.errors(403, 'permission denied')
        parts = rest.split('/')
        if rest == 'sys/auth' and method == 'GET':
            mounts = {'token/': {'type': 'token'}}
            mounts.update({m + '/': {'type': 'approle'} for m in st.auth_mounts})
            return self.answer(200, dict(mounts, data=mounts))
        if parts[:2] == ['sys', 'auth'] and len(parts) == 3 and method == 'POST':
            st.auth_mounts.add(parts[2])
            return self.answer(204)
        if parts[:2] == ['sys', 'policy'] and len(parts) == 3 and method == 'POST':
            # KV v2 policy paths name secret/data/<path>; the stand-in's patterns name secret/<path>.
            blocks = re.findall(r'path "([^"]+)"\s*\{([^}]*)\}', body.get('policy') or '')
            st.policies[parts[2]] = [
                (p.replace('/data/', '/', 1), frozenset(re.findall(r'"([a-z]+)"', caps))) for p, caps in blocks
            ]
            return self.answer(204)
        if rest == 'auth/token/create' and method == 'POST':
            token = st.issue(self.patterns(body.get('policies')))
            return self.answer(200, {'auth': {'client_token': token, 'policies': body.get('policies')}})
        if len(parts) >= 4 and parts[0] == 'auth' and parts[1] in st.auth_mounts and parts[2] == 'role':
            role = parts[3]
            if len(parts) == 4 and method == 'POST':
                st.approle_roles[role] = {'role_id': 'role-' + role, 'policies': body.get('token_policies') or []}
                return self.answer(204)
            known = st.approle_roles.get(role)
            if known is None:
                return self.errors(404)
            if parts[4:] == ['role-id'] and method == 'GET':
                return self.answer(200, {'data': {'role_id': known['role_id']}})
            if parts[4:] == ['secret-id'] and method == 'POST':
                secret_id = 'sid-%s-%d' % (role, len(st.approles))
                st.approles[known['role_id']] = (secret_id, self.patterns(known['policies']))
                return self.answer(200, {'data': {'secret_id': secret_id}})
        return self.errors(404, 'no handler for route "%s"' % rest)

    def patterns(self, policies):
        if isinstance(policies, str):  # hvac may send a comma-separated list
            policies = [p.strip() for p in policies.split(',') if p.strip()]
        return [p for name in policies or [] for p in self.state.policies.get(name, [])]

    def kv2(self, method, kind, key, query):  # noqa: PLR0911
        st = self.state
        with st.lock:
            versions = st.kv2.get(key)
            if method == 'POST' and kind == 'data':
                body = self.body()
                if not isinstance(body, dict) or not isinstance(body.get('data'), dict):
                    return self.errors(400, 'no data provided')
                cas = (body.get('options') or {}).get('cas')
                if cas is not None and cas != len(versions or []):
                    return self.errors(400, 'check-and-set parameter did not match the current version')
                versions = st.kv2.setdefault(key, [])
                versions.append({'data': body['data'], 'created_time': now(), 'deletion_time': '', 'destroyed': False})
                meta = self.meta(versions, len(versions))
                return self.answer(200, {'data': meta})
        if method != 'GET':
            return self.errors(405, 'unsupported operation')
        if not versions:
            return self.errors(404)
        if kind == 'metadata':
            return self.answer(
                200,
                {
                    'data': {
                        'current_version': len(versions),
                        'oldest_version': 1,
                        'max_versions': 0,
                        'created_time': versions[0]['created_time'],
                        'updated_time': versions[-1]['created_time'],
                        'custom_metadata': None,
                        'cas_required': False,
                        'delete_version_after': '0s',
                        'versions': {str(i + 1): self.meta(versions, i + 1) for i in range(len(versions))},
                    }
                },
            )
        try:
            number = int((query.get('version') or ['0'])[0]) or len(versions)
        except ValueError:
            return self.errors(400, 'invalid version')
        if number < 1 or number > len(versions):
            return self.errors(404)
        return self.answer(
            200,
            {
                'data': {
                    'data': versions[number - 1]['data'],
                    'metadata': dict(self.meta(versions, number), custom_metadata=None),
                }
            },
        )

    @staticmethod
    def meta(versions, number):
        v = versions[number - 1]
        return {
            'version': number,
            'created_time': v['created_time'],
            'deletion_time': v['deletion_time'],
            'destroyed': v['destroyed'],
        }

    def kv1(self, method, key):
        st = self.state
        if method == 'POST':
            body = self.body()
            if not isinstance(body, dict):
                return self.errors(400, 'invalid request')
            with st.lock:
                st.kv1[key] = body
            return self.answer(204)
        if key not in st.kv1:
            return self.errors(404)
        return self.answer(200, {'data': st.kv1[key], 'lease_duration': 2764800, 'renewable': False})

    def control(self, method, path):
        st = self.state
        if path == '/_standin/requests' and method == 'GET':
            return self.answer(200, {'requests': st.requests})
        if path == '/_standin/reset' and method == 'POST':
            with st.lock:
                st.requests[:] = []
            return self.answer(200, {})
        return self.errors(404, 'unknown control endpoint')


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ssl.SSLError)):
            super().handle_error(request, client_address)  # a client that gave up (timeout tests) is no error


class VaultStandin(object):
    """Serves the stand-in on host:port (0 = a free port) in a thread; ``tls`` is (certfile, keyfile, cafile)."""

    def __init__(self, root_token, host='127.0.0.1', port=0, tls=None, require_client_cert=False):
        self.state = StandinState(root_token)
        self.httpd = Server((host, port), Handler)
        self.httpd.state = self.state
        scheme = 'http'
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls[0], tls[1])
            if tls[2]:
                context.load_verify_locations(tls[2])
                context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = 'https'
        self.url = '%s://%s:%d' % (scheme, 'localhost' if tls else host, self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == '__main__':
    # python vault_standin.py PORT TOKEN [LIFETIME]: HTTP on 0.0.0.0 (lab containers may call it), prints its URL,
    # and stops by itself after LIFETIME seconds (default 1800) so that a failed scenario leaves nothing running.
    standin = VaultStandin(sys.argv[2], host='0.0.0.0', port=int(sys.argv[1]))  # noqa: S104
    print(standin.url.replace('0.0.0.0', '127.0.0.1'), flush=True)  # noqa: S104
    threading.Timer(float(sys.argv[3]) if len(sys.argv) > 3 else 1800, standin.httpd.shutdown).start()
    standin.httpd.serve_forever()
