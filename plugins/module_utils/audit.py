# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The readiness audit's grading: the production checklist as code (playbooks/audit.yml).

Pure Python, no I/O. ``grade_host`` takes the evidence one host returned from the ``audit_facts`` module
(a dict of sections, each present only where the tier or feature was found) and returns the checklist items
of that host, each a dict {id, checklist_ref, title, status, host, evidence, fix} with status one of
pass, fail, warn or n/a. ``scorecard`` grades every host and adds a summary; ``render_json`` and
``render_html`` turn a scorecard into the JSON and the self-contained HTML report.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import time
from html import escape

PASS, FAIL, WARN, NA = 'pass', 'fail', 'warn', 'n/a'
STATUSES = (PASS, FAIL, WARN, NA)
DAY = 86400

# id -> (checklist reference, title, how to fix)
ITEMS = {
    'reachable': (
        '-',
        'Host reachable for the audit',
        'Check the host and the SSH access of the admin user (ansible -m ping); until then nothing is known.',
    ),
    'supervision': (
        '1.2-1.4, 1.7',
        'Every service supervised with auto-restart and a memory cap',
        'Deploy the apps with ierahkwa.platform.pm2 (autorestart, max_memory_restart) or ierahkwa.platform.service '
        '(Restart=always, MemoryMax); start them with playbooks/start-production.yml.',
    ),
    'health': (
        '1.6, 4.1',
        'Health endpoints answering',
        'Check the app (journalctl -u <unit>, pm2 logs); the health role restarts it after consecutive failures.',
    ),
    'tls_expiry': (
        '5.2, 5.3',
        'TLS certificates valid for more than the minimum days',
        'Renew: certbot renew (certbot.timer), or replace the commercial certificate; then reload nginx.',
    ),
    'tls_headers': (
        '5.4',
        'Security headers on HTTPS responses',
        'Set nginx_security_headers / nginx_hsts_* and re-run playbooks/edge.yml.',
    ),
    'rate_limits': (
        '5.5, 10.1',
        'Rate limits active on every TLS site',
        'Set nginx_limit_req_zones and nginx_site_limit_req and re-run playbooks/edge.yml.',
    ),
    'backup_schedule': (
        '2.6, 6.2',
        'Backup timers enabled and running',
        'systemctl enable --now <timer>, or re-run playbooks/data.yml (pgbackrest role).',
    ),
    'backup_fresh': (
        '2.6, 6.2, 6.S1',
        'Newest backup younger than its schedule',
        'Look at journalctl -u ierahkwa-pgbackrest@<kind>.service; take one now with playbooks/backup.yml.',
    ),
    'wal_archiving': (
        '6.7',
        'WAL archiving working',
        'Check archive_command and pgbackrest check; journalctl -u postgresql@15-main; see docs/data-tier.md.',
    ),
    'restore_test': (
        '6.6',
        'Restore test passed within the last days',
        'Run playbooks/restore-test.yml; keep ierahkwa-pg-restore-test.timer enabled.',
    ),
    'replica_sync': (
        '2.5',
        'Replica streaming and in sync',
        'Check pg_stat_wal_receiver on the replica and the network to the primary; re-run playbooks/data.yml.',
    ),
    'monitoring_targets': (
        '4.2, 4.6',
        'Monitoring scrapes every host',
        'Re-run playbooks/monitoring.yml; check node_exporter on the missing or down hosts and the firewall.',
    ),
    'alert_routing': (
        '4.4',
        'Alerts routed to a receiver',
        'Set alertmanager_receivers/alertmanager_default_receiver and re-run playbooks/monitoring.yml.',
    ),
    'log_rotation': (
        '3.3',
        'Log rotation configured',
        'Re-run playbooks/bootstrap.yml (logrotate.timer, /etc/logrotate.conf) and the role of the missing file.',
    ),
    'secrets_config': (
        '5.8, 8.2',
        'No secrets in world-readable configuration',
        'chmod o-rwx the file (0640/0600, owned by the service user) and rotate the exposed secret '
        '(playbooks/rotate-secrets.yml).',
    ),
}

SECURITY_HEADERS = (
    'strict-transport-security',
    'content-security-policy',
    'x-frame-options',
    'x-content-type-options',
    'referrer-policy',
)

DEFAULTS = {
    'tls_min_days': 14,
    'restore_test_max_days': 30,
    'replica_max_lag_bytes': 16 * 1024 * 1024,
    'backup_grace_seconds': 3600,
    'memory_cap_max_bytes': None,
}


