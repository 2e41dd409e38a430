#!/usr/bin/env bash
# Prepares this machine (Debian 12, root) to run the lab and the tests, idempotently:
#   1. Debian packages: podman with runc, debootstrap, and the tools the tests drive from the host;
#   2. /etc/containers/containers.conf with the settings podman needs here (runc, lowered ulimits), and enough
#      inotify instances for many systemd containers at once;
#   3. the lab base image (debootstrapped Debian bookworm with systemd), built once and cached;
#   4. the Python venv (.venv) from requirements.txt, rebuilt only when that file changes.
# Every step prints how long it took. Re-running it on a prepared machine takes a few seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# shellcheck source=lab/lab.env
. lab/lab.env

step() { printf '==> %s\n' "$*"; }
t0=$(date +%s)
timed() { local s; s=$(date +%s); "$@"; printf '    (%ss)\n' "$(( $(date +%s) - s ))"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "lab/setup-host.sh must run as root (rootful podman is what works on these machines)" >&2
  exit 1
fi

# iptables: netavark 1.4 sets up container networks with it ("netavark: No such file or directory" without it).
# nodejs: the integration tests parse the JavaScript the pm2 role edits (node --check).
packages=(podman runc netavark aardvark-dns iptables debootstrap iproute2 nftables openssh-client sshpass curl
          python3-venv git make shellcheck testssl.sh wrk nodejs)
apt_install() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    step "Debian packages already installed"
  fi
}
timed apt_install

# promtool (the rule checks and rule unit tests of the unit stage) from Debian's prometheus package, extracted:
# no Prometheus server is installed, enabled or started on this machine.
promtool_install() {
  local want tmp
  want=$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')
  if [ -z "$want" ] || [ "$want" = "(none)" ]; then
    apt-get update -qq
    want=$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')
  fi
  if [ -x /usr/local/bin/promtool ] && [ "$(cat /usr/local/lib/ierahkwa-promtool.version 2>/dev/null)" = "$want" ]; then
    step "promtool $want already installed"
    return
  fi
  step "promtool from Debian's prometheus $want (extracted from the package)"
  tmp=$(mktemp -d)
  chown _apt "$tmp" 2>/dev/null || true
  (cd "$tmp" && apt-get download -qq "prometheus=$want") &&
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x" &&
    install -m 0755 "$tmp/x/usr/bin/promtool" /usr/local/bin/promtool &&
    install -d /usr/local/lib && echo "$want" > /usr/local/lib/ierahkwa-promtool.version
  local rc=$?
  rm -rf "$tmp"
  return $rc
}
timed promtool_install

containers_conf() {
  step "containers.conf (runc, cgroupfs, lowered ulimits)"
  install -d /etc/containers
  local want
  want=$(cat <<'CONF'
# Managed by ierahkwa.platform lab/setup-host.sh: podman settings that work on these machines.
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
)
  if [ "$(cat /etc/containers/containers.conf 2>/dev/null)" != "$want" ]; then
    [ -f /etc/containers/containers.conf ] && cp /etc/containers/containers.conf "/etc/containers/containers.conf.bak.$(date +%s)"
    printf '%s\n' "$want" > /etc/containers/containers.conf
  fi
}
timed containers_conf

inotify() {
  # Every container's systemd takes several inotify instances; with Linux's default of 128 per user, the
  # ~25th container's path units fail and its boot hangs in "initializing" (seen with 27 lab hosts).
  step "fs.inotify.max_user_instances >= 8192 (many systemd containers at once)"
  echo 'fs.inotify.max_user_instances = 8192' > /etc/sysctl.d/60-ierahkwa-lab.conf
  [ "$(sysctl -n fs.inotify.max_user_instances)" -ge 8192 ] || sysctl -q -w fs.inotify.max_user_instances=8192
}
timed inotify

build_image() {
  if podman image exists "$LAB_IMAGE"; then
    step "lab image $LAB_IMAGE already built"
    return
  fi
  step "building lab image $LAB_IMAGE with debootstrap"
  local root=/var/cache/ierahkwa-lab/rootfs
  rm -rf "$root"
  install -d /var/cache/ierahkwa-lab
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,iproute2,ca-certificates,procps,less \
    bookworm "$root" http://deb.debian.org/debian >/var/cache/ierahkwa-lab/debootstrap.log 2>&1 \
    || { tail -20 /var/cache/ierahkwa-lab/debootstrap.log >&2; exit 1; }
  cat > "$root/etc/apt/sources.list" <<'SRC'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SRC
  # Keep downloaded packages: the lab shares one archive cache between its hosts.
  echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > "$root/etc/apt/apt.conf.d/10keep-downloads"
  rm -f "$root/etc/hostname" "$root"/var/cache/apt/archives/*.deb
  : > "$root/etc/machine-id"
  tar -C "$root" -c . | podman import --change 'CMD ["/sbin/init"]' - "$LAB_IMAGE" >/dev/null
  rm -rf "$root"
}
timed build_image
# apt archive caches of the lab and Molecule hosts (one per host: apt locks its archive directory).
install -d "$LAB_APT_CACHE"
grep -ho '/var/cache/ierahkwa-lab/apt/[^:]*:' molecule/*/molecule.yml | sed 's/:$//' | sort -u |
  while read -r cache; do
    install -d "$LAB_APT_CACHE/$(basename "$cache")/partial"
  done

venv() {
  local stamp=.venv/.requirements.sha256 want
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    step "Python venv .venv up to date"
    return
  fi
  step "Python venv .venv from requirements.txt"
  python3 -m venv .venv
  # pip's notes about unreachable local mirrors are noise here; errors still show and fail the step
  .venv/bin/pip install -q --upgrade pip 2>&1 | { grep -v '^WARNING: Location' || true; }
  .venv/bin/pip install -q -r requirements.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "pip install -r requirements.txt failed" >&2; exit 1; }
  echo "$want" > "$stamp"
}
timed venv

echo "setup-host: ready in $(( $(date +%s) - t0 ))s"
