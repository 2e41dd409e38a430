# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SCRAM-SHA-256 verifiers in PostgreSQL's format (RFC 5802 / RFC 7677).

``verifier(password, salt, iterations)`` returns the string PostgreSQL keeps in ``pg_authid.rolpassword``:
``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (base64). pgBouncer accepts the same string in
its auth file. ``seeded_salt`` derives a salt from the password and a seed so that a template stays the same
between runs (no change, no reload) while two users with one password still get different verifiers.
Like PostgreSQL (``src/common/saslprep.c``), the password is prepared with SASLprep (RFC 4013) first, and taken
as given where SASLprep refuses it; ``matches`` checks a password against a stored verifier.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib
import hmac
import re
import stringprep
import unicodedata

DEFAULT_ITERATIONS = 4096
SALT_BYTES = 16
VERIFIER = re.compile(
    r'^SCRAM-SHA-256\$([0-9]{1,10}):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$'
)
_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,  # unassigned code points are refused too
)


class ScramError(ValueError):
    """Bad input for a SCRAM verifier; the message names the argument."""


def _b64(data):
    return base64.b64encode(data).decode('ascii')


def saslprep(password):
    """The password as PostgreSQL hashes it: SASLprep'ed, or as given where SASLprep refuses it.

    Follows ``pg_saslprep``: ASCII is taken as is; otherwise non-ASCII spaces become spaces, characters
    "commonly mapped to nothing" go, and the result is NFKC-normalised. An empty result, a prohibited or
    unassigned character or mixed-direction text (checked, as PostgreSQL does, before normalisation) makes
    PostgreSQL use the password unchanged.
    """
    if all(ord(c) < 128 for c in password):
        return password
    mapped = ''.join(' ' if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
    if not mapped or any(check(c) for c in mapped for check in _PROHIBITED):
        return password
    if any(stringprep.in_table_d1(c) for c in mapped) and (
        any(stringprep.in_table_d2(c) for c in mapped)
        or not (stringprep.in_table_d1(mapped[0]) and stringprep.in_table_d1(mapped[-1]))
    ):
        return password
    return unicodedata.normalize('NFKC', mapped)


def keys(password, salt, iterations):
    """(StoredKey, ServerKey) for a password, a raw salt and an iteration count."""
    salted = hashlib.pbkdf2_hmac('sha256', saslprep(password).encode('utf-8'), salt, iterations)
    client_key = hmac.new(salted, b'Client Key', hashlib.sha256).digest()
    server_key = hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def seeded_salt(password, seed):
    message = ('ierahkwa.platform scram salt:' + seed).encode('utf-8')
    return hmac.new(password.encode('utf-8'), message, hashlib.sha256).digest()[:SALT_BYTES]


def _check_password(password):
    if not isinstance(password, str) or not password:
        raise ScramError('password must be a non-empty string')
    try:
        password.encode('utf-8')
    except UnicodeEncodeError as exc:
        raise ScramError('password must be valid Unicode text: %s' % exc) from exc


def verifier(password, salt=None, salt_seed=None, iterations=DEFAULT_ITERATIONS):
    """The verifier of a password, with an explicit base64 salt or one derived from salt_seed."""
    _check_password(password)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 4096:
        raise ScramError('iterations must be an integer of at least 4096, got %r' % (iterations,))
    if salt is not None and salt_seed is not None:
        raise ScramError('give salt_seed or salt, not both')
    if salt is not None:
        try:
            raw = base64.b64decode(salt, validate=True)
        except (TypeError, ValueError) as exc:
            raise ScramError('salt must be base64: %s' % exc) from exc
        if len(raw) < 8:
            raise ScramError('salt must hold at least 8 bytes')
    elif isinstance(salt_seed, str) and salt_seed:
        raw = seeded_salt(password, salt_seed)
    elif salt_seed is not None:
        raise ScramError('salt_seed must be a non-empty string, got %r' % (salt_seed,))
    else:
        raise ScramError('give salt_seed (e.g. the user name) or salt')
    stored, server = keys(password, raw, iterations)
    return 'SCRAM-SHA-256$%d:%s$%s:%s' % (iterations, _b64(raw), _b64(stored), _b64(server))


def matches(stored_verifier, password):
    """True when password is the one stored_verifier was made from.

    Anything that is not a SCRAM-SHA-256 verifier (None, an md5 hash, a damaged string) does not match; a
    password that is not a non-empty string, or a verifier that is not a string, is an error.
    """
    _check_password(password)
    if stored_verifier is None:
        return False
    if not isinstance(stored_verifier, str):
        raise ScramError('verifier must be a string, got %s' % type(stored_verifier).__name__)
    match = VERIFIER.match(stored_verifier)
    if not match:
        return False
    try:
        salt, stored_key, server_key = (base64.b64decode(match.group(i), validate=True) for i in (2, 3, 4))
    except (binascii.Error, ValueError):
        return False
    iterations = int(match.group(1))
    if iterations < 1 or len(stored_key) != 32 or len(server_key) != 32:
        return False
    stored, server = keys(password, salt, iterations)
    return hmac.compare_digest(stored, stored_key) and hmac.compare_digest(server, server_key)
