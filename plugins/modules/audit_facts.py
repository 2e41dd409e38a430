#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: audit_facts
short_description: Collect read-only evidence of a host for the readiness audit
version_added: 0.9.0
author: ierahkwa platform engineering (!UNKNOWN)
description:
  - Reads what the readiness audit (C(playbooks/audit.yml)) grades on one host, and changes nothing
    (C(changed) is always false; check mode runs the same reads).
  - Each section of I(sections) is collected from what the collection's roles leave on a host, so it works on
    any inventory without the roles' variables; a section whose feature is absent returns an empty result,
    which the grading turns into C(n/a).
  - C(supervision) - C(pm2-<user>.service) and the PM2 apps of C(/etc/ierahkwa/pm2/apps/*.json) (with
    C(pm2 jlist)), and every systemd unit with an environment file in C(/etc/ierahkwa/service/).
  - C(health) - every probe of the health role (C(/etc/ierahkwa/health/*/*.json)) requested once now.
  - C(tls) - every C(listen ... ssl) server of the nginx configuration, its certificate file's notAfter and
    the certificate nginx serves now for its first name (TLS to 127.0.0.1 with SNI), and the response
    headers of C(GET /) there.
  - C(rate_limits) - C(limit_req_zone) and C(limit_req) in the nginx configuration, per TLS server.
  - C(backup) - the pgBackRest and Redis backup timers, their next elapses (C(systemd-analyze calendar)),
    and the newest pgBackRest backup (C(pgbackrest info) as postgres).
  - C(wal) - C(pg_stat_archiver) and C(archive_mode).
  - C(restore_test) - C(ierahkwa-pg-restore-test.timer) and the drill's metrics file.
  - C(replica) - C(pg_stat_wal_receiver) and the replay lag on a standby.
  - C(monitoring) - Prometheus's active targets (local API), with I(expected_hosts).
  - C(alerts) - the Alertmanagers Prometheus sends to, and Alertmanager's loaded configuration (local APIs).
  - C(logrotate) - C(logrotate.timer), C(/etc/logrotate.conf) and the drop-ins of the services present.
  - C(secrets) - configuration files under I(scan_paths) that others can read and hold a password, secret,
    token, key or private key.
options:
  sections:
    description: What to collect.
    type: list
    elements: str
    default: [logrotate, secrets]
    choices: [alerts, backup, health, logrotate, monitoring, rate_limits, replica, restore_test, secrets, supervision,
              tls, wal]
  nginx_conf_dir:
    description: Directory of the nginx configuration.
    type: path
    default: /etc/nginx
  prometheus_url:
    description: Prometheus on the monitoring host.
    type: str
    default: http://127.0.0.1:9090
  alertmanager_url:
    description: Alertmanager on the monitoring host.
    type: str
    default: http://127.0.0.1:9093
  expected_hosts:
    description: Hosts whose node_exporter Prometheus must scrape (returned with the monitoring section).
    type: list
    elements: str
    default: []
  metrics_dir:
    description: node_exporter textfile directory (backup and restore drill metrics).
    type: path
    default: /var/lib/prometheus/node-exporter
  scan_paths:
    description: Files and directories scanned for secrets.
    type: list
    elements: path
    default: [/etc/ierahkwa, /etc/nginx, /etc/pgbouncer, /etc/postgresql, /etc/pgbackrest, /etc/pgbackrest.conf,
              /etc/redis, /etc/prometheus, /etc/alertmanager, /etc/default, /etc/grafana]
  timeout:
    description: Seconds for each HTTP request and command.
    type: int
    default: 10
notes:
  - Needs root (C(become)) to read the private configuration files and to ask PostgreSQL as postgres.
"""

EXAMPLES = r"""
- name: Evidence of an edge host
  ierahkwa.platform.audit_facts:
    sections: [tls, rate_limits, logrotate, secrets]
  become: true
  register: evidence

