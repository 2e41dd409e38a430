# -*- coding: utf-8 -*-
"""Runs a module of the collection the way Ansible does, in a process of its own, with its arguments in a file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys


def run_module(tmp_path, name, args, check_mode=False, diff=False):
    """The module's JSON result (``rc`` added) for ``args``."""
    internal = {'_ansible_check_mode': check_mode, '_ansible_diff': diff, '_ansible_tmpdir': str(tmp_path)}
    args_file = tmp_path / ('%s-args.json' % name)
    args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, **internal)}))
    r = subprocess.run(
        [sys.executable, '-m', 'ansible_collections.ierahkwa.platform.plugins.modules.' + name, str(args_file)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
        timeout=60,
    )
    try:
        result = json.loads(r.stdout)
    except ValueError:
        raise AssertionError('no JSON from %s: %s %s' % (name, r.stdout[-2000:], r.stderr[-2000:])) from None
    result['rc'] = r.returncode
    return result
