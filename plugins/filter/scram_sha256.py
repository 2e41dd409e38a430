# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: scram_sha256
short_description: Turn a password into a PostgreSQL SCRAM-SHA-256 verifier
version_added: 0.2.0
author: ierahkwa platform engineering
description:
  - Returns the string PostgreSQL stores in C(pg_authid.rolpassword) for a password,
    C(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>), which pgBouncer also accepts in its auth file.
  - With O(salt_seed) the salt is derived from the password and the seed, so the same input gives the same
    verifier on every run (templates stay unchanged, services are not reloaded for nothing).
  - Mark tasks that use it with C(no_log); the verifier is not the password, but it allows offline guessing.
options:
  _input:
    description: The password.
    type: str
    required: true
  salt_seed:
    description: A value that makes the salt differ between users, usually the user name.
    type: str
  salt:
    description: An explicit base64 salt (at least 8 bytes), instead of O(salt_seed).
    type: str
  iterations:
    description: PBKDF2 iterations (at least 4096, PostgreSQL's default).
    type: int
    default: 4096
"""

EXAMPLES = r"""
- name: Auth file line of a console user
  ansible.builtin.copy:
    content: '"stats" "{{ stats_password | ierahkwa.platform.scram_sha256(salt_seed="stats") }}"'
    dest: /etc/pgbouncer/userlist.txt
    mode: "0600"
  no_log: true
"""

RETURN = r"""
_value:
  description: The SCRAM-SHA-256 verifier.
  type: str
  sample: >-
    SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.ierahkwa.platform.plugins.module_utils.scram import ScramError, verifier


def scram_sha256(password, salt_seed=None, salt=None, iterations=4096):
    try:
        return verifier(password, salt=salt, salt_seed=salt_seed, iterations=iterations)
    except ScramError as exc:
        raise AnsibleFilterError('scram_sha256: %s' % exc) from exc


class FilterModule(object):
    def filters(self):
        return {'scram_sha256': scram_sha256}