def item(item_id, host, status, evidence, fix=None):
    """One scorecard row."""
    ref, title, default_fix = ITEMS[item_id]
    if status not in STATUSES:
        raise ValueError('unknown status %r' % (status,))
    return {
        'id': item_id,
        'checklist_ref': ref,
        'title': title,
        'status': status,
        'host': host,
        'evidence': evidence,
        'fix': '' if status in (PASS, NA) else (fix or default_fix),
    }


def _days(seconds):
    return '%.1f days' % (seconds / float(DAY))


def _age(seconds):
    if seconds < 3600:
        return '%d min' % (seconds // 60)
    if seconds < 2 * DAY:
        return '%.1f h' % (seconds / 3600.0)
    return _days(seconds)


def utc(ts):
    """An epoch as 2026-11-29 14:00:00 UTC."""
    return time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(ts))


def _unit_ok(props, restart_values=('always', 'on-failure', 'on-abnormal', 'on-abort', 'on-watchdog')):
    """(ok, problems) for a supervised systemd unit's properties."""
    problems = []
    if props.get('LoadState', 'loaded') != 'loaded':
        problems.append('not loaded (%s)' % props.get('LoadState'))
    if props.get('ActiveState') != 'active':
        problems.append('%s' % (props.get('ActiveState') or 'unknown state'))
    if props.get('UnitFileState') not in ('enabled', 'static', 'enabled-runtime', 'generated', 'alias'):
        problems.append('not enabled (%s)' % (props.get('UnitFileState') or 'unknown'))
    if props.get('Restart') not in restart_values:
        problems.append('Restart=%s' % (props.get('Restart') or 'no'))
    return not problems, problems


# ---- graders: each takes one section of a host's evidence ------------------------------------------------


def grade_supervision(host, ev, opts=None):
    """ev: {pm2: {unit, props, apps: [{name, autorestart, max_memory_restart, status}]} | None,
    services: [{name, props}]}."""
    pm2 = ev.get('pm2') or {}
    apps = pm2.get('apps') or []
    services = ev.get('services') or []
    if not apps and not services:
        return item('supervision', host, NA, 'no PM2 app and no ierahkwa service unit deployed on this host')
    bad, good = [], []
    if apps:
        ok, problems = _unit_ok(pm2.get('props') or {})
        unit = pm2.get('unit', 'pm2')
        (good if ok else bad).append(
            '%s: %s' % (unit, 'active, Restart=%s' % pm2['props'].get('Restart') if ok else ', '.join(problems))
        )
        for a in apps:
            problems = []
            if a.get('autorestart') is False:
                problems.append('autorestart false')
            if not a.get('max_memory_restart'):
                problems.append('no max_memory_restart')
            if a.get('status') not in (None, 'online'):
                problems.append('status %s' % a.get('status'))
            desc = 'pm2 app %s' % a.get('name')
            if problems:
                bad.append('%s: %s' % (desc, ', '.join(problems)))
            else:
                good.append('%s: online, max_memory_restart %s' % (desc, a.get('max_memory_restart')))
    for s in services:
        props = s.get('props') or {}
        ok, problems = _unit_ok(props)
        if props.get('MemoryMax') in (None, '', 'infinity'):
            problems.append('no MemoryMax')
            ok = False
        if ok:
            good.append(
                '%s: active, Restart=%s, MemoryMax=%s' % (s['name'], props.get('Restart'), props.get('MemoryMax'))
            )
        else:
            bad.append('%s: %s' % (s['name'], ', '.join(problems)))
    if bad:
        return item('supervision', host, FAIL, '; '.join(bad + good))
    return item('supervision', host, PASS, '; '.join(good))


def grade_health(host, ev, opts=None):
    """ev: [{name, url, ok, status, error}] (the health role's probes of this host, probed again now)."""
    if not ev:
        return item('health', host, NA, 'no health probe configured on this host (health role)')
    bad = [
        '%s %s: %s' % (p['name'], p['url'], p.get('error') or 'status %s' % p.get('status'))
        for p in ev
        if not p.get('ok')
    ]
    good = ['%s %s: %s' % (p['name'], p['url'], p.get('status')) for p in ev if p.get('ok')]
    if bad:
        return item('health', host, FAIL, '; '.join(bad + good))
    return item('health', host, PASS, '; '.join(good))


