# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HashiCorp Vault KV reads through hvac: the logic of the vault_kv lookup.

``VaultSettings.from_options`` checks the connection and authentication options, ``VaultReader`` logs in lazily
(only when a read is not in the run cache), reads KV v2 or v1 secrets with retries and exponential backoff on
connection errors and 5xx answers (sealed, standby, server errors), never on 4xx, and turns every failure into a
``VaultKVError`` that names the path and the cause and never holds a token or a secret.

``RunCache`` shares what was read between the processes of one ``ansible-playbook`` run: Ansible templates a
lookup in its fork workers, so a dictionary in one worker is not seen by the others. The cache is a directory
(mode 0700, on ``/dev/shm`` when it exists) named after the run's main process; one lock file per key
(``fcntl.flock``) lets the first worker read from Vault while the others wait and then take its answer. A later
run removes the directories of runs whose main process is gone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None

AUTH_METHODS = ('token', 'approle', 'jwt')
KV_VERSIONS = (1, 2)
PATH_PATTERN = re.compile(r'^[A-Za-z0-9_.@=+,-]+(/[A-Za-z0-9_.@=+,-]+)*$')
MOUNT_PATTERN = re.compile(r'^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$')
CACHE_PREFIX = 'ierahkwa-vault-kv-'

# HTTP status of each hvac exception class, and what the status means for an operator.
STATUS_OF = {
    'InvalidRequest': 400,
    'Unauthorized': 401,
    'Forbidden': 403,
    'InvalidPath': 404,
    'UnsupportedOperation': 405,
    'PreconditionFailed': 412,
    'RateLimitExceeded': 429,
    'InternalServerError': 500,
    'VaultNotInitialized': 501,
    'BadGateway': 502,
    'VaultDown': 503,
}
CAUSES = {
    400: 'invalid request',
    401: 'not authenticated (missing or expired token)',
    403: 'permission denied',
    404: 'not found',
    405: 'unsupported operation',
    412: 'precondition failed',
    429: 'rate limited',
    500: 'server error',
    501: 'Vault is not initialized',
    502: 'bad gateway',
}


class VaultKVError(Exception):
    """A Vault read or login failed; the message names the path and the cause, never a token or a secret."""

    def __init__(self, message, status=None, retryable=False):
        super(VaultKVError, self).__init__(message)
        self.status = status
        self.retryable = retryable


class MissingLibraryError(VaultKVError):
    """hvac (or requests) cannot be imported."""


def import_hvac():
    """hvac and requests, imported only when a read needs them."""
    try:
        import hvac  # noqa: PLC0415 - imported when needed, so that a missing hvac is a clear error
        import requests  # noqa: PLC0415
    except ImportError as exc:
        raise MissingLibraryError(
            'the hvac Python library is required on the controller for ierahkwa.platform.vault_kv '
            '(pip install hvac): %s' % exc
        ) from exc
    return hvac, requests


def _sha(*parts):
    return hashlib.sha256('\0'.join('' if p is None else str(p) for p in parts).encode('utf-8')).hexdigest()


def check_path(path, what='secret path'):
    """A KV path: segments of letters, digits and ``_.@=+,-`` separated by single slashes, no ``..``."""
    if not isinstance(path, str):
        raise VaultKVError('the %s must be a string, got %s' % (what, type(path).__name__))
    text = path.strip('/')
    pattern = MOUNT_PATTERN if what == 'mount point' else PATH_PATTERN
    if not text or not pattern.match(text) or any(s in ('.', '..') for s in text.split('/')):
        raise VaultKVError(
            'malformed %s %r: use segments of letters, digits and _.@=+,- separated by "/"' % (what, path)
        )
    return text


def _int_option(options, name, minimum):
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise VaultKVError('option %s must be an integer, got a boolean' % name)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise VaultKVError('option %s must be an integer, got %r' % (name, value)) from None
    if number < minimum:
        raise VaultKVError('option %s must be %d or more, got %d' % (name, minimum, number))
    return number


