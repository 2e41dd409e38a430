# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SCRAM-SHA-256 verifiers in PostgreSQL's format (RFC 5802 / RFC 7677).

``verifier(password, salt, iterations)`` returns the string PostgreSQL keeps in ``pg_authid.rolpassword``:
``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (base64). pgBouncer accepts the same string in
its auth file. ``seeded_salt`` derives a salt from the password and a seed so that a template stays the same
between runs (no change, no reload) while two users with one password still get different verifiers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac

DEFAULT_ITERATIONS = 4096
SALT_BYTES = 16


class ScramError(ValueError):
    """Bad input for a SCRAM verifier; the message names the argument."""


def _b64(data):
    return base64.b64encode(data).decode('ascii')


def keys(password, salt, iterations):
    """(StoredKey, ServerKey) for a password, a raw salt and an iteration count."""
    salted = hashlib.pbkdf2_hmac('sha256', password.encode('utf-8'), salt, iterations)
    client_key = hmac.new(salted, b'Client Key', hashlib.sha256).digest()
    server_key = hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def seeded_salt(password, seed):
    message = ('ierahkwa.platform scram salt:' + seed).encode('utf-8')
    return hmac.new(password.encode('utf-8'), message, hashlib.sha256).digest()[:SALT_BYTES]


def verifier(password, salt=None, salt_seed=None, iterations=DEFAULT_ITERATIONS):
    if not isinstance(password, str) or not password:
        raise ScramError('password must be a non-empty string')
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 4096:
        raise ScramError('iterations must be an integer of at least 4096, got %r' % (iterations,))
    if salt is not None:
        try:
            raw = base64.b64decode(salt, validate=True)
        except (TypeError, ValueError) as exc:
            raise ScramError('salt must be base64: %s' % exc) from exc
        if len(raw) < 8:
            raise ScramError('salt must hold at least 8 bytes')
    elif salt_seed:
        raw = seeded_salt(password, str(salt_seed))
    else:
        raise ScramError('give salt_seed (e.g. the user name) or salt')
    stored, server = keys(password, raw, iterations)
    return 'SCRAM-SHA-256$%d:%s$%s:%s' % (iterations, _b64(raw), _b64(stored), _b64(server))


def matches(stored_verifier, password):
    """True when password is the one stored_verifier was made from."""
    try:
        method, rest = stored_verifier.split('$', 1)
        head, tail = rest.split('$', 1)
        iterations, salt = head.split(':', 1)
        stored_key, server_key = tail.split(':', 1)
    except (AttributeError, ValueError):
        return False
    if method != 'SCRAM-SHA-256':
        return False
    stored, server = keys(password, base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(_b64(stored), stored_key) and hmac.compare_digest(_b64(server), server_key)
