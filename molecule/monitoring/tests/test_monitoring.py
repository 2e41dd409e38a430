"""Monitoring scenario: targets up, node_exporter's TLS and basic auth, InstanceDown fired and delivered to a
webhook then resolved, stale backup metrics firing the backup alerts, inhibition in Alertmanager."""

import json
import os
import subprocess
import sys
import time
import urllib.parse

import pytest
import testinfra
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'shared'))
import molecule_helpers  # noqa: E402

MON = 'ierahkwa-mol-mon-mon'
TARGET = 'ierahkwa-mol-mon-target'
PASSWORD = 'mol-Scrape-Secret-4711'
SECRETS = [
    PASSWORD,
    'mol-Redis-Default-Secret-4711',
    'mol-Grafana-Admin-4711',
    'mol-Pg-Monitor-Secret-4711',
    'mol-Pgb-Stats-Secret-4711',
]
HOOK_LOG = '/root/webhook.jsonl'
TEXTFILES = '/var/lib/prometheus/node-exporter'
TIMINGS = {}
HEALTH_NOBODY = 'http://%s:3001/health' % TARGET
HEALTH_APP = 'http://%s:3000/health' % TARGET

GET = """
import json, ssl, sys, base64, urllib.request, urllib.error
url, user, password, ca = sys.argv[1:5]
req = urllib.request.Request(url)
if user:
    req.add_header('Authorization', 'Basic ' + base64.b64encode((user + ':' + password).encode()).decode())
ctx = ssl.create_default_context(cafile=ca) if ca else None
try:
    r = urllib.request.urlopen(req, context=ctx, timeout=10)
    print(json.dumps({'status': r.status, 'body': r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({'status': e.code, 'body': ''}))
except Exception as e:
    print(json.dumps({'status': 0, 'error': repr(e)}))
"""


@pytest.fixture(scope='module')
def mon():
    return testinfra.get_host('podman://' + MON)


@pytest.fixture(scope='module')
def target():
    return testinfra.get_host('podman://' + TARGET)


def fetch(host, url, user='', password='', ca=''):
    out = host.check_output('python3 -c %s %s %s %s %s', GET, url, user, password, ca)
    return json.loads(out)


def api(host, path):
    r = fetch(host, 'http://127.0.0.1:9090' + path)
    assert r['status'] == 200, r
    return json.loads(r['body'])['data']


def wait_for(what, test, timeout):
    started = time.time()
    while time.time() - started < timeout:
        value = test()
        if value:
            return value, round(time.time() - started, 1)
        time.sleep(1)
    raise AssertionError('timed out after %d s waiting for %s' % (timeout, what))


def hooks(host):
    """Every alert the webhook received, in order: (status, labels, time received)."""
    out = host.run('cat %s', HOOK_LOG).stdout
    alerts = []
    for line in out.splitlines():
        rec = json.loads(line)
        for a in rec['body']['alerts']:
            alerts.append((a['status'], a['labels'], rec['received']))
    return alerts


@pytest.fixture(scope='module', autouse=True)
def webhook(mon):
    """The webhook receiver Alertmanager delivers to, run by the test on the monitoring host."""
    here = os.path.dirname(__file__)
    subprocess.run(['podman', 'cp', os.path.join(here, 'webhook.py'), MON + ':/root/webhook.py'], check=True)
    mon.run('systemctl stop mol-webhook; rm -f %s', HOOK_LOG)
    mon.check_output('systemd-run --unit=mol-webhook python3 /root/webhook.py 9099 %s', HOOK_LOG)
    wait_for(
        'the webhook receiver',
        lambda: 'LISTEN' in mon.run('ss -ltn').stdout and ':9099' in mon.run('ss -ltn').stdout,
        15,
    )
    yield
    mon.run('systemctl stop mol-webhook')
    out = os.path.join(molecule_helpers.PROJECT, 'tests', 'output')
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'molecule-monitoring-timings.json'), 'w') as f:
        json.dump(TIMINGS, f)


