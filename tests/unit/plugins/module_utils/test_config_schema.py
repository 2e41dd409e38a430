# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ierahkwa.platform.plugins.module_utils import config_schema as cs

SCHEMA = {
    'keys': {
        'PORT': {'type': 'port', 'required': True},
        'DATABASE_URL': {'type': 'url', 'required': True, 'secret': True},
        'LOG_LEVEL': {'choices': ['debug', 'info', 'warn', 'error']},
        'REQUEST_TIMEOUT': {'type': 'duration'},
        'MAX_BODY': {'type': 'size'},
        'ADMIN_EMAIL': {'type': 'email', 'required': True},
        'POOL_SIZE': {'type': 'int', 'min': 1, 'max': 500},
        'DB_MAX_CONNECTIONS': {'type': 'int'},
        'DEBUG': {'type': 'bool'},
        'RATIO': {'type': 'float'},
        'NAME': {'pattern': '^[a-z][a-z0-9-]*$', 'max': 20},
    },
    'rules': [
        {
            'that': 'to_number(POOL_SIZE) < to_number(DB_MAX_CONNECTIONS)',
            'keys': ['POOL_SIZE', 'DB_MAX_CONNECTIONS'],
            'message': 'the pool must stay below the connection limit',
        }
    ],
}
GOOD = {
    'PORT': '8080',
    'DATABASE_URL': 'postgres://app:pw-in-url@db1:5432/app',
    'LOG_LEVEL': 'info',
    'REQUEST_TIMEOUT': '1m30s',
    'MAX_BODY': '10MB',
    'ADMIN_EMAIL': 'ops@example.org',
    'POOL_SIZE': '20',
    'DB_MAX_CONNECTIONS': '100',
    'DEBUG': 'false',
    'RATIO': '0.5',
    'NAME': 'api',
}


def check(config, schema=None):
    return cs.validate(config, cs.load_schema(schema or SCHEMA), '/etc/app.env')


def test_good_config_has_no_violation():
    assert check(GOOD) == []


def test_every_violation_at_once_with_file_key_reason():
    bad = dict(
        GOOD,
        PORT='70000',
        LOG_LEVEL='loud',
        REQUEST_TIMEOUT='soon',
        MAX_BODY='big',
        ADMIN_EMAIL='ops@',
        POOL_SIZE='200',
        DEBUG='maybe',
        RATIO='x',
        NAME='Bad Name',
        DATABASE_URL='db1:5432',
    )
    violations = check(bad)
    assert [(v['file'], v['key']) for v in violations] == [
        ('/etc/app.env', k)
        for k in (
            'PORT',
            'DATABASE_URL',
            'LOG_LEVEL',
            'REQUEST_TIMEOUT',
            'MAX_BODY',
            'ADMIN_EMAIL',
            'DEBUG',
            'RATIO',
            'NAME',
            'POOL_SIZE, DB_MAX_CONNECTIONS',
        )
    ]
    reasons = {v['key']: v['reason'] for v in violations}
    assert reasons['PORT'] == 'must be a port number (1-65535)'
    assert reasons['LOG_LEVEL'] == 'must be one of debug, info, warn, error'
    assert reasons['POOL_SIZE, DB_MAX_CONNECTIONS'] == 'the pool must stay below the connection limit'
    message = cs.summary(violations)
    assert message.startswith('10 configuration violations: /etc/app.env: PORT must be a port number')
    for value in bad.values():
        if len(value) > 3:
            assert value not in ' '.join(v['reason'] for v in violations)


def test_required_missing_and_empty():
    config = dict(GOOD, ADMIN_EMAIL='')
    del config['PORT']
    assert check(config) == [
        {'file': '/etc/app.env', 'key': 'PORT', 'reason': 'is required but missing'},
        {'file': '/etc/app.env', 'key': 'ADMIN_EMAIL', 'reason': 'is required but empty'},
    ]


def test_min_max_numbers_and_lengths():
    reasons = [v['reason'] for v in check(dict(GOOD, POOL_SIZE='0', NAME='a' * 21))]
    assert 'must be at least 1' in reasons and 'must be at most 20 long' in reasons


@pytest.mark.parametrize(
    'kind, good, bad',
    [
        ('duration', ['90', '30s', '5m', '1h30m', '250ms', '7d', '1.5h'], ['s', '5 m', '-1s', '1y']),
        ('size', ['512', '64k', '10MB', '1GiB', '2 GB', '1.5T'], ['big', '-1k', '10 parsecs']),
        (
            'url',
            ['https://a.example', 'postgres://u@h:5432/db', 'redis://127.0.0.1:6379/0'],
            ['a.example', 'http://', 'https:// x'],
        ),
        ('email', ['ops@example.org', 'a.b+c@sub.example.co'], ['ops', 'ops@', '@example.org', 'ops@example']),
        ('port', ['1', '65535', 8080], ['0', '65536', 'http', '-1', True]),
        ('bool', ['true', 'No', 'on', '0', True], ['maybe', '2']),
        ('int', ['3', '-3', 7], ['3.5', 'three']),
        ('list', [['a']], ['a']),
        ('dict', [{'a': 1}], [['a']]),
    ],
)
def test_formats(kind, good, bad):
    schema = {'keys': {'K': {'type': kind}}, 'secrets': 'ignore'}
    for value in good:
        assert check({'K': value}, schema) == [], value
    for value in bad:
        assert [v['key'] for v in check({'K': value}, schema)] == ['K'], value


