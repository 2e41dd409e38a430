# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: inventory_problems
short_description: Every cross-host problem of an inventory, as sentences naming host and variable
version_added: 0.5.0
author: ierahkwa platform engineering
description:
  - Checks rules no single role can check, over the whole inventory, and returns every problem at once.
  - A TCP port used twice on one host (C(postgresql_port), C(pgbouncer_listen_port), C(redis_instances),
    nginx 80 and 443, the port of an nginx upstream on the hosts of its group).
  - An nginx upstream whose group has no host; a site whose upstream is not defined.
  - pgBouncer pools above the C(postgresql_max_connections) of the same host minus the reserved connections, and a
    C(pgbouncer_postgresql_max_connections) that differs from C(postgresql_max_connections).
  - With C(platform_environment=production) on an edge host, sites without server names or with example names,
    and a missing C(certbot_email).
  - The memory caps of a host's services above its memory - C(max_memory_restart) x C(instances) of C(pm2_apps)
    (over C(pm2_app_defaults)), C(memory_max) of C(service_services) (over C(service_defaults)),
    C(postgresql_memory_mb) when set, the C(maxmemory) of C(redis_instances) - against C(ansible_memtotal_mb) (facts,
    e.g. from the fact cache) or else the inventory variable C(platform_memory_mb); a host with neither is not checked.
  - Reads only the variables it needs, so it can run before facts are gathered.
options:
  _input:
    description: C(hostvars).
    type: raw
    required: true
  groups:
    description: C(groups).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Preflight | rules across hosts
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | length }} inventory problem(s): {{ __problems | join('; ') }}"
  vars:
    __problems: "{{ hostvars | ierahkwa.platform.inventory_problems(groups) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The problems, sorted, one sentence each; empty when the inventory is consistent.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.ierahkwa.platform.plugins.module_utils.inventory_rules import collect, problems


def inventory_problems(hostvars, groups):
    try:
        return problems(collect(hostvars, groups.get('all', [])), groups)
    except (KeyError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError('inventory_problems: %s: %s' % (type(exc).__name__, exc)) from exc


class FilterModule(object):
    def filters(self):
        return {'inventory_problems': inventory_problems}