def test_every_target_is_up(mon):
    def all_up():
        targets = api(mon, '/api/v1/targets')['activeTargets']
        return targets if targets and all(t['health'] == 'up' for t in targets) else None

    targets = wait_for('every target up', all_up, 90)[0]
    jobs = sorted((t['labels']['job'], t['labels']['instance']) for t in targets)
    assert jobs == [
        ('alertmanager', MON),
        ('app', TARGET),
        ('blackbox-health', 'http://127.0.0.1:9093/-/healthy'),
        ('blackbox-health', HEALTH_APP),
        ('blackbox-health', HEALTH_NOBODY),
        ('blackbox-tls', TARGET + ':9100'),
        ('nginx', TARGET),
        ('nginx_log', TARGET),
        ('node', MON),
        ('node', TARGET),
        ('pgbouncer', TARGET),
        ('postgres', TARGET),
        ('prometheus', MON),
        ('redis', TARGET),
    ]
    node = [t for t in targets if t['labels']['job'] == 'node'][0]
    assert node['scrapeUrl'].startswith('https://')


def test_rules_loaded_with_the_lab_for(mon):
    groups = api(mon, '/api/v1/rules')['groups']
    rules = [r for g in groups for r in g['rules']]
    assert len(rules) == 21
    assert {r['duration'] for r in rules} == {10}
    assert all(r['health'] == 'ok' for r in rules)


def test_node_exporter_refuses_scrapes_without_credentials(mon):
    url = 'https://%s:9100/metrics' % TARGET
    ca = '/etc/prometheus/node-exporter-ca.pem'
    assert fetch(mon, url, ca=ca)['status'] == 401
    assert fetch(mon, url, 'prometheus', 'wrong-password-0000', ca)['status'] == 401
    assert fetch(mon, url, 'someone', PASSWORD, ca)['status'] == 401
    ok = fetch(mon, url, 'prometheus', PASSWORD, ca)
    assert ok['status'] == 200
    assert 'node_systemd_unit_state' in ok['body']
    assert 'node_textfile_scrape_error 0' in ok['body']


def test_node_exporter_serves_tls_only(mon):
    # The certificate verifies against the CA bundle Prometheus uses, for the target's name.
    url = 'https://%s:9100/metrics' % TARGET
    assert fetch(mon, url, 'prometheus', PASSWORD, '/etc/prometheus/node-exporter-ca.pem')['status'] == 200
    # Plain HTTP gets no metrics (Go's TLS server answers 400 to an HTTP request).
    plain = fetch(mon, 'http://%s:9100/metrics' % TARGET, 'prometheus', PASSWORD)
    assert plain['status'] in (0, 400), plain
    # Without the CA the certificate is not trusted (it is not a public one).
    untrusted = fetch(mon, url, 'prometheus', PASSWORD, '/etc/ssl/certs/ca-certificates.crt')
    assert untrusted['status'] == 0 and 'CERTIFICATE_VERIFY_FAILED' in untrusted['error']


def test_web_config_and_key_are_private(target):
    for path in ('/etc/prometheus/node-exporter/web.yml', '/etc/prometheus/node-exporter/tls.key'):
        f = target.file(path)
        assert (f.user, f.group, f.mode) == ('root', 'prometheus', 0o640), path
    assert PASSWORD not in target.file('/etc/prometheus/node-exporter/web.yml').content_string


def probe(mon, metric, instance):
    result = api(mon, '/api/v1/query?query=' + urllib.parse.quote('%s{instance="%s"}' % (metric, instance)))['result']
    assert len(result) == 1, (metric, instance, result)
    return float(result[0]['value'][1])


def test_probes_health_and_tls_expiry(mon):
    assert probe(mon, 'probe_success', 'http://127.0.0.1:9093/-/healthy') == 1
    assert probe(mon, 'probe_success', HEALTH_APP) == 1
    assert probe(mon, 'probe_success', HEALTH_NOBODY) == 0
    assert probe(mon, 'probe_success', TARGET + ':9100') == 1
    # The target's self-signed certificate: node_exporter_tls_days (825) ahead, far from the 14-day alert.
    left = probe(mon, 'probe_ssl_earliest_cert_expiry', TARGET + ':9100') - time.time()
    assert 800 * 86400 < left < 826 * 86400

    def failing():
        return [
            a for a in hooks(mon) if a[1]['alertname'] == 'HealthProbeFailing' and a[1]['instance'] == HEALTH_NOBODY
        ]

    TIMINGS['health_probe_failing_s'] = wait_for('HealthProbeFailing at the webhook', failing, 90)[1]
    names = {(a[1]['alertname'], a[1]['instance']) for a in hooks(mon)}
    assert ('HealthProbeFailing', 'http://127.0.0.1:9093/-/healthy') not in names
    assert not [n for n in names if n[0] == 'CertificateExpiresSoon']