class VaultSettings(object):
    """The checked connection, authentication and read options (the names of the doc fragment)."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)

    @classmethod
    def from_options(cls, options):  # noqa: PLR0912
        """``options`` is a mapping of option name -> value (None when unset); raises VaultKVError."""
        o = dict(options)
        url = o.get('url')
        if not url or not isinstance(url, str) or not re.match(r'^https?://[^/\s]+', url):
            raise VaultKVError('option url (VAULT_ADDR) must be an http:// or https:// address, got %r' % (url,))
        method = o.get('auth_method') or 'token'
        if method not in AUTH_METHODS:
            raise VaultKVError('option auth_method must be one of %s, got %r' % (', '.join(AUTH_METHODS), method))
        token = o.get('token')
        if method == 'token' and not token:
            token_file = o.get('token_file')
            if token_file:
                token_file = os.path.expanduser(token_file)
                try:
                    with open(token_file) as handle:
                        token = handle.read().strip()
                except OSError:
                    token = None
            if not token:
                raise VaultKVError(
                    'no Vault token: set the token option, VAULT_TOKEN or the token file %s, '
                    'or use auth_method approle or jwt' % (o.get('token_file') or '~/.vault-token')
                )
        if method == 'approle' and not o.get('role_id'):
            raise VaultKVError('auth_method approle needs role_id (VAULT_ROLE_ID) and usually secret_id')
        if method == 'jwt' and not (o.get('jwt') and o.get('role_id')):
            raise VaultKVError('auth_method jwt needs jwt (VAULT_JWT) and role_id, the name of the Vault JWT role')
        kv_version = _int_option(o, 'kv_version', 1) or 2
        if kv_version not in KV_VERSIONS:
            raise VaultKVError('option kv_version must be 1 or 2, got %r' % kv_version)
        version = _int_option(o, 'version', 1)
        if version is not None and kv_version != 2:
            raise VaultKVError('option version (a pinned version) needs kv_version 2')
        if o.get('metadata') and kv_version != 2:
            raise VaultKVError('option metadata needs kv_version 2')
        field = o.get('field')
        if field is not None and (not isinstance(field, str) or not field):
            raise VaultKVError('option field must be a non-empty string')
        client_cert, client_key = o.get('client_cert'), o.get('client_key')
        if client_key and not client_cert:
            raise VaultKVError('option client_key needs client_cert')
        validate = o.get('validate_certs')
        validate = True if validate is None else bool(validate)
        verify = (o.get('ca_cert') or True) if validate else False
        timeout = _int_option(o, 'timeout', 1) or 30
        retries = _int_option(o, 'retries', 0)
        retry_delay = o.get('retry_delay')
        try:
            retry_delay = 0.5 if retry_delay is None else float(retry_delay)
        except (TypeError, ValueError):
            raise VaultKVError('option retry_delay must be a number of seconds, got %r' % (retry_delay,)) from None
        return cls(
            url=url.rstrip('/'),
            namespace=(o.get('namespace') or None),
            auth_method=method,
            auth_mount_point=check_path(o.get('auth_mount_point') or method, 'mount point'),
            token=token,
            role_id=o.get('role_id'),
            secret_id=o.get('secret_id'),
            jwt=o.get('jwt'),
            mount_point=check_path(o.get('engine_mount_point') or 'secret', 'mount point'),
            kv_version=kv_version,
            version=version,
            metadata=bool(o.get('metadata')),
            field=field,
            verify=verify,
            cert=(client_cert, client_key) if client_key else client_cert,
            timeout=timeout,
            retries=3 if retries is None else retries,
            retry_delay=retry_delay,
            cache=True if o.get('cache') is None else bool(o.get('cache')),
        )

    def identity(self):
        """Who reads: the auth method, its mount and a hash of the credentials (never the credentials)."""
        if self.auth_method == 'token':
            return 'token:' + _sha(self.token)
        return '%s:%s:%s' % (self.auth_method, self.auth_mount_point, _sha(self.role_id, self.secret_id, self.jwt))

    def where(self, path):
        """The secret as the messages name it: mount, path and version, never a credential."""
        text = '%s/%s' % (self.mount_point, path)
        if self.version:
            text += ' (version %d)' % self.version
        if self.namespace:
            text = 'namespace %s, %s' % (self.namespace, text)
        return text


def translate(exc, settings, what, requests_module=None):
    """A VaultKVError for an hvac or requests exception: names what failed and why, never a credential."""
    name = type(exc).__name__
    status = STATUS_OF.get(name)
    if status is None and name == 'UnexpectedError':
        status = 0
    if status is not None:
        text = ' '.join(str(e) for e in (getattr(exc, 'errors', None) or []))
        if status == 503:
            cause = (
                'Vault is sealed'
                if 'sealed' in text.lower()
                else ('Vault is in standby' if 'standby' in text.lower() else 'Vault is unavailable (HTTP 503)')
            )
        elif status == 0:
            cause = 'unexpected answer from Vault'
        else:
            cause = '%s (HTTP %d)' % (CAUSES.get(status, 'error'), status)
        return VaultKVError('%s: %s' % (what, cause), status=status, retryable=(status >= 500 or status == 0))
    if requests_module is not None and isinstance(exc, requests_module.exceptions.SSLError):
        return VaultKVError(
            '%s: TLS error talking to %s (check ca_cert / validate_certs / client_cert): %s'
            % (what, settings.url, type(exc).__name__),
            retryable=False,
        )
    if requests_module is not None and isinstance(
        exc, (requests_module.exceptions.ConnectionError, requests_module.exceptions.Timeout)
    ):
        return VaultKVError(
            '%s: Vault at %s is unreachable (%s)' % (what, settings.url, type(exc).__name__), retryable=True
        )
    return VaultKVError('%s: %s' % (what, type(exc).__name__))


class VaultReader(object):
    """Reads KV secrets with one lazily created, lazily authenticated hvac client."""

    def __init__(self, settings, sleep=time.sleep):
        self.settings = settings
        self.sleep = sleep
        self._client = None
        self.attempts = 0

    def _retrying(self, what, call):
        s = self.settings
        hvac, requests = import_hvac()
        delay = s.retry_delay
        for attempt in range(s.retries + 1):
            self.attempts += 1
            try:
                return call()
            except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as exc:
                error = translate(exc, s, what, requests)
            if not error.retryable or attempt == s.retries:
                if error.retryable and s.retries:
                    raise VaultKVError('%s (after %d attempts)' % (error, attempt + 1), error.status)
                raise error
            self.sleep(delay)
            delay *= 2
        raise AssertionError('unreachable')  # pragma: no cover

    def client(self):
        if self._client is not None:
            return self._client
        s = self.settings
        hvac, _requests = import_hvac()
        client = hvac.Client(url=s.url, namespace=s.namespace, verify=s.verify, cert=s.cert, timeout=s.timeout)
        if s.auth_method == 'token':
            client.token = s.token
        elif s.auth_method == 'approle':
            self._retrying(
                'AppRole login at auth/%s' % s.auth_mount_point,
                lambda: client.auth.approle.login(
                    role_id=s.role_id, secret_id=s.secret_id, mount_point=s.auth_mount_point
                ),
            )
        else:
            self._retrying(
                'JWT login at auth/%s' % s.auth_mount_point,
                lambda: client.auth.jwt.jwt_login(role=s.role_id, jwt=s.jwt, path=s.auth_mount_point),
            )
        self._client = client
        return client

    def read(self, path):
        """The raw answer for one path: ``{'data': {...}, 'metadata': {...}}`` (KV v1: metadata is empty)."""
        s = self.settings
        path = check_path(path)
        what = 'cannot read %s' % s.where(path)
        client = self.client()
        if s.metadata:
            answer = self._retrying(
                what, lambda: client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=s.mount_point)
            )
            return {'data': (answer or {}).get('data') or {}, 'metadata': {}}
        if s.kv_version == 2:
            answer = self._retrying(
                what,
                lambda: client.secrets.kv.v2.read_secret_version(
                    path=path, version=s.version, mount_point=s.mount_point, raise_on_deleted_version=True
                ),
            )
            body = (answer or {}).get('data') or {}
            return {'data': body.get('data') or {}, 'metadata': body.get('metadata') or {}}
        answer = self._retrying(what, lambda: client.secrets.kv.v1.read_secret(path=path, mount_point=s.mount_point))
        return {'data': (answer or {}).get('data') or {}, 'metadata': {}}


class VaultWriter(VaultReader):
    """Writes KV v2 versions (the vault_kv_write module): reads the current version first, so that an unchanged
    secret is not written again (idempotent) and so that ``cas`` can refuse a write when someone else wrote
    in between."""

    def current(self, path):
        """``(version, data)`` of the newest version of ``path``, or ``(0, None)`` when the secret does not exist;
        raises VaultKVError for anything else (permission denied, sealed...)."""
        s = self.settings
        path = check_path(path)
        if s.kv_version != 2:
            raise VaultKVError('writing needs kv_version 2 (a new version per write)')
        client = self.client()
        try:
            answer = self._retrying(
                'cannot read %s' % s.where(path),
                lambda: client.secrets.kv.v2.read_secret_version(
                    path=path, mount_point=s.mount_point, raise_on_deleted_version=True
                ),
            )
        except VaultKVError as exc:
            if exc.status == 404:
                return 0, None
            raise
        body = (answer or {}).get('data') or {}
        return int((body.get('metadata') or {}).get('version') or 0), body.get('data') or {}

    def write(self, path, data, cas=None):
        """Writes ``data`` as a new version of ``path``; returns the new version number. With ``cas`` the write
        succeeds only if the current version is ``cas`` (0: the secret must not exist yet)."""
        s = self.settings
        path = check_path(path)
        if not isinstance(data, dict) or not data:
            raise VaultKVError('cannot write %s: data must be a non-empty mapping' % s.where(path))
        client = self.client()
        what = 'cannot write %s' % s.where(path)
        try:
            answer = self._retrying(
                what,
                lambda: client.secrets.kv.v2.create_or_update_secret(
                    path=path, secret=data, cas=cas, mount_point=s.mount_point
                ),
            )
        except VaultKVError as exc:
            if exc.status == 400 and cas is not None:
                raise VaultKVError(
                    '%s: the current version is not %d (check-and-set refused the write; someone else wrote it?)'
                    % (what, cas),
                    status=400,
                ) from None
            raise
        return int(((answer or {}).get('data') or {}).get('version') or 0)


def write_secret(settings, path, data, *, cas=None, only_if_different=True, check_mode=False, writer=None):
    """The vault_kv_write module's logic: ``{changed, version, previous_version}``; never returns a value.

    ``only_if_different``: no new version when the newest one already holds exactly ``data`` (re-runs are
    idempotent). ``check_mode``: reads, compares and writes nothing.
    """
    writer = writer or VaultWriter(settings)
    previous, current = writer.current(path)
    if cas is not None and cas != previous:
        raise VaultKVError(
            'cannot write %s: the current version is %d, not %d (cas)'
            % (settings.where(check_path(path)), previous, cas)
        )
    if only_if_different and current == data:
        return {'changed': False, 'version': previous, 'previous_version': previous}
    if check_mode:
        return {'changed': True, 'version': previous + 1, 'previous_version': previous}
    version = writer.write(path, data, cas=cas)
    return {'changed': True, 'version': version, 'previous_version': previous}


def select(settings, path, answer):
    """What the lookup returns for one path: the secret's data, its metadata, or one field."""
    data = answer['data']
    if settings.field is None:
        return data
    if settings.field not in data:
        raise VaultKVError('%s has no field %r (it has %d fields)' % (settings.where(path), settings.field, len(data)))
    return data[settings.field]


