# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.ierahkwa.platform.plugins.modules import audit_facts as af

from .module_runner import run_module

# What the nginx role writes (shortened): one TLS site with per-location and per-server limits.
NGINX_CONF = """
http {
    limit_req_zone $binary_remote_addr zone=per_ip:10m rate=20r/s;
    limit_req_zone $http_x_api_key zone=per_api_key:10m rate=50r/s;
    include /etc/nginx/conf.d/*.conf;
}
"""
SITES_CONF = """
server {
    listen 80 default_server;
    server_name _;
    return 444;
}
server {
    listen 443 ssl;
    http2 on;
    server_name api.ierahkwa.lab www.ierahkwa.lab;
    ssl_certificate /etc/nginx/tls/api/fullchain.pem;   # the link to the bootstrap pair
    ssl_certificate_key /etc/nginx/tls/api/privkey.pem;
    location / {
        limit_req zone=per_ip burst=40 nodelay;
        proxy_pass http://api;
    }
}
server {
    listen 443 ssl;
    server_name admin.ierahkwa.lab;
    ssl_certificate /etc/ssl/admin.pem;
    location / { proxy_pass http://api; }
}
"""


def test_nginx_servers_finds_tls_sites_certificates_and_limits(tmp_path):
    (tmp_path / 'conf.d').mkdir()
    (tmp_path / 'nginx.conf').write_text(NGINX_CONF)
    (tmp_path / 'conf.d' / 'ierahkwa.conf').write_text(SITES_CONF)
    servers, zones, http_limit = af.nginx_servers(str(tmp_path))
    assert zones == ['per_api_key', 'per_ip'] and http_limit is False
    tls = [s for s in servers if s['ssl']]
    assert [(s['server_names'][0], s['certificate'], s['limit_req']) for s in tls] == [
        ('api.ierahkwa.lab', '/etc/nginx/tls/api/fullchain.pem', True),
        ('admin.ierahkwa.lab', '/etc/ssl/admin.pem', False),
    ]
    assert [s['server_names'] for s in servers if not s['ssl']] == [[]]


@pytest.mark.parametrize(
    'text,kind',
    [
        ('[global]\nrepo1-cipher-pass=lab-pgbackrest-cipher-0123456789\n', 'a cipher-pass value'),
        ('basic_auth:\n  username: prometheus\n  password: mol-Scrape-Secret-4711\n', 'a password value'),
        ('DB_PASSWORD=first-Secret-Value\n', 'a password value'),
        ('requirepass "s3cr3t-redis-pass"\n', None),  # redis syntax has no = or :, checked through ACL files
        ('user default on >verysecret ~* +@all\n', None),
        ('-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n', 'a private key'),
        ('routing_key: 0123456789abcdef\n', 'a routing_key value'),
    ],
)
def test_secret_in_finds_assignments(text, kind):
    assert af.secret_in(text)[0] == kind


@pytest.mark.parametrize(
    'text',
    [
        'password_encryption = scram-sha-256\n',
        '# password = commented-out-secret\n',
        'auth_query = SELECT usename, passwd FROM pgbouncer.get_auth($1)\n',
        'proxy_set_header X-Api-Key $http_x_api_key;\n',
        'password: {{ vault_password }}\n',
        'password_file: /etc/prometheus/node.password\n',
        'limit_req_zone $http_x_api_key zone=per_api_key:10m rate=50r/s;\n',
    ],
)
def test_secret_in_ignores_settings_references_and_comments(text):
    assert af.secret_in(text) == (None, None)


@pytest.fixture
def open_tmp(tmp_path):
    """tmp_path with every parent up to / open to others, as /etc is (pytest makes its base directory 0700)."""
    base = tmp_path.parent.parent  # /tmp/pytest-of-<user>: pytest's own directory
    for d in (base, tmp_path.parent, tmp_path):
        os.chmod(str(d), 0o755)  # noqa: S103 - the case under test
    yield tmp_path
    os.chmod(str(base), 0o700)  # noqa: S103 - the case under test


def test_others_can_read_needs_every_parent_open(open_tmp):
    if not all(os.stat(str(p)).st_mode & 0o001 for p in open_tmp.parents):
        pytest.skip('a parent of the temporary directory is closed to others')
    d = open_tmp / 'private'
    d.mkdir()
    f = d / 'app.env'
    f.write_text('DB_PASSWORD=first-Secret-Value\n')
    os.chmod(str(f), 0o644)
    os.chmod(str(d), 0o755)  # noqa: S103 - the case under test
    assert af.others_can_read(str(f), os.stat(str(f))) is True
    os.chmod(str(d), 0o750)  # noqa: S103 - the case under test
    assert af.others_can_read(str(f), os.stat(str(f))) is False
    os.chmod(str(d), 0o755)  # noqa: S103 - the case under test
    os.chmod(str(f), 0o640)
    assert af.others_can_read(str(f), os.stat(str(f))) is False


def test_secrets_section_reports_only_readable_secret_files(open_tmp):
    tmp_path = open_tmp
    (tmp_path / 'open.conf').write_text('password: mol-Scrape-Secret-4711\n')
    os.chmod(str(tmp_path / 'open.conf'), 0o644)
    (tmp_path / 'closed.conf').write_text('password: mol-Scrape-Secret-4711\n')
    os.chmod(str(tmp_path / 'closed.conf'), 0o640)
    (tmp_path / 'plain.conf').write_text('listen 443 ssl;\n')
    ev = af.secrets({'scan_paths': [str(tmp_path)]})
    assert ev['scanned'] == 3 and ev['protected'] == 1
    assert [(f['path'], f['mode'], f['kind'], f['line']) for f in ev['findings']] == [
        (str(tmp_path / 'open.conf'), '0644', 'a password value', 1)
    ]


def test_usec_and_calendar_parsing():
    assert af.usec('10min') == 600 and af.usec('5min 30s') == 330 and af.usec('0') == 0
    assert (
        af.timers_calendar('{ OnCalendar=Sun *-*-* 01:00:00 ; next_elapse=Sun 2026-12-06 01:00:00 UTC }')
        == 'Sun *-*-* 01:00:00'
    )


def test_module_changes_nothing_in_check_mode(tmp_path):
    os.chmod(str(tmp_path), 0o755)  # noqa: S103 - the case under test
    result = run_module(
        tmp_path,
        'audit_facts',
        {
            'sections': ['secrets', 'rate_limits'],
            'scan_paths': [str(tmp_path)],
            'nginx_conf_dir': str(tmp_path / 'none'),
        },
        check_mode=True,
    )
    assert result['changed'] is False
    assert result['evidence']['rate_limits'] == {'zones': [], 'http_limit_req': False, 'servers': []}
    assert 'now' in result['evidence']


CALENDAR_252 = """Normalized form: Sun *-*-* 01:00:00
    Next elapse: Sun 2026-12-06 01:00:00 UTC
       From now: 6 days left
       Iter. #2: Sun 2026-12-13 01:00:00 UTC
       From now: 1 week 6 days left
"""


def test_elapses_from_systemd_analyze_calendar(monkeypatch):
    seen = {}

    def fake_run(argv, timeout, env=None):
        seen['argv'], seen['tz'] = argv, (env or {}).get('TZ')
        return 0, CALENDAR_252, ''

    monkeypatch.setattr(af, 'run', fake_run)
    assert af.elapses('Sun *-*-* 01:00:00', 5) == [1796518800, 1797123600]  # 2026-12-06 and -13 01:00 UTC
    assert seen['argv'][:2] == ['systemd-analyze', 'calendar'] and seen['tz'] == 'UTC'
    assert af.elapses('', 5) == []
