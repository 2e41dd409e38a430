# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.ierahkwa.platform.plugins.module_utils import audit

NOW = 1796000000.0
DAY = 86400
OPTS = dict(audit.DEFAULTS)


def one(items, item_id):
    [i] = [i for i in items if i['id'] == item_id]
    return i


# ---- evidence as audit_facts returns it from the lab -----------------------------------------------------

UNIT_OK = {'LoadState': 'loaded', 'ActiveState': 'active', 'UnitFileState': 'enabled', 'Restart': 'on-failure'}
SUPERVISION = {
    'pm2': {
        'unit': 'pm2-pm2.service',
        'props': dict(UNIT_OK),
        'apps': [{'name': 'api', 'autorestart': True, 'max_memory_restart': '512M', 'status': 'online'}],
    },
    'services': [{'name': 'ledger.service', 'props': dict(UNIT_OK, Restart='always', MemoryMax='536870912')}],
}
DIFF_ELAPSES = [NOW + 3600 + k * DAY for k in range(8)]
TIMERS = [
    {
        'unit': 'ierahkwa-pgbackrest-diff.timer',
        'UnitFileState': 'enabled',
        'ActiveState': 'active',
        'calendar': 'Mon..Sat *-*-* 01:00:00',
        'elapses': DIFF_ELAPSES,
        'randomized_delay': 600,
    },
    {
        'unit': 'ierahkwa-pgbackrest-full.timer',
        'UnitFileState': 'enabled',
        'ActiveState': 'active',
        'calendar': 'Sun *-*-* 01:00:00',
        'elapses': [NOW + 3600 + 7 * DAY * k for k in range(8)],
        'randomized_delay': 600,
    },
]
AM_CONFIG = """
route:
  receiver: webhook
  routes: []
receivers:
  - name: webhook
    webhook_configs:
      - url: http://127.0.0.1:9099/alerts
"""
LAB = {
    'app1': {
        'now': NOW,
        'supervision': SUPERVISION,
        'health': [{'name': 'api', 'url': 'http://127.0.0.1:3000/health', 'ok': True, 'status': 200}],
        'logrotate': {
            'timer': {'UnitFileState': 'enabled', 'ActiveState': 'active'},
            'conf': True,
            'required': {'/etc/logrotate.d/ierahkwa-pm2': True},
        },
        'secrets': {'scanned': 12, 'protected': 2, 'findings': []},
    },
    'edge1': {
        'now': NOW,
        'tls': {
            'certs': [
                {
                    'server_name': 'api.ierahkwa.lab',
                    'file': '/etc/nginx/tls/api/fullchain.pem',
                    'not_after': NOW + 89 * DAY,
                    'live_not_after': NOW + 89 * DAY,
                    'self_signed': True,
                }
            ],
            'probes': [
                {'server_name': 'api.ierahkwa.lab', 'status': 502, 'headers': list(audit.SECURITY_HEADERS) + ['server']}
            ],
        },
        'rate_limits': {
            'zones': ['login', 'per_api_key', 'per_ip'],
            'http_limit_req': False,
            'servers': [{'server_name': 'api.ierahkwa.lab', 'limit_req': True}],
        },
    },
    'db1': {
        'now': NOW,
        'backup': {'timers': TIMERS, 'newest_backup': NOW - 3 * 3600, 'backups': 1},
        'wal': {
            'archive_mode': 'on',
            'archived_count': 12,
            'failed_count': 0,
            'last_archived': NOW - 60,
            'last_failed': None,
            'in_recovery': False,
        },
        'restore_test': {
            'timer': {'unit': 'ierahkwa-pg-restore-test.timer', 'UnitFileState': 'enabled', 'ActiveState': 'active'},
            'last_success': NOW - 2 * DAY,
            'last_run': NOW - 2 * DAY,
            'last_run_success': 1,
        },
    },
    'db2': {
        'now': NOW,
        'replica': {
            'in_recovery': True,
            'status': 'streaming',
            'sender_host': '10.89.62.31',
            'lag_bytes': 0,
            'receipt_age': 1.2,
        },
    },
    'mon1': {
        'now': NOW,
        'monitoring': {
            'expected_hosts': ['app1', 'db1', 'mon1'],
            'targets': [{'job': 'node', 'instance': h, 'health': 'up'} for h in ('app1', 'db1', 'mon1')]
            + [{'job': 'app', 'instance': 'app1', 'health': 'down', 'lastError': 'refused'}],
        },
        'alerts': {'alertmanagers': ['http://mon1:9093/api/v2/alerts'], 'config_text': AM_CONFIG},
    },
}