def test_sample_app_metrics_are_scraped(mon):
    """The app's /metrics counts the probes of its /health (blackbox, every 5 s)."""
    q = 'http_requests_total{job="app", route="/health", status="200"}'

    def counted():
        result = api(mon, '/api/v1/query?query=' + urllib.parse.quote(q))['result']
        return result and float(result[0]['value'][1]) >= 2

    wait_for('the app\'s /health requests in Prometheus', counted, 60)
    rss = api(mon, '/api/v1/query?query=' + urllib.parse.quote('process_resident_memory_bytes{job="app"}'))['result']
    assert len(rss) == 1 and float(rss[0]['value'][1]) > 1e6


def test_instance_down_fires_is_delivered_and_resolves(mon, target):
    def down_alert(status):
        return [
            a
            for a in hooks(mon)
            if a[0] == status and a[1]['alertname'] == 'InstanceDown' and a[1]['instance'] == TARGET
        ]

    assert down_alert('firing') == []
    target.check_output('systemctl stop prometheus-node-exporter')
    try:
        fired, TIMINGS['instance_down_fired_s'] = wait_for('InstanceDown', lambda: down_alert('firing'), 120)
        assert fired[0][1]['job'] == 'node' and fired[0][1]['severity'] == 'critical'
    finally:
        target.check_output('systemctl start prometheus-node-exporter')
    TIMINGS['instance_down_resolved_s'] = wait_for('InstanceDown resolved', lambda: down_alert('resolved'), 120)[1]
    # Only the stopped target was reported down (no leftover of Debian's example configuration either).
    assert {a[1]['instance'] for a in hooks(mon) if a[1]['alertname'] == 'InstanceDown'} == {TARGET}
    assert not [a for a in api(mon, '/api/v1/alerts')['alerts'] if a['labels']['instance'].startswith('localhost')]


def test_redis_down_behind_a_running_exporter_fires_is_delivered_and_resolves(mon, target):
    """Redis stopped while redis_exporter keeps answering: no InstanceDown (its target stays up), but RedisDown fires
    from redis_up 0, reaches the webhook through Alertmanager, and resolves once Redis is back."""

    def alert(status):
        return [a for a in hooks(mon) if a[0] == status and a[1]['alertname'] == 'RedisDown']

    assert alert('firing') == []
    target.check_output('systemctl stop redis-server@cache')
    try:
        fired, TIMINGS['redis_down_fired_s'] = wait_for('RedisDown', lambda: alert('firing'), 120)
        assert fired[0][1]['job'] == 'redis' and fired[0][1]['severity'] == 'critical', fired
        assert fired[0][1]['instance'] == TARGET, fired
        up = api(mon, '/api/v1/query?query=' + urllib.parse.quote('up{job="redis"}'))['result']
        assert up and up[0]['value'][1] == '1', up
    finally:
        target.check_output('systemctl start redis-server@cache')
    TIMINGS['redis_down_resolved_s'] = wait_for('RedisDown resolved', lambda: alert('resolved'), 120)[1]
    assert target.service('redis-server@cache').is_running
    assert not [a for a in hooks(mon) if a[1]['alertname'] == 'InstanceDown' and a[1].get('job') == 'redis']


