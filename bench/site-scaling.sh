#!/usr/bin/env bash
# How a no-change run of playbooks/site.yml scales with the number of hosts (1, 5, 20 podman lab hosts), with the
# collection's speed settings (ansible.cfg: SSH pipelining, ControlPersist, forks 20, smart gathering with a
# jsonfile fact cache) against Ansible's defaults (no pipelining, forks 5, implicit gathering, memory cache),
# side by side in one run. Prints seconds per case and the ratios default/tuned and N hosts/1 host.
# The hosts are baseline hosts (group lab: bootstrap baseline and node_exporter), made from the lab image on
# a network of their own (prefix s-, 10.89.63.0/24), converged once, measured, and removed.
# Bounded: BENCH_ROUNDS (default 1) rounds of 6 runs; BENCH_SIZES (default "1 5 20").
#   bash bench/site-scaling.sh          BENCH_KEEP=1 keeps the hosts for another run
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/.venv/bin:$PATH" ANSIBLE_CONFIG="$ROOT/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$ROOT/.cache/collections"
export ANSIBLE_ROLES_PATH="$ROOT/roles" ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
export IERAHKWA_LAB_PREFIX=s- IERAHKWA_LAB_NET=63 IERAHKWA_LAB_DIR="$ROOT/.cache/lab"
ROUNDS=${BENCH_ROUNDS:-1}
read -r -a SIZES <<< "${BENCH_SIZES:-1 5 20}"
MAX=${SIZES[-1]}
WORK="$ROOT/.cache/bench-scaling"
INV="$WORK/inventory"
LOG="$WORK/logs"
rm -rf "$INV" "$LOG" && mkdir -p "$INV/group_vars" "$LOG"
ln -s "$ROOT/inventories/lab/group_vars/all.yml" "$INV/group_vars/all.yml"
ln -s "$ROOT/inventories/lab/group_vars/lab.yml" "$INV/group_vars/lab.yml"
{
  echo "all:"
  echo "  children:"
  echo "    lab:"
  echo "      hosts:"
  for i in $(seq 1 "$MAX"); do
    printf '        s%02d: {bootstrap_address: "{{ lab_net }}.%d"}\n' "$i" $((100 + i))
  done
} > "$INV/hosts.yml"

cleanup() {
  [ -n "${BENCH_KEEP:-}" ] || ansible-playbook -i "$INV" lab/lab.yml -e lab_state=absent > "$LOG/lab-down.log" 2>&1 || true
}
trap cleanup EXIT

echo "== $MAX hosts up and converged (not measured)"
ansible-playbook -i "$INV" lab/lab.yml > "$LOG/lab-up.log" 2>&1
ansible-playbook -i "$INV" playbooks/site.yml > "$LOG/converge.log" 2>&1 ||
  { tail -30 "$LOG/converge.log"; exit 1; }

limit() { seq -f 's%02g' 1 "$1" | paste -sd, -; }
declare -A SECONDS_OF
run() {  # run MODE N ROUND: a no-change site.yml on the first N hosts; fails unless every host reports changed=0
  local mode=$1 n=$2 round=$3 start end log="$LOG/$1-$2-$3.log"
  local env=(ANSIBLE_CACHE_PLUGIN_CONNECTION="$WORK/facts")
  if [ "$mode" = default ]; then
    env=(ANSIBLE_PIPELINING=False ANSIBLE_FORKS=5 ANSIBLE_GATHERING=implicit ANSIBLE_CACHE_PLUGIN=memory
         "ANSIBLE_SSH_ARGS=-C -o ControlMaster=auto -o ControlPersist=60s")
  fi
  start=$(date +%s.%N)
  env "${env[@]}" ansible-playbook -i "$INV" --limit "$(limit "$n")" playbooks/site.yml > "$log" 2>&1 ||
    { tail -30 "$log"; exit 1; }
  end=$(date +%s.%N)
  if grep -E '^s[0-9]+ +: ' "$log" | grep -vq 'changed=0 '; then
    echo "a no-change run changed something ($log)"; grep -E '^s[0-9]+ +: ' "$log"; exit 1
  fi
  SECONDS_OF[$mode-$n]=$(python3 -c "print(${SECONDS_OF[$mode-$n]:-0} + $end - $start)")
}

# warm the SSH control sockets and the fact cache once, then measure tuned and default side by side
run tuned "$MAX" warmup; unset 'SECONDS_OF[tuned-'"$MAX"']'
for round in $(seq 1 "$ROUNDS"); do
  for n in "${SIZES[@]}"; do
    run tuned "$n" "$round"
    run default "$n" "$round"
  done
done

printf '\n%-6s %10s %10s %16s %14s %16s\n' hosts "tuned s" "default s" "default/tuned" "tuned/1 host" "default/1 host"
for n in "${SIZES[@]}"; do
  python3 - "$n" "${SECONDS_OF[tuned-$n]}" "${SECONDS_OF[default-$n]}" "${SECONDS_OF[tuned-${SIZES[0]}]}" \
    "${SECONDS_OF[default-${SIZES[0]}]}" "$ROUNDS" <<'PY'
import sys
n, t, d, t1, d1, r = sys.argv[1], *map(float, sys.argv[2:6]), int(sys.argv[6])
print("%-6s %10.1f %10.1f %16.2f %14.2f %16.2f" % (n, t / r, d / r, d / t, t / t1, d / d1))
PY
done
echo "(seconds per no-change run of playbooks/site.yml, mean of $ROUNDS round(s); every run reported changed=0)"
