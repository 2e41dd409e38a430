# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: audit_scorecard
short_description: Grade the readiness audit's evidence against the production checklist
version_added: 0.9.0
author: ierahkwa platform engineering
description:
  - Takes the evidence of every host (what M(ierahkwa.platform.audit_facts) returned, by host name) and returns
    the scorecard - C(items) (one per checklist item and host - C(id), C(checklist_ref), C(title),
    C(status) (C(pass), C(fail), C(warn) or C(n/a)), C(host), C(evidence), C(fix)) and C(summary) (counts per
    status, C(red), C(result)).
  - Items of a feature a host does not have are C(n/a) with the reason, never C(pass). An item no host graded
    gets one row for the whole inventory (host C((inventory))) - C(n/a), except monitoring and alert routing,
    which fail when the inventory has no monitoring host. A host given as C(None) (unreachable) fails C(reachable).
  - The same plugin file provides C(audit_evidence_of) (the evidence of a registered result, C(None) for an
    unreachable or failed host), C(audit_lines) (one printable line per item), C(audit_json) and C(audit_html)
    (a self-contained page with inline CSS and every value HTML-escaped).
options:
  _input:
    description: Mapping of host name to its evidence.
    type: dict
    required: true
  options:
    description:
      - Thresholds - C(tls_min_days) (14), C(restore_test_max_days) (30), C(replica_max_lag_bytes) (16 MiB),
        C(backup_grace_seconds) (3600).
    type: dict
    default: {}
  generated_at:
    description: Time of the audit, as text, written into the report.
    type: str
  inventory:
    description: Name of the inventory, written into the report.
    type: str
  all_items:
    description: Also an C(n/a) row per host for every tier the host is not in.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Grade
  ansible.builtin.set_fact:
    card: >-
      {{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, ['audit_evidence', 'evidence'])))
         | ierahkwa.platform.audit_scorecard({'tls_min_days': 21}, generated_at=now(utc=true).isoformat()) }}

- name: Print it
  ansible.builtin.debug:
    msg: "{{ card | ierahkwa.platform.audit_lines }}"

- name: HTML report
  ansible.builtin.copy:
    content: "{{ card | ierahkwa.platform.audit_html }}"
    dest: audit.html
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The scorecard - C(generated_at), C(inventory), C(summary), C(items).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.ierahkwa.platform.plugins.module_utils import audit


def audit_scorecard(evidence, options=None, generated_at=None, inventory=None, all_items=False):
    if not isinstance(evidence, dict):
        raise AnsibleFilterError(
            'audit_scorecard: the input must map host names to evidence, got %s' % type(evidence).__name__
        )
    unknown = set(options or {}) - set(audit.DEFAULTS)
    if unknown:
        raise AnsibleFilterError(
            'audit_scorecard: unknown option(s) %s (known: %s)'
            % (', '.join(sorted(unknown)), ', '.join(sorted(audit.DEFAULTS)))
        )
    return audit.scorecard(
        dict(evidence), options, generated_at=generated_at, inventory=inventory, all_items=bool(all_items)
    )


def audit_evidence_of(result):
    """The evidence in a registered audit_facts result; None when the host was unreachable or the task failed."""
    if not isinstance(result, dict) or result.get('unreachable') or result.get('failed') or 'evidence' not in result:
        return None
    return result['evidence']


def audit_lines(card):
    return audit.scorecard_lines(card)


def audit_json(card):
    return audit.render_json(card)


def audit_html(card):
    return audit.render_html(card)


class FilterModule(object):
    def filters(self):
        return {
            'audit_scorecard': audit_scorecard,
            'audit_evidence_of': audit_evidence_of,
            'audit_lines': audit_lines,
            'audit_json': audit_json,
            'audit_html': audit_html,
        }
