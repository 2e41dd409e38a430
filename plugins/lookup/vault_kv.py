# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vault_kv
short_description: Read secrets from a HashiCorp Vault KV (v2 or v1) secrets engine
version_added: 0.5.0
author: ierahkwa platform engineering (!UNKNOWN)
description:
  - Returns, for each path given, the secret's data (a dictionary), one field of it (O(field)), a pinned version
    (O(version)) or the secret's metadata (O(metadata)).
  - Reads are cached for the whole C(ansible-playbook) run and shared by its fork workers, so a play over many
    hosts reading the same paths makes one read per path (O(cache)).
  - Connection errors, timeouts and 5xx answers (sealed, standby) are retried with exponential backoff; 4xx
    answers are not. Errors name the path and the cause and never contain a token or a secret.
  - The values are marked unsafe (never templated again). Tasks that use them should set C(no_log).
requirements:
  - hvac (on the controller)
extends_documentation_fragment:
  - ierahkwa.platform.vault
options:
  _terms:
    description: Paths of the secrets, relative to O(engine_mount_point) (C(app/db), not C(secret/data/app/db)).
    type: list
    elements: str
    required: true
  engine_mount_point:
    description: Mount point of the KV secrets engine.
    type: str
    default: secret
    env:
      - name: VAULT_KV_MOUNT_POINT
    ini:
      - section: ierahkwa_vault
        key: engine_mount_point
    vars:
      - name: ierahkwa_vault_engine_mount_point
  kv_version:
    description: Version of the KV engine at O(engine_mount_point).
    type: int
    choices: [1, 2]
    default: 2
    env:
      - name: VAULT_KV_VERSION
    ini:
      - section: ierahkwa_vault
        key: kv_version
    vars:
      - name: ierahkwa_vault_kv_version
  field:
    description: Return this field of the secret instead of the whole dictionary; a missing field is an error.
    type: str
  version:
    description: Read this version of the secret (KV v2 only) instead of the newest.
    type: int
  metadata:
    description: Return the secret's metadata (versions, dates; KV v2 only) instead of its data.
    type: bool
    default: false
  cache:
    description:
      - Share reads between the hosts and fork workers of this run. The answers are kept, for the run only, in a
        private directory (mode 0700, on C(/dev/shm) when it exists), removed by a watcher process as soon as
          the run ends (a later run sweeps it if the watcher was killed).
      - The key is the address, namespace, mount, path, version and a hash of the credentials.
    type: bool
    default: true
    env:
      - name: IERAHKWA_VAULT_CACHE
    ini:
      - section: ierahkwa_vault
        key: cache
notes:
  - Lookups run on the controller, so hvac and the network path to Vault are needed there, not on the hosts.
  - Options come, from highest precedence to lowest, from the lookup's arguments, variables, environment variables
    and the C([ierahkwa_vault]) section of C(ansible.cfg).
"""

EXAMPLES = r"""
- name: One field of a KV v2 secret
  ansible.builtin.set_fact:
    db_password: "{{ lookup('ierahkwa.platform.vault_kv', 'app/db', field='password') }}"
  no_log: true

- name: A whole secret, pinned version, AppRole login, own CA
  ansible.builtin.set_fact:
    app_env: >-
      {{ lookup('ierahkwa.platform.vault_kv', 'app/env', version=3,
                auth_method='approle', role_id=vault_role_id, secret_id=vault_secret_id,
                ca_cert='/etc/ssl/vault-ca.pem') }}
  no_log: true

- name: KV v1 engine mounted at kv, in a Vault Enterprise namespace
  ansible.builtin.debug:
    msg: "{{ lookup('ierahkwa.platform.vault_kv', 'legacy/api', engine_mount_point='kv', kv_version=1,
                    namespace='team-a') | length }} fields"

- name: Metadata (current version, creation times)
  ansible.builtin.debug:
    msg: "{{ lookup('ierahkwa.platform.vault_kv', 'app/db', metadata=true)['current_version'] }}"
"""

RETURN = r"""
_raw:
  description:
    - One element per path, marked unsafe.
    - The secret's data (a dictionary), the value of O(field), or with O(metadata) the secret's metadata.
  type: list
  elements: raw
"""

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.module_utils.basic import missing_required_lib
from ansible.plugins.lookup import LookupBase
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.ierahkwa.platform.plugins.module_utils.vault import (
    MissingLibraryError,
    VaultKVError,
    VaultSettings,
    read_all,
)

VAR_PREFIX = 'ierahkwa_vault_'
OPTIONS = (
    'url',
    'namespace',
    'auth_method',
    'auth_mount_point',
    'token',
    'token_file',
    'role_id',
    'secret_id',
    'jwt',
    'validate_certs',
    'ca_cert',
    'client_cert',
    'client_key',
    'timeout',
    'retries',
    'retry_delay',
    'engine_mount_point',
    'kv_version',
    'field',
    'version',
    'metadata',
    'cache',
)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        # Only this plugin's variables, templated: task and play variables reach a lookup untemplated.
        names = [name for name in (variables or {}) if name.startswith(VAR_PREFIX)]
        var_options = {name: self._templar.template(variables[name]) for name in names}
        try:
            self.set_options(var_options=var_options, direct=kwargs)
        except AnsibleError as exc:
            raise AnsibleLookupError('vault_kv: %s' % exc) from None
        try:
            settings = VaultSettings.from_options({name: self.get_option(name) for name in OPTIONS})
            return wrap_var(read_all(settings, terms))
        except MissingLibraryError as exc:
            raise AnsibleLookupError('vault_kv: %s' % missing_required_lib('hvac'), orig_exc=exc) from None
        except VaultKVError as exc:
            raise AnsibleLookupError('vault_kv: %s' % exc) from None
