"""The release role on this machine (connection local, a release_root under tmp) with releases from .tar.gz
archives, as a user ships a build artefact: placed whole and made current, the same release again changes nothing,
--check reports the next one and changes nothing, the next one records the previous, and a missing archive stops
in preflight naming the app and the path."""

import os
import pathlib
import re
import subprocess
import tarfile
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICE = os.path.join(HERE, '..', 'fixtures', 'sample-service', 'sample-service.py')
RECAP = re.compile(r'^localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)', re.M)

PLAY = """
- name: Releases of an app from archives
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: ierahkwa.platform.release
      vars:
        release_root: {root}
        release_npm_ci: false
        release_apps:
          - name: ledger
            source: "{{{{ source }}}}"
"""


@pytest.fixture
def lab(tmp_path, playbook_env):
    root = tmp_path / 'srv'
    (tmp_path / 'play.yml').write_text(textwrap.dedent(PLAY.format(root=root)))
    env = playbook_env

    def archive(version):
        path = tmp_path / ('ledger-%s.tar.gz' % version)
        (tmp_path / 'VERSION').write_text(version + '\n')
        with tarfile.open(path, 'w:gz') as tar:
            tar.add(SERVICE, arcname='sample-service.py')
            tar.add(tmp_path / 'VERSION', arcname='VERSION')
        return str(path)

    def play(version, source, *args):
        r = subprocess.run(
            [
                'ansible-playbook',
                '-i',
                'localhost,',
                str(tmp_path / 'play.yml'),
                '-e',
                'release_version=' + version,
                '-e',
                'source=' + source,
                *args,
            ],
            check=False,
            **dict(env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=300),
        )
        m = RECAP.search(r.stdout)
        r.changed = int(m.group(1)) if m else None
        return r

    def link(name):
        path = root / 'ledger' / name
        return os.readlink(path) if path.is_symlink() else None

    return archive, play, link, root / 'ledger'


def test_releases_from_archives(lab):
    archive, play, link, app = lab
    first = archive('2')
    r = play('2', first)
    assert r.returncode == 0 and r.changed > 0, r.stdout[-3000:]
    assert link('current') == 'releases/2'
    assert (app / 'releases' / '2' / 'sample-service.py').read_bytes() == pathlib.Path(SERVICE).read_bytes()
    assert (app / 'releases' / '2' / 'VERSION').read_text() == '2\n'
    assert (app / 'releases' / '2' / '.ierahkwa-release').is_file()
    # no unfinished build left beside it
    assert sorted(os.listdir(app / 'releases')) == ['2']

    r = play('2', first)
    assert r.returncode == 0 and r.changed == 0, r.stdout[-3000:]

    second = archive('3')
    r = play('3', second, '--check', '--diff')
    assert r.returncode == 0 and r.changed > 0, r.stdout[-3000:]
    assert 'would place release 3 of ledger' in ' '.join(r.stdout.split())
    assert link('current') == 'releases/2' and sorted(os.listdir(app / 'releases')) == ['2']

    r = play('3', second)
    assert r.returncode == 0 and r.changed > 0, r.stdout[-3000:]
    assert (link('current'), link('previous')) == ('releases/3', 'releases/2')
    assert (app / 'releases' / '3' / 'VERSION').read_text() == '3\n'

    r = play('4', str(app.parent.parent / 'ledger-4.tar.gz'))
    out = ' '.join(r.stdout.split())
    assert r.returncode != 0
    assert (
        'release_apps[0] (ledger): source %s does not exist on the controller' % (app.parent.parent / 'ledger-4.tar.gz')
        in out
    ), out[-3000:]
    assert link('current') == 'releases/3'
