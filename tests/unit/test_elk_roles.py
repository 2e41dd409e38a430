# -*- coding: utf-8 -*-
"""The ELK roles (elasticsearch, logstash, kibana, filebeat) without Elastic's binaries, which cannot be downloaded
here: their argument specs and preflights run for real (ansible-playbook on the controller, connection local), every
template is rendered by the roles' own tasks for a sample inventory (a three-node cluster) with *_install false and
the paths moved into a temporary directory, and the results are parsed and checked: YAML and JSON load,
elasticsearch.yml's keys, the ILM policies and index templates against the shape Elasticsearch documents, the
Logstash pipelines (dead-letter queue, routing, a filter per source) and the field mapping the pipelines rely on,
against real log lines captured from the sources (tests/fixtures/logs). What this does not prove: that
Elasticsearch, Logstash, Kibana and Filebeat accept these files and ship a line end to end (molecule/elk does)."""

from __future__ import absolute_import, division, print_function

import datetime
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
LOGS = os.path.join(ROOT, 'tests', 'fixtures', 'logs')
SOURCES = ['nginx', 'postgresql', 'pm2', 'journald']

PEM_CERT = '-----BEGIN CERTIFICATE-----\nMIIBunitTESTcert\n-----END CERTIFICATE-----\n'
PEM_KEY = '-----BEGIN PRIVATE KEY-----\nMIIEunitTESTkey\n-----END PRIVATE KEY-----\n'
SECRETS = {
    'elasticsearch_elastic_password': 'unit-Elastic-Secret-4711',
    'elasticsearch_kibana_system_password': 'unit-KibanaSys-Secret-4711',
    'elasticsearch_logstash_password': 'unit-Logstash-Secret-4711',
    'logstash_elasticsearch_password': 'unit-Logstash-Secret-4711',
    'kibana_elasticsearch_password': 'unit-KibanaSys-Secret-4711',
    'kibana_encryption_key': 'unit-Kibana-Encryption-Key-0123456789abcdef',
}

# A sample inventory: a three-node logging cluster, an edge host and a database host (Filebeat on each).
INVENTORY = {
    'all': {
        'children': {
            'logging': {
                'hosts': {
                    'log1': {'ansible_host': '10.0.3.11'},
                    'log2': {'ansible_host': '10.0.3.12'},
                    'log3': {'ansible_host': '10.0.3.13'},
                }
            },
            'edge': {'hosts': {'edge1': {'ansible_host': '10.0.1.11'}}},
            'db': {'hosts': {'db1': {'ansible_host': '10.0.2.11'}}},
        },
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable},
    }
}

PLAY = """
- name: ELK servers, configuration only
  hosts: logging
  gather_facts: false
  tasks:
    - name: Elasticsearch
      ansible.builtin.include_role:
        name: ierahkwa.platform.elasticsearch
    - name: Logstash
      ansible.builtin.include_role:
        name: ierahkwa.platform.logstash
    - name: Kibana
      ansible.builtin.include_role:
        name: ierahkwa.platform.kibana

- name: Filebeat on every host
  hosts: all
  gather_facts: false
  tasks:
    - name: Filebeat
      ansible.builtin.include_role:
        name: ierahkwa.platform.filebeat
"""


# The first play's Elasticsearch part only.
ES_PLAY = PLAY.split('    - name: Logstash', maxsplit=1)[0]


def extra_vars(out):
    host = '{{ out }}/{{ inventory_hostname }}'
    ev = {
        'out': str(out),
        'ansible_memtotal_mb': 16000,
        'elasticsearch_install': False,
        'logstash_install': False,
        'kibana_install': False,
        'filebeat_install': False,
        'elasticsearch_network_host': '{{ ansible_host }}',
        'elasticsearch_tls_ca': PEM_CERT,
        'elasticsearch_tls_cert': PEM_CERT,
        'elasticsearch_tls_key': PEM_KEY,
        'logstash_tls_ca': PEM_CERT,
        'logstash_tls_cert': PEM_CERT,
        'logstash_tls_key': PEM_KEY,
        'logstash_elasticsearch_ca': PEM_CERT,
        'kibana_elasticsearch_ca': PEM_CERT,
        'kibana_public_base_url': 'https://logs.example.org',
        'filebeat_tls_ca': PEM_CERT,
        'filebeat_tls_cert': PEM_CERT,
        'filebeat_tls_key': PEM_KEY,
        '_elasticsearch_conf_dir': host + '/es',
        '_elasticsearch_certs_dir': host + '/es/certs',
        '_logstash_conf_dir': host + '/ls',
        '_logstash_pipeline_dir': host + '/ls/conf.d',
        '_logstash_certs_dir': host + '/ls/certs',
        '_logstash_env_file': host + '/ls/default',
        '_kibana_conf_dir': host + '/kb',
        '_kibana_certs_dir': host + '/kb/certs',
        '_filebeat_conf_dir': host + '/fb',
        '_filebeat_certs_dir': host + '/fb/certs',
    }
    ev.update(SECRETS)
    return ev


