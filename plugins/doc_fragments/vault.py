# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection and authentication options of the plugins that talk to HashiCorp Vault.
    # Each option can come from the plugin's arguments, a variable, ansible.cfg [ierahkwa_vault] or the environment.
    DOCUMENTATION = r"""
options:
  url:
    description: Address of the Vault server, C(https://vault.example.com:8200).
    type: str
    env:
      - name: VAULT_ADDR
    ini:
      - section: ierahkwa_vault
        key: url
    vars:
      - name: ierahkwa_vault_url
  namespace:
    description: Vault Enterprise namespace the paths are relative to (sent as C(X-Vault-Namespace)).
    type: str
    env:
      - name: VAULT_NAMESPACE
    ini:
      - section: ierahkwa_vault
        key: namespace
    vars:
      - name: ierahkwa_vault_namespace
  auth_method:
    description:
      - How to authenticate. C(token) uses O(token), else C(VAULT_TOKEN), else the file O(token_file).
      - C(approle) logs in with O(role_id) and O(secret_id); C(jwt) logs in with O(jwt) and the role O(role_id).
      - The login happens only when a read is not in the run cache.
    type: str
    choices: [token, approle, jwt]
    default: token
    env:
      - name: VAULT_AUTH_METHOD
    ini:
      - section: ierahkwa_vault
        key: auth_method
    vars:
      - name: ierahkwa_vault_auth_method
  auth_mount_point:
    description: Mount point of the auth method; defaults to the method's name (C(approle), C(jwt)).
    type: str
    env:
      - name: VAULT_AUTH_MOUNT_POINT
    ini:
      - section: ierahkwa_vault
        key: auth_mount_point
    vars:
      - name: ierahkwa_vault_auth_mount_point
  token:
    description: Vault token for O(auth_method=token). Never shown in messages.
    type: str
    env:
      - name: VAULT_TOKEN
    vars:
      - name: ierahkwa_vault_token
  token_file:
    description: File holding a token, read when O(token) and C(VAULT_TOKEN) are unset.
    type: path
    default: ~/.vault-token
    env:
      - name: VAULT_TOKEN_FILE
    ini:
      - section: ierahkwa_vault
        key: token_file
  role_id:
    description: AppRole role ID, or the name of the Vault role for O(auth_method=jwt).
    type: str
    env:
      - name: VAULT_ROLE_ID
    ini:
      - section: ierahkwa_vault
        key: role_id
    vars:
      - name: ierahkwa_vault_role_id
  secret_id:
    description: AppRole secret ID. Never shown in messages.
    type: str
    env:
      - name: VAULT_SECRET_ID
    vars:
      - name: ierahkwa_vault_secret_id
  jwt:
    description: The signed JSON Web Token for O(auth_method=jwt). Never shown in messages.
    type: str
    env:
      - name: VAULT_JWT
    vars:
      - name: ierahkwa_vault_jwt
  validate_certs:
    description: Verify the server's TLS certificate. Turn it off only for a throw-away lab.
    type: bool
    default: true
    ini:
      - section: ierahkwa_vault
        key: validate_certs
    vars:
      - name: ierahkwa_vault_validate_certs
  ca_cert:
    description: CA bundle (PEM file) that signed the server's certificate.
    type: path
    env:
      - name: VAULT_CACERT
    ini:
      - section: ierahkwa_vault
        key: ca_cert
    vars:
      - name: ierahkwa_vault_ca_cert
  client_cert:
    description: Client certificate (PEM) for servers that require TLS client authentication.
    type: path
    env:
      - name: VAULT_CLIENT_CERT
    ini:
      - section: ierahkwa_vault
        key: client_cert
    vars:
      - name: ierahkwa_vault_client_cert
  client_key:
    description: Private key of O(client_cert), when it is not in the same file.
    type: path
    env:
      - name: VAULT_CLIENT_KEY
    ini:
      - section: ierahkwa_vault
        key: client_key
    vars:
      - name: ierahkwa_vault_client_key
  timeout:
    description: Seconds to wait for each HTTP request.
    type: int
    default: 30
    env:
      - name: VAULT_CLIENT_TIMEOUT
    ini:
      - section: ierahkwa_vault
        key: timeout
  retries:
    description:
      - How many times a request is tried again after a connection error, a timeout or a 5xx answer (sealed,
        standby, server error). 4xx answers (permission denied, not found) are never retried.
    type: int
    default: 3
    env:
      - name: VAULT_MAX_RETRIES
    ini:
      - section: ierahkwa_vault
        key: retries
  retry_delay:
    description: Seconds before the first retry; the delay doubles after each one (exponential backoff).
    type: float
    default: 0.5
    env:
      - name: IERAHKWA_VAULT_RETRY_DELAY
    ini:
      - section: ierahkwa_vault
        key: retry_delay
"""
