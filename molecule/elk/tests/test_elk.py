"""ELK scenario: Elasticsearch healthy over TLS with a password, a line logged on the edge (nginx access log, and the
journal) shipped by Filebeat through Logstash into Elasticsearch, the slow-request copy, the ILM policy on the data
stream, and Kibana's status behind the nginx edge (login required). Runs only where Elastic's packages are
reachable (molecule/elk/run.sh)."""

import json
import time
import uuid

import pytest
import testinfra

LOG = testinfra.get_host('podman://ierahkwa-mol-elk-log')
EDGE = testinfra.get_host('podman://ierahkwa-mol-elk-edge')
PASSWORD = 'mol-Elastic-Secret-4711'
CA = '/etc/elasticsearch/ierahkwa-certs/ca.crt'
MARKER = uuid.uuid4().hex


def es(path, user='elastic:' + PASSWORD, body=None):
    cmd = (
        "curl -s --cacert %s -u '%s' -H 'Content-Type: application/json' -w '\\n%%{http_code}' 'https://%s:9200%s'"
        % (
            CA,
            user,
            LOG.check_output('hostname -I').split()[0],
            path,
        )
    )
    if body is not None:
        cmd += " -d '%s'" % json.dumps(body)
    out = LOG.check_output(cmd)
    text, code = out.rsplit('\n', 1)
    return int(code), (json.loads(text) if text.strip().startswith('{') else text)


def search(stream, query, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        code, res = es('/%s/_search' % stream, body={'query': query})
        if code == 200 and res['hits']['total']['value'] > 0:
            return res['hits']['hits']
        time.sleep(5)
    pytest.fail('nothing in %s for %s after %ss' % (stream, query, timeout))


def test_cluster_health_over_tls_with_the_password():
    code, health = es('/_cluster/health')
    assert code == 200 and health['status'] in ('green', 'yellow')
    assert es('/_cluster/health', user='elastic:wrong-password')[0] == 401


def test_edge_request_is_shipped_to_elasticsearch_through_logstash():
    EDGE.check_output("curl -sk -o /dev/null https://127.0.0.1/app/%s -H 'Host: kibana.ierahkwa.test'" % MARKER)
    [hit] = search('logs-nginx-ierahkwa', {'term': {'nginx.uri': '/app/' + MARKER}})[:1]
    doc = hit['_source']
    assert doc['service'] == 'nginx' and doc['request_id'] and isinstance(doc['duration'], (int, float))
    assert doc['host'] and doc['nginx']['server_name'] == 'kibana.ierahkwa.test'
    # logstash_slow_request_seconds is 0.001 in this scenario: the same request is in the slow dataset.
    search('logs-slow-ierahkwa', {'term': {'nginx.uri': '/app/' + MARKER}})


def test_journal_line_is_shipped():
    EDGE.check_output('logger -t elk-test %s' % MARKER)
    [hit] = search('logs-journald-ierahkwa', {'match_phrase': {'message': MARKER}})[:1]
    assert hit['_source']['service'] == 'elk-test'


def test_data_streams_have_their_ilm_policy():
    code, res = es('/_data_stream/logs-nginx-ierahkwa')
    assert code == 200
    assert res['data_streams'][0]['ilm_policy'] == 'ierahkwa-logs'
    code, res = es('/_ilm/policy/ierahkwa-logs')
    assert res['ierahkwa-logs']['policy']['phases']['delete']['actions'] == {'delete': {}}


def test_kibana_behind_the_edge_requires_a_login():
    anon = EDGE.check_output(
        "curl -sk -o /dev/null -w '%%{http_code}' https://127.0.0.1/api/status -H 'Host: kibana.ierahkwa.test'"
    )
    assert anon == '401'
    status = json.loads(
        EDGE.check_output(
            "curl -sk -u 'elastic:%s' https://127.0.0.1/api/status -H 'Host: kibana.ierahkwa.test'" % PASSWORD
        )
    )
    assert status['status']['overall']['level'] == 'available'
