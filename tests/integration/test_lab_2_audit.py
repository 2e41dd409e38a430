"""The readiness audit (playbooks/audit.yml) on the converged lab: every implemented item green, no host changed,
reports written; then with a backup timer disabled on db1 and a near-expiry certificate served by edge1, exactly
those two items red with their evidence; both restored afterwards.

Before auditing, the monthly restore drill (playbooks/restore-test.yml, the operation the checklist asks for) is run
once when the lab has no successful drill recorded yet: a freshly converged lab has never had one, and the audit
rightly reports that red. The drill restores into a scratch instance and removes it; the live cluster is untouched.
"""

import datetime
import json
import os
import socket
import ssl
import subprocess
import time

import pytest
from labkit import ADDRESSES, HOSTS, NET, on, playbook, problems, recap

# What the lab deploys: these items must pass there. Supervision and health pass once apps run under PM2 on app1
# and app2, and are n/a before (the test accepts either).
IMPLEMENTED = {
    ('tls_expiry', 'edge1'),
    ('tls_headers', 'edge1'),
    ('rate_limits', 'edge1'),
    ('backup_schedule', 'db1'),
    ('backup_fresh', 'db1'),
    ('wal_archiving', 'db1'),
    ('restore_test', 'db1'),
    ('replica_sync', 'db2'),
    ('monitoring_targets', 'mon1'),
    ('alert_routing', 'mon1'),
} | {(i, h) for h in HOSTS for i in ('log_rotation', 'secrets_config')}
APP_ITEMS = {(i, h) for h in ('app1', 'app2') for i in ('supervision', 'health')}
TIMER = 'ierahkwa-pgbackrest-full.timer'
SITE = 'api.ierahkwa.lab'
LINK = '/etc/nginx/tls/api'  # the nginx role's link to the site's certificate pair (bootstrap or certbot)
SHORT = '/etc/nginx/tls/.audit-near-expiry'


def audit(tmp_path, name, *args):
    out = tmp_path / name
    r = playbook('playbooks/audit.yml', '-e', 'audit_report_dir=%s' % out, *args, log='audit-' + name)
    card = None
    if (out / 'audit-latest.json').exists():
        card = json.loads((out / 'audit-latest.json').read_text())
    return r, card, out


def statuses(card):
    return {(i['id'], i['host']): i['status'] for i in card['items']}


def evidence(card, item_id, host):
    [i] = [i for i in card['items'] if i['id'] == item_id and i['host'] == host]
    return i['evidence']


def sudo(host, *cmd):
    r = on(host, 'sudo', *cmd)
    assert r.returncode == 0, '%s: %s: %s %s' % (host, ' '.join(cmd), r.stdout, r.stderr)
    return r.stdout


def served_changes(before):
    """The served notAfter once it differs from before (a reload swaps the workers within moments)."""
    for _attempt in range(20):
        end = served_not_after()
        if end != before:
            return end
        time.sleep(0.5)
    return end


