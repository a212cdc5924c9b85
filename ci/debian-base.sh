#!/usr/bin/env bash
# The Debian base image without a registry: debootstrap a minimal bookworm and import it into
# podman as the tag the fixture Dockerfiles start FROM. A machine that can pull from Docker Hub
# never needs this. Done once: an image already imported under the tag is reused.
#
#   ci/debian-base.sh [TAG]     TAG defaults to $SEAWORTHY_BASE, else debian:bookworm-slim
#   SEAWORTHY_DEBIAN_MIRROR     the mirror (default: the one this machine's apt uses)
set -euo pipefail

tag="${1:-${SEAWORTHY_BASE:-debian:bookworm-slim}}"
suite=bookworm

# `FROM debian:bookworm-slim` must resolve without asking a registry: podman looks a short name
# up in local storage as localhost/<name> and as docker.io/library/<name>; both tags are given.
full_tag() {
  case "$1" in
    */*/*) echo "$1" ;;                      # registry/namespace/name
    *.*/*|*:*/*|localhost/*) echo "$1" ;;    # registry/name
    */*) echo "docker.io/$1" ;;
    *) echo "docker.io/library/$1" ;;
  esac
}
tags=("$tag")
[ "$(full_tag "$tag")" = "$tag" ] || tags+=("$(full_tag "$tag")")

if podman image exists "$(full_tag "$tag")" && podman image exists "$tag"; then
  echo "debian-base: $tag already imported ($(podman image inspect --format '{{.Id}}' "$tag" | cut -c1-12)); reusing it"
  exit 0
fi

mirror="${SEAWORTHY_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  # The first main-archive URI apt is configured with (deb822 .sources or one-line .list).
  mirror="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
              | awk '/^URIs:/ {print $2}' | grep -v -- '-security' | head -1 || true)"
  [ -n "$mirror" ] || mirror="$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
              | awk '{print $2}' | grep -v -- '-security' | head -1 || true)"
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi

mirror="${mirror%/}"

command -v debootstrap >/dev/null || { echo "debian-base: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
command -v podman >/dev/null || { echo "debian-base: podman is not installed (apt-get install podman)" >&2; exit 1; }

root="$(mktemp -d /var/tmp/seaworthy-debootstrap.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "debian-base: debootstrap --variant=minbase $suite from $mirror (takes a few minutes)"
start=$SECONDS
if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1; then
  tail -30 "$root.log" >&2
  echo "debian-base: debootstrap failed; full log in $root.log" >&2
  exit 1
fi
rm -f "$root.log"

# What the official bookworm-slim image also does: the same apt sources (main, updates, security)
# so that RUN apt-get install gets security fixes, and no package caches left in the image.
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
SOURCES
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
# The "slim" part, as debuerreotype makes the official image: no docs, man pages or translations
# installed by later layers, no package lists in other languages, no .debs kept in a layer.
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
# ...and none left from debootstrap itself.
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/groff/* "$root"/usr/share/lintian/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
cat >"$root/etc/apt/apt.conf.d/docker-slim" <<'APT'
Acquire::Languages "none";
Acquire::GzipIndexes "true";
APT::AutoRemove::SuggestsImportant "false";
APT::Install-Recommends "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT

tar -C "$root" --numeric-owner -c . | podman import \
  --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --message "debootstrap --variant=minbase $suite $mirror" - "${tags[0]}" >/dev/null 2>"$root.import.log" \
  || { cat "$root.import.log" >&2; exit 1; }
rm -f "$root.import.log"
for t in "${tags[@]:1}"; do podman tag "${tags[0]}" "$t"; done
echo "debian-base: imported ${tags[*]} in $((SECONDS - start))s"