def grade_tls_expiry(host, ev, opts):
    """ev: {certs: [{server_name, file, not_after, live_not_after, self_signed, error}], now}."""
    certs = ev.get('certs') or []
    if not certs:
        return item('tls_expiry', host, NA, 'no TLS site in the nginx configuration')
    now = ev['now']
    minimum = opts['tls_min_days']
    bad, good = [], []
    for c in certs:
        name = c.get('server_name') or c.get('file')
        ends = [x for x in (c.get('live_not_after'), c.get('not_after')) if x is not None]
        if c.get('error') and not ends:
            bad.append('%s: %s' % (name, c['error']))
            continue
        end = min(ends)
        left = end - now
        where = 'served' if c.get('live_not_after') == end else 'file %s' % c.get('file')
        text = '%s: %s certificate expires %s (%s left%s)' % (
            name,
            where,
            utc(end),
            _days(left),
            ', self-signed' if c.get('self_signed') else '',
        )
        if c.get('error'):
            text += ' [%s]' % c['error']
        (bad if left < minimum * DAY else good).append(text)
    if bad:
        return item('tls_expiry', host, FAIL, '; '.join(bad) + ' (minimum %d days)' % minimum)
    return item('tls_expiry', host, PASS, '; '.join(good))


def grade_tls_headers(host, ev, opts=None):
    """ev: {probes: [{server_name, status, headers: [lower-case names], error}]}."""
    probes = ev.get('probes') or []
    if not probes:
        return item('tls_headers', host, NA, 'no TLS site in the nginx configuration')
    bad, good = [], []
    for p in probes:
        if p.get('error'):
            bad.append('%s: no HTTPS answer (%s)' % (p['server_name'], p['error']))
            continue
        have = set(h.lower() for h in p.get('headers') or [])
        missing = [h for h in SECURITY_HEADERS if h not in have]
        if missing:
            bad.append('%s (status %s): missing %s' % (p['server_name'], p.get('status'), ', '.join(missing)))
        else:
            good.append('%s (status %s): %s' % (p['server_name'], p.get('status'), ', '.join(SECURITY_HEADERS)))
    if bad:
        return item('tls_headers', host, FAIL, '; '.join(bad + good))
    return item('tls_headers', host, PASS, '; '.join(good))


def grade_rate_limits(host, ev, opts=None):
    """ev: {zones: [names], http_limit_req: bool, servers: [{server_name, limit_req: bool}]}."""
    servers = ev.get('servers') or []
    if not servers:
        return item('rate_limits', host, NA, 'no TLS site in the nginx configuration')
    zones = ev.get('zones') or []
    if not zones:
        return item('rate_limits', host, FAIL, 'no limit_req_zone defined')
    unlimited = [s['server_name'] for s in servers if not s.get('limit_req') and not ev.get('http_limit_req')]
    if unlimited:
        return item(
            'rate_limits',
            host,
            FAIL,
            'no limit_req in site(s) %s (zones: %s)' % (', '.join(unlimited), ', '.join(zones)),
        )
    return item(
        'rate_limits',
        host,
        PASS,
        'zones %s; limit_req in %s' % (', '.join(zones), ', '.join(s['server_name'] for s in servers)),
    )


def _timer_ok(t):
    return t.get('UnitFileState') == 'enabled' and t.get('ActiveState') == 'active'


def grade_backup_schedule(host, ev, opts=None):
    """ev: {timers: [{unit, UnitFileState, ActiveState, calendar}]}."""
    timers = ev.get('timers') or []
    if not timers:
        return item('backup_schedule', host, NA, 'no backup timer on this host')
    bad = ['%s: %s, %s' % (t['unit'], t.get('UnitFileState'), t.get('ActiveState')) for t in timers if not _timer_ok(t)]
    good = ['%s: %s (%s)' % (t['unit'], t.get('ActiveState'), t.get('calendar')) for t in timers if _timer_ok(t)]
    if bad:
        return item(
            'backup_schedule',
            host,
            FAIL,
            '; '.join(bad + good),
            fix='systemctl enable --now %s' % (' '.join(t['unit'] for t in timers if not _timer_ok(t))),
        )
    return item('backup_schedule', host, PASS, '; '.join(good))