def test_the_lab_evidence_is_all_green():
    card = audit.scorecard(LAB, generated_at='2026-11-29T15:00:00+00:00', inventory='lab')
    bad = [(i['id'], i['host'], i['evidence']) for i in card['items'] if i['status'] not in ('pass', 'n/a')]
    assert bad == []
    assert card['summary']['red'] == 0 and card['summary']['result'] == 'pass'
    ids = set(i['id'] for i in card['items'])
    assert ids == set(audit.ITEMS) - {'reachable'}
    # nothing graded pass without evidence, and no fix text on a green item
    assert all(i['evidence'] and not i['fix'] for i in card['items'] if i['status'] == 'pass')


# ---- each rule: pass and fail from realistic evidence -----------------------------------------------------


def test_supervision_pass_fail_and_na():
    assert audit.grade_supervision('app1', SUPERVISION)['status'] == 'pass'
    no_cap = {
        'pm2': dict(
            SUPERVISION['pm2'],
            apps=[{'name': 'api', 'autorestart': True, 'max_memory_restart': None, 'status': 'online'}],
        ),
        'services': [],
    }
    i = audit.grade_supervision('app1', no_cap)
    assert i['status'] == 'fail' and 'pm2 app api: no max_memory_restart' in i['evidence'] and i['fix']
    unbounded = {
        'pm2': None,
        'services': [{'name': 'ledger.service', 'props': dict(UNIT_OK, Restart='no', MemoryMax='infinity')}],
    }
    i = audit.grade_supervision('app1', unbounded)
    assert i['status'] == 'fail' and 'Restart=no' in i['evidence'] and 'no MemoryMax' in i['evidence']
    stopped = {'pm2': dict(SUPERVISION['pm2'], props=dict(UNIT_OK, ActiveState='failed')), 'services': []}
    assert 'pm2-pm2.service: failed' in audit.grade_supervision('app1', stopped)['evidence']
    i = audit.grade_supervision(
        'app1', {'pm2': {'unit': 'pm2-pm2.service', 'props': UNIT_OK, 'apps': []}, 'services': []}
    )
    assert i['status'] == 'n/a' and 'no PM2 app' in i['evidence']


def test_health_pass_fail_and_na():
    ok = [{'name': 'api', 'url': 'http://127.0.0.1:3000/health', 'ok': True, 'status': 200}]
    assert audit.grade_health('app1', ok)['status'] == 'pass'
    down = ok + [
        {
            'name': 'ledger',
            'url': 'http://127.0.0.1:5000/health',
            'ok': False,
            'status': None,
            'error': 'URLError: [Errno 111] Connection refused',
        }
    ]
    i = audit.grade_health('app1', down)
    assert i['status'] == 'fail' and 'ledger http://127.0.0.1:5000/health: URLError' in i['evidence']
    assert audit.grade_health('app1', [])['status'] == 'n/a'


def test_tls_expiry_pass_and_fail_names_the_date():
    assert audit.grade_host('edge1', LAB['edge1'], OPTS)[0]['status'] == 'pass'
    soon = {
        'now': NOW,
        'certs': [
            {
                'server_name': 'api.ierahkwa.lab',
                'file': '/etc/nginx/tls/api/fullchain.pem',
                'not_after': NOW + 89 * DAY,
                'live_not_after': NOW + 5 * DAY,
            }
        ],
    }
    i = audit.grade_tls_expiry('edge1', soon, OPTS)
    assert i['status'] == 'fail'
    assert 'served certificate expires %s (5.0 days left)' % audit.utc(NOW + 5 * DAY) in i['evidence']
    assert '(minimum 14 days)' in i['evidence']
    # the served one is fine but the file on disk (the next reload) is not
    stale_file = {
        'now': NOW,
        'certs': [{'server_name': 'x', 'file': '/f', 'not_after': NOW + DAY, 'live_not_after': NOW + 60 * DAY}],
    }
    assert 'file /f' in audit.grade_tls_expiry('edge1', stale_file, OPTS)['evidence']
    unreadable = {'now': NOW, 'certs': [{'server_name': 'x', 'file': '/f', 'error': 'served: ConnectionRefusedError'}]}
    assert audit.grade_tls_expiry('edge1', unreadable, OPTS)['status'] == 'fail'
    assert audit.grade_tls_expiry('edge1', {'now': NOW, 'certs': []}, OPTS)['status'] == 'n/a'


