#!/usr/bin/env bash
# molecule test -s elk, where Elastic's packages can be had: Elastic's APT repository (artifacts.elastic.co) or
# ELK_DEB_DIR, a directory of elasticsearch, logstash, kibana and filebeat .deb files on this machine. Exits 77
# (skipped) with the reason when neither is there: the scenario cannot run, which is not a pass.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
if [ -n "${ELK_DEB_DIR:-}" ]; then
  missing=()
  for p in elasticsearch logstash kibana filebeat; do
    compgen -G "$ELK_DEB_DIR/$p-*.deb" >/dev/null || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "molecule/elk SKIPPED (exit 77): ELK_DEB_DIR=$ELK_DEB_DIR has no .deb file for: ${missing[*]}" >&2
    exit 77
  fi
  echo "molecule/elk: Elastic's packages from ELK_DEB_DIR=$ELK_DEB_DIR"
elif curl -fsS -o /dev/null --max-time 20 https://artifacts.elastic.co/GPG-KEY-elasticsearch; then
  echo "molecule/elk: Elastic's APT repository is reachable"
else
  echo "molecule/elk SKIPPED (exit 77): Elastic's APT repository (https://artifacts.elastic.co) is not reachable" \
       "from this machine and ELK_DEB_DIR is not set (a directory of elasticsearch, logstash, kibana and" \
       "filebeat .deb files)." >&2
  exit 77
fi
export PATH="$root/.venv/bin:$PATH" ANSIBLE_CONFIG="$root/ansible.cfg"
exec molecule test -s elk "$@"