def expected_interval(timers):
    """The longest gap between consecutive elapses of the enabled backup timers together (seconds), from each
    timer's next elapses (systemd-analyze calendar --iterations), plus its randomized delay; None if unknown."""
    elapses = []
    delay = 0
    horizon = None
    for t in timers:
        if not _timer_ok(t) or not t.get('elapses'):
            continue
        elapses.extend(t['elapses'])
        # the union is only complete up to the last elapse the shortest list reaches
        horizon = max(t['elapses']) if horizon is None else min(horizon, max(t['elapses']))
        delay = max(delay, t.get('randomized_delay') or 0)
    elapses = sorted(set(e for e in elapses if e <= horizon)) if elapses else []
    if len(elapses) < 2:
        return None
    gaps = [b - a for a, b in zip(elapses, elapses[1:])]  # noqa: B905 (Python 3.8 targets)
    return max(gaps) + delay


def grade_backup_fresh(host, ev, opts):
    """ev: {timers, newest_backup (epoch or None), backups (count), now, error}."""
    timers = ev.get('timers') or []
    if not timers and not ev.get('backups'):
        return item('backup_fresh', host, NA, 'no backups run on this host')
    if ev.get('error') and ev.get('newest_backup') is None:
        return item('backup_fresh', host, FAIL, 'backup list unreadable: %s' % ev['error'])
    if not ev.get('newest_backup'):
        return item('backup_fresh', host, FAIL, 'no backup in the repository')
    age = ev['now'] - ev['newest_backup']
    interval = expected_interval(timers)
    if interval is None:
        return item(
            'backup_fresh',
            host,
            FAIL,
            'newest backup %s (%s old); no enabled timer gives a schedule' % (utc(ev['newest_backup']), _age(age)),
        )
    allowed = interval + opts['backup_grace_seconds']
    text = 'newest of %d backup(s) %s, %s old (schedule allows %s)' % (
        ev.get('backups') or 0,
        utc(ev['newest_backup']),
        _age(age),
        _age(allowed),
    )
    return item('backup_fresh', host, PASS if age <= allowed else FAIL, text)


def grade_wal(host, ev, opts=None):
    """ev: {archive_mode, archived_count, failed_count, last_archived, last_failed (epochs), in_recovery}."""
    if ev.get('error'):
        return item('wal_archiving', host, FAIL, 'pg_stat_archiver unreadable: %s' % ev['error'])
    if ev.get('in_recovery'):
        return item('wal_archiving', host, NA, 'replica: the primary archives the WAL')
    if ev.get('archive_mode') not in ('on', 'always'):
        return item('wal_archiving', host, FAIL, 'archive_mode = %s' % ev.get('archive_mode'))
    archived = ev.get('archived_count') or 0
    last_ok = ev.get('last_archived') or 0
    last_failed = ev.get('last_failed') or 0
    text = 'archive_mode %s, %d segments archived, last %s, %d failures%s' % (
        ev['archive_mode'],
        archived,
        utc(last_ok) if last_ok else 'never',
        ev.get('failed_count') or 0,
        ', last failure %s' % utc(last_failed) if last_failed else '',
    )
    if archived == 0 or last_failed > last_ok:
        return item('wal_archiving', host, FAIL, text)
    return item('wal_archiving', host, PASS, text)


def grade_restore_test(host, ev, opts):
    """ev: {timer: {unit, UnitFileState, ActiveState}, last_success, last_run, last_run_success, now}."""
    timer = ev.get('timer') or {}
    if not timer and ev.get('last_run') is None:
        return item('restore_test', host, NA, 'no restore drill on this host')
    limit = opts['restore_test_max_days']
    parts = []
    ok = True
    if timer:
        parts.append('%s: %s, %s' % (timer.get('unit'), timer.get('UnitFileState'), timer.get('ActiveState')))
        ok = _timer_ok(timer)
    last = ev.get('last_success')
    if not last:
        parts.insert(0, 'no successful restore drill recorded')
        ok = False
    else:
        age = ev['now'] - last
        parts.insert(0, 'last successful drill %s (%s ago, limit %d days)' % (utc(last), _age(age), limit))
        ok = ok and age <= limit * DAY
    if ev.get('last_run_success') == 0:
        parts.append('the last drill (%s) FAILED' % utc(ev.get('last_run') or 0))
        ok = False
    return item('restore_test', host, PASS if ok else FAIL, '; '.join(parts))


