"""The vault_kv lookup in real ansible-playbook runs against the stand-in: one read per path for a play over 20
hosts (the run cache shared by the fork workers), options from ansible.cfg, the environment and the lookup's
arguments, and error messages that name the path and the cause without the token."""

import os
import subprocess
import textwrap
import time

import pytest

HOSTS = 20
PATHS = 3


def run_play(tmp_path, collections, env, play, forks=HOSTS, ini=''):
    inventory = tmp_path / 'hosts.ini'
    inventory.write_text('[lab]\n' + ''.join('lab%02d ansible_connection=local\n' % i for i in range(HOSTS)))
    (tmp_path / 'play.yml').write_text(textwrap.dedent(play))
    (tmp_path / 'ansible.cfg').write_text('[defaults]\nforks = %d\nstdout_callback = default\n%s' % (forks, ini))
    full = dict(os.environ)
    for name in [k for k in full if k.startswith(('VAULT_', 'ANSIBLE_'))]:
        del full[name]
    full.update(
        ANSIBLE_CONFIG=str(tmp_path / 'ansible.cfg'),
        ANSIBLE_COLLECTIONS_PATH=collections,
        ANSIBLE_PYTHON_INTERPRETER=os.path.realpath(os.sys.executable),
        ANSIBLE_NOCOLOR='1',
        **env,
    )
    started = time.time()
    r = subprocess.run(
        ['ansible-playbook', '-i', str(inventory), str(tmp_path / 'play.yml')],
        capture_output=True,
        text=True,
        env=full,
        cwd=str(tmp_path),
        timeout=300,
        check=False,
    )
    r.seconds = time.time() - started
    return r


READ_PLAY = """
    - name: Read the same secrets on every host
      hosts: lab
      gather_facts: false
      tasks:
        - name: Read {paths} paths through the lookup
          ansible.builtin.set_fact:
            got: "{{{{ [{terms}] | map('extract', _secrets) | list }}}}"
          vars:
            _secrets: "{{{{ dict([{terms}] | zip(_values)) }}}}"
            _values: "{{{{ query('ierahkwa.platform.vault_kv', {terms}, field='value'{extra}) }}}}"
          no_log: true
        - name: Every host got every value
          ansible.builtin.assert:
            that: got == {expected}
            quiet: true
"""


def read_play(paths, expected, extra=''):
    terms = ', '.join("'%s'" % p for p in paths)
    return READ_PLAY.format(paths=len(paths), terms=terms, expected=expected, extra=extra)


@pytest.mark.parametrize('cache', [True, False])
def test_one_read_per_path_for_twenty_hosts(standin, tmp_path, collections_tree, cache):
    paths = [standin.put('p%d' % i, {'value': 'play-Secret-%d' % i}) for i in range(PATHS)]
    expected = ['play-Secret-%d' % i for i in range(PATHS)]
    r = run_play(
        tmp_path,
        collections_tree,
        {'VAULT_TOKEN': standin.root_token, 'IERAHKWA_VAULT_CACHE': str(cache)},
        read_play(paths, expected),
        ini='[ierahkwa_vault]\nurl = %s\n' % standin.url,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert 'ok=2' in r.stdout and r.stdout.count('ok=2') == HOSTS
    reads = [standin.standin.state.reads('secret', p) for p in paths]
    print('cache=%s: %d hosts x %d paths -> reads %s in %.1fs' % (cache, HOSTS, PATHS, reads, r.seconds))
    assert reads == ([1] * PATHS if cache else [HOSTS] * PATHS)
    for value in expected + [standin.root_token]:
        assert value not in r.stdout + r.stderr


def test_arguments_win_over_environment_and_approle(standin, tmp_path, collections_tree):
    path = standin.put('approle', {'value': 'approle-play-Secret'})
    role_id, secret_id = standin.approle('approle')
    extra = ", auth_method='approle', role_id='%s', url='%s'" % (role_id, standin.url)
    r = run_play(
        tmp_path,
        collections_tree,
        {'VAULT_ADDR': 'http://127.0.0.1:9', 'VAULT_SECRET_ID': secret_id},
        read_play([path], ['approle-play-Secret'], extra),
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    logins = [q for q in standin.standin.state.requests if q[1] == '/v1/auth/approle/login']
    assert len(logins) == 1 and standin.standin.state.reads('secret', path) == 1


def test_error_names_path_and_cause_not_token(standin, tmp_path, collections_tree):
    denied = standin.put('denied', {'value': 'denied-play-Secret'})
    token = standin.limited_token('other')
    r = run_play(
        tmp_path,
        collections_tree,
        {'VAULT_ADDR': standin.url, 'VAULT_TOKEN': token},
        read_play([denied], ['x']).replace('          no_log: true\n', ''),
        forks=5,
    )
    assert r.returncode != 0
    assert 'cannot read secret/%s: permission denied (HTTP 403)' % denied in r.stdout
    assert token not in r.stdout + r.stderr and 'denied-play-Secret' not in r.stdout + r.stderr


def test_options_from_templated_variables(standin, tmp_path, collections_tree):
    path = standin.put('vars', {'value': 'vars-play-Secret'})
    play = read_play([path], ['vars-play-Secret']).replace(
        '      gather_facts: false\n',
        '      gather_facts: false\n'
        '      vars:\n'
        '        _base: %s\n'
        '        ierahkwa_vault_url: "{{ _base }}"\n'
        "        ierahkwa_vault_token: \"{{ lookup('ansible.builtin.env', 'MY_VAULT_TOKEN') }}\"\n" % standin.url,
        1,
    )
    r = run_play(tmp_path, collections_tree, {'MY_VAULT_TOKEN': standin.root_token}, play)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert standin.standin.state.reads('secret', path) == 1
