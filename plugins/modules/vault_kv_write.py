#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: vault_kv_write
short_description: Write a secret as a new HashiCorp Vault KV v2 version, idempotently, never returning a value
version_added: 0.6.0
author: ierahkwa platform engineering (!UNKNOWN)
description:
  - Writes O(data) as a new version of the KV v2 secret O(path) through hvac, with the connection, authentication,
    retry and error handling of the P(ierahkwa.platform.vault_kv#lookup) lookup (C(plugins/module_utils/vault.py)).
  - Reads the newest version first. When it already holds exactly O(data) nothing is written (O(only_if_different)),
    so a re-run does not pile up versions.
  - O(cas) (check-and-set) refuses the write when the current version is not the one the caller read, so two
    rotations cannot overwrite each other silently.
  - Check mode reads and compares, and writes nothing.
  - Usually run on the controller (C(delegate_to) C(localhost)); hvac must be installed where it runs.
  - Errors name the mount, the path and the cause (permission denied, sealed, unreachable...), never a token or a
    value.
options:
  path:
    description: Secret path relative to the mount (C(app/db), not C(secret/data/app/db)).
    type: str
    required: true
  data:
    description: The whole secret (every field) to write as the new version. Never logged or returned.
    type: dict
    required: true
  cas:
    description:
      - Check-and-set. Write only if the newest version is this number (C(0) - the secret must not exist yet).
      - Omitted - write whatever the current version.
    type: int
  only_if_different:
    description: Do not write a new version when the newest one already holds exactly O(data).
    type: bool
    default: true
  url:
    description: Address of the Vault server, C(https://vault.example.com:8200).
    type: str
    required: true
  namespace:
    description: Vault Enterprise namespace the path is relative to.
    type: str
  auth_method:
    description:
      - C(token) (O(token)), C(approle) (O(role_id) and O(secret_id)) or C(jwt) (O(jwt) and the role O(role_id)).
    type: str
    choices: [token, approle, jwt]
    default: token
  auth_mount_point:
    description: Mount point of the auth method; defaults to the method's name.
    type: str
  token:
    description: Vault token (C(auth_method=token)).
    type: str
  role_id:
    description: AppRole role ID, or the Vault JWT role name.
    type: str
  secret_id:
    description: AppRole secret ID.
    type: str
  jwt:
    description: The JSON Web Token to log in with (C(auth_method=jwt)).
    type: str
  engine_mount_point:
    description: Mount point of the KV v2 secrets engine.
    type: str
    default: secret
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
  ca_cert:
    description: CA bundle that verifies the server's certificate (default - the system CAs).
    type: path
  client_cert:
    description: Client certificate (TLS client authentication).
    type: path
  client_key:
    description: Key of O(client_cert).
    type: path
  timeout:
    description: Seconds per request.
    type: int
    default: 30
  retries:
    description: Retries after connection errors, timeouts and 5xx answers (never after 4xx).
    type: int
    default: 3
  retry_delay:
    description: Seconds before the first retry; doubles after each one.
    type: float
    default: 0.5
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - hvac (where the module runs, usually the controller)
notes:
  - The policy of the token must allow C(create) and C(update) on C(<mount>/data/<path>), and C(read) (the
    comparison with the newest version).
seealso:
  - plugin: ierahkwa.platform.vault_kv
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: New version of the API's database password
  ierahkwa.platform.vault_kv_write:
    url: "{{ ierahkwa_vault_url }}"
    token: "{{ ierahkwa_vault_token }}"
    path: api/db
    data:
      user: api
      password: "{{ __new_password }}"
    cas: "{{ __current_version }}"
  delegate_to: localhost
  no_log: true
  register: __written

- name: Seed a secret once (cas 0 - fails if it already exists)
  ierahkwa.platform.vault_kv_write:
    url: https://vault.example.com:8200
    auth_method: approle
    role_id: "{{ vault_role_id }}"
    secret_id: "{{ vault_secret_id }}"
    path: billing/session
    data:
      secret: "{{ lookup('ansible.builtin.password', '/dev/null', length=48) }}"
    cas: 0
  delegate_to: localhost
  no_log: true
"""

RETURN = r"""
version:
  description: The newest version after the task (the new one when written; in check mode the one a write would create).
  returned: success
  type: int
  sample: 7
previous_version:
  description: The newest version before the task (C(0) - the secret did not exist).
  returned: success
  type: int
  sample: 6
path:
  description: The secret, as mount/path.
  returned: always
  type: str
  sample: secret/api/db
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.ierahkwa.platform.plugins.module_utils.vault import (
    MissingLibraryError,
    VaultKVError,
    VaultSettings,
    write_secret,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='str', required=True),
            data=dict(type='dict', required=True, no_log=True),
            cas=dict(type='int'),
            only_if_different=dict(type='bool', default=True),
            url=dict(type='str', required=True),
            namespace=dict(type='str'),
            auth_method=dict(type='str', choices=['token', 'approle', 'jwt'], default='token'),
            auth_mount_point=dict(type='str'),
            token=dict(type='str', no_log=True),
            role_id=dict(type='str'),
            secret_id=dict(type='str', no_log=True),
            jwt=dict(type='str', no_log=True),
            engine_mount_point=dict(type='str', default='secret'),
            validate_certs=dict(type='bool', default=True),
            ca_cert=dict(type='path'),
            client_cert=dict(type='path'),
            client_key=dict(type='path', no_log=False),
            timeout=dict(type='int', default=30),
            retries=dict(type='int', default=3),
            retry_delay=dict(type='float', default=0.5),
        ),
        supports_check_mode=True,
    )
    p = module.params
    options = {k: p[k] for k in p if k not in ('path', 'data', 'cas', 'only_if_different')}
    options.update(kv_version=2, cache=False)
    result = dict(changed=False, path='%s/%s' % (p['engine_mount_point'], p['path']))
    try:
        settings = VaultSettings.from_options(options)
        result.update(
            write_secret(
                settings,
                p['path'],
                p['data'],
                cas=p['cas'],
                only_if_different=p['only_if_different'],
                check_mode=module.check_mode,
            )
        )
    except MissingLibraryError as exc:
        module.fail_json(msg=missing_required_lib('hvac'), exception=str(exc), **result)
    except VaultKVError as exc:
        module.fail_json(msg='vault_kv_write: %s' % exc, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
