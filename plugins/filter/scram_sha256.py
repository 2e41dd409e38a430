# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# The documentation of both filters of this file is in scram_sha256.yml and scram_sha256_matches.yml.

from ansible.errors import AnsibleFilterError

from ansible_collections.ierahkwa.platform.plugins.module_utils.scram import ScramError, matches, verifier


def _plain(value):
    # ansible-core before 2.19 hands an inline-vaulted variable to filters as an object that decrypts on str().
    return str(value) if getattr(value, '__ENCRYPTED__', False) else value


def scram_sha256(password, salt_seed=None, salt=None, iterations=4096):
    try:
        return verifier(_plain(password), salt=salt, salt_seed=salt_seed, iterations=iterations)
    except ScramError as exc:
        raise AnsibleFilterError('scram_sha256: %s' % exc) from exc


def scram_sha256_matches(stored_verifier, password):
    try:
        return matches(_plain(stored_verifier), _plain(password))
    except ScramError as exc:
        raise AnsibleFilterError('scram_sha256_matches: %s' % exc) from exc


class FilterModule(object):
    def filters(self):
        return {'scram_sha256': scram_sha256, 'scram_sha256_matches': scram_sha256_matches}
