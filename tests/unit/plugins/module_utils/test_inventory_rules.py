# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.ierahkwa.platform.plugins.module_utils import inventory_rules as ir

ROLES = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'roles')
GROUPS = {
    'all': ['edge1', 'app1', 'app2', 'db1', 'redis1'],
    'edge': ['edge1'],
    'app': ['app1', 'app2'],
    'db': ['db1'],
    'db_primary': ['db1'],
    'redis': ['redis1'],
}


def good():
    return {
        'edge1': {
            'platform_environment': 'production',
            'certbot_email': 'ops@ierahkwa.gov',
            'nginx_upstreams': [{'name': 'api', 'group': 'app', 'port': 3000}],
            'nginx_sites': [{'name': 'api', 'server_names': ['api.ierahkwa.gov'], 'upstream': 'api'}],
        },
        'app1': {},
        'app2': {},
        'db1': {'pgbouncer_databases': [{'name': 'app', 'max_db_connections': 40}]},
        'redis1': {},
    }


def test_a_consistent_inventory_has_no_problem():
    assert ir.problems(good(), GROUPS) == []


def test_every_problem_at_once():
    hv = good()
    hv['db1'].update(
        pgbouncer_listen_port=5432,
        pgbouncer_databases=[{'name': 'a', 'max_db_connections': 60}, {'name': 'b', 'max_db_connections': 30}],
        pgbouncer_postgresql_max_connections=200,
    )
    hv['redis1']['redis_instances'] = [{'name': 'cache', 'port': 6379}, {'name': 'queue', 'port': 6379}]
    hv['edge1'].update(
        certbot_email='',
        nginx_sites=[
            {'name': 'api', 'server_names': ['api.example.com'], 'upstream': 'web'},
            {'name': 'x', 'server_names': []},
        ],
    )
    hv['edge1']['nginx_upstreams'].append({'name': 'admin', 'group': 'admin', 'port': 4000})
    assert ir.problems(hv, GROUPS) == [
        'db1: pgBouncer pools may open 92 server connections but postgresql_max_connections is 100 with 10 '
        'reserved (pgbouncer_databases max_db_connections, pgbouncer_postgresql_reserved_connections)',
        'db1: pgbouncer_postgresql_max_connections is 200 but postgresql_max_connections is 100',
        'db1: port 5432 is used twice (postgresql_port and pgbouncer_listen_port)',
        'edge1: nginx_sites api uses upstream web, which nginx_upstreams does not define',
        'edge1: nginx_upstreams admin points at group admin, which has no host',
        'edge1: production needs certbot_email (the ACME account address for expiry notices)',
        'edge1: production site api uses the example name api.example.com',
        'edge1: production site x has no server_names',
        'redis1: port 6379 is used twice (redis_instances cache and redis_instances queue)',
    ]


def test_app_port_collides_with_a_service_on_the_same_host():
    groups = dict(GROUPS, app=['app1', 'db1'])
    hv = good()
    hv['edge1']['nginx_upstreams'][0]['port'] = 6432
    assert ir.problems(hv, groups) == [
        'db1: port 6432 is used twice (pgbouncer_listen_port and app behind nginx upstream api)'
    ]


def test_production_rules_only_in_production():
    hv = good()
    hv['edge1'].update(
        platform_environment='staging',
        certbot_email='',
        nginx_sites=[{'name': 'api', 'server_names': ['api.example.org'], 'upstream': 'api'}],
    )
    assert ir.problems(hv, GROUPS) == []


def test_bad_shapes_do_not_crash():
    hv = good()
    hv['edge1']['nginx_upstreams'] = ['api', None]
    hv['edge1']['nginx_sites'] = ['x']
    hv['redis1']['redis_instances'] = ['x', {'port': 'abc'}]
    assert ir.problems(hv, GROUPS) == []


@pytest.mark.parametrize(
    'role, name',
    [
        ('postgresql', 'postgresql_port'),
        ('postgresql', 'postgresql_max_connections'),
        ('pgbouncer', 'pgbouncer_listen_port'),
        ('pgbouncer', 'pgbouncer_max_db_connections'),
        ('pgbouncer', 'pgbouncer_postgresql_reserved_connections'),
    ],
)
def test_defaults_match_the_roles(role, name):
    with open(os.path.join(ROLES, role, 'defaults', 'main.yml')) as f:
        assert yaml.safe_load(f)[name] == ir.DEFAULTS[name]


def test_redis_default_ports_match_the_role():
    with open(os.path.join(ROLES, 'redis', 'defaults', 'main.yml')) as f:
        ports = [(i['name'], i['port']) for i in yaml.safe_load(f)['redis_instances']]
    assert ports == [(i['name'], i['port']) for i in ir.DEFAULTS['redis_instances']]
