#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: secret_file
short_description: Write a service's secrets to an env file or a JSON settings file, showing key names only
version_added: 0.5.0
author: ierahkwa platform engineering (!UNKNOWN)
description:
  - Writes O(secrets) as an env file (C(KEY="value") lines, read the same way by systemd's C(EnvironmentFile) and
    by dotenv) or as JSON (C(appsettings.Production.json)), atomically (a temporary file in the same directory,
    then a rename), with the given owner, group and mode.
  - With C(--diff) the diff lists the keys, with every value masked, and marks the keys whose value changed.
    RV(added_keys), RV(changed_keys) and RV(removed_keys) name them. No value is ever returned or logged.
  - Check mode reports exactly what a real run would change, and writes nothing.
  - The values usually come from the P(ierahkwa.platform.vault_kv#lookup) lookup, or from Ansible Vault-encrypted
    variables on sites without HashiCorp Vault.
options:
  path:
    description: The file to write on the managed host.
    type: path
    required: true
  secrets:
    description:
      - Key -> value. For C(env) the keys are variable names and the values text (no line break, double quote or
        backslash); for C(json) any JSON-serialisable mapping (nested for C(Section:Key) .NET settings).
    type: dict
    required: true
  format:
    description: C(env) or C(json); C(auto) is C(json) for a path ending in C(.json), else C(env).
    type: str
    choices: [auto, env, json]
    default: auto
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
  platform:
    platforms: posix
  diff_mode:
    details: Key names only; every value is masked.
    support: full
notes:
  - O(mode) defaults to C(0600); use C(0640) with a O(group) the service runs as.
"""

EXAMPLES = r"""
- name: Environment file of the API, from Vault
  ierahkwa.platform.secret_file:
    path: /etc/ierahkwa/api.env
    owner: root
    group: ierahkwa-api
    mode: "0640"
    secrets:
      DATABASE_URL: "{{ lookup('ierahkwa.platform.vault_kv', 'api/db', field='url') }}"
      SESSION_SECRET: "{{ lookup('ierahkwa.platform.vault_kv', 'api/session', field='secret') }}"
  notify: Restart ierahkwa-api

- name: Settings of a .NET service
  ierahkwa.platform.secret_file:
    path: /srv/billing/appsettings.Production.json
    owner: billing
    secrets:
      ConnectionStrings:
        Default: "{{ lookup('ierahkwa.platform.vault_kv', 'billing/db', field='connection_string') }}"
"""

RETURN = r"""
added_keys:
  description: Keys that are new in the file.
  returned: always
  type: list
  elements: str
  sample: [SESSION_SECRET]
changed_keys:
  description: Keys whose value changed (the values are never returned).
  returned: always
  type: list
  elements: str
  sample: [DATABASE_URL]
removed_keys:
  description: Keys that were in the file and are not in O(secrets).
  returned: always
  type: list
  elements: str
path:
  description: The file written.
  returned: always
  type: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ierahkwa.platform.plugins.module_utils.secret_render import (
    RenderError,
    diff_text,
    key_changes,
    parse,
    render,
)


def write_atomically(module, path, directory, content):
    """A temporary file in the same directory, given the wanted owner and mode, then renamed over path."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path))
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(content.encode('utf-8'))
        module.set_fs_attributes_if_different(module.load_file_common_arguments(module.params, path=tmp), False)
        module.atomic_move(tmp, path, unsafe_writes=False)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            secrets=dict(type='dict', required=True, no_log=True),
            format=dict(type='str', choices=['auto', 'env', 'json'], default='auto'),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    p = module.params
    path = p['path']
    if p['mode'] is None:
        p['mode'] = '0600'
    fmt = p['format'] if p['format'] != 'auto' else ('json' if path.lower().endswith('.json') else 'env')
    result = dict(changed=False, path=path, added_keys=[], changed_keys=[], removed_keys=[])
    try:
        content = render(p['secrets'], fmt)
    except RenderError as exc:
        module.fail_json(msg='%s: %s' % (path, exc), **result)
    if os.path.isdir(path):
        module.fail_json(msg='%s is a directory' % path, **result)
    directory = os.path.dirname(path) or '.'
    if not os.path.isdir(directory):
        if not module.check_mode:
            module.fail_json(msg='%s: the directory %s does not exist' % (path, directory), **result)
        # In check mode the directory may be one an earlier task would have created: report the file as new.
        result.update(changed=True, added_keys=sorted(parse(content, fmt)))
        module.exit_json(**result)
    old_text = None
    if os.path.exists(path):
        try:
            with open(path, 'rb') as handle:
                old_text = handle.read().decode('utf-8', 'replace')
        except OSError as exc:
            module.fail_json(msg='%s: cannot read it (%s)' % (path, exc.strerror), **result)
    old, new = parse(old_text, fmt), parse(content, fmt)
    added, changed, removed = key_changes(old or {}, new)
    if old is None:  # the old file was not in this format: every key counts as changed
        added = sorted(new)
    result.update(added_keys=added, changed_keys=changed, removed_keys=removed)
    content_changed = old_text != content
    if module._diff and content_changed:
        before, after = diff_text(old or {}, new)
        result['diff'] = dict(before=before, after=after, before_header=path, after_header=path + ' (values masked)')
    file_args = module.load_file_common_arguments(p)
    attrs_changed = False
    if os.path.exists(path):
        # First, so that atomic_move, which keeps the old file's owner and mode, never gives new content a wider one.
        attrs_changed = module.set_fs_attributes_if_different(file_args, False)
    if content_changed and not module.check_mode:
        write_atomically(module, path, directory, content)
        module.set_fs_attributes_if_different(file_args, False)
    result['changed'] = content_changed or attrs_changed
    module.exit_json(**result)


if __name__ == '__main__':
    main()
