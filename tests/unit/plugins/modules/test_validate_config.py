# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from .module_runner import run_module

SCHEMA = {
    'keys': {
        'PORT': {'type': 'port', 'required': True},
        'ADMIN_EMAIL': {'type': 'email', 'required': True},
        'DB_PASSWORD': {'secret': True},
    },
}


def test_env_file_every_violation_and_no_value(tmp_path):
    env = tmp_path / 'api.env'
    env.write_text('PORT=http\nAPI_TOKEN=plain-Token-Value-1\nDB_PASSWORD=allowed-Secret\nbroken line\n')
    r = run_module(tmp_path, 'validate_config', {'path': str(env), 'schema': SCHEMA})
    assert r['failed'] and r['rc'] == 1
    assert [(v['file'], v['key']) for v in r['violations']] == [
        (str(env), 'line 4'),
        (str(env), 'PORT'),
        (str(env), 'ADMIN_EMAIL'),
        (str(env), 'API_TOKEN'),
    ]
    assert r['msg'].startswith('4 configuration violations: %s: line 4 not a KEY=VALUE line' % env)
    assert 'plain-Token-Value-1' not in json.dumps(r) and 'allowed-Secret' not in json.dumps(r)


def test_json_nested_and_check_mode(tmp_path):
    settings = tmp_path / 'appsettings.Production.json'
    settings.write_text(
        json.dumps({'Kestrel': {'Url': 'http://0.0.0.0:5000'}, 'PORT': 8080, 'ADMIN_EMAIL': 'ops@example.org'})
    )
    schema = dict(SCHEMA, keys=dict(SCHEMA['keys'], **{'Kestrel.Url': {'type': 'url', 'required': True}}))
    r = run_module(tmp_path, 'validate_config', {'path': str(settings), 'schema': schema}, check_mode=True)
    assert r['rc'] == 0 and r['violations'] == [] and r['checked_keys'] == 3 and not r['changed']


def test_yaml_and_report_only(tmp_path):
    f = tmp_path / 'app.yml'
    f.write_text('PORT: 0\nADMIN_EMAIL: ops@example.org\n')
    r = run_module(tmp_path, 'validate_config', {'path': str(f), 'schema': SCHEMA, 'fail_on_violations': False})
    assert r['rc'] == 0 and [v['key'] for v in r['violations']] == ['PORT']


def test_unparsable_files(tmp_path):
    f = tmp_path / 'bad.json'
    f.write_text('{"PORT": ')
    r = run_module(tmp_path, 'validate_config', {'path': str(f), 'schema': {'keys': {}}})
    assert r['violations'][0]['key'] == '(file)' and 'not valid JSON' in r['violations'][0]['reason']
    f = tmp_path / 'bad.yaml'
    f.write_text('a: [1\n')
    r = run_module(tmp_path, 'validate_config', {'path': str(f), 'schema': {'keys': {}}})
    assert r['violations'][0]['reason'].startswith('not valid YAML')


def test_invalid_schema_and_bad_input(tmp_path):
    r = run_module(tmp_path, 'validate_config', {'content': {'A': 1}, 'schema': {'keys': {'A': {'type': 'number'}}}})
    assert r['failed'] and r['msg'].startswith("invalid schema: schema key A: unknown type 'number'")
    r = run_module(tmp_path, 'validate_config', {'path': str(tmp_path / 'none.env'), 'schema': {}})
    assert r['msg'] == '%s: no such file' % (tmp_path / 'none.env')
    r = run_module(tmp_path, 'validate_config', {'schema': {}})
    assert r['failed'] and 'one of the following is required: path, content' in r['msg']
    r = run_module(tmp_path, 'validate_config', {'content': 'A=1', 'schema': 'keys'})
    assert r['failed'] and 'schema' in r['msg']


def test_content_as_mapping_and_text(tmp_path):
    r = run_module(
        tmp_path,
        'validate_config',
        {'content': {'PORT': 99999, 'ADMIN_EMAIL': 'a@b.example'}, 'schema': SCHEMA, 'label': 'inventory:api'},
    )
    assert r['violations'] == [{'file': 'inventory:api', 'key': 'PORT', 'reason': 'must be a port number (1-65535)'}]
    r = run_module(tmp_path, 'validate_config', {'content': 'PORT=80\nADMIN_EMAIL=a@b.example', 'schema': SCHEMA})
    assert r['rc'] == 0