- name: Evidence of the monitoring host
  ierahkwa.platform.audit_facts:
    sections: [monitoring, logrotate, secrets]
    expected_hosts: "{{ groups['all'] }}"
  become: true
"""

RETURN = r"""
evidence:
  description: One key per collected section (see the description), plus C(now) (epoch seconds on the host).
  returned: always
  type: dict
  sample:
    now: 1796000000
    tls:
      certs: [{server_name: api.example.org, file: /etc/nginx/tls/api/fullchain.pem, not_after: 1803776000,
               live_not_after: 1803776000, self_signed: false}]
      probes: [{server_name: api.example.org, status: 200, headers: [strict-transport-security]}]
"""

import calendar
import glob
import grp
import json
import os
import pwd
import re
import socket
import ssl
import stat
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

SECRET_RE = re.compile(
    r'''(?i)(?:^|[\s_."'-])(password|passwd|secret|token|api[_-]?key|requirepass|masterauth|cipher-pass|'''
    r'''auth_key|routing_key|private_key)["']?\s*[=:]\s*["']?([^\s"'#;,]{6,})'''
)
PLACEHOLDER_RE = re.compile(r'^(\$|\{\{|%|<|\*+$|/)')
UNIT_PROPS = 'LoadState,ActiveState,SubState,UnitFileState,Restart,MemoryMax,TimersCalendar,RandomizedDelayUSec'


def run(argv, timeout, env=None):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)  # noqa: S603
        return p.returncode, p.stdout, p.stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, '', str(e)


def unit_props(units, timeout):
    if not units:
        return {}
    rc, out, err = run(['systemctl', 'show', '-p', UNIT_PROPS] + list(units), timeout)
    result, chunks = {}, out.split('\n\n')
    for unit, chunk in zip(units, chunks):  # noqa: B905 (Python 3.8 targets)
        props = {}
        for line in chunk.splitlines():
            k, _sep, v = line.partition('=')
            props[k] = v
        if props.get('MemoryMax') and props['MemoryMax'].isdigit() and int(props['MemoryMax']) >= 2**63:
            props['MemoryMax'] = 'infinity'
        result[unit] = props
    return result


def timers_calendar(value):
    m = re.search(r'OnCalendar=([^;]+?)\s*;', value or '')
    return m.group(1) if m else ''


def usec(value):
    m = re.match(r'^\s*(?:(\d+)min)?\s*(?:(\d+)s)?', value or '')
    if not m:
        return 0
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)


def elapses(spec, timeout, n=8):
    """The next n elapses of an OnCalendar spec, as epochs (UTC)."""
    if not spec:
        return []
    env = dict(os.environ, TZ='UTC', LC_ALL='C')
    rc, out, err = run(['systemd-analyze', 'calendar', '--iterations=%d' % n, spec], timeout, env=env)
    result = []
    for line in out.splitlines():
        # "Next elapse:", then "Iter. #2:" (systemd 252) or "Iteration #2:" (older), in UTC (TZ=UTC)
        m = re.match(r'^\s*(Next elapse|Iter\w*\.? #\d+):\s+\w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC', line)
        if m:
            result.append(calendar.timegm(time.strptime(m.group(2), '%Y-%m-%d %H:%M:%S')))
    return result


def timer_evidence(paths, timeout):
    units = sorted(set(os.path.basename(p) for p in paths))
    props = unit_props(units, timeout)
    out = []
    for u in units:
        p = props.get(u, {})
        cal = timers_calendar(p.get('TimersCalendar'))
        out.append(
            {
                'unit': u,
                'UnitFileState': p.get('UnitFileState'),
                'ActiveState': p.get('ActiveState'),
                'calendar': cal,
                'elapses': elapses(cal, timeout),
                'randomized_delay': usec(p.get('RandomizedDelayUSec')),
            }
        )
    return out


def http_get(url, timeout):
    try:
        r = open_url(url, timeout=timeout)
        return r.getcode(), r.read().decode('utf-8', 'replace'), None
    except HTTPError as e:
        return e.code, '', 'status %d' % e.code
    except (URLError, OSError, ValueError) as e:
        return None, '', '%s: %s' % (type(e).__name__, getattr(e, 'reason', e))


def psql(sql, timeout):
    rc, out, err = run(['runuser', '-u', 'postgres', '--', 'psql', '-XAtq', '-F', '|', '-c', sql], timeout)
    if rc != 0:
        return None, (err or out).strip()[-300:]
    return [line.split('|') for line in out.strip().splitlines()], None


def num(v):
    try:
        return float(v) if v not in (None, '') else None
    except ValueError:
        return None


# ---- sections ------------------------------------------------------------------------------------------


def supervision(p):
    ev = {'pm2': None, 'services': []}
    units = glob.glob('/etc/systemd/system/pm2-*.service')
    apps = []
    for f in sorted(glob.glob('/etc/ierahkwa/pm2/apps/*.json')):
        try:
            with open(f) as fh:
                a = json.load(fh)
        except (OSError, ValueError) as e:
            a = {'name': os.path.basename(f)[:-5], 'error': str(e)}
        apps.append(
            {
                'name': a.get('name'),
                'autorestart': a.get('autorestart', True),
                'max_memory_restart': a.get('max_memory_restart'),
                'status': None,
            }
        )
    if units:
        # one PM2 daemon per host (pm2-<user>.service); a leftover unit of an earlier user is not enabled
        names = sorted(os.path.basename(u) for u in units)
        all_props = unit_props(names, p['timeout'])
        enabled = [n for n in names if all_props.get(n, {}).get('UnitFileState') == 'enabled']
        unit = (enabled or names)[0]
        user = unit[len('pm2-') : -len('.service')]
        props = all_props.get(unit, {})
        try:
            home = pwd.getpwnam(user).pw_dir
        except KeyError:
            home = '/var/lib/' + user
        # Read-only: the pm2 CLI starts a daemon of its own when none answers, outside systemd (and then the unit
        # can never start). Ask only a daemon that runs under its unit and listens on its socket.
        daemon_up = props.get('ActiveState') == 'active' and os.path.exists('%s/.pm2/rpc.sock' % home)
        if apps and not daemon_up:
            for a in apps:
                a['status'] = 'unknown (%s is not running; pm2 not asked, it would start a daemon)' % unit
        elif apps:
            rc, out, err = run(
                [
                    'runuser',
                    '-u',
                    user,
                    '--',
                    '/usr/bin/env',
                    'HOME=%s' % home,
                    'PM2_HOME=%s/.pm2' % home,
                    '/usr/local/bin/pm2',
                    'jlist',
                ],
                p['timeout'] * 3,  # the pm2 CLI starts Node.js: seconds on a busy host
            )
            status, missing = {}, 'not in pm2'
            try:
                for proc in json.loads(out[out.find('[') :]):
                    name = proc.get('name')
                    st = (proc.get('pm2_env') or {}).get('status')
                    if status.get(name) in (None, 'online'):
                        status[name] = st
            except ValueError:
                missing = 'unknown (pm2 jlist rc %d: %s)' % (rc, (err or out).strip()[-200:])
            for a in apps:
                a['status'] = status.get(a['name'], missing)
        ev['pm2'] = {'unit': unit, 'props': props, 'apps': apps}
    names = sorted(os.path.basename(f)[:-4] for f in glob.glob('/etc/ierahkwa/service/*.env'))
    props = unit_props([n + '.service' for n in names], p['timeout'])
    ev['services'] = [{'name': n + '.service', 'props': props.get(n + '.service', {})} for n in names]
    return ev


def health(p):
    out = []
    for f in sorted(glob.glob('/etc/ierahkwa/health/*/*.json')):
        try:
            with open(f) as fh:
                c = json.load(fh)
        except (OSError, ValueError):
            continue
        url = c.get('health_url')
        if not url:
            continue
        status, body, err = http_get(url, c.get('timeout') or p['timeout'])
        out.append(
            {
                'name': c.get('name'),
                'url': url,
                'status': status,
                'ok': err is None and status is not None and 200 <= status < 400,
                'error': err,
            }
        )
    return out


def nginx_servers(conf_dir):
    """[{server_names, ssl, certificate, limit_req}] of every server block, and (zones, http_limit_req)."""
    files = (
        [os.path.join(conf_dir, 'nginx.conf')]
        + sorted(glob.glob(os.path.join(conf_dir, 'conf.d', '*.conf')))
        + sorted(glob.glob(os.path.join(conf_dir, 'sites-enabled', '*')))
    )
    servers, zones, http_limit = [], [], False
    for f in files:
        try:
            with open(f) as fh:
                text = fh.read()
        except OSError:
            continue
        depth, server, server_depth = 0, None, None
        for raw in text.splitlines():
            line = raw.split('#', 1)[0].strip()
            if not line:
                continue
            m = re.match(r'^limit_req_zone\s.*zone=([\w.-]+):', line)
            if m:
                zones.append(m.group(1))
            if server is None and re.match(r'^server\s*\{', line):
                server, server_depth = (
                    {'server_names': [], 'ssl': False, 'certificate': None, 'limit_req': False, 'file': f},
                    depth,
                )
            elif server is not None:
                if re.match(r'^listen\s.*\bssl\b', line) or re.match(r'^listen\s+(\S+:)?443\b', line):
                    server['ssl'] = True
                m = re.match(r'^server_name\s+([^;]+);', line)
                if m:
                    server['server_names'].extend(n for n in m.group(1).split() if n != '_')
                m = re.match(r'^ssl_certificate\s+([^;]+);', line)
                if m:
                    server['certificate'] = m.group(1).strip()
                if re.match(r'^limit_req\s', line):
                    server['limit_req'] = True
            elif re.match(r'^limit_req\s', line) and depth == 1:
                http_limit = True
            depth += line.count('{') - line.count('}')
            if server is not None and depth <= server_depth:
                servers.append(server)
                server = None
    return servers, sorted(set(zones)), http_limit


def cert_end(pem_or_der, der=False):
    """(notAfter epoch, subject, issuer) with openssl."""
    argv = ['openssl', 'x509', '-noout', '-enddate', '-subject', '-issuer', '-nameopt', 'RFC2253']
    if der:
        argv += ['-inform', 'DER']
    try:
        p = subprocess.run(argv, input=pem_or_der, capture_output=True, timeout=10, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ValueError(str(e)) from e
    if p.returncode != 0:
        raise ValueError(p.stderr.decode('utf-8', 'replace').strip()[-200:])
    fields = dict(line.split('=', 1) for line in p.stdout.decode().splitlines() if '=' in line)
    return int(ssl.cert_time_to_seconds(fields['notAfter'])), fields.get('subject'), fields.get('issuer')


def tls_probe(name, timeout, seen):
    """(status, header names) of GET https://name/ on 127.0.0.1:443. seen['der'] gets the served certificate as
    soon as the handshake is done, so a slow or absent upstream delays only the response."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # noqa: S503 (reads the served certificate, whatever its issuer)
    sock = socket.create_connection(('127.0.0.1', 443), timeout=timeout)
    try:
        s = ctx.wrap_socket(sock, server_hostname=name)
        seen['der'] = s.getpeercert(binary_form=True)
        # nginx answers 502/504 itself once its upstream timeouts pass: give it three times the timeout
        s.settimeout(timeout * 3)
        s.sendall(
            ('GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: ierahkwa-audit\r\nConnection: close\r\n\r\n' % name).encode()
        )
        data = b''
        while b'\r\n\r\n' not in data and len(data) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head = data.split(b'\r\n\r\n', 1)[0].decode('iso-8859-1').split('\r\n')
    status = int(head[0].split()[1]) if head and len(head[0].split()) > 1 else None
    names = sorted(set(h.split(':', 1)[0].strip().lower() for h in head[1:] if ':' in h))
    return status, names