def test_stale_backup_metrics_fire_the_backup_alerts(mon, target):
    now = int(time.time())
    files = {
        'pgbackrest.prom': 'ierahkwa_pgbackrest_backup_last_timestamp_seconds{stanza="main",repo="1",type="full"} %d\n'
        % (now - 2 * 86400),
        'redis_backup_queue.prom': 'ierahkwa_redis_backup_last_success_timestamp_seconds{instance="queue"} %d\n'
        'ierahkwa_redis_backup_last_run_success{instance="queue"} 1\n' % (now - 3 * 3600),
    }
    try:
        for name, text in files.items():
            tmp, dest = '%s/.%s' % (TEXTFILES, name), '%s/%s' % (TEXTFILES, name)
            target.check_output("printf '%%s' %s > %s && mv %s %s", text, tmp, tmp, dest)

        def fired():
            names = {a[1]['alertname'] for a in hooks(mon) if a[0] == 'firing' and a[1]['instance'] == TARGET}
            return {'PgBackRestBackupStale', 'RedisBackupStale'} <= names

        TIMINGS['backup_stale_fired_s'] = wait_for('the backup alerts at the webhook', fired, 120)[1]
        redis = [a[1] for a in hooks(mon) if a[1]['alertname'] == 'RedisBackupStale'][0]
        assert redis['exported_instance'] == 'queue'
        # A fresh backup does not fire: RedisBackupFailed stays silent (last run succeeded).
        assert not [a for a in hooks(mon) if a[1]['alertname'] == 'RedisBackupFailed']
    finally:
        target.run('rm -f %s/pgbackrest.prom %s/redis_backup_queue.prom', TEXTFILES, TEXTFILES)


def test_alertmanager_inhibits_the_alerts_of_a_down_instance(mon):
    now = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    down = {'alertname': 'InstanceDown', 'instance': 'ghost', 'severity': 'critical', 'job': 'node'}
    unit = {'alertname': 'SystemdUnitFailed', 'instance': 'ghost', 'severity': 'warning', 'name': 'x.service'}
    alerts = [{'labels': down, 'startsAt': now}, {'labels': unit, 'startsAt': now}]
    mon.check_output(
        'python3 -c %s %s',
        "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request("
        "'http://127.0.0.1:9093/api/v2/alerts', sys.argv[1].encode(), {'Content-Type': 'application/json'}))",
        json.dumps(alerts),
    )

    def state():
        r = fetch(mon, 'http://127.0.0.1:9093/api/v2/alerts?filter=instance%3D%22ghost%22')
        got = {a['labels']['alertname']: a['status'] for a in json.loads(r['body'])}
        return got if len(got) == 2 else None

    got = wait_for('both alerts in Alertmanager', state, 30)[0]
    assert got['InstanceDown']['state'] == 'active'
    assert got['SystemdUnitFailed']['state'] == 'suppressed' and got['SystemdUnitFailed']['inhibitedBy']
    wait_for('InstanceDown of ghost at the webhook', lambda: [a for a in hooks(mon) if a[1]['instance'] == 'ghost'], 30)
    time.sleep(6)  # a group interval: the inhibited alert would have gone out by now
    assert {a[1]['alertname'] for a in hooks(mon) if a[1]['instance'] == 'ghost'} == {'InstanceDown'}


DASHBOARDS = os.path.join(molecule_helpers.PROJECT, 'dashboards')


def dashboard_exprs(name):
    with open(os.path.join(DASHBOARDS, name)) as f:
        d = json.load(f)
    return [(p['title'], t['expr']) for p in d['panels'] for t in p['targets']]


def run_exprs(mon, name, need_data):
    """Every expression of a dashboard through the HTTP API, with Grafana's variables filled in as Grafana would."""
    for title, expr in dashboard_exprs(name):
        q = expr.replace('$__rate_interval', '30s').replace('$instance', '.*')
        r = fetch(mon, 'http://127.0.0.1:9090/api/v1/query?query=' + urllib.parse.quote(q))
        assert r['status'] == 200, (name, title, r)
        body = json.loads(r['body'])
        assert body['status'] == 'success', (name, title, body)
        if title in need_data:
            assert body['data']['result'], 'no data for %s / %s: %s' % (name, title, q)


def test_every_shipped_dashboard_is_run_here():
    """A new dashboard cannot skip the check below: each file of dashboards/ has its test in this module."""
    shipped = sorted(n for n in os.listdir(DASHBOARDS) if n.endswith('.json'))
    assert shipped == ['apps.json', 'backups.json', 'edge.json', 'hosts.json', 'postgresql.json']


def test_dashboard_hosts_queries_run_with_data(mon):
    titles = [t for t, e in dashboard_exprs('hosts.json') if t != 'Firing alerts' and e]
    run_exprs(mon, 'hosts.json', titles)