def cache_key(settings, path):
    s = settings
    return _sha(s.url, s.namespace, s.mount_point, s.kv_version, check_path(path), s.version, s.metadata, s.identity())


# The watcher: waits while the run's process (same PID and start time) lives, then removes the cache.
_REAPER = """
import shutil, sys, time
path, pid, start = sys.argv[1], sys.argv[2], sys.argv[3]
def alive():
    try:
        with open('/proc/%s/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[19] == start
    except (OSError, IndexError):
        return False
while alive():
    time.sleep(0.5)
shutil.rmtree(path, ignore_errors=True)
"""


def _process_start(pid):
    """The start time of a process (Linux /proc), so that a reused PID is not taken for the same run."""
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def run_id():
    """The ``ansible-playbook`` process of this run: the parent of a fork worker, else this process."""
    parent = multiprocessing.parent_process()
    pid = os.getppid() if parent is not None else os.getpid()
    return pid, _process_start(pid)


class RunCache(object):
    """A cache of answers shared by the fork workers of one run, one read per key (see the module docstring)."""

    def __init__(self, base=None, run=None):
        # Memory, not disk, when there is a tmpfs; the directory is checked to be private (0700, this user).
        shm = '/dev/shm'  # noqa: S108
        self.base = base or (shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir())
        self.pid, start = run or run_id()
        self.dir = os.path.join(self.base, '%s%d-%s-%d' % (CACHE_PREFIX, os.getuid(), self.pid, int(start or 0)))

    def _prepare(self):
        try:
            os.mkdir(self.dir, 0o700)
            self.sweep()
            self.reap_after_run()
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        info = os.lstat(self.dir)
        if (
            info.st_uid != os.getuid()
            or info.st_mode & 0o077
            or not os.path.isdir(self.dir)
            or os.path.islink(self.dir)
        ):
            raise VaultKVError('the run cache %s is not a private directory of this user; remove it' % self.dir)

    def sweep(self):
        """Removes the cache directories of runs whose main process is gone."""
        mine = '%s%d-' % (CACHE_PREFIX, os.getuid())
        for name in os.listdir(self.base):
            if not name.startswith(mine) or os.path.join(self.base, name) == self.dir:
                continue
            parts = name[len(mine) :].split('-')
            try:
                pid, start = int(parts[0]), parts[1]
            except (ValueError, IndexError):
                continue
            alive = os.path.exists('/proc/%d' % pid) and str(_process_start(pid) or 0) == start
            if not alive:
                shutil.rmtree(os.path.join(self.base, name), ignore_errors=True)

    def reap_after_run(self):
        """Starts a detached watcher that removes this run's cache once the run's main process is gone, so no
        secret outlives the run in the cache (the sweep is the fallback if the watcher is killed)."""
        start = str(_process_start(self.pid) or 0)
        subprocess.Popen(  # noqa: S603
            [sys.executable, '-c', _REAPER, self.dir, str(self.pid), start],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )

    def get_or_read(self, key, read):
        """The cached answer for ``key``, or ``read()``'s, stored for the other workers; one reader at a time."""
        self._prepare()
        entry = os.path.join(self.dir, key + '.json')
        lock_fd = os.open(os.path.join(self.dir, key + '.lock'), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                with open(entry) as handle:
                    return json.load(handle)
            except (OSError, ValueError):
                pass
            answer = read()
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix='.tmp-')
            with os.fdopen(fd, 'w') as handle:
                json.dump(answer, handle)
            os.rename(tmp, entry)
            return answer
        finally:
            os.close(lock_fd)


def read_all(settings, paths, reader=None, cache=None):
    """The lookup's values for ``paths`` (one read per path and run when the cache is on)."""
    reader = reader or VaultReader(settings)
    if settings.cache and cache is None:
        cache = RunCache()
    values = []
    for path in paths:
        clean = check_path(path)
        if settings.cache:
            answer = cache.get_or_read(cache_key(settings, clean), lambda p=clean: reader.read(p))
        else:
            answer = reader.read(clean)
        values.append(select(settings, clean, answer))
    return values