def test_tls_headers_pass_and_fail():
    assert audit.grade_tls_headers('edge1', LAB['edge1']['tls'])['status'] == 'pass'
    few = {'probes': [{'server_name': 'api', 'status': 200, 'headers': ['strict-transport-security', 'server']}]}
    i = audit.grade_tls_headers('edge1', few)
    assert i['status'] == 'fail' and 'missing content-security-policy, x-frame-options' in i['evidence']
    refused = {'probes': [{'server_name': 'api', 'error': 'ConnectionRefusedError: refused'}]}
    assert 'no HTTPS answer' in audit.grade_tls_headers('edge1', refused)['evidence']


def test_rate_limits_pass_and_fail():
    assert audit.grade_rate_limits('edge1', LAB['edge1']['rate_limits'])['status'] == 'pass'
    i = audit.grade_rate_limits(
        'edge1',
        dict(
            LAB['edge1']['rate_limits'],
            servers=[{'server_name': 'api', 'limit_req': True}, {'server_name': 'admin', 'limit_req': False}],
        ),
    )
    assert i['status'] == 'fail' and 'no limit_req in site(s) admin' in i['evidence']
    i = audit.grade_rate_limits('edge1', {'zones': [], 'servers': [{'server_name': 'api', 'limit_req': False}]})
    assert i['status'] == 'fail' and 'no limit_req_zone' in i['evidence']


def test_backup_schedule_pass_and_fail_names_the_timer():
    assert audit.grade_backup_schedule('db1', {'timers': TIMERS})['status'] == 'pass'
    off = [TIMERS[0], dict(TIMERS[1], UnitFileState='disabled', ActiveState='inactive')]
    i = audit.grade_backup_schedule('db1', {'timers': off})
    assert i['status'] == 'fail'
    assert i['evidence'].startswith('ierahkwa-pgbackrest-full.timer: disabled, inactive')
    assert i['fix'] == 'systemctl enable --now ierahkwa-pgbackrest-full.timer'
    assert audit.grade_backup_schedule('db2', {'timers': []})['status'] == 'n/a'


def test_backup_fresh_pass_and_fail_against_the_schedule():
    ev = {'now': NOW, 'timers': TIMERS, 'newest_backup': NOW - 20 * 3600, 'backups': 3}
    i = audit.grade_backup_fresh('db1', ev, OPTS)
    assert i['status'] == 'pass' and 'schedule allows 25.2 h' in i['evidence']  # 1 day + 10 min delay + 1 h grace
    i = audit.grade_backup_fresh('db1', dict(ev, newest_backup=NOW - 3 * DAY), OPTS)
    assert i['status'] == 'fail' and '3.0 days old' in i['evidence']
    assert audit.grade_backup_fresh('db1', dict(ev, newest_backup=None), OPTS)['status'] == 'fail'
    # with only the weekly full timer enabled, a 3-day-old backup is within its schedule
    weekly = [dict(TIMERS[0], UnitFileState='disabled'), TIMERS[1]]
    assert (
        audit.grade_backup_fresh('db1', dict(ev, timers=weekly, newest_backup=NOW - 3 * DAY), OPTS)['status'] == 'pass'
    )


def test_expected_interval_is_the_longest_gap_of_the_enabled_timers():
    mon_sat = [NOW + k * DAY for k in (0, 1, 2, 3, 4, 5, 7, 8)]  # no Sunday
    assert audit.expected_interval([dict(TIMERS[0], elapses=mon_sat, randomized_delay=0)]) == 2 * DAY
    assert (
        audit.expected_interval(
            [
                dict(TIMERS[0], elapses=mon_sat, randomized_delay=0),
                dict(TIMERS[1], elapses=[NOW + 6 * DAY], randomized_delay=0),
            ]
        )
        == DAY
    )
    assert audit.expected_interval([dict(TIMERS[0], ActiveState='inactive')]) is None