def test_dashboard_backups_queries_run_with_data(mon, target):
    now = int(time.time())
    files = {
        'pgbackrest.prom': 'ierahkwa_pgbackrest_backup_last_timestamp_seconds{stanza="main",repo="1",type="full"} %d\n'
        'ierahkwa_postgresql_wal_archived_total{stanza="main"} %d\n'
        'ierahkwa_postgresql_wal_last_archived_timestamp_seconds{stanza="main"} %d\n' % (now, now % 1000, now),
        'pgbackrest_backup_full.prom': 'ierahkwa_pgbackrest_backup_last_run_success{stanza="main",type="full"} 1\n',
        'pg_restore_test.prom': 'ierahkwa_pg_restore_test_last_run_success{stanza="main"} 1\n',
        'redis_backup_queue.prom': 'ierahkwa_redis_backup_last_success_timestamp_seconds{instance="queue"} %d\n'
        'ierahkwa_redis_backup_last_size_bytes{instance="queue"} 4096\n' % now,
    }
    try:
        for name, text in files.items():
            tmp, dest = '%s/.%s' % (TEXTFILES, name), '%s/%s' % (TEXTFILES, name)
            target.check_output("printf '%%s' %s > %s && mv %s %s", text, tmp, tmp, dest)
        # Two scrapes at least, so rate() has two samples.
        wait_for(
            'the textfile metrics in Prometheus',
            lambda: api(mon, '/api/v1/query?query=ierahkwa_redis_backup_last_size_bytes')['result'],
            30,
        )
        time.sleep(11)
        run_exprs(mon, 'backups.json', [t for t, e in dashboard_exprs('backups.json') if e])
    finally:
        target.run('rm -f ' + ' '.join('%s/%s' % (TEXTFILES, n) for n in files))


def wait_two_scrapes(mon, metric):
    wait_for(metric + ' in Prometheus', lambda: api(mon, '/api/v1/query?query=' + metric)['result'], 60)
    time.sleep(11)  # two scrapes at least, so rate() has two samples


def test_dashboard_edge_queries_run_with_data(mon, target):
    """nginx_exporter (stub_status), mtail and the blackbox probes run here: every panel has data."""
    for attempt in range(3):  # noqa: B007
        fetch(target, 'http://127.0.0.1/')
    wait_two_scrapes(mon, 'nginx_http_responses_total')
    run_exprs(mon, 'edge.json', [t for t, e in dashboard_exprs('edge.json')])


def test_dashboard_apps_queries_run_with_data(mon, target):
    """The sample app and redis_exporter run here: every panel has data (a few requests first, for the rates)."""
    for attempt in range(5):  # noqa: B007
        target.run('curl -s -o /dev/null http://127.0.0.1:3000/health')
    wait_two_scrapes(mon, 'redis_up')
    run_exprs(mon, 'apps.json', [t for t, e in dashboard_exprs('apps.json')])


def test_dashboard_postgresql_queries_run_with_data(mon):
    """postgres_exporter and pgbouncer_exporter run here (a primary: replication lag 0): every panel has data."""
    wait_two_scrapes(mon, 'pgbouncer_requests_total')
    run_exprs(mon, 'postgresql.json', [t for t, e in dashboard_exprs('postgresql.json')])


def test_db_exporters_metric_names_and_secrets(mon, target):
    """The names the rules read (pg_replication_lag from the role's queries, pgbouncer_waiting_clients, pg_up of
    PostgresDown), and the DSN and the stats password in 0600 files of the exporter users, not on a command line."""
    for metric in [
        'pg_up',
        'pg_replication_lag',
        'pg_replication_is_replica',
        'pgbouncer_waiting_clients',
    ]:
        result = api(mon, '/api/v1/query?query=' + metric)['result']
        assert result and result[0]['metric']['instance'] == TARGET, metric
    assert api(mon, '/api/v1/query?query=pg_up')['result'][0]['value'][1] == '1'
    assert api(mon, '/api/v1/query?query=pg_replication_is_replica')['result'][0]['value'][1] == '0'
    for path, user in [
        ('/etc/default/prometheus-postgres-exporter', 'prometheus'),
        ('/etc/prometheus-pgbouncer-exporter.env', 'postgres'),
    ]:
        f = target.file(path)
        assert (f.user, f.mode) == (user, 0o600), path
    for unit, secret in [
        ('prometheus-postgres-exporter', 'mol-Pg-Monitor-Secret-4711'),
        ('prometheus-pgbouncer-exporter', 'mol-Pgb-Stats-Secret-4711'),
    ]:
        cmdline = target.check_output('cat /proc/$(systemctl show -p MainPID --value %s)/cmdline', unit)
        assert secret not in cmdline, unit