def test_secret_looking_values_in_plain_config():
    config = {
        'DB_PASSWORD': 'hunter2-plain',
        'PASSWORD_FILE': '/run/secrets/db',
        'API_TOKEN': '${API_TOKEN}',
        'UPSTREAM': 'https://svc:s3cr3t-pw@api.example',
        'SIGNING': '-----BEGIN RSA PRIVATE KEY-----\nMIIE',
        'CACHE_URL': 'redis://cache:6379',
        'LOG': 'info',
    }
    violations = check(config, {'keys': {}})
    assert [v['key'] for v in violations] == ['DB_PASSWORD', 'SIGNING', 'UPSTREAM']
    assert 'a password inside a URL' in violations[2]['reason']
    assert all('hunter2' not in v['reason'] and 's3cr3t' not in v['reason'] for v in violations)
    assert (
        check(
            config,
            {'keys': {'DB_PASSWORD': {'secret': True}, 'SIGNING': {'secret': True}, 'UPSTREAM': {'secret': True}}},
        )
        == []
    )
    assert check(config, {'keys': {}, 'secrets': 'ignore'}) == []


def test_nested_json_keys_and_unknown_keys():
    config = {'Kestrel': {'Endpoints': {'Http': {'Url': 'http://0.0.0.0:5000'}}}, 'Extra': {'A': 1}}
    schema = {'keys': {'Kestrel.Endpoints.Http.Url': {'type': 'url', 'required': True}}, 'additional_keys': False}
    assert check(config, schema) == [
        {'file': '/etc/app.env', 'key': 'Extra.A', 'reason': 'is not a key the schema knows'}
    ]


def test_top_level_not_a_mapping():
    assert check(['a'], {'keys': {}}) == [
        {'file': '/etc/app.env', 'key': '(top)', 'reason': 'the configuration must be a mapping of keys, got list'}
    ]


@pytest.mark.parametrize(
    'schema, message',
    [
        (None, 'the schema must be a mapping'),
        ({'keys': []}, 'schema "keys" must be a mapping'),
        ({'key': {}}, 'unknown schema entries: key'),
        ({'keys': {'A': {'type': 'integer'}}}, "schema key A: unknown type 'integer'"),
        ({'keys': {'A': {'typ': 'int'}}}, 'schema key A: unknown rule entries typ'),
        ({'keys': {'A': 'int'}}, 'schema key A: the rule must be a mapping'),
        ({'keys': {'A': {'pattern': '('}}}, 'schema key A: pattern is not a regular expression'),
        ({'keys': {'A': {'min': '1'}}}, 'schema key A: min must be a number'),
        ({'keys': {'A': {'required': 'yes'}}}, 'schema key A: required must be true or false'),
        ({'keys': {'A': {'choices': 'a,b'}}}, 'schema key A: choices must be a list'),
        ({'keys': {1: {}}}, 'schema keys must be non-empty strings'),
        ({'rules': {}}, 'schema "rules" must be a list'),
        ({'rules': [{'assert': 'a'}]}, 'schema rule 1: a rule is a mapping with "that"'),
        ({'rules': [{'that': 'a <'}]}, 'schema rule 1: "that" is not a JMESPath expression'),
        ({'rules': [{'that': 'a', 'keys': 'a'}]}, 'schema rule 1: keys must be a list'),
        ({'additional_keys': 'no'}, 'schema "additional_keys" must be true or false'),
        ({'secrets': 'warn'}, 'schema "secrets" must be flag or ignore'),
    ],
)
def test_invalid_schema_is_named(schema, message):
    with pytest.raises(cs.SchemaError) as exc:
        cs.load_schema(schema)
    assert message in str(exc.value)


def test_parse_env():
    text = 'export A=1\n# comment\n\nB="two words"\nC=\'x\'\nD=val # note\nnot a line\nA=2\nE=\n'
    data, violations = cs.parse_env(text, 'app.env')
    assert data == {'A': '2', 'B': 'two words', 'C': 'x', 'D': 'val', 'E': ''}
    assert violations == [
        {'file': 'app.env', 'key': 'line 7', 'reason': 'not a KEY=VALUE line'},
        {'file': 'app.env', 'key': 'A', 'reason': 'set twice (line 8)'},
    ]


# Property-based: the validator never crashes, and every violation names a key of the config or of the schema.
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
keys = st.sampled_from(sorted(SCHEMA['keys'])) | st.text(min_size=1, max_size=12)
configs = st.dictionaries(keys, values, max_size=12)


@settings(max_examples=300, deadline=None)
@given(configs)
def test_validator_never_crashes_and_names_the_key(config):
    schema = cs.load_schema(SCHEMA)
    violations = cs.validate(config, schema, 'f')
    known = set(cs.flatten(config)) | set(SCHEMA['keys']) | {'POOL_SIZE, DB_MAX_CONNECTIONS'}
    for v in violations:
        assert v['file'] == 'f' and v['key'] in known and v['reason']


rule_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.lists(st.integers()))
rules = st.dictionaries(st.sampled_from(sorted(cs.RULE_KEYS) + ['bogus']), rule_values, max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), rules | st.text(max_size=4), max_size=3), configs)
def test_any_schema_is_accepted_or_refused_clearly(schema_keys, config):
    try:
        schema = cs.load_schema({'keys': schema_keys})
    except cs.SchemaError as exc:
        assert str(exc)
        return
    for v in cs.validate(config, schema, 'f'):
        assert v['key'] in set(cs.flatten(config)) | set(schema_keys)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_env_parser_never_crashes(text):
    data, violations = cs.parse_env(text, 'x.env')
    assert all(k.replace('_', 'a').isalnum() for k in data)
    assert all(v['key'].startswith('line ') or v['key'] in data for v in violations)
