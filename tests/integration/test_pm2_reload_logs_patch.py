"""pm2_reload_logs_patch on this machine (connection local) against a stand-in of PM2's package: three small files
written here with the shape of the blocks PM2 6 has (the real PM2 is patched, and the patch's effect measured, in
molecule/supervision). The reopen blocks are replaced and still parse, the stream closing on exit is left alone, a
second run and a --check run change nothing on disk, and a PM2 whose files lack the block or the file stops the run
naming the host, the file and the variable."""

import hashlib
import re
import subprocess
import textwrap

import pytest

RECAP = re.compile(r'^localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)', re.M)
MARKER = 'ierahkwa.platform.pm2 pm2_reload_logs_patch'

PLAY = """
- name: The log reopen patch of the pm2 role
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    pm2_version: 6.0.14
    # the role's handler restarts the daemon unless this run started it; there is no daemon here
    __pm2_started: {changed: true}
  tasks:
    - name: Patch
      ansible.builtin.include_role:
        name: ierahkwa.platform.pm2
        tasks_from: reload-logs-patch
"""

CONTAINER = """
'use strict';
function exec(stds, Utility) {
  process.on('message', function (msg) {
    if (msg.type === 'log:reload') {
      for (var k in stds){
        if (typeof stds[k] == 'object' && !isNaN(stds[k].fd)){
          if (stds[k].destroy) stds[k].destroy();
          else if (stds[k].end) stds[k].end();
          else if (stds[k].close) stds[k].close();
          stds[k] = stds[k]._file;
        }
      }
      Utility.startLogging(stds, function (err) {
        if (err) return console.error('Failed to reload logs:', err.stack);
      });
    }
  });
}
module.exports = exec;
"""

FORK = """
'use strict';
module.exports = function (God, cspr, stds, Utility) {
  cspr.once('exit', function forkClose(status) {
    try {
      for(var k in stds){
        if (stds[k] && stds[k].destroy) stds[k].destroy();
        else if (stds[k] && stds[k].end) stds[k].end();
        else if (stds[k] && stds[k].close) stds[k].close();
        stds[k] = stds[k]._file;
      }
    } catch(e) { God.logAndGenerateError(e);}
  });

  cspr._reloadLogs = function(cb) {
    try {
      for (var k in stds){
        if (stds[k] && stds[k].destroy) stds[k].destroy();
        else if (stds[k] && stds[k].end) stds[k].end();
        else if (stds[k] && stds[k].close) stds[k].close();
        stds[k] = stds[k]._file;
      }
    } catch(e) { God.logAndGenerateError(e);}
    Utility.startLogging(stds, cb);
  };
};
"""

FILES = {'lib/ProcessContainer.js': CONTAINER, 'lib/ProcessContainerBun.js': CONTAINER, 'lib/God/ForkMode.js': FORK}


@pytest.fixture
def pm2(tmp_path, playbook_env):
    module = tmp_path / 'pm2'
    for name, text in FILES.items():
        (module / name).parent.mkdir(parents=True, exist_ok=True)
        (module / name).write_text(text.lstrip())
    (tmp_path / 'play.yml').write_text(textwrap.dedent(PLAY))
    env = playbook_env

    def play(*args):
        r = subprocess.run(
            ['ansible-playbook', '-i', 'localhost,', str(tmp_path / 'play.yml'), '-e', '_pm2_module_dir=%s' % module]
            + list(args),
            check=False,
            env=env,
            cwd=str(tmp_path),
            capture_output=True,
            text=True,
            timeout=300,
        )
        m = RECAP.search(r.stdout)
        r.changed = int(m.group(1)) if m else None
        r.failed = int(m.group(2)) if m else None
        r.text = ' '.join(r.stdout.split())
        return r

    def digest():
        return {name: hashlib.sha256((module / name).read_bytes()).hexdigest() for name in FILES}

    return module, play, digest


def test_the_reopen_blocks_are_replaced_once_and_check_mode_changes_nothing(pm2):
    module, play, digest = pm2
    before = digest()
    r = play('--check', '--diff')
    assert r.returncode == 0 and r.changed == 1, r.stdout[-3000:]
    assert digest() == before
    assert '+          old.end();' in r.stdout and '-          if (stds[k].destroy) stds[k].destroy();' in r.stdout

    r = play()
    assert r.returncode == 0 and r.changed == 1, r.stdout[-3000:]
    for name in FILES:
        text = (module / name).read_text()
        assert text.count(MARKER) == 1, (name, text)
        assert "stds[k] = require('fs').createWriteStream(old._file, {flags: 'a'});" in text
        assert 'old.end();' in text
        # node comes with lab/setup-host.sh
        check = subprocess.run(['node', '--check', str(module / name)], check=False, capture_output=True, text=True)
        assert check.returncode == 0, (name, check.stderr)
    fork = (module / 'lib/God/ForkMode.js').read_text()
    # only the reopen: the block that closes the streams when the app exits is PM2's own
    exit_block = fork.split('cspr._reloadLogs')[0]
    assert 'stds[k].destroy();' in exit_block and MARKER not in exit_block
    assert 'God.logAndGenerateError(e); });' in fork.split('cspr._reloadLogs')[1]

    after = digest()
    r = play()
    assert r.returncode == 0 and r.changed == 0, r.stdout[-3000:]
    r = play('--check')
    assert r.returncode == 0 and r.changed == 0, r.stdout[-3000:]
    assert digest() == after


def test_a_pm2_without_the_block_stops_the_run_naming_the_file(pm2):
    module, play, digest = pm2
    fork = module / 'lib/God/ForkMode.js'
    fork.write_text(FORK.replace('stds[k].destroy();', 'stds[k].destroy(cb);'))
    r = play()
    assert r.returncode != 0 and r.failed == 1, r.stdout[-3000:]
    assert (
        'localhost: the log reopen patch (pm2_reload_logs_patch) does not fit PM2 6.0.14: lib/God/ForkMode.js under %s'
        % module
        in r.text
    ), r.text[-3000:]
    assert MARKER not in fork.read_text()


def test_a_pm2_without_the_file_stops_the_run_before_any_change(pm2):
    module, play, digest = pm2
    (module / 'lib/ProcessContainerBun.js').unlink()
    texts = {n: (module / n).read_text() for n in FILES if n != 'lib/ProcessContainerBun.js'}
    r = play()
    assert r.returncode != 0 and r.failed == 1, r.stdout[-3000:]
    assert 'localhost: PM2 6.0.14 has no lib/ProcessContainerBun.js under %s' % module in r.text, r.text[-3000:]
    assert 'set pm2_reload_logs_patch: false' in r.text
    assert {n: (module / n).read_text() for n in texts} == texts
