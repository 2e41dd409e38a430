"""The nginx role's preflight in real ansible-playbook runs: bad WAF, real-IP, CDN allow-list and affinity values
stop the role before any change, with a message naming the host and the variable; good ones pass."""

import json
import subprocess
import textwrap

import pytest
from test_preflight_rules import env

GOOD_SITE = {'name': 'bank', 'server_names': ['bank.example.test'], 'upstream': 'api'}
UPSTREAM = {'name': 'api', 'servers': [{'address': '10.0.0.5', 'port': 3000}]}


def preflight(tmp_path, collections_tree, **variables):
    values = {'nginx_upstreams': [UPSTREAM], 'nginx_sites': [GOOD_SITE]}
    values.update(variables)
    (tmp_path / 'vars.json').write_text(json.dumps(values))
    (tmp_path / 'play.yml').write_text(
        textwrap.dedent("""
        - name: nginx preflight
          hosts: edge9
          connection: local
          gather_facts: false
          tasks:
            - name: Preflight only
              ansible.builtin.include_role:
                name: ierahkwa.platform.nginx
                tasks_from: preflight
        """)
    )
    r = subprocess.run(
        ['ansible-playbook', '-i', 'edge9,', '-e', '@' + str(tmp_path / 'vars.json'), str(tmp_path / 'play.yml')],
        capture_output=True,
        text=True,
        env=env(collections_tree),
        timeout=300,
        check=False,
    )
    return r.returncode, r.stdout + r.stderr


def site(**changes):
    return [dict(GOOD_SITE, **changes)]


WAF = "nginx_sites 'bank' waf: mode must be off, detection_only or blocking"


def test_good_waf_real_ip_allow_list_and_affinity_pass(tmp_path, collections_tree):
    rc, out = preflight(
        tmp_path,
        collections_tree,
        nginx_real_ip_from=['203.0.113.0/24', '2001:db8::/32'],
        nginx_upstreams=[dict(UPSTREAM, affinity='cookie', affinity_cookie='bank_session')],
        nginx_sites=site(
            allow_from=['203.0.113.0/24'],
            waf={
                'mode': 'blocking',
                'paranoia_level': 2,
                'exclusions': [{'path': '/api/', 'set': 'banking_json_api'}, {'rule_ids': [920350]}],
            },
        ),
    )
    assert rc == 0, out[-3000:]


@pytest.mark.parametrize(
    'variables, message',
    [
        ({'nginx_sites': site(waf={'mode': 'block'})}, WAF + " (got 'block')"),
        ({'nginx_sites': site(waf={'paranoia_level': 5})}, WAF),
        ({'nginx_sites': site(waf={'inbound_anomaly_threshold': 0})}, WAF),
        ({'nginx_sites': site(waf={'exclusions': [{'path': '/api/', 'set': 'nope'}]})}, WAF),
        ({'nginx_sites': site(waf={'exclusions': [{'path': "/a'b", 'rule_ids': [1]}]})}, WAF),
        ({'nginx_sites': site(waf={'exclusions': [{'rule_ids': ['942100; SecRuleEngine Off']}]})}, WAF),
        ({'nginx_real_ip_from': ['cdn.example.test']}, 'nginx_real_ip_from, nginx_real_ip_header'),
        ({'nginx_sites': site(allow_from=[])}, "allow_from\n of site 'bank'"),
        ({'nginx_upstreams': [dict(UPSTREAM, affinity='sticky')]}, "nginx_upstreams 'api' has affinity 'sticky'"),
        ({'nginx_upstreams': [dict(UPSTREAM, affinity='cookie', affinity_cookie='bank-session')]},
         "nginx_upstreams 'api' has affinity 'cookie'"),
    ],
)  # fmt: skip
def test_bad_values_stop_naming_host_and_variable(tmp_path, collections_tree, variables, message):
    rc, out = preflight(tmp_path, collections_tree, **variables)
    assert rc != 0
    flat = ' '.join(out.split())
    assert 'edge9: ' in flat and ' '.join(message.split()) in flat, flat[-3000:]