def tls(p):
    servers, zones, http_limit = nginx_servers(p['nginx_conf_dir'])
    now = time.time()
    certs, probes = [], []
    for s in servers:
        if not s['ssl'] or not s['server_names']:
            continue
        name = s['server_names'][0]
        c = {
            'server_name': name,
            'file': s['certificate'],
            'not_after': None,
            'live_not_after': None,
            'self_signed': False,
            'error': None,
        }
        errors = []
        if s['certificate']:
            try:
                with open(s['certificate'], 'rb') as fh:
                    c['not_after'], subject, issuer = cert_end(fh.read())
                c['self_signed'] = subject == issuer
            except (OSError, ValueError, KeyError) as e:
                errors.append('file: %s' % e)
        probe = {'server_name': name, 'status': None, 'headers': [], 'error': None}
        seen = {}
        try:
            probe['status'], probe['headers'] = tls_probe(name, p['timeout'], seen)
        except (OSError, ValueError, ssl.SSLError) as e:
            probe['error'] = '%s: %s' % (type(e).__name__, e)
        if seen.get('der'):
            try:
                c['live_not_after'], subject, issuer = cert_end(seen['der'], der=True)
                c['self_signed'] = subject == issuer
            except (ValueError, KeyError) as e:
                errors.append('served: %s' % e)
        else:
            errors.append('served: %s' % probe['error'])
        c['error'] = '; '.join(errors) or None
        certs.append(c)
        probes.append(probe)
    return {'now': now, 'certs': certs, 'probes': probes}