def grade_replica(host, ev, opts):
    """ev: {in_recovery, status, sender_host, lag_bytes, receipt_age, error}."""
    if not ev.get('in_recovery'):
        return item('replica_sync', host, NA, 'not a replica')
    if ev.get('error'):
        return item('replica_sync', host, FAIL, 'pg_stat_wal_receiver unreadable: %s' % ev['error'])
    lag = ev.get('lag_bytes')
    text = 'wal receiver %s from %s, replay lag %s bytes, last message %s s ago' % (
        ev.get('status') or 'absent',
        ev.get('sender_host') or '?',
        lag if lag is not None else '?',
        '%.0f' % ev['receipt_age'] if ev.get('receipt_age') is not None else '?',
    )
    ok = ev.get('status') == 'streaming' and lag is not None and lag <= opts['replica_max_lag_bytes']
    return item('replica_sync', host, PASS if ok else FAIL, text)


def grade_monitoring(host, ev, opts):
    """ev: {targets: [{job, instance, health, lastError}], error}; opts['expected_hosts']: hosts node must scrape."""
    if ev.get('error'):
        return item('monitoring_targets', host, FAIL, 'Prometheus targets API unreadable: %s' % ev['error'])
    targets = ev.get('targets') or []
    expected = sorted(ev.get('expected_hosts') or opts.get('expected_hosts') or [])
    node = dict((t.get('instance'), t) for t in targets if t.get('job') == 'node')
    missing = [h for h in expected if h not in node]
    down = [
        '%s (%s)' % (h, node[h].get('lastError') or node[h].get('health'))
        for h in sorted(node)
        if node[h].get('health') != 'up'
    ]
    other_down = [
        '%s/%s' % (t.get('job'), t.get('instance'))
        for t in targets
        if t.get('job') != 'node' and t.get('health') != 'up'
    ]
    up = [h for h in expected if h in node and node[h].get('health') == 'up']
    text = 'job node: %d of %d expected hosts up' % (len(up), len(expected))
    if missing:
        text += '; not scraped: %s' % ', '.join(missing)
    if down:
        text += '; down: %s' % ', '.join(down)
    text += '; %d targets in all' % len(targets)
    if other_down:
        text += '; other targets down (not graded): %s' % ', '.join(other_down)
    return item('monitoring_targets', host, FAIL if missing or down or not expected else PASS, text)


def grade_alerts(host, ev, opts=None):
    """ev: {alertmanagers: [urls] (Prometheus), config: parsed Alertmanager config dict, error}."""
    if ev.get('error'):
        return item('alert_routing', host, FAIL, ev['error'])
    config = ev.get('config')
    if config is None and ev.get('config_text'):
        import yaml  # noqa: PLC0415 (graded on the controller, where ansible-core brings PyYAML)

        try:
            config = yaml.safe_load(ev['config_text'])
        except yaml.YAMLError as e:
            return item('alert_routing', host, FAIL, 'Alertmanager configuration unreadable: %s' % e)
    config = config or {}
    route = config.get('route') or {}
    receivers = dict((r.get('name'), r) for r in config.get('receivers') or [])
    default = route.get('receiver')
    problems = []
    kinds = []
    if not ev.get('alertmanagers'):
        problems.append('Prometheus sends alerts to no Alertmanager')
    if not default:
        problems.append('the route has no receiver')
    elif default not in receivers:
        problems.append('route receiver %s is not defined' % default)
    else:
        kinds = sorted(k for k, v in receivers[default].items() if k.endswith('_configs') and v)
        if not kinds:
            problems.append('receiver %s delivers nowhere (no *_configs)' % default)
    text = 'Prometheus -> %s; route -> %s (%s); %d sub-route(s)' % (
        ', '.join(ev.get('alertmanagers') or []) or 'none',
        default or 'none',
        ', '.join(kinds) or 'no delivery',
        len(route.get('routes') or []),
    )
    if problems:
        return item('alert_routing', host, FAIL, '; '.join(problems) + ' [' + text + ']')
    return item('alert_routing', host, PASS, text)


def grade_logrotate(host, ev, opts=None):
    """ev: {timer: {UnitFileState, ActiveState}, conf: bool, required: {path: exists}}."""
    timer = ev.get('timer') or {}
    problems = []
    if not _timer_ok(timer):
        problems.append('logrotate.timer %s, %s' % (timer.get('UnitFileState'), timer.get('ActiveState')))
    if not ev.get('conf'):
        problems.append('/etc/logrotate.conf missing')
    missing = sorted(p for p, present in (ev.get('required') or {}).items() if not present)
    if missing:
        problems.append('missing %s' % ', '.join(missing))
    present = sorted(p for p, there in (ev.get('required') or {}).items() if there)
    text = 'logrotate.timer %s; /etc/logrotate.conf%s' % (timer.get('ActiveState'), ''.join('; ' + p for p in present))
    if problems:
        return item('log_rotation', host, FAIL, '; '.join(problems))
    return item('log_rotation', host, PASS, text)


