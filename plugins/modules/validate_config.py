#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: validate_config
short_description: Check an application's configuration file against a schema, reporting every violation
version_added: 0.5.0
author: ierahkwa platform engineering (!UNKNOWN)
description:
  - Reads an env file (C(KEY=VALUE), as systemd's C(EnvironmentFile) and C(.env)), a JSON file
    (C(appsettings.Production.json)) or a YAML file on the managed host, or takes O(content), and checks it against
    O(schema), a schema kept in inventory.
  - The schema gives, per key, whether it is required, its type (C(str), C(int), C(float), C(bool), C(url),
    C(port), C(duration), C(size), C(email), C(list), C(dict)), allowed values (C(choices)), a C(pattern),
    C(min) / C(max); cross-field rules are JMESPath expressions over the whole configuration.
    Nested JSON/YAML keys are named by dotted paths (C(ConnectionStrings.Default)).
  - All violations are reported at once, each with the file, the key and the reason. No reason ever quotes a
    value, so a secret in the file cannot leak through the report.
  - Values that look like secrets (private keys, tokens, passwords in URLs, and any value of a key whose name says
    password, secret, token or key) are violations unless the schema sets C(secret) to true for the key.
  - An invalid schema fails with a message that names the faulty schema entry.
  - Never changes anything; check mode is supported.
requirements:
  - jmespath (for cross-field rules), PyYAML (for YAML files), on the managed host
options:
  path:
    description: The configuration file on the managed host. One of O(path) and O(content) is required.
    type: path
  content:
    description:
      - The configuration itself instead of a file - a mapping, or text in O(format).
    type: raw
  format:
    description: How to read the file. C(auto) goes by the file name (C(.json), C(.yml)/C(.yaml), else env).
    type: str
    choices: [auto, env, json, yaml]
    default: auto
  schema:
    description:
      - C(keys) (key -> rule with C(type), C(required), C(choices), C(pattern), C(min), C(max), C(secret),
        C(description)), C(rules) (a list of C(that) - a JMESPath expression - with C(keys) and C(message)),
        C(additional_keys) (false makes an unknown key a violation) and C(secrets) (C(flag) or C(ignore)).
    type: dict
    required: true
  label:
    description: Name given to the configuration in the report when O(content) is used.
    type: str
    default: content
  fail_on_violations:
    description: Fail when there are violations; with C(false) they are only returned.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  platform:
    platforms: posix
  diff_mode:
    details: Nothing to show; the module changes nothing.
    support: none
"""

EXAMPLES = r"""
- name: Check the API's environment file against the schema from inventory
  ierahkwa.platform.validate_config:
    path: /etc/ierahkwa/api.env
    schema:
      keys:
        PORT: {type: port, required: true}
        DATABASE_URL: {type: url, required: true, secret: true}
        LOG_LEVEL: {type: str, choices: [debug, info, warn, error]}
        REQUEST_TIMEOUT: {type: duration}
        MAX_BODY: {type: size}
        ADMIN_EMAIL: {type: email, required: true}
        POOL_SIZE: {type: int, min: 1}
        DB_MAX_CONNECTIONS: {type: int}
      rules:
        - that: to_number(POOL_SIZE) < to_number(DB_MAX_CONNECTIONS)
          keys: [POOL_SIZE, DB_MAX_CONNECTIONS]
          message: the pool must stay below the database's connection limit

- name: Settings of a .NET service (nested keys are dotted paths)
  ierahkwa.platform.validate_config:
    path: /srv/billing/appsettings.Production.json
    schema:
      keys:
        Kestrel.Endpoints.Http.Url: {type: url, required: true}
        Logging.LogLevel.Default: {choices: [Information, Warning, Error]}
"""

RETURN = r"""
violations:
  description: Every violation, in the order checked; a reason never holds a value.
  returned: always
  type: list
  elements: dict
  sample: [{file: /etc/ierahkwa/api.env, key: PORT, reason: must be a port number (1-65535)}]
checked_keys:
  description: How many keys the configuration has (dotted paths for nested files).
  returned: always
  type: int
  sample: 12
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.ierahkwa.platform.plugins.module_utils.config_schema import (
    SchemaError,
    flatten,
    load_schema,
    parse_env,
    summary,
    validate,
)

try:
    import yaml

    HAS_YAML = True
except ImportError:
    HAS_YAML = False


def read_config(module, text, fmt, label):
    """(config, violations) of text in a format; a file that cannot be parsed is one violation."""
    if fmt == 'env':
        return parse_env(text, label)
    if fmt == 'json':
        try:
            return json.loads(text), []
        except ValueError as exc:
            return {}, [{'file': label, 'key': '(file)', 'reason': 'not valid JSON (%s)' % exc}]
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib('PyYAML'))
    try:
        return yaml.safe_load(text) or {}, []
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = ' at line %d' % (mark.line + 1) if mark else ''
        return {}, [{'file': label, 'key': '(file)', 'reason': 'not valid YAML%s' % where}]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path'),
            content=dict(type='raw', no_log=True),
            format=dict(type='str', choices=['auto', 'env', 'json', 'yaml'], default='auto'),
            schema=dict(type='dict', required=True),
            label=dict(type='str', default='content'),
            fail_on_violations=dict(type='bool', default=True),
        ),
        required_one_of=[('path', 'content')],
        mutually_exclusive=[('path', 'content')],
        supports_check_mode=True,
    )
    p = module.params
    try:
        schema = load_schema(p['schema'])
    except SchemaError as exc:
        module.fail_json(msg='invalid schema: %s' % exc)
    label = p['path'] or p['label']
    fmt = p['format']
    if fmt == 'auto':
        name = (p['path'] or '').lower()
        fmt = 'json' if name.endswith('.json') else ('yaml' if name.endswith(('.yml', '.yaml')) else 'env')
    if p['path']:
        if not os.path.isfile(p['path']):
            module.fail_json(msg='%s: no such file' % p['path'], violations=[], checked_keys=0)
        try:
            with open(p['path'], 'rb') as handle:
                text = handle.read().decode('utf-8')
        except (OSError, UnicodeDecodeError) as exc:
            module.fail_json(msg='%s: cannot read it (%s)' % (p['path'], type(exc).__name__))
        config, violations = read_config(module, text, fmt, label)
    elif isinstance(p['content'], dict):
        config, violations = p['content'], []
    else:
        config, violations = read_config(module, str(p['content']), 'env' if fmt == 'auto' else fmt, label)
    violations.extend(validate(config, schema, label))
    checked = len(flatten(config)) if isinstance(config, dict) else 0
    if violations and p['fail_on_violations']:
        module.fail_json(msg=summary(violations), violations=violations, checked_keys=checked)
    module.exit_json(changed=False, violations=violations, checked_keys=checked)


if __name__ == '__main__':
    main()