def test_tier_exporters_metric_names(mon):
    """The names the dashboards and rules rely on, as these Debian versions export them."""
    for metric in [
        'nginx_up',
        'nginx_http_requests_total',
        'nginx_connections_active',
        'nginx_connections_accepted',
        'nginx_connections_handled',
        'redis_up',
        'redis_memory_used_bytes',
        'redis_memory_max_bytes',
        'redis_commands_processed_total',
        'redis_connected_clients',
        'redis_evicted_keys_total',
    ]:
        result = api(mon, '/api/v1/query?query=' + metric)['result']
        assert result, metric
        assert result[0]['metric']['instance'] == TARGET, (metric, result[0]['metric'])
    assert api(mon, '/api/v1/query?query=redis_up')['result'][0]['value'][1] == '1'
    assert api(mon, '/api/v1/query?query=nginx_up')['result'][0]['value'][1] == '1'


def test_stub_status_on_loopback_only(mon, target):
    r = fetch(target, 'http://127.0.0.1:8080/stub_status')
    assert r['status'] == 200 and 'Active connections' in r['body'], r
    assert fetch(target, 'http://%s:8080/stub_status' % TARGET)['status'] == 0
    assert fetch(mon, 'http://%s:8080/stub_status' % TARGET)['status'] == 0


def test_nginx_responses_by_status_from_the_access_log(mon, target):
    """mtail counts the JSON access log's statuses: a 404 from the stub_status server is not logged (access_log
    off), the default server answers 444 to an unknown name; both ways show up as nginx_http_responses_total."""
    for attempt in range(3):  # noqa: B007
        fetch(target, 'http://127.0.0.1/')
    query = 'nginx_http_responses_total{job="nginx_log", status="444"}'
    result = wait_for(
        '444 responses counted', lambda: api(mon, '/api/v1/query?query=' + urllib.parse.quote(query))['result'], 60
    )[0]
    assert result[0]['metric']['instance'] == TARGET
    assert float(result[0]['value'][1]) >= 3


def test_redis_exporter_password_in_a_private_file_only(target):
    f = target.file('/etc/default/prometheus-redis-exporter')
    assert (f.user, f.mode) == ('prometheus', 0o600)
    assert 'REDIS_PASSWORD=' in target.check_output('cat /etc/default/prometheus-redis-exporter')
    cmdline = target.check_output('cat /proc/$(systemctl show -p MainPID --value prometheus-redis-exporter)/cmdline')
    assert 'mol-Redis-Default-Secret-4711' not in cmdline


def test_grafana_provisioning_rendered(mon):
    """grafana_install is false here (Grafana's repository is not reachable): the provisioning files only."""
    ds = yaml.safe_load(mon.check_output('cat /etc/grafana/provisioning/datasources/ierahkwa.yml'))
    assert ds['datasources'][0]['type'] == 'prometheus'
    assert ds['datasources'][0]['url'] == 'http://127.0.0.1:9090'
    assert ds['datasources'][0]['jsonData']['timeInterval'] == '5s'
    prov = yaml.safe_load(mon.check_output('cat /etc/grafana/provisioning/dashboards/ierahkwa.yml'))
    path = prov['providers'][0]['options']['path']
    for name in os.listdir(DASHBOARDS):
        if name.endswith('.json'):
            with open(os.path.join(DASHBOARDS, name)) as f:
                assert json.loads(mon.check_output('cat %s/%s', path, name)) == json.load(f), name


def test_no_password_in_the_scenario_log():
    with open(os.path.join(molecule_helpers.EPH, 'ansible.log')) as f:
        log = f.read()
    assert len(log) > 10000, 'the Molecule log is missing or short'
    for secret in SECRETS:
        assert secret not in log