def grade_secrets(host, ev, opts=None):
    """ev: {scanned: n, protected: n, findings: [{path, mode, owner, kind, line}]}."""
    findings = ev.get('findings') or []
    if findings:
        return item(
            'secrets_config',
            host,
            FAIL,
            '; '.join(
                '%s (%s %s) holds %s%s'
                % (
                    f['path'],
                    f.get('mode'),
                    f.get('owner'),
                    f.get('kind'),
                    ' at line %s' % f['line'] if f.get('line') else '',
                )
                for f in findings
            ),
        )
    return item(
        'secrets_config',
        host,
        PASS,
        '%d configuration files scanned; %d holding secrets, none world-readable'
        % (ev.get('scanned') or 0, ev.get('protected') or 0),
    )


GRADERS = (
    ('supervision', grade_supervision),
    ('health', grade_health),
    ('tls', grade_tls_expiry),
    ('tls', grade_tls_headers),
    ('rate_limits', grade_rate_limits),
    ('backup', grade_backup_schedule),
    ('backup', grade_backup_fresh),
    ('wal', grade_wal),
    ('restore_test', grade_restore_test),
    ('replica', grade_replica),
    ('monitoring', grade_monitoring),
    ('alerts', grade_alerts),
    ('logrotate', grade_logrotate),
    ('secrets', grade_secrets),
)

# For a section absent from a host's evidence: the items it would have graded, n/a with this reason.
ABSENT = {
    'supervision': (('supervision',), 'not an app host (group app)'),
    'health': (('health',), 'not an app host (group app)'),
    'tls': (('tls_expiry', 'tls_headers'), 'not an edge host (group edge)'),
    'rate_limits': (('rate_limits',), 'not an edge host (group edge)'),
    'backup': (('backup_schedule', 'backup_fresh'), 'not a database or Redis host'),
    'wal': (('wal_archiving',), 'not a PostgreSQL primary (group db_primary)'),
    'restore_test': (('restore_test',), 'not a PostgreSQL primary (group db_primary)'),
    'replica': (('replica_sync',), 'not a PostgreSQL replica (group db_replica)'),
    'monitoring': (('monitoring_targets',), 'not a monitoring host (group monitoring)'),
    'alerts': (('alert_routing',), 'not a monitoring host (group monitoring)'),
}
SECTION_IDS = dict((k, v[0]) for k, v in ABSENT.items())
SECTION_IDS.update({'logrotate': ('log_rotation',), 'secrets': ('secrets_config',)})


def grade_host(host, evidence, options=None, include_absent=False):
    """Every item of one host. Sections missing from the evidence are skipped (or n/a with include_absent)."""
    opts = dict(DEFAULTS)
    opts.update(options or {})
    items = []
    failed = set()
    for section, grader in GRADERS:
        if section in evidence and evidence[section] is not None:
            ev = evidence[section]
            if isinstance(ev, dict) and ev.get('error') and set(ev) <= set(['error', 'now']):
                # the section could not be collected at all: each of its items fails with the reason
                for i in SECTION_IDS[section]:
                    if i not in failed:
                        failed.add(i)
                        items.append(item(i, host, FAIL, ev['error']))
                continue
            if isinstance(ev, dict) and 'now' not in ev and 'now' in evidence:
                ev = dict(ev, now=evidence['now'])
            items.append(grader(host, ev, opts))
    if include_absent:
        done = set(i['id'] for i in items)
        for section, (ids, reason) in ABSENT.items():
            for i in ids:
                if section not in evidence and i not in done:
                    items.append(item(i, host, NA, reason))
    return items


def summarize(items):
    counts = dict((s, 0) for s in STATUSES)
    for i in items:
        counts[i['status']] += 1
    return {
        'counts': counts,
        'total': len(items),
        'red': counts[FAIL],
        'result': FAIL if counts[FAIL] else (WARN if counts[WARN] else PASS),
    }