def rate_limits(p):
    servers, zones, http_limit = nginx_servers(p['nginx_conf_dir'])
    return {
        'zones': zones,
        'http_limit_req': http_limit,
        'servers': [
            {'server_name': s['server_names'][0], 'limit_req': s['limit_req']}
            for s in servers
            if s['ssl'] and s['server_names']
        ],
    }


def backup(p):
    paths = [
        t for t in glob.glob('/etc/systemd/system/ierahkwa-pgbackrest-*.timer') if not t.endswith('-metrics.timer')
    ]
    paths += glob.glob('/etc/systemd/system/timers.target.wants/ierahkwa-redis-backup@*.timer')
    paths += glob.glob('/etc/systemd/system/ierahkwa-redis-backup@?*.timer')
    ev = {
        'now': time.time(),
        'timers': timer_evidence(paths, p['timeout']),
        'newest_backup': None,
        'backups': 0,
        'error': None,
    }
    if os.path.exists('/etc/pgbackrest/pgbackrest.conf') or os.path.exists('/etc/pgbackrest.conf'):
        rc, out, err = run(['runuser', '-u', 'postgres', '--', 'pgbackrest', '--output=json', 'info'], p['timeout'] * 3)
        try:
            for stanza in json.loads(out):
                for b in stanza.get('backup', []):
                    ev['backups'] += 1
                    ev['newest_backup'] = max(ev['newest_backup'] or 0, b['timestamp']['stop'])
        except (ValueError, KeyError, TypeError):
            ev['error'] = (err or out).strip()[-300:] or 'rc %d' % rc
    for d in glob.glob('/var/backups/redis/*'):
        for f in glob.glob(os.path.join(d, '*.rdb*')):
            ev['backups'] += 1
            ev['newest_backup'] = max(ev['newest_backup'] or 0, os.stat(f).st_mtime)
    return ev


