#!/usr/bin/env bash
# Edge benchmark, side by side in one run on the Molecule "edge" hosts: requests/s of the sample app
#   direct      plain HTTP to app1 and app2 at once (two wrk, half the connections each, summed),
#   role        through this role's proxy config (HTTPS, HTTP/1.1 keepalive to the upstream),
#   naive       through a naive proxy config on the same nginx (HTTPS, same certificate and upstream servers,
#               no upstream keepalive: a new TCP connection to the app for every request),
#   waf         through the scenario's "bank" site: the same role config with the WAF in blocking mode (ModSecurity,
#               OWASP CRS at paranoia level 2, every request inspected), against "role" (the "shop" site, no WAF),
# and the ratios role/direct, role/naive and waf/role. wrk runs on the allow-listed acme host (never rate-limited)
# and sends Accept and User-Agent headers (the CRS scores and audit-logs a request without them, as a real client
# would not be).
# Bounded: BENCH_ROUNDS rounds (default 2) of BENCH_DURATION (default 10s) per case, BENCH_CONNECTIONS (32).
#   bash bench/edge.sh            (creates the hosts with Molecule, converges, measures, destroys)
#   BENCH_KEEP=1 bash bench/edge.sh   (keeps the hosts for another run)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections"
export ANSIBLE_ROLES_PATH="$PWD/roles"
ROUNDS=${BENCH_ROUNDS:-2}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-32}
EDGE=ierahkwa-mol-edge1
LOAD=ierahkwa-mol-acme
SITE=shop.ierahkwa.test

if [ -z "${BENCH_KEEP_HOSTS_UP:-}" ]; then
  molecule create -s edge >/dev/null 2>&1
  molecule prepare -s edge >/dev/null 2>&1
  molecule converge -s edge >/dev/null 2>&1
fi
cleanup() {
  podman exec "$EDGE" sh -c 'rm -f /etc/nginx/conf.d/zz-bench-naive.conf && systemctl reload nginx' || true
  [ -n "${BENCH_KEEP:-}" ] || molecule destroy -s edge >/dev/null 2>&1 || true
  return 0
}
trap cleanup EXIT

# The naive config: what a hand-written proxy often looks like (proxy_pass with HTTP/1.0 and no keepalive).
podman exec -i "$EDGE" sh -c 'cat > /etc/nginx/conf.d/zz-bench-naive.conf && nginx -t -q && systemctl reload nginx' <<NGINX
upstream bench_naive {
    server ierahkwa-mol-app1:3000;
    server ierahkwa-mol-app2:3000;
}
server {
    listen 8443 ssl http2;
    server_name $SITE;
    ssl_certificate /etc/nginx/tls/shop/fullchain.pem;
    ssl_certificate_key /etc/nginx/tls/shop/privkey.pem;
    location / {
        proxy_pass http://bench_naive;
        proxy_set_header Host \$host;
    }
}
NGINX
sleep 1

rps() { # wrk output -> requests/s; refuses a run with errors
  local out=$1
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "errors: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ')" >&2
  fi
  awk '/^Requests\/sec:/ {printf "%.0f\n", $2}' <<<"$out"
}
wrk_on() { podman exec "$LOAD" wrk -t2 -c"$1" -d"$DURATION" -H 'Accept: */*' -H 'User-Agent: bench/edge.sh' "$2"; }

declare -A SUM
for c in direct role naive waf; do SUM[$c]=0; done
printf '%-6s %-8s %10s\n' round case req/s
for r in $(seq "$ROUNDS"); do
  half=$((CONNS / 2))
  a=$(mktemp) b=$(mktemp)
  podman exec "$LOAD" wrk -t1 -c"$half" -d"$DURATION" http://ierahkwa-mol-app1:3000/ >"$a" &
  podman exec "$LOAD" wrk -t1 -c"$half" -d"$DURATION" http://ierahkwa-mol-app2:3000/ >"$b"
  wait
  v=$(( $(rps "$(cat "$a")") + $(rps "$(cat "$b")") ))
  rm -f "$a" "$b"
  printf '%-6s %-8s %10s\n' "$r" direct "$v"; SUM[direct]=$((SUM[direct] + v))
  v=$(rps "$(wrk_on "$CONNS" "https://$SITE:443/")")
  printf '%-6s %-8s %10s\n' "$r" role "$v"; SUM[role]=$((SUM[role] + v))
  v=$(rps "$(wrk_on "$CONNS" "https://$SITE:8443/")")
  printf '%-6s %-8s %10s\n' "$r" naive "$v"; SUM[naive]=$((SUM[naive] + v))
  v=$(rps "$(wrk_on "$CONNS" "https://bank.ierahkwa.test:443/")")
  printf '%-6s %-8s %10s\n' "$r" waf "$v"; SUM[waf]=$((SUM[waf] + v))
done
echo
python3 - "${SUM[direct]}" "${SUM[role]}" "${SUM[naive]}" "${SUM[waf]}" "$ROUNDS" <<'PY'
import sys
d, r, n, w, rounds = (float(x) for x in sys.argv[1:])
print("mean req/s over %d rounds: direct %.0f, role %.0f, naive %.0f, waf %.0f"
      % (rounds, d / rounds, r / rounds, n / rounds, w / rounds))
print("role/direct = %.2f   role/naive = %.2f   waf/role = %.2f" % (r / d, r / n, w / r))
PY