# Items no host of the inventory graded: one row for the whole inventory, n/a, except these, which fail.
REQUIRED_TIERS = {
    'monitoring_targets': 'no monitoring host (group monitoring) in the inventory: nothing scrapes the hosts',
    'alert_routing': 'no monitoring host (group monitoring) in the inventory: no alert reaches anyone',
}
INVENTORY = '(inventory)'


def scorecard(evidence_by_host, options=None, generated_at=None, inventory=None, all_items=False):
    """Grade every host: {generated_at, inventory, summary, items}. evidence_by_host: {host: evidence, or None
    for a host the audit could not reach}. all_items: also an n/a row per host for every tier it is not in."""
    items = []
    for host in sorted(evidence_by_host):
        if evidence_by_host[host] is None:
            items.append(
                item('reachable', host, FAIL, 'no evidence: the host was unreachable or the collection failed')
            )
            continue
        items.extend(grade_host(host, evidence_by_host[host], options, include_absent=all_items))
    graded = set(i['id'] for i in items)
    for i in ITEMS:
        if i not in graded and i != 'reachable':
            if i in REQUIRED_TIERS:
                items.append(item(i, INVENTORY, FAIL, REQUIRED_TIERS[i]))
            else:
                items.append(item(i, INVENTORY, NA, 'no host of this tier in the inventory'))
    order = list(ITEMS)
    items.sort(key=lambda i: (order.index(i['id']), i['host']))
    return {
        'generated_at': generated_at,
        'inventory': inventory,
        'summary': summarize(items),
        'items': items,
    }


def scorecard_lines(card):
    """One line per item: status, item, host, evidence."""
    s = card['summary']
    return ['%-4s %-18s %-10s %s' % (i['status'].upper(), i['id'], i['host'], i['evidence']) for i in card['items']] + [
        'RESULT %s: %s' % (s['result'].upper(), ', '.join('%d %s' % (s['counts'][k], k) for k in STATUSES))
    ]


def render_json(card):
    return json.dumps(card, indent=2, sort_keys=True) + '\n'


_COLOURS = {PASS: '#1a7f37', FAIL: '#cf222e', WARN: '#9a6700', NA: '#6e7781'}
_CSS = (
    'body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#1f2328}'
    'table{border-collapse:collapse;width:100%}th,td{border:1px solid #d0d7de;padding:.4em .6em;'
    'text-align:left;vertical-align:top;font-size:.9em}th{background:#f6f8fa}'
    '.s{font-weight:bold;color:#fff;border-radius:3px;padding:.1em .5em;white-space:nowrap}'
    + ''.join('.s-%s{background:%s}' % (re.sub('[^a-z]', '', k), v) for k, v in _COLOURS.items())
    + 'code{font-size:.85em;white-space:pre-wrap;word-break:break-word}'
)


def render_html(card):
    """A self-contained HTML page (inline CSS, no script, no external asset); every value HTML-escaped."""
    s = card['summary']
    rows = []
    for i in card['items']:
        rows.append(
            '<tr class="item" data-id="%s" data-status="%s"><td><span class="s s-%s">%s</span></td><td>%s</td>'
            '<td>%s<br><small>%s</small></td><td>%s</td><td><code>%s</code></td><td>%s</td></tr>'
            % (
                escape(i['id']),
                escape(i['status']),
                re.sub('[^a-z]', '', i['status']),
                escape(i['status'].upper()),
                escape(i['checklist_ref']),
                escape(i['title']),
                escape(i['id']),
                escape(i['host']),
                escape(i['evidence']),
                escape(i['fix']),
            )
        )
    counts = ', '.join('%d %s' % (s['counts'][k], k) for k in STATUSES)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<title>Readiness audit %s</title><style>%s</style></head><body>\n'
        '<h1>Readiness audit: <span class="s s-%s">%s</span></h1>\n'
        '<p>Inventory %s, generated %s: %d items (%s).</p>\n'
        '<table><thead><tr><th>status</th><th>checklist</th><th>item</th><th>host</th><th>evidence</th>'
        '<th>how to fix</th></tr></thead><tbody>\n%s\n</tbody></table>\n</body></html>\n'
        % (
            escape(str(card.get('generated_at') or '')),
            _CSS,
            re.sub('[^a-z]', '', s['result']),
            escape(s['result'].upper()),
            escape(str(card.get('inventory') or '')),
            escape(str(card.get('generated_at') or '')),
            s['total'],
            escape(counts),
            '\n'.join(rows),
        )
    )
