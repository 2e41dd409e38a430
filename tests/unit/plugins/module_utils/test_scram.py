# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac

import pytest

from ansible_collections.ierahkwa.platform.plugins.module_utils import scram

# RFC 7677, section 3: user "user", password "pencil".
RFC_SALT = 'W22ZaJ0SNY7soEsUEjb6gQ=='
RFC_AUTH_MESSAGE = (
    b'n=user,r=rOprNGfwEbeRWgbNEkqO,'
    b'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,'
    b'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0'
)


def parts(v):
    method, rest = v.split('$', 1)
    head, tail = rest.split('$', 1)
    iterations, salt = head.split(':')
    stored, server = tail.split(':')
    return method, int(iterations), salt, base64.b64decode(stored), base64.b64decode(server)


def test_rfc7677_server_signature_and_client_proof():
    method, iterations, salt, stored_key, server_key = parts(scram.verifier('pencil', salt=RFC_SALT))
    assert (method, iterations, salt) == ('SCRAM-SHA-256', 4096, RFC_SALT)
    signature = hmac.new(server_key, RFC_AUTH_MESSAGE, hashlib.sha256).digest()
    assert base64.b64encode(signature).decode() == '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='
    # The server checks a proof with StoredKey only: ClientKey = proof XOR HMAC(StoredKey, AuthMessage).
    proof = base64.b64decode('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=')
    client_signature = hmac.new(stored_key, RFC_AUTH_MESSAGE, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_seeded_salt_is_stable_and_differs_per_seed():
    a = scram.verifier('s3cret-password', salt_seed='alice')
    assert a == scram.verifier('s3cret-password', salt_seed='alice')
    assert a != scram.verifier('s3cret-password', salt_seed='bob')
    assert len(base64.b64decode(parts(a)[2])) == 16


def test_matches():
    v = scram.verifier('s3cret-password', salt_seed='alice')
    assert scram.matches(v, 's3cret-password')
    assert not scram.matches(v, 's3cret-passwore')
    assert not scram.matches('md5abc', 's3cret-password')
    assert not scram.matches(None, 'x')


@pytest.mark.parametrize(
    'kwargs,message',
    [
        ({'password': ''}, 'password must be a non-empty string'),
        ({'password': 'x'}, 'give salt_seed'),
        ({'password': 'x', 'salt': 'not base64!'}, 'salt must be base64'),
        ({'password': 'x', 'salt': 'YWJj'}, 'at least 8 bytes'),
        ({'password': 'x', 'salt_seed': 'u', 'iterations': 10}, 'at least 4096'),
    ],
)
def test_bad_input_names_the_argument(kwargs, message):
    with pytest.raises(scram.ScramError) as exc:
        scram.verifier(**kwargs)
    assert message in str(exc.value)


# Verifiers PostgreSQL 15.18 stored in pg_authid for these passwords (CREATE ROLE ... PASSWORD).
PG_VERIFIERS = [
    (
        'p\u00e4ssw\u00f6rd',
        'SCRAM-SHA-256$4096:1CWewyhsoSVWSzgrGRYMVg==$FFt8IZSHlvE1Fz60oaJ7RGAuDYH6ZjuV8ZYvo2ObHkY='
        ':L16DG7St70CaIN2YXp750JOCBzHrL/JJ5BywL+eDbx8=',
    ),
    (  # ROMAN NUMERAL NINE: SASLprep (NFKC) makes it "IX"
        '\u2168',
        'SCRAM-SHA-256$4096:w+MfF9KT81C+HJiRCNhtiw==$Gw+yMwuHqpRQze2H3lH+Gg2D6dYfa0qkf4SCX9UbTXE='
        ':ZmdFPn5pfhNzVpKTUr3q37RhSusSyWaWL5wzzuuYtuU=',
    ),
]


@pytest.mark.parametrize('password,stored', PG_VERIFIERS)
def test_same_verifier_as_postgresql(password, stored):
    assert scram.verifier(password, salt=parts(stored)[2]) == stored
    assert scram.matches(stored, password)


def test_saslprep_equivalent_passwords_match():
    assert scram.matches(PG_VERIFIERS[1][1], 'IX')
    assert not scram.matches(PG_VERIFIERS[1][1], 'Ix')


@pytest.mark.parametrize(
    'password,prepared',
    [
        ('pencil', 'pencil'),
        ('ab\x07', 'ab\x07'),  # ASCII is taken as is
        ('I\u00adX', 'IX'),  # soft hyphen: mapped to nothing
        ('a\u00a0b', 'a b'),  # no-break space: a space
        ('\ufb01x', 'fix'),  # ligature: NFKC
        ('A\u030a', '\u00c5'),  # combining ring: NFKC composes
        ('ab\x07\u00fc', 'ab\x07\u00fc'),  # a control character: SASLprep refuses, the password is used as given
        ('\u0627\u0031', '\u0627\u0031'),  # right-to-left text that does not end right-to-left: refused too
        ('\ufb01\u0221', '\ufb01\u0221'),  # a code point unassigned in Unicode 3.2: refused (checked on PostgreSQL)
    ],
)
def test_saslprep_like_postgresql(password, prepared):
    assert scram.saslprep(password) == prepared


def test_both_keys_must_match():
    method, iterations, salt, stored_key, server_key = parts(scram.verifier('pencil', salt=RFC_SALT))
    other = parts(scram.verifier('pencil2', salt=RFC_SALT))
    for stored, server in ((other[3], server_key), (stored_key, other[4])):
        encoded = base64.b64encode(stored).decode(), base64.b64encode(server).decode()
        v = '%s$%d:%s$%s:%s' % ((method, iterations, salt) + encoded)
        assert scram.matches(v, 'pencil') is False


@pytest.mark.parametrize(
    'damaged',
    [
        '',
        'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==',
        'SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$' + 'A' * 43 + '=:' + 'A' * 43 + '=',
        'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA',
        'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$' + 'A' * 43 + '=:' + 'A' * 43 + '=',
        'SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$' + 'A' * 43 + '=:' + 'A' * 43 + '=',
    ],
)
def test_damaged_verifiers_do_not_match(damaged):
    assert scram.matches(damaged, 'pencil') is False


@pytest.mark.parametrize(
    'call,message',
    [
        (lambda: scram.matches(42, 'pencil'), 'verifier must be a string, got int'),
        (lambda: scram.matches('SCRAM-SHA-256$x', ''), 'password must be a non-empty string'),
        (lambda: scram.verifier(1234, salt_seed='u'), 'password must be a non-empty string'),
        (lambda: scram.verifier('x', salt=RFC_SALT, salt_seed='u'), 'give salt_seed or salt, not both'),
        (lambda: scram.verifier('x', salt_seed=5), 'salt_seed must be a non-empty string, got 5'),
        (lambda: scram.verifier('\ud800', salt_seed='u'), 'password must be valid Unicode text'),
    ],
)
def test_more_bad_input_names_the_argument(call, message):
    with pytest.raises(scram.ScramError) as exc:
        call()
    assert message in str(exc.value)
