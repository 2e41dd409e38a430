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
