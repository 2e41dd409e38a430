# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renders secrets for a service and compares them by key name: the logic of the secret_file module.

``render`` turns a mapping into an env file (``KEY="value"``, read the same by systemd's ``EnvironmentFile`` and
by dotenv) or a JSON document (``appsettings.Production.json``). ``key_changes`` compares the old and the new
content by key and returns only key names; ``diff_text`` builds a ``--diff`` in which every value is masked.
Messages name keys, never values.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.ierahkwa.platform.plugins.module_utils.config_schema import flatten, parse_env

ENV_KEY = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
MASK = '********'
HEADER = '# Managed by Ansible (ierahkwa.platform.secret_file). Do not edit: values come from the secret store.\n'


class RenderError(Exception):
    """The secrets cannot be rendered in the format; the message names the key, never the value."""


def render(secrets, fmt):
    if not isinstance(secrets, dict):
        raise RenderError('secrets must be a mapping of key -> value, got %s' % type(secrets).__name__)
    if fmt == 'json':
        try:
            return json.dumps(secrets, indent=2, sort_keys=True, ensure_ascii=False) + '\n'
        except (TypeError, ValueError) as exc:
            raise RenderError('secrets cannot be written as JSON (%s)' % type(exc).__name__) from None
    lines = [HEADER]
    for key in sorted(secrets, key=str):
        value = secrets[key]
        if not isinstance(key, str) or not ENV_KEY.match(key):
            raise RenderError('%r is not an environment variable name (letters, digits, _; not a digit first)' % (key,))
        if isinstance(value, bool):
            value = 'true' if value else 'false'
        elif value is None:
            value = ''
        elif not isinstance(value, (str, int, float)):
            raise RenderError('%s: an env file holds text, not a %s' % (key, type(value).__name__))
        value = str(value)
        if '\n' in value or '\r' in value or '\0' in value:
            raise RenderError('%s: the value has a line break or NUL, which an env file cannot hold' % key)
        if '"' in value or '\\' in value:
            raise RenderError(
                '%s: the value has a double quote or a backslash, which systemd and dotenv read '
                'differently; use format json or another value' % key
            )
        lines.append('%s="%s"\n' % (key, value))
    return ''.join(lines)


def parse(text, fmt):
    """The flat key -> value mapping of a rendered (or existing) file; None when it cannot be read as fmt."""
    if text is None:
        return {}
    if fmt == 'json':
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return flatten(data) if isinstance(data, dict) else None
    return parse_env(text)[0]


def key_changes(old, new):
    """(added, changed, removed) key names between two flat mappings."""
    old = old or {}
    added = sorted(k for k in new if k not in old)
    changed = sorted(k for k in new if k in old and old[k] != new[k])
    removed = sorted(k for k in old if k not in new)
    return added, changed, removed


def diff_text(old, new):
    """Before/after texts for --diff: one line per key, values masked, changed values marked."""
    old = old or {}
    before = ''.join(
        '%s=%s%s\n' % (k, MASK, ' (old value)' if k in new and new[k] != old[k] else '') for k in sorted(old)
    )
    after = ''.join(
        '%s=%s%s\n' % (k, MASK, ' (new value)' if k in old and old[k] != new[k] else '') for k in sorted(new)
    )
    return before, after
