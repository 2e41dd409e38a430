#!/usr/bin/env bash
# The whole test suite, stage by stage: bash tests/run.sh [STAGE ...]
# Stages: lint unit integration sanity build system (all by default; system = every Molecule scenario, the whole-lab
# `platform` first, in two parallel lanes; `molecule` is another name for it). `make test` prepares the machine first
# (lab/setup-host.sh) and calls this. Each stage's output goes to tests/output/<stage>.log; the end prints
# how long each stage took and a summary line.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.cache/collections"
export ANSIBLE_ROLES_PATH="$ROOT/roles"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1
OUT="$ROOT/tests/output"
mkdir -p "$OUT"
ALL_STAGES=(lint unit integration sanity build system)
STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=("${ALL_STAGES[@]}")

collection_copy() {  # a copy of the collection in an ansible_collections/ierahkwa/platform tree
  local dest=$1/ansible_collections/ierahkwa/platform
  mkdir -p "$dest"
  git ls-files -co --exclude-standard | grep -v -e '^\.cache/' -e '^tests/output/' | tar -cf - -T - | tar -C "$dest" -xf -
  echo "$dest"
}

stage_lint() {
  ansible-lint --profile production && ruff check . && ruff format --check plugins tests molecule
}

stage_unit() {
  PYTHONPATH="$ROOT/.cache/collections" python -m pytest -p no:cacheprovider -q tests/unit
}

stage_integration() {
  # The Vault plugins through hvac over real HTTP(S): against the stand-in (tests/integration/vault_standin.py)
  # always, and against a real Vault too when VAULT_ADDR and VAULT_TOKEN are set.
  PYTHONPATH="$ROOT/.cache/collections" python -m pytest -p no:cacheprovider -v \
    tests/integration/test_vault.py tests/integration/test_vault_write.py tests/integration/test_vault_play.py \
    tests/integration/test_preflight_rules.py tests/integration/test_rotate_secrets_play.py \
    tests/integration/test_nginx_preflight.py tests/integration/test_release_archive.py \
    tests/integration/test_pm2_reload_logs_patch.py
}

stage_sanity() {
  # ansible-test in a venv of its own (it installs its pinned linters); its pip bootstrap script comes from
  # tests/sanity/get_pip_offline.py, since ansible-test's own download host is not reachable from here.
  local venv="$ROOT/.cache/sanity-venv" tmp dest
  if [ ! -x "$venv/bin/ansible-test" ]; then
    python3 -m venv "$venv" && "$venv/bin/pip" install -q "$(grep '^ansible-core==' requirements.txt)" || return 1
  fi
  mkdir -p ~/.ansible/test/cache
  for v in 24_2 $(grep -ho "pip='[0-9.]*'" "$venv"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | tr -dc '0-9.\n' | tr . _); do
    cp tests/sanity/get_pip_offline.py ~/.ansible/test/cache/get_pip_"$v".py
  done
  tmp=$(mktemp -d)
  dest=$(collection_copy "$tmp")
  (cd "$dest" && "$venv/bin/ansible-test" sanity --requirements --python 3.11 --color no)
  local rc=$?
  rm -rf "$tmp"
  return $rc
}