def wal(p):
    rows, err = psql(
        "SELECT current_setting('archive_mode'), archived_count, failed_count,"
        " extract(epoch FROM last_archived_time), extract(epoch FROM last_failed_time),"
        " pg_is_in_recovery() FROM pg_stat_archiver",
        p['timeout'],
    )
    if err:
        return {'error': err}
    r = rows[0]
    return {
        'archive_mode': r[0],
        'archived_count': int(r[1]),
        'failed_count': int(r[2]),
        'last_archived': num(r[3]),
        'last_failed': num(r[4]),
        'in_recovery': r[5] == 't',
    }


def prom_value(path, metric):
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(metric + ' ') or line.startswith(metric + '{'):
                    return float(line.rsplit(' ', 1)[1])
    except (OSError, ValueError):
        pass
    return None


def restore_test(p):
    ev = {'now': time.time(), 'timer': None}
    unit = 'ierahkwa-pg-restore-test.timer'
    if os.path.exists('/etc/systemd/system/' + unit):
        ev['timer'] = timer_evidence([unit], p['timeout'])[0]
    f = os.path.join(p['metrics_dir'], 'pg_restore_test.prom')
    ev['last_success'] = prom_value(f, 'ierahkwa_pg_restore_test_last_success_timestamp_seconds') or None
    ev['last_run'] = prom_value(f, 'ierahkwa_pg_restore_test_last_run_timestamp_seconds')
    success = prom_value(f, 'ierahkwa_pg_restore_test_last_run_success')
    ev['last_run_success'] = int(success) if success is not None else None
    return ev