def served_not_after():
    """notAfter of the certificate edge1 serves for the site, read from the controller."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(('%s.%d' % (NET, ADDRESSES['edge1']), 443), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname=SITE) as s,
    ):
        der = s.getpeercert(binary_form=True)
    p = subprocess.run(
        ['openssl', 'x509', '-inform', 'DER', '-noout', '-enddate'], input=der, capture_output=True, check=True
    )
    return ssl.cert_time_to_seconds(p.stdout.decode().strip().split('=', 1)[1])


@pytest.fixture(scope='module')
def drilled(converged):
    """A successful restore drill within the last 30 days on db1 (runs the monthly drill if there is none)."""
    r = on('db1', 'sudo', 'cat', '/var/lib/prometheus/node-exporter/pg_restore_test.prom')
    recent = False
    for line in r.stdout.splitlines():
        if line.startswith('ierahkwa_pg_restore_test_last_success_timestamp_seconds'):
            ts = float(line.rsplit(' ', 1)[1])
            recent = ts > datetime.datetime.now(datetime.UTC).timestamp() - 29 * 86400
    if not recent:
        d = playbook('playbooks/restore-test.yml', '--limit', 'db1', log='audit-restore-drill')
        assert d.returncode == 0, problems(d)


@pytest.fixture(scope='module')
def baseline(drilled, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('audit')
    r, card, out = audit(tmp, 'green')
    return r, card, out


def test_converged_lab_scores_every_implemented_item_green(baseline):
    r, card, out = baseline
    assert r.returncode == 0, problems(r) + '\n' + r.stdout[-6000:]
    got = statuses(card)
    red = {k: evidence(card, *k) for k, v in got.items() if v not in ('pass', 'n/a')}
    assert red == {}
    assert {k: got.get(k) for k in IMPLEMENTED} == dict.fromkeys(IMPLEMENTED, 'pass')
    assert all(got[k] in ('pass', 'n/a') for k in APP_ITEMS)
    assert card['summary']['red'] == 0 and card['summary']['result'] == 'pass'
    # nothing else is green without a reason: n/a items name why
    assert all(i['evidence'] for i in card['items'])
    # the scorecard is printed, one line per item
    assert 'PASS tls_expiry' in r.stdout and 'RESULT PASS' in r.stdout


def test_audit_changes_no_host_and_writes_both_reports(baseline):
    r, card, out = baseline
    stats = recap(r.stdout)
    assert sorted(stats) == HOSTS
    assert {h: (s['changed'], s['failed'], s['unreachable']) for h, s in stats.items()} == {h: (0, 0, 0) for h in HOSTS}
    names = sorted(os.listdir(str(out)))
    assert names[-2:] == ['audit-latest.html', 'audit-latest.json'] and len(names) == 4
    stamped = [n for n in names if not n.startswith('audit-latest')]
    assert json.loads((out / stamped[1]).read_text()) == card
    page = (out / 'audit-latest.html').read_text()
    assert page.startswith('<!DOCTYPE html>') and '<script' not in page and '<link' not in page
    assert page.count('<tr class="item"') == len(card['items'])
    for i in card['items']:
        assert 'data-id="%s"' % i['id'] in page


def test_audit_under_check_mode_gives_the_same_scorecard(baseline, tmp_path):
    r, card, out = audit(tmp_path, 'check', '--check')
    assert r.returncode == 0, problems(r)
    assert {h: s['changed'] for h, s in recap(r.stdout).items()} == dict.fromkeys(HOSTS, 0)
    assert statuses(card) == statuses(baseline[1])


def test_disabled_backup_timer_and_near_expiry_certificate_are_exactly_the_red_items(baseline, tmp_path):
    before = statuses(baseline[1])
    original_link = sudo('edge1', 'readlink', LINK).strip()
    original_end = served_not_after()
    try:
        sudo('db1', 'systemctl', 'disable', '--now', TIMER)
        sudo('edge1', 'mkdir', '-p', '-m', '0700', SHORT)
        sudo(
            'edge1', 'openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
            '-nodes', '-days', '5', '-subj', '/CN=' + SITE, '-addext', 'subjectAltName=DNS:' + SITE,
            '-keyout', SHORT + '/privkey.pem', '-out', SHORT + '/fullchain.pem',
        )  # fmt: skip
        sudo('edge1', 'ln', '-sfn', SHORT, LINK)
        sudo('edge1', 'nginx', '-t')
        sudo('edge1', 'systemctl', 'reload', 'nginx')
        end = served_changes(original_end)
        assert end - datetime.datetime.now(datetime.UTC).timestamp() < 6 * 86400
        expiry = datetime.datetime.fromtimestamp(end, datetime.UTC).strftime('%Y-%m-%d %H:%M:%S UTC')

        r, card, out = audit(tmp_path, 'red')
        assert r.returncode == 0, problems(r)
        after = statuses(card)
        # red now and not before (on a lab where something else is already red, that stays as it was)
        red = {k for k, v in after.items() if v == 'fail' and before.get(k) != 'fail'}
        assert red == {('backup_schedule', 'db1'), ('tls_expiry', 'edge1')}
        assert TIMER + ': disabled, inactive' in evidence(card, 'backup_schedule', 'db1')
        assert 'served certificate expires %s' % expiry in evidence(card, 'tls_expiry', 'edge1')
        assert {k: v for k, v in after.items() if k not in red} == {k: v for k, v in before.items() if k not in red}
        printed = ' '.join(r.stdout.split())
        assert 'FAIL tls_expiry edge1' in printed and 'FAIL backup_schedule db1' in printed

        # with audit_fail_on_red the run fails, naming both
        r, card, out = audit(tmp_path, 'red-gate', '-e', 'audit_fail_on_red=true')
        assert r.returncode != 0
        failed = ' '.join(r.stdout.split()).split('red item(s):', 1)[-1]
        assert 'tls_expiry' in failed and 'backup_schedule' in failed
    finally:
        on('db1', 'sudo', 'systemctl', 'enable', '--now', TIMER)
        on('edge1', 'sudo', 'ln', '-sfn', original_link, LINK)
        on('edge1', 'sudo', 'systemctl', 'reload', 'nginx')
        on('edge1', 'sudo', 'rm', '-rf', SHORT)

    # restored: the timer enabled and waiting, the original certificate served, the audit green again
    assert on('db1', 'systemctl', 'is-enabled', TIMER).stdout.strip() == 'enabled'
    assert on('db1', 'systemctl', 'is-active', TIMER).stdout.strip() == 'active'
    assert sudo('edge1', 'readlink', LINK).strip() == original_link
    assert served_changes(end) == original_end
    r, card, out = audit(tmp_path, 'restored')
    assert r.returncode == 0, problems(r)
    # the two items are green again (the rest is compared above; a shared lab may be changing meanwhile)
    assert {k: statuses(card)[k] for k in red} == dict.fromkeys(red, 'pass')