def test_wal_archiving_pass_fail_and_replica():
    ok = LAB['db1']['wal']
    assert audit.grade_wal('db1', ok)['status'] == 'pass'
    failing = dict(ok, failed_count=4, last_failed=NOW - 10)
    i = audit.grade_wal('db1', failing)
    assert i['status'] == 'fail' and '4 failures, last failure' in i['evidence']
    assert audit.grade_wal('db1', dict(ok, archive_mode='off'))['status'] == 'fail'
    assert audit.grade_wal('db1', dict(ok, archived_count=0, last_archived=None))['status'] == 'fail'
    assert audit.grade_wal('db2', dict(ok, in_recovery=True))['status'] == 'n/a'


def test_restore_test_pass_and_fail():
    ev = dict(LAB['db1']['restore_test'], now=NOW)
    assert audit.grade_restore_test('db1', ev, OPTS)['status'] == 'pass'
    old = dict(ev, last_success=NOW - 45 * DAY)
    i = audit.grade_restore_test('db1', old, OPTS)
    assert i['status'] == 'fail' and '45.0 days ago, limit 30 days' in i['evidence']
    never = dict(ev, last_success=None, last_run=None, last_run_success=None)
    assert 'no successful restore drill' in audit.grade_restore_test('db1', never, OPTS)['evidence']
    broken = dict(ev, last_run_success=0, last_run=NOW - 3600)
    assert 'FAILED' in audit.grade_restore_test('db1', broken, OPTS)['evidence']


def test_replica_pass_and_fail():
    assert audit.grade_replica('db2', LAB['db2']['replica'], OPTS)['status'] == 'pass'
    lagging = dict(LAB['db2']['replica'], lag_bytes=64 * 1024 * 1024)
    assert audit.grade_replica('db2', lagging, OPTS)['status'] == 'fail'
    gone = {'in_recovery': True, 'status': None, 'sender_host': None, 'lag_bytes': 0, 'receipt_age': None}
    i = audit.grade_replica('db2', gone, OPTS)
    assert i['status'] == 'fail' and 'wal receiver absent' in i['evidence']
    assert audit.grade_replica('db1', {'in_recovery': False}, OPTS)['status'] == 'n/a'


def test_monitoring_pass_and_fail():
    ev = LAB['mon1']['monitoring']
    i = audit.grade_monitoring('mon1', ev, OPTS)
    assert i['status'] == 'pass' and 'other targets down (not graded): app/app1' in i['evidence']
    missing = dict(ev, expected_hosts=ev['expected_hosts'] + ['db2'])
    i = audit.grade_monitoring('mon1', missing, OPTS)
    assert i['status'] == 'fail' and 'not scraped: db2' in i['evidence']
    down = dict(
        ev,
        targets=[
            dict(t, health='down', lastError='context deadline exceeded') if t['instance'] == 'db1' else t
            for t in ev['targets']
        ],
    )
    assert 'down: db1 (context deadline exceeded)' in audit.grade_monitoring('mon1', down, OPTS)['evidence']


def test_alert_routing_pass_and_fail():
    assert audit.grade_alerts('mon1', LAB['mon1']['alerts'])['status'] == 'pass'
    nowhere = dict(LAB['mon1']['alerts'], config_text='route: {receiver: blackhole}\nreceivers: [{name: blackhole}]\n')
    i = audit.grade_alerts('mon1', nowhere)
    assert i['status'] == 'fail' and 'receiver blackhole delivers nowhere' in i['evidence']
    unsent = dict(LAB['mon1']['alerts'], alertmanagers=[])
    assert 'Prometheus sends alerts to no Alertmanager' in audit.grade_alerts('mon1', unsent)['evidence']


def test_log_rotation_pass_and_fail():
    ok = LAB['app1']['logrotate']
    assert audit.grade_logrotate('app1', ok)['status'] == 'pass'
    i = audit.grade_logrotate(
        'app1',
        dict(
            ok,
            timer={'UnitFileState': 'disabled', 'ActiveState': 'inactive'},
            required={'/etc/logrotate.d/ierahkwa-pm2': False},
        ),
    )
    assert i['status'] == 'fail'
    assert (
        'logrotate.timer disabled, inactive' in i['evidence']
        and 'missing /etc/logrotate.d/ierahkwa-pm2' in i['evidence']
    )