def run_play(tmp, ev, play=PLAY, inventory=None):
    """ansible-playbook with ev as the inventory's vars of all (so that host vars can override them)."""
    inventory = json.loads(json.dumps(inventory or INVENTORY))
    # The roles' internal paths (vars/main.yml) yield only to extra vars; the rest goes to the inventory.
    internal = {k: v for k, v in ev.items() if k.startswith('_') or k == 'out'}
    inventory['all']['vars'].update({k: v for k, v in ev.items() if k not in internal})
    (tmp / 'play.yml').write_text(play)
    (tmp / 'inventory.yml').write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    return subprocess.run(
        ['ansible-playbook', '-i', str(tmp / 'inventory.yml'), str(tmp / 'play.yml'), '-e', json.dumps(internal)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('elk')
    out = tmp / 'out'
    r = run_play(tmp, extra_vars(out))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    for secret in SECRETS.values():
        assert secret not in r.stdout
    return out


def read(path):
    with open(path) as f:
        return f.read()


def mode(path):
    return oct(os.stat(path).st_mode & 0o777)


# ---- Argument validation and preflight ----------------------------------------------------------------------------

# Wrong types and choices, caught by the argument specs (Ansible's own validator, as the roles' entry points use it).
SPEC_BAD = [
    ('elastic_common', {'elastic_common_install_source': 'ftp'}, 'elastic_common_install_source'),
    ('elasticsearch', {'elasticsearch_heap_mb': 'lots'}, 'elasticsearch_heap_mb'),
    ('elasticsearch', {'elasticsearch_ilm_policies': 'ierahkwa-logs'}, 'elasticsearch_ilm_policies'),
    ('logstash', {'logstash_dlq_enabled': 'maybe'}, 'logstash_dlq_enabled'),
    ('logstash', {'logstash_beats_port': 'five'}, 'logstash_beats_port'),
    ('kibana', {'kibana_port': [5601]}, 'kibana_port'),
    ('filebeat', {'filebeat_log_files': {'source': 'nginx'}}, 'filebeat_log_files'),
]


def spec_errors(role, params):
    with open(os.path.join(ROOT, 'roles', role, 'meta', 'argument_specs.yml')) as f:
        options = yaml.safe_load(f)['argument_specs']['main']['options']
    spec = {
        k: {n: v for n, v in o.items() if n in ('type', 'elements', 'choices', 'no_log', 'required')}
        for k, o in options.items()
    }
    with open(os.path.join(ROOT, 'roles', role, 'defaults', 'main.yml')) as f:
        values = yaml.safe_load(f)
    values.update(params)
    return ValidatorErrors(ArgumentSpecValidator(spec).validate(values).error_messages)


class ValidatorErrors(list):
    pass


@pytest.mark.parametrize('role', ['elastic_common', 'elasticsearch', 'logstash', 'kibana', 'filebeat'])
def test_defaults_and_sample_values_pass_the_specs(role):
    ev = {k: v for k, v in extra_vars('out').items() if k.startswith(role + '_')}
    assert spec_errors(role, ev) == []


@pytest.mark.parametrize('role,bad,named', SPEC_BAD, ids=[b[2] for b in SPEC_BAD])
def test_wrong_types_fail_the_specs(role, bad, named):
    errors = spec_errors(role, bad)
    assert errors and all(named in e for e in errors), errors


# Values of the right type that the preflights refuse: one host per case, all in one run.
PREFLIGHT_BAD = {
    'heap_too_big': ({'elasticsearch_heap_mb': 40000}, 'elasticsearch_heap_mb'),
    'short_password': ({'elasticsearch_elastic_password': 'short'}, 'elasticsearch_elastic_password'),
    'retention': (
        {
            'elasticsearch_ilm_policies': [
                {'name': 'x', 'max_age': '1d', 'max_primary_shard_size': '1gb', 'delete_after': 'forever'}
            ]
        },
        'elasticsearch_ilm_policies',
    ),
    'unknown_policy': (
        {'elasticsearch_data_streams': [{'dataset': 'nginx', 'policy': 'nope'}]},
        'elasticsearch_data_streams',
    ),
    'rsa_key': (
        {'logstash_tls_key': '-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n'},
        'logstash_tls_key',
    ),
    'http_es': ({'logstash_elasticsearch_hosts': ['http://log1:9200']}, 'logstash_elasticsearch_hosts'),
    'kibana_url': ({'kibana_public_base_url': 'http://logs.example.org/'}, 'kibana_public_base_url'),
    'kibana_key': ({'kibana_encryption_key': 'too-short'}, 'kibana_encryption_key'),
    'filebeat_source': (
        {'filebeat_log_files': [{'source': 'syslog', 'paths': ['/var/log/syslog']}]},
        'filebeat_log_files',
    ),
    'deb_dir': (
        {'elastic_common_install_source': 'deb_dir', 'elastic_common_deb_dir': '/nonexistent/debs'},
        'elastic_common_deb_dir',
    ),
    'not_a_node': ({'elasticsearch_group': 'db'}, 'elasticsearch_group'),
}

VALIDATE_PLAY = """
- name: Argument specs and preflights of the ELK roles
  hosts: all
  gather_facts: false
  tasks:
    - name: elastic_common
      ansible.builtin.include_role:
        name: ierahkwa.platform.elastic_common
    - name: elasticsearch
      ansible.builtin.include_role:
        name: ierahkwa.platform.elasticsearch
        tasks_from: preflight
    - name: logstash
      ansible.builtin.include_role:
        name: ierahkwa.platform.logstash
        tasks_from: preflight
    - name: kibana
      ansible.builtin.include_role:
        name: ierahkwa.platform.kibana
        tasks_from: preflight
    - name: filebeat
      ansible.builtin.include_role:
        name: ierahkwa.platform.filebeat
        tasks_from: preflight
"""


def test_preflights_pass_good_input_and_name_the_variable_of_bad_input(tmp_path):
    hosts = {'good': {}}
    hosts.update({case: bad for case, (bad, _named) in PREFLIGHT_BAD.items()})
    inv = {'all': {'children': {'logging': {'hosts': hosts}}, 'vars': dict(INVENTORY['all']['vars'])}}
    r = run_play(tmp_path, extra_vars(tmp_path / 'out'), play=VALIDATE_PLAY, inventory=inv)
    assert r.returncode != 0
    recap = dict(re.findall(r'^(\S+)\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=\d+\s+failed=(\d+)', r.stdout, re.M))
    assert recap['good'] == '0', r.stdout[-3000:]
    for case, (_bad, named) in PREFLIGHT_BAD.items():
        assert recap[case] == '1', case
        [failure] = re.findall(r'^fatal: \[%s\]: FAILED! =>.*?(?=^\S)' % case, r.stdout, re.M | re.S)
        assert named in failure, failure
    for secret in SECRETS.values():
        assert secret not in r.stdout


# ---- Elasticsearch ------------------------------------------------------------------------------------------------


def test_elasticsearch_yml_is_a_secured_three_node_cluster(rendered):
    conf = yaml.safe_load(read(rendered / 'log2' / 'es' / 'elasticsearch.yml'))
    assert conf['cluster.name'] == 'ierahkwa-logs'
    assert conf['node.name'] == 'log2'
    assert conf['network.host'] == '10.0.3.12'
    assert conf['discovery.seed_hosts'] == ['10.0.3.11:9300', '10.0.3.12:9300', '10.0.3.13:9300']
    assert conf['cluster.initial_master_nodes'] == ['log1', 'log2', 'log3']
    assert 'discovery.type' not in conf
    for key in ('xpack.security.enabled', 'xpack.security.http.ssl.enabled', 'xpack.security.transport.ssl.enabled'):
        assert conf[key] is True, key
    assert conf['xpack.security.enrollment.enabled'] is False
    assert conf['xpack.security.transport.ssl.verification_mode'] == 'full'
    for layer in ('http', 'transport'):
        for key in ('certificate', 'key'):
            assert os.path.isfile(conf['xpack.security.%s.ssl.%s' % (layer, key)])
        [ca] = conf['xpack.security.%s.ssl.certificate_authorities' % layer]
        assert read(ca) == PEM_CERT
    certs = rendered / 'log2' / 'es' / 'certs'
    assert read(certs / 'node.key') == PEM_KEY
    assert {mode(certs / n) for n in ('ca.crt', 'node.crt', 'node.key')} == {'0o640'}


def test_single_node_without_a_cluster(tmp_path):
    inv = {
        'all': {
            'children': {'logging': {'hosts': {'solo': {'ansible_host': '10.0.3.21'}}}},
            'vars': INVENTORY['all']['vars'],
        }
    }
    play = ES_PLAY
    r = run_play(tmp_path, extra_vars(tmp_path / 'out'), play=play, inventory=inv)
    assert r.returncode == 0, r.stdout[-3000:]
    conf = yaml.safe_load(read(tmp_path / 'out' / 'solo' / 'es' / 'elasticsearch.yml'))
    assert conf['discovery.type'] == 'single-node'
    assert 'cluster.initial_master_nodes' not in conf
    objects = api_files(tmp_path / 'out' / 'solo' / 'es' / 'ierahkwa-api')
    replicas = {
        o['body']['template']['settings']['index.number_of_replicas'] for o in objects if o['kind'] == 'template'
    }
    assert replicas == {0}


def test_heap_is_half_the_memory_capped_or_the_override(tmp_path):
    cases = {
        'm16000': (16000, 0, 8000),
        'm128000': (128000, 0, 31744),
        'm300': (300, 0, 256),
        'm4096': (4096, 0, 2048),
        'override': (16000, 4096, 4096),
    }
    hosts = {
        h: {'ansible_memtotal_mb': m, 'elasticsearch_heap_mb': o, 'ansible_host': '127.0.0.1'}
        for h, (m, o, _heap) in cases.items()
    }
    inv = {'all': {'children': {'logging': {'hosts': hosts}}, 'vars': dict(INVENTORY['all']['vars'])}}
    ev = extra_vars(tmp_path / 'out')
    del ev['ansible_memtotal_mb']
    r = run_play(tmp_path, ev, play=ES_PLAY, inventory=inv)
    assert r.returncode == 0, r.stdout[-3000:]
    for host, (_mem, _override, heap) in cases.items():
        options = read(tmp_path / 'out' / host / 'es' / 'jvm.options.d' / 'ierahkwa-heap.options')
        assert [ln for ln in options.splitlines() if ln.startswith('-X')] == ['-Xms%dm' % heap, '-Xmx%dm' % heap]


def api_files(directory):
    """The ILM policies and index templates the role PUTs, as its configure tasks write them."""
    out = []
    for name in sorted(os.listdir(directory)):
        body = json.loads(read(os.path.join(directory, name)))
        if name.startswith('ilm-policy-'):
            out.append({'kind': 'ilm', 'path': '_ilm/policy/' + name[len('ilm-policy-') : -5], 'body': body})
        else:
            out.append(
                {
                    'kind': 'template',
                    'path': '_index_template/ierahkwa-' + name[len('index-template-') : -5],
                    'body': body,
                }
            )
    return out


@pytest.fixture(scope='module')
def api_objects(rendered):
    return api_files(rendered / 'log1' / 'es' / 'ierahkwa-api')


# What Elasticsearch's ILM documentation allows: the phases and the actions of each.
ILM_ACTIONS = {
    'hot': {
        'set_priority',
        'unfollow',
        'rollover',
        'readonly',
        'downsample',
        'shrink',
        'forcemerge',
        'searchable_snapshot',
    },
    'warm': {'set_priority', 'unfollow', 'readonly', 'downsample', 'allocate', 'migrate', 'shrink', 'forcemerge'},
    'cold': {'set_priority', 'unfollow', 'readonly', 'downsample', 'searchable_snapshot', 'allocate', 'migrate'},
    'frozen': {'unfollow', 'searchable_snapshot'},
    'delete': {'wait_for_snapshot', 'delete'},
}
ROLLOVER_CONDITIONS = {
    'max_age',
    'max_docs',
    'max_size',
    'max_primary_shard_size',
    'max_primary_shard_docs',
    'min_age',
    'min_docs',
    'min_size',
    'min_primary_shard_size',
    'min_primary_shard_docs',
}
TIME = re.compile(r'^[0-9]+(d|h|m|s|ms|micros|nanos)$')
SIZE = re.compile(r'^[0-9]+(b|kb|mb|gb|tb|pb)$')


def test_ilm_policies_have_the_documented_shape(api_objects):
    policies = [o for o in api_objects if o['kind'] == 'ilm']
    assert sorted(o['path'] for o in policies) == [
        '_ilm/policy/ierahkwa-deadletter',
        '_ilm/policy/ierahkwa-logs',
        '_ilm/policy/ierahkwa-slow',
    ]
    days = {}
    for o in policies:
        assert set(o['body']) == {'policy'}
        policy = o['body']['policy']
        assert set(policy) <= {'phases', '_meta'}
        phases = policy['phases']
        assert set(phases) <= set(ILM_ACTIONS)
        for name, phase in phases.items():
            assert set(phase) <= {'min_age', 'actions'}
            assert TIME.match(phase['min_age']), phase['min_age']
            assert set(phase['actions']) <= ILM_ACTIONS[name], name
        rollover = phases['hot']['actions']['rollover']
        assert rollover and set(rollover) <= ROLLOVER_CONDITIONS
        assert TIME.match(rollover['max_age']) and SIZE.match(rollover['max_primary_shard_size'])
        assert phases['delete']['actions'] == {'delete': {}}
        days[o['path'].rsplit('/', 1)[1]] = phases['delete']['min_age']
    assert days == {'ierahkwa-logs': '30d', 'ierahkwa-slow': '90d', 'ierahkwa-deadletter': '14d'}


FIELD_TYPES = {
    'date',
    'keyword',
    'match_only_text',
    'text',
    'float',
    'boolean',
    'ip',
    'short',
    'long',
    'integer',
    'byte',
    'flattened',
    'object',
}


def walk_mapping(props, prefix=''):
    for name, spec in props.items():
        if 'properties' in spec:
            assert set(spec) <= {'properties', 'type', 'dynamic'}
            yield from walk_mapping(spec['properties'], prefix + name + '.')
        else:
            assert spec['type'] in FIELD_TYPES, name
            yield prefix + name, spec['type']


def templates(api_objects):
    return {o['path'].rsplit('-', 1)[1]: o['body'] for o in api_objects if o['kind'] == 'template'}


def test_index_templates_have_the_documented_shape(api_objects):
    tpls = templates(api_objects)
    assert sorted(tpls) == sorted(SOURCES + ['slow', 'deadletter'])
    policies = {o['path'].rsplit('/', 1)[1] for o in api_objects if o['kind'] == 'ilm'}
    for dataset, body in tpls.items():
        assert set(body) <= {
            'index_patterns',
            'template',
            'composed_of',
            'priority',
            'version',
            '_meta',
            'data_stream',
            'allow_auto_create',
            'ignore_missing_component_templates',
            'deprecated',
        }
        # Data streams are named <type>-<dataset>-<namespace>; above the built-in logs-*-* template (priority 100).
        assert body['index_patterns'] == ['logs-%s-ierahkwa*' % dataset]
        assert body['data_stream'] == {}
        assert body['priority'] > 100
        assert set(body['template']) <= {'settings', 'mappings', 'aliases', 'lifecycle'}
        settings = body['template']['settings']
        assert settings['index.lifecycle.name'] in policies
        assert settings['index.number_of_replicas'] == 1
        mappings = body['template']['mappings']
        assert mappings['dynamic'] is False
        fields = dict(walk_mapping(mappings['properties']))
        assert fields['@timestamp'] == 'date'
        for agreed in ('level', 'service', 'host', 'request_id'):
            assert fields[agreed] == 'keyword'
        assert fields['duration'] == 'float'


# ---- Logstash -----------------------------------------------------------------------------------------------------


def strip_strings_and_comments(text):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in '"\'':
            j = i + 1
            while text[j] != c:
                j += 2 if text[j] == '\\' else 1
            i = j + 1
            out.append('""')
        elif c == '#':
            while i < n and text[i] != '\n':
                i += 1
        elif c == '/' and re.search(r'=~\s*$', ''.join(out[-3:])):
            j = i + 1
            while text[j] != '/':
                j += 2 if text[j] == '\\' else 1
            i = j + 1
            out.append('//')
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def sections(conf):
    """Top-level sections of a Logstash pipeline and whether its brackets balance."""
    code = strip_strings_and_comments(conf)
    for opening, closing in ('{}', '[]', '()'):
        depth = 0
        for c in code:
            depth += (c == opening) - (c == closing)
            assert depth >= 0
        assert depth == 0, opening
    return re.findall(r'^(input|filter|output)\s*\{', code, re.M)


def test_logstash_settings_and_pipelines_yml(rendered):
    ls = rendered / 'log1' / 'ls'
    settings = yaml.safe_load(read(ls / 'logstash.yml'))
    assert settings['dead_letter_queue.enable'] is True
    assert settings['dead_letter_queue.max_bytes'] == '1024mb'
    assert settings['config.reload.automatic'] is False
    pipelines = yaml.safe_load(read(ls / 'pipelines.yml'))
    ids = [p['pipeline.id'] for p in pipelines]
    assert ids == ['ierahkwa-beats'] + ['ierahkwa-' + s for s in SOURCES] + ['ierahkwa-deadletter']
    for p in pipelines:
        assert os.path.isfile(p['path.config']), p['path.config']
        # The pipelines writing to Elasticsearch keep what it rejects; the input and the re-shipper do not.
        assert p['dead_letter_queue.enable'] is (p['pipeline.id'] not in ('ierahkwa-beats', 'ierahkwa-deadletter'))


def test_logstash_pipelines_parse_route_and_write_data_streams(rendered):
    d = rendered / 'log1' / 'ls' / 'conf.d'
    beats = read(d / 'beats.conf')
    assert sections(beats) == ['input', 'filter', 'output']
    assert 'ssl_client_authentication => "required"' in beats
    for s in SOURCES:
        assert '[fields][source] == "%s"' % s in beats
        assert 'send_to => ["ierahkwa-%s"]' % s in beats
        conf = read(d / (s + '.conf'))
        assert sections(conf) == ['input', 'filter', 'output'], s
        assert 'address => "ierahkwa-%s"' % s in conf
        assert 'data_stream_dataset => "%s"' % s in conf
        assert 'password => "${IERAHKWA_ES_PASSWORD}"' in conf
        assert 'hosts => ["https://log1:9200", "https://log2:9200", "https://log3:9200"]' in conf
        for secret in SECRETS.values():
            assert secret not in conf
    for s in ('nginx', 'postgresql', 'pm2'):
        assert 'json { source => "message" target => "[@metadata][src]" }' in read(d / (s + '.conf'))
    for s in ('nginx', 'postgresql'):
        conf = read(d / (s + '.conf'))
        assert 'if "slow" in [tags]' in conf and 'data_stream_dataset => "slow"' in conf
    dlq = read(d / 'deadletter.conf')
    assert sections(dlq) == ['input', 'filter', 'output']
    for s in SOURCES:
        assert 'pipeline_id => "ierahkwa-%s"' % s in dlq
    env = rendered / 'log1' / 'ls' / 'default'
    assert mode(env) == '0o600'
    assert 'IERAHKWA_ES_PASSWORD="%s"' % SECRETS['logstash_elasticsearch_password'] in read(env)
    assert '-Xmx4000m' in read(env)


# ---- Field mapping against real log lines -------------------------------------------------------------------------


def lines(name):
    with open(os.path.join(LOGS, name)) as f:
        return [json.loads(line) for line in f if line.strip()]


def copies(conf):
    """The source fields each pipeline copies: {source key: target field} from its mutate copy blocks."""
    return dict(re.findall(r'"\[@metadata\]\[src\]\[([a-z_]+)\]" => "([^"]+)"', conf))


def target_fields(target):
    return '.'.join(re.findall(r'\[?([A-Za-z0-9_@]+)\]?', target))


def compatible(value, es_type):
    if es_type in ('keyword', 'match_only_text', 'text'):
        return isinstance(value, (str, int, float))
    if es_type in ('short', 'integer', 'long', 'byte'):
        return isinstance(value, int) and not isinstance(value, bool) or (isinstance(value, str) and value.isdigit())
    if es_type == 'float':
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if es_type == 'ip':
        ipaddress.ip_address(value)
        return True
    return False


@pytest.mark.parametrize(
    'source,fixture,always',
    [
        ('nginx', 'nginx-access.json.log', 'all'),
        ('postgresql', 'postgresql.json.log', ['timestamp', 'message', 'error_severity', 'pid', 'session_id']),
        ('pm2', 'pm2-api.out.log', 'all'),
    ],
)
def test_pipeline_fields_exist_in_real_lines_with_mappable_values(rendered, api_objects, source, fixture, always):
    conf = read(rendered / 'log1' / 'ls' / 'conf.d' / (source + '.conf'))
    mapped = copies(conf)
    assert mapped
    real = lines(fixture)
    fields = dict(walk_mapping(templates(api_objects)[source]['template']['mappings']['properties']))
    seen = set().union(*real)
    for key, target in mapped.items():
        assert key in seen, '%s copies %s, which no real %s line has' % (source, key, source)
        assert target_fields(target) in fields, 'not mapped in the index template: ' + target
    required = set(mapped) if always == 'all' else set(always)
    for line in real:
        assert required - {'timestamp'} <= set(line) | ({'timestamp'} - set(mapped)), line
        assert 'timestamp' in line
        for key, target in mapped.items():
            if key in line:
                assert compatible(line[key], fields[target_fields(target)]), (key, line[key])


def test_timestamps_match_the_date_filters(rendered):
    d = rendered / 'log1' / 'ls' / 'conf.d'
    assert 'date { match => ["[@metadata][src][timestamp]", "ISO8601"] }' in read(d / 'nginx.conf')
    assert 'date { match => ["[@metadata][src][timestamp]", "ISO8601"] }' in read(d / 'pm2.conf')
    for line in lines('nginx-access.json.log') + lines('pm2-api.out.log'):
        datetime.datetime.fromisoformat(line['timestamp'].replace('Z', '+00:00'))
    # Joda's "yyyy-MM-dd HH:mm:ss.SSS ZZZ" (ZZZ: a zone ID such as UTC) in strptime's words.
    assert '"yyyy-MM-dd HH:mm:ss.SSS ZZZ"' in read(d / 'postgresql.conf')
    for line in lines('postgresql.json.log'):
        assert line['timestamp'].endswith(' UTC')
        datetime.datetime.strptime(line['timestamp'][:-4], '%Y-%m-%d %H:%M:%S.%f')


def grok_to_python(pattern):
    pattern = re.sub(r'%\{NUMBER:[^}]+\}', r'(?P<ms>[0-9]+(?:\\.[0-9]+)?)', pattern)
    return re.sub(r'%\{GREEDYDATA:[^}]+\}', r'(?P<statement>.*)', pattern)


def test_slow_query_lines_give_a_duration_and_the_slow_tag(rendered):
    conf = read(rendered / 'log1' / 'ls' / 'conf.d' / 'postgresql.conf')
    [grok] = re.findall(r'"message" => "(\^duration:.*)" \}', conf)
    rx = re.compile(grok_to_python(grok.replace('\\\\', '\\')))
    threshold = float(re.search(r'if \[duration\] >= ([0-9.]+)', conf).group(1))
    found = {}
    for line in lines('postgresql.json.log'):
        m = rx.match(line['message'])
        assert bool(m) == line['message'].startswith('duration: '), line['message']
        if m:
            found[m.group('statement')] = float(m.group('ms')) / 1000.0
    assert found['select pg_sleep(1.2)'] >= threshold
    assert found['select 1'] < threshold


def test_slow_requests_by_nginx_duration(rendered):
    conf = read(rendered / 'log1' / 'ls' / 'conf.d' / 'nginx.conf')
    threshold = float(re.search(r'if \[duration\] > ([0-9.]+)', conf).group(1))
    assert threshold == 1.0
    assert all(isinstance(line['duration'], (int, float)) for line in lines('nginx-access.json.log'))


def test_pm2_messages_are_the_apps_json_lines(rendered):
    conf = read(rendered / 'log1' / 'ls' / 'conf.d' / 'pm2.conf')
    assert 'if [app][level]' in conf and 'if [app][msg]' in conf
    for line in lines('pm2-api.out.log'):
        assert line['type'] in ('out', 'err')
        app = json.loads(line['message'].strip())
        assert app['level'] in ('debug', 'info', 'warn', 'warning', 'error', 'fatal')
        assert app['msg']


def test_journald_fields_filebeat_translates_are_in_the_journal(rendered):
    conf = read(rendered / 'log1' / 'ls' / 'conf.d' / 'journald.conf')
    with open(os.path.join(ROOT, 'roles', 'logstash', 'vars', 'main.yml')) as f:
        table = yaml.safe_load(f)['_logstash_journald_fields']
    for event_field in table.values():
        if event_field not in ('message', '[host][hostname]'):
            assert '"%s" => "[journald][' % event_field in conf
    for entry in lines('journald-pgbouncer.json'):
        assert set(table) <= set(entry), sorted(set(table) - set(entry))
        assert entry['PRIORITY'].isdigit() and 0 <= int(entry['PRIORITY']) <= 7
        assert entry['_PID'].isdigit()


# ---- Kibana and Filebeat ------------------------------------------------------------------------------------------


def test_kibana_yml(rendered):
    path = rendered / 'log1' / 'kb' / 'kibana.yml'
    conf = yaml.safe_load(read(path))
    assert mode(path) == '0o640'
    assert conf['server.publicBaseUrl'] == 'https://logs.example.org'
    assert conf['elasticsearch.username'] == 'kibana_system'
    assert conf['elasticsearch.password'] == SECRETS['kibana_elasticsearch_password']
    assert conf['elasticsearch.hosts'] == ['https://log1:9200', 'https://log2:9200', 'https://log3:9200']
    assert conf['elasticsearch.ssl.verificationMode'] == 'full'
    assert read(conf['elasticsearch.ssl.certificateAuthorities'][0]) == PEM_CERT
    for key in ('xpack.security.encryptionKey', 'xpack.encryptedSavedObjects.encryptionKey'):
        assert len(conf[key]) >= 32
    assert conf['xpack.security.secureCookies'] is True


@pytest.mark.parametrize('host', ['log1', 'edge1', 'db1'])
def test_filebeat_yml_on_every_host(rendered, host):
    path = rendered / host / 'fb' / 'filebeat.yml'
    assert mode(path) == '0o600'
    conf = yaml.safe_load(read(path))
    inputs = {i['id']: i for i in conf['filebeat.inputs']}
    assert inputs['ierahkwa-journald']['type'] == 'journald'
    assert inputs['ierahkwa-journald']['fields'] == {'source': 'journald'}
    for source in ('nginx', 'postgresql', 'pm2'):
        assert inputs['ierahkwa-' + source]['type'] == 'filestream'
        assert inputs['ierahkwa-' + source]['fields'] == {'source': source}
    assert inputs['ierahkwa-postgresql']['paths'] == ['/var/log/postgresql/*.json']
    out = conf['output.logstash']
    assert out['hosts'] == ['log1:5044', 'log2:5044', 'log3:5044']
    assert out['ssl.enabled'] is True and out['ssl.verification_mode'] == 'full'
    assert read(out['ssl.key']) == PEM_KEY


def test_index_templates_carry_the_checksum_the_role_compares(api_objects):
    """The role PUTs a template only when the _meta.checksum Elasticsearch returns differs from this one: the SHA-1
    of the template without it (sorted keys), so a run with the same input compares equal."""
    for o in api_objects:
        if o['kind'] != 'template':
            continue
        body = json.loads(json.dumps(o['body']))
        checksum = body['_meta'].pop('checksum')
        if not body['_meta']:
            del body['_meta']
        assert checksum == hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()  # noqa: S324 (a checksum)
