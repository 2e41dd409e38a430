#!/usr/bin/env bash
# Data tier benchmark, side by side in one run on the Molecule "data" hosts (primary ierahkwa-mol-db1):
#   1. pgbench TPS through pgBouncer against direct connections, at 50 and at 500 clients (select-only and
#      TPC-B-like). Direct connections at 500 clients need max_connections above 500: the bench raises it for
#      that run only (ALTER SYSTEM, restart) and puts it back.
#   2. A generated database of about BENCH_SCALE x 15 MB (default 70, about 1 GB): pgBackRest full backup and
#      restore time against pg_dump / pg_restore (both with BENCH_JOBS parallel jobs, compressed).
# Prints a table and the ratios. Bounded: every pgbench run lasts BENCH_SECONDS (default 20).
#   bash bench/data-tier.sh            (creates the hosts with Molecule, converges, measures, destroys)
#   BENCH_KEEP=1 bash bench/data-tier.sh   (keeps the hosts for another run)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections"
SECONDS_PER_RUN=${BENCH_SECONDS:-20}
SCALE=${BENCH_SCALE:-70}
JOBS=${BENCH_JOBS:-2}
HOST=ierahkwa-mol-db1
PW=mol-App-Secret-4711

on() { podman exec "$HOST" bash -c "$1"; }
pg() { on "runuser -u postgres -- psql -XAt -d ierahkwa -c \"$1\""; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }

if [ -z "${BENCH_KEEP_HOSTS_UP:-}" ]; then
  molecule create -s data >/dev/null
  molecule prepare -s data >/dev/null
  molecule converge -s data >/dev/null
fi
[ -n "${BENCH_KEEP:-}" ] || trap 'molecule destroy -s data >/dev/null 2>&1 || true' EXIT

echo "== pgbench, ${SECONDS_PER_RUN}s per run, scale 10"
on "PGPASSWORD=$PW pgbench -q -i -s 10 -h 127.0.0.1 -U ierahkwa ierahkwa" >/dev/null 2>&1

tps() { # port clients mode -> tps, or "failed" (pgbench's last lines go to stderr)
  local extra=-S out
  [ "$3" = tpcb ] && extra=""
  out=$(on "PGPASSWORD=$PW timeout $((SECONDS_PER_RUN + 120)) pgbench -n $extra -c $2 -j 4 -T $SECONDS_PER_RUN -h 127.0.0.1 -p $1 -U ierahkwa ierahkwa 2>&1" || true)
  if grep -q '^tps = ' <<<"$out"; then
    awk '/^tps = / {printf "%.0f\n", $3}' <<<"$out"
  else
    echo "port $1, $2 clients, $3: $(tail -n 3 <<<"$out" | tr '\n' ' ')" >&2
    echo failed
  fi
}

declare -A R
for clients in 50 500; do
  for mode in select tpcb; do
    R[pool-$clients-$mode]=$(tps 6432 "$clients" "$mode")
  done
done
# Direct: 500 clients need max_connections above 500 for this run only.
for mode in select tpcb; do R[direct-50-$mode]=$(tps 5432 50 "$mode"); done
pg "ALTER SYSTEM SET max_connections = 560" >/dev/null
on "systemctl restart postgresql@15-main"
echo "direct runs at 500 clients with max_connections = $(pg 'SHOW max_connections')"
for mode in select tpcb; do R[direct-500-$mode]=$(tps 5432 500 "$mode"); done
pg "ALTER SYSTEM RESET max_connections" >/dev/null
on "systemctl restart postgresql@15-main && systemctl restart pgbouncer"

printf '%-8s %-7s %12s %12s %8s\n' clients mode "direct tps" "pool tps" "pool/direct"
for clients in 50 500; do
  for mode in select tpcb; do
    d=${R[direct-$clients-$mode]} p=${R[pool-$clients-$mode]}
    ratio=$(python3 -c "import sys; d, p = sys.argv[1:]; print('%.2f' % (float(p) / float(d)) if d != 'failed' and p != 'failed' else '-')" "$d" "$p")
    printf '%-8s %-7s %12s %12s %8s\n' "$clients" "$mode" "$d" "$p" "$ratio"
  done
done

echo "== backup and restore of a generated database (pgbench scale $SCALE)"
on "runuser -u postgres -- createdb -O ierahkwa bench" 2>/dev/null || true
on "PGPASSWORD=$PW pgbench -q -i -s $SCALE -h 127.0.0.1 -U ierahkwa bench" >/dev/null 2>&1
size=$(on "runuser -u postgres -- psql -XAtc \"SELECT pg_size_pretty(pg_database_size('bench'))\"")
echo "database bench: $size (cluster $(on "runuser -u postgres -- psql -XAtc \"SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database\""))"

t0=$(now); on "runuser -u postgres -- pgbackrest --stanza=main --type=full --process-max=$JOBS backup" >/dev/null; t1=$(now)
backup=$(elapsed "$t0" "$t1")
on "rm -rf /var/lib/postgresql/bench-restore && install -d -o postgres -m 0700 /var/lib/postgresql/bench-restore"
t0=$(now)
on "runuser -u postgres -- pgbackrest --stanza=main --pg1-path=/var/lib/postgresql/bench-restore --type=immediate --archive-mode=off --process-max=$JOBS restore" >/dev/null
t1=$(now)
restore=$(elapsed "$t0" "$t1")
on "rm -rf /var/lib/postgresql/bench-restore /var/lib/postgresql/bench-dump"

t0=$(now); on "runuser -u postgres -- pg_dump -Fd -j $JOBS -Z 3 -f /var/lib/postgresql/bench-dump bench"; t1=$(now)
dump=$(elapsed "$t0" "$t1")
on "runuser -u postgres -- createdb bench_restored"
t0=$(now); on "runuser -u postgres -- pg_restore -j $JOBS -d bench_restored /var/lib/postgresql/bench-dump"; t1=$(now)
pgrestore=$(elapsed "$t0" "$t1")
on "rm -rf /var/lib/postgresql/bench-dump; runuser -u postgres -- dropdb bench_restored; runuser -u postgres -- dropdb bench"

printf '%-10s %14s %16s %8s\n' step "pgBackRest s" "pg_dump/restore s" "ratio"
printf '%-10s %14s %16s %8s\n' backup "$backup" "$dump" "$(python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) / float(sys.argv[1])))" "$backup" "$dump")"
printf '%-10s %14s %16s %8s\n' restore "$restore" "$pgrestore" "$(python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) / float(sys.argv[1])))" "$restore" "$pgrestore")"
echo "(ratio = pg_dump time / pgBackRest time; pgBackRest restores the whole cluster, pg_restore one database)"