def test_secrets_pass_and_fail():
    assert audit.grade_secrets('db1', {'scanned': 40, 'protected': 3, 'findings': []})['status'] == 'pass'
    leak = {
        'scanned': 40,
        'protected': 2,
        'findings': [
            {
                'path': '/etc/pgbackrest/pgbackrest.conf',
                'mode': '0644',
                'owner': 'postgres:postgres',
                'kind': 'a cipher-pass value',
                'line': 7,
            }
        ],
    }
    i = audit.grade_secrets('db1', leak)
    assert i['status'] == 'fail'
    assert i['evidence'] == (
        '/etc/pgbackrest/pgbackrest.conf (0644 postgres:postgres) holds a cipher-pass value at line 7'
    )


# ---- scorecard, JSON and HTML -------------------------------------------------------------------------


def test_unreachable_host_and_absent_tiers():
    card = audit.scorecard({'app1': LAB['app1'], 'gone': None})
    assert one(card['items'], 'reachable')['host'] == 'gone'
    assert one(card['items'], 'reachable')['status'] == 'fail'
    # no monitoring host in this inventory: those two fail for the whole inventory; other absent tiers are n/a
    assert one(card['items'], 'monitoring_targets')['host'] == '(inventory)'
    assert one(card['items'], 'monitoring_targets')['status'] == 'fail'
    assert one(card['items'], 'replica_sync')['status'] == 'n/a'
    assert card['summary']['red'] == 3


def test_collection_error_fails_the_section_items():
    items = audit.grade_host('edge1', {'now': NOW, 'tls': {'error': 'collecting tls failed: OSError: x'}})
    assert [(i['id'], i['status']) for i in items] == [('tls_expiry', 'fail'), ('tls_headers', 'fail')]


def test_all_items_lists_every_absent_tier_as_na():
    items = audit.grade_host('app1', LAB['app1'], include_absent=True)
    assert set(i['id'] for i in items) == set(audit.ITEMS) - {'reachable'}
    assert one(items, 'wal_archiving') == dict(
        one(items, 'wal_archiving'), status='n/a', evidence='not a PostgreSQL primary (group db_primary)'
    )


def test_json_shape():
    card = audit.scorecard(LAB, generated_at='2026-11-29T15:00:00+00:00', inventory='lab')
    data = json.loads(audit.render_json(card))
    assert set(data) == {'generated_at', 'inventory', 'summary', 'items'}
    assert set(data['summary']) == {'counts', 'total', 'red', 'result'}
    assert set(data['summary']['counts']) == set(audit.STATUSES)
    assert data['summary']['total'] == len(data['items'])
    for i in data['items']:
        assert set(i) == {'id', 'checklist_ref', 'title', 'status', 'host', 'evidence', 'fix'}
        assert i['status'] in audit.STATUSES


def test_html_is_self_contained_and_escapes_evidence():
    evil = dict(
        LAB['app1'],
        health=[
            {
                'name': '<script>alert(1)</script>',
                'url': 'http://x/?a=1&b="2"',
                'ok': False,
                'error': "<img src=x onerror='boom'>",
            }
        ],
    )
    card = audit.scorecard({'app1': evil, 'host<b>': LAB['db2']}, inventory='<i>lab</i>')
    page = audit.render_html(card)
    assert '<script' not in page and '<img' not in page and '<b>' not in page and '<i>lab' not in page
    assert '&lt;script&gt;alert(1)&lt;/script&gt;' in page
    assert 'a=1&amp;b=&quot;2&quot;' in page
    assert 'host&lt;b&gt;' in page
    # no external asset: no link, no src, no url() in the CSS
    assert '<link' not in page and 'src=' not in page.replace('src=x', '') and 'url(' not in page
    assert page.count('<tr class="item"') == len(card['items'])
    assert 'data-status="fail"' in page and '<style>' in page


@pytest.mark.parametrize('status', ['ok', 'red', ''])
def test_unknown_status_is_refused(status):
    with pytest.raises(ValueError):
        audit.item('health', 'h', status, 'x')


def test_scorecard_lines():
    lines = audit.scorecard_lines(audit.scorecard({'db2': LAB['db2']}))
    assert any(line.startswith('PASS replica_sync') and 'db2' in line for line in lines)