def replica(p):
    rows, err = psql('SELECT pg_is_in_recovery()', p['timeout'])
    if err:
        return {'in_recovery': True, 'error': err}
    if rows[0][0] != 't':
        return {'in_recovery': False}
    rows, err = psql(
        "SELECT r.status, r.sender_host, extract(epoch FROM now() - r.last_msg_receipt_time),"
        " pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"
        " FROM (SELECT 1) x LEFT JOIN pg_stat_wal_receiver r ON true",
        p['timeout'],
    )
    if err:
        return {'in_recovery': True, 'error': err}
    r = rows[0]
    lag = num(r[3])
    return {
        'in_recovery': True,
        'status': r[0] or None,
        'sender_host': r[1] or None,
        'receipt_age': num(r[2]),
        'lag_bytes': int(lag) if lag is not None else None,
    }


def monitoring(p):
    ev = {'expected_hosts': p['expected_hosts'], 'targets': [], 'error': None}
    status, body, err = http_get(p['prometheus_url'].rstrip('/') + '/api/v1/targets?state=active', p['timeout'])
    if err:
        ev['error'] = err
        return ev
    for t in json.loads(body)['data']['activeTargets']:
        labels = t.get('labels') or {}
        ev['targets'].append(
            {
                'job': labels.get('job'),
                'instance': labels.get('instance'),
                'health': t.get('health'),
                'lastError': t.get('lastError'),
            }
        )
    return ev


def alerts(p):
    ev = {'alertmanagers': [], 'config_text': None, 'error': None}
    status, body, err = http_get(p['prometheus_url'].rstrip('/') + '/api/v1/alertmanagers', p['timeout'])
    if err:
        ev['error'] = 'Prometheus alertmanagers API: %s' % err
        return ev
    ev['alertmanagers'] = [a.get('url') for a in json.loads(body)['data'].get('activeAlertmanagers', [])]
    status, body, err = http_get(p['alertmanager_url'].rstrip('/') + '/api/v2/status', p['timeout'])
    if err:
        ev['error'] = 'Alertmanager status API: %s' % err
        return ev
    ev['config_text'] = (json.loads(body).get('config') or {}).get('original')
    return ev


def logrotate(p):
    timer = unit_props(['logrotate.timer'], p['timeout']).get('logrotate.timer', {})
    required = {}
    checks = [
        ('/etc/nginx', '/etc/logrotate.d/nginx'),
        ('/etc/postgresql', '/etc/logrotate.d/postgresql-common'),
        ('/etc/ierahkwa/pm2/ecosystem.config.js', '/etc/logrotate.d/ierahkwa-pm2'),
        ('/var/log/modsecurity', '/etc/logrotate.d/ierahkwa-modsecurity'),
    ]
    for marker, conf in checks:
        if os.path.exists(marker):
            required[conf] = os.path.exists(conf)
    return {
        'timer': {'UnitFileState': timer.get('UnitFileState'), 'ActiveState': timer.get('ActiveState')},
        'conf': os.path.exists('/etc/logrotate.conf'),
        'required': required,
    }