stage_build() {
  # Build the collection, install the tarball, and use its role and filter from a playbook outside the repo.
  local tmp rc
  tmp=$(mktemp -d)
  ansible-galaxy collection build --force --output-path "$tmp/dist" . &&
  ANSIBLE_COLLECTIONS_PATH="$tmp/collections" \
    ansible-galaxy collection install --offline -p "$tmp/collections" "$tmp"/dist/ierahkwa-platform-*.tar.gz &&
  test -f "$tmp/collections/ansible_collections/ierahkwa/platform/MANIFEST.json" &&
  mkdir -p "$tmp/user" && cat > "$tmp/user/smoke.yml" <<'YML' &&
- name: Use the installed collection from outside the repository
  hosts: localhost
  connection: local
  gather_facts: true
  gather_subset: [min, virtual, network]
  tasks:
    - name: Filter plugin
      ansible.builtin.assert:
        that:
          - "(['edge'] | ierahkwa.platform.firewall_rules({'edge': [443, 80]}) | map(attribute='port') | list) == [80, 443]"
    - name: Role entry point and its argument specs
      ansible.builtin.include_role:
        name: ierahkwa.platform.bootstrap
        tasks_from: preflight
      vars:
        bootstrap_admin_users: [{name: ops, ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuildSmokeTestKeyxxxxxxxxxxxxxxxxxxxxxxxxx ops"]}]
    - name: The role's rules were merged
      ansible.builtin.assert:
        that: "_bootstrap_firewall_rules | map(attribute='port') | list == [22]"
YML
  (cd "$tmp/user" && env -u ANSIBLE_CONFIG -u ANSIBLE_ROLES_PATH ANSIBLE_COLLECTIONS_PATH="$tmp/collections" \
      ansible-playbook -i localhost, -e "ansible_python_interpreter=$(command -v python)" smoke.yml) &&
  (cd "$tmp/user" && env -u ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH="$tmp/collections" \
      ansible-doc -t filter ierahkwa.platform.firewall_rules >/dev/null)
  rc=$?
  rm -rf "$tmp"
  return $rc
}

# Longest first, so the lanes end close together (seconds measured in a quiet CI run; new scenarios go last).
MOLECULE_ORDER=(platform edge supervision data monitoring redis secrets bootstrap)

job_one() {  # one job: a Molecule scenario; its output in tests/output/molecule-<scenario>.log; one result line
  local j=$1 start rc log
  start=$(date +%s)
  log="$OUT/molecule-$j.log"
  molecule test -s "$j" > "$log" 2>&1
  rc=$?
  echo "$rc" > "$OUT/molecule-$j.rc"
  printf '== %-20s %s in %ss (%s)\n' "$j" "$([ $rc -eq 0 ] && echo passed || echo FAILED)" \
    "$(( $(date +%s) - start ))" "$(grep -E '^=+ .*(passed|failed).* in [0-9.]+s' "$log" | tail -1 | tr -d =)"
  return $rc
}

run_lanes() {  # run_lanes JOB...: the jobs in LANES parallel lanes, taken from one queue in the order given
  local lanes=${LANES:-2} j rc=0 pids=()
  echo "== ${#@} jobs in $lanes lanes: $*"
  printf '%s\n' "$@" > "$OUT/queue"
  for j in "$@"; do rm -f "$OUT/molecule-$j.rc"; done
  : > "$OUT/queue.lock"
  for _ in $(seq 1 "$lanes"); do
    (
      lrc=0
      while :; do
        # shellcheck disable=SC2016  # $1 is the inner shell's
        j=$(flock "$OUT/queue.lock" bash -c 'q=$1; head -1 "$q"; sed -i 1d "$q"' _ "$OUT/queue")
        [ -n "$j" ] || break
        job_one "$j" || lrc=1
      done
      exit $lrc
    ) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  for j in "$@"; do
    log="$OUT/molecule-$j.log"
    [ "$(cat "$OUT/molecule-$j.rc" 2>/dev/null)" != 0 ] || continue
    # A failed job: which tests failed and why (pytest's short summary, the first assertion lines, Ansible fatals)
    echo "---- $j FAILED (${log#"$ROOT"/}): failed tests and causes"
    grep -E '^(FAILED|ERROR) ' "$log" | cut -c1-300 | head -12
    grep -E '^E  ' "$log" | cut -c1-240 | head -12
    # Ansible's fatal and failed results, but not those it went on from ("...ignoring")
    awk '/^(fatal|failed): \[/ {b = $0; n = 1; f = 1; next}
         f && /^\.\.\.ignoring/ {f = 0; next}
         f && /^(TASK|RUNNING HANDLER|PLAY|NO MORE HOSTS)/ {print b; f = 0; next}
         f && n < 6 {b = b "\n" $0; n++}' "$log" | cut -c1-300 | head -18
    grep -E '^=+ .*(passed|failed|skipped).* in [0-9.]+s|^CRITICAL (Ansible return code|.*[Ff]ailed)' "$log" \
      | grep -v "molecule/default/molecule.yml' glob failed" | tail -4
  done
  return $rc
}

molecule_scenarios() {  # the scenarios CI runs, longest first; a scenario with a .ci-skip file is printed as skipped
  local s
  local -A seen=()
  for s in "${MOLECULE_ORDER[@]}" $(for f in molecule/*/molecule.yml; do basename "$(dirname "$f")"; done); do
    if [ ! -f "molecule/$s/molecule.yml" ] || [ -n "${seen[$s]:-}" ]; then continue; fi
    seen[$s]=1
    if [ -f "molecule/$s/.ci-skip" ]; then
      echo "== molecule $s SKIPPED (not run, not counted as passed): $(head -1 "molecule/$s/.ci-skip")" >&2
      continue
    fi
    echo "$s"
  done
}

stage_system() {
  # Every scenario (create, prepare, converge, idempotence, verify, destroy) in LANES parallel lanes (2 by default:
  # the machine has 2 cores, and a scenario spends much of its time waiting on apt, systemd and its tests' sleeps).
  # Every scenario's names (containers, network, apt cache) are its own, so lanes never share a host.
  local todo
  mapfile -t todo < <(molecule_scenarios)
  run_lanes "${todo[@]}"
}

stage_molecule() { stage_system; }

declare -A RESULT DURATION
for stage in "${STAGES[@]}"; do
  if ! declare -F "stage_$stage" >/dev/null; then
    echo "unknown stage: $stage (stages: ${ALL_STAGES[*]})" >&2
    exit 2
  fi
  echo "==> $stage"
  start=$(date +%s)
  "stage_$stage" > "$OUT/$stage.log" 2>&1
  rc=$?
  DURATION[$stage]=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    RESULT[$stage]=passed
    grep -E '^[=]+ .*(passed|failed).* in [0-9.]+s' "$OUT/$stage.log" | tail -3 | sed 's/^/    /'
  else
    RESULT[$stage]=FAILED
    if grep -q '^== ' "$OUT/$stage.log"; then  # a stage of jobs: every job's result, then the failed ones' causes
      echo "---- jobs of $stage (tests/output/$stage.log) ----"
      grep '^== ' "$OUT/$stage.log"
      sed -n '/^---- .* FAILED /,$p' "$OUT/$stage.log" | tail -80
    else
      echo "---- last lines of tests/output/$stage.log ----"
      tail -40 "$OUT/$stage.log"
    fi
    echo "----"
  fi
  printf '    %s %s in %ss\n' "$stage" "${RESULT[$stage]}" "${DURATION[$stage]}"
done

echo
echo "Stage        result   seconds"
passed=0 failed=0 total=0
for stage in "${STAGES[@]}"; do
  printf '%-12s %-8s %7s\n' "$stage" "${RESULT[$stage]}" "${DURATION[$stage]}"
  total=$(( total + DURATION[$stage] ))
  if [ "${RESULT[$stage]}" = passed ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
printf '%-12s %-8s %7s\n' total "" "$total"
echo "stages: $passed passed, $failed failed"
[ $failed -eq 0 ]
