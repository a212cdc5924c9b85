#!/usr/bin/env bash
# Make podman (and buildah, which reads the same file) run containers on this kind of machine:
#  - runc: what the image tests were proven with on Debian 12's podman 4.3;
#  - default ulimits no higher than the hard limits: podman asks for nofile=1048576 by default,
#    which a process without CAP_SYS_RESOURCE cannot raise to, and then no container starts;
#  - netavark + aardvark-dns instead of CNI: the image tests put each Pod on a per-test network
#    where Service names resolve through DNS, as in a cluster (flask-sts's nginx needs a real
#    resolver, /etc/hosts is not enough for nginx's `resolver`).
# Idempotent: a file that already says this is left alone; any other is kept once as
# containers.conf.seaworthy-orig.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

for tool in podman runc /usr/lib/podman/netavark /usr/lib/podman/aardvark-dns iptables; do
  command -v "$tool" >/dev/null || {
    echo "podman-setup: $tool is missing (apt-get install podman runc netavark aardvark-dns iptables)" >&2
    exit 1
  }
done

conf=/etc/containers/containers.conf
want='# Written by seaworthy ci/podman-setup.sh.
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
events_logger = "file"

[network]
network_backend = "netavark"'

$SUDO mkdir -p /etc/containers
if [ -f "$conf" ] && [ "$(cat "$conf")" = "$want" ]; then
  echo "podman-setup: $conf already set"
else
  if [ -f "$conf" ] && [ ! -f "$conf.seaworthy-orig" ]; then
    $SUDO cp "$conf" "$conf.seaworthy-orig"
  fi
  printf '%s\n' "$want" | $SUDO tee "$conf" >/dev/null
  echo "podman-setup: wrote $conf"
fi

# A podman that ran with CNI before leaves its bridge cni-podman0 on 10.88.0.0/16, the subnet
# netavark's default network uses too: the stale route swallows every packet from containers
# (builds then fail at apt-get with "Temporary failure resolving"). Nothing uses it after the
# switch, so it goes.
if ip link show cni-podman0 >/dev/null 2>&1; then
  $SUDO ip link delete cni-podman0
  echo "podman-setup: removed the stale CNI bridge cni-podman0"
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "podman-setup: your podman is rootless, but the image tests need root's (they reach Pods at their bridge addresses): run them as root"
fi
echo "podman-setup: $(podman info --format 'runtime {{.Host.OCIRuntime.Name}}, network {{.Host.NetworkBackend}}, storage {{.Store.GraphDriverName}}')"