def others_can_read(path, st):
    """Whether a user outside the file's owner and group reaches and reads it (o+r, o+x on every parent)."""
    if not st.st_mode & stat.S_IROTH:
        return False
    parent = os.path.dirname(path)
    while parent and parent != '/':
        try:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        parent = os.path.dirname(parent)
    return True


def secret_in(text):
    if '-----BEGIN' in text and 'PRIVATE KEY-----' in text:
        return 'a private key', None
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(('#', ';', '//')):
            continue
        m = SECRET_RE.search(line)
        if m and not PLACEHOLDER_RE.match(m.group(2)):
            return 'a %s value' % m.group(1).lower(), n
    return None, None


def secrets(p):
    files = []
    for root in p['scan_paths']:
        if os.path.isfile(root):
            files.append(root)
        elif os.path.isdir(root):
            for d, _dirs, names in os.walk(root):
                files.extend(os.path.join(d, n) for n in names)
    scanned, protected, findings = 0, 0, []
    for f in sorted(set(files)):
        try:
            st = os.lstat(f)
            if not stat.S_ISREG(st.st_mode) or st.st_size > 1024 * 1024:
                continue
            with open(f, 'rb') as fh:
                text = fh.read().decode('utf-8', 'replace')
        except OSError:
            continue
        scanned += 1
        kind, line = secret_in(text)
        if not kind:
            continue
        if others_can_read(f, st):
            try:
                owner = '%s:%s' % (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name)
            except KeyError:
                owner = '%d:%d' % (st.st_uid, st.st_gid)
            findings.append(
                {'path': f, 'mode': '%04o' % stat.S_IMODE(st.st_mode), 'owner': owner, 'kind': kind, 'line': line}
            )
        else:
            protected += 1
    return {'scanned': scanned, 'protected': protected, 'findings': findings}


SECTIONS = {
    'supervision': supervision,
    'health': health,
    'tls': tls,
    'rate_limits': rate_limits,
    'backup': backup,
    'wal': wal,
    'restore_test': restore_test,
    'replica': replica,
    'monitoring': monitoring,
    'alerts': alerts,
    'logrotate': logrotate,
    'secrets': secrets,
}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sections=dict(type='list', elements='str', default=['logrotate', 'secrets'], choices=sorted(SECTIONS)),
            nginx_conf_dir=dict(type='path', default='/etc/nginx'),
            prometheus_url=dict(type='str', default='http://127.0.0.1:9090'),
            alertmanager_url=dict(type='str', default='http://127.0.0.1:9093'),
            expected_hosts=dict(type='list', elements='str', default=[]),
            metrics_dir=dict(type='path', default='/var/lib/prometheus/node-exporter'),
            scan_paths=dict(
                type='list',
                elements='path',
                default=[
                    '/etc/ierahkwa',
                    '/etc/nginx',
                    '/etc/pgbouncer',
                    '/etc/postgresql',
                    '/etc/pgbackrest',
                    '/etc/pgbackrest.conf',
                    '/etc/redis',
                    '/etc/prometheus',
                    '/etc/alertmanager',
                    '/etc/default',
                    '/etc/grafana',
                ],
            ),
            timeout=dict(type='int', default=10),
        ),
        supports_check_mode=True,
    )
    evidence = {'now': time.time()}
    for section in module.params['sections']:
        try:
            evidence[section] = SECTIONS[section](module.params)
        except Exception as e:  # noqa: BLE001 (one broken section must not hide the others)
            evidence[section] = {'error': 'collecting %s failed: %s: %s' % (section, type(e).__name__, e)}
    module.exit_json(changed=False, evidence=evidence)


if __name__ == '__main__':
    main()
