#!/usr/bin/env bash
# The Debian base image without a registry: debootstrap a minimal bookworm and import it into
# podman as the tag the fixture Dockerfiles start FROM. A machine that can pull from Docker Hub
# never needs this. Done once: an image already imported under the tag is reused.
#
#   ci/debian-base.sh [TAG]     TAG defaults to $SEAWORTHY_BASE, else debian:bookworm-slim
#   SEAWORTHY_DEBIAN_MIRROR     the mirror (default: the one this machine's apt uses for bookworm)
#   SEAWORTHY_DEBIAN_SECURITY   the security archive (default: the one this machine's apt uses)
#
# debootstrap needs root: run as a user, the script uses sudo for it (and for reading the tree
# it made) and imports into that user's podman storage. The image tests need root's podman (they
# reach Pods at their bridge addresses), so CI runs all of this as root.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

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

# The URIs this machine's apt uses for a suite: deb822 stanzas (.sources) and one-line entries
# (.list, options in brackets skipped), `deb` only, in the order apt reads them.
apt_uris() {  # $1: the suite, e.g. bookworm or bookworm-security
  awk -v want=" $1 " '
    function flush() { if (types ~ /(^| )deb( |$)/ && suites ~ want && uri != "") print uri; types = ""; suites = ""; uri = "" }
    FNR == 1 { flush() }
    /^[[:space:]]*$/ { flush(); next }
    /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 }
    /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = " " $0 " " }
    /^URIs:/ { uri = $2 }
    END { flush() }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk -v want="$1" '
    $1 == "deb" { i = 2; if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ } if ($(i + 1) == want) print $i }' || true
}

mirror="${SEAWORTHY_DEBIAN_MIRROR:-$(apt_uris "$suite" | head -1)}"
mirror="${mirror:-http://deb.debian.org/debian}"
mirror="${mirror%/}"
# Security updates come from their own archive, which most mirrors do not carry: the one this
# machine's apt is configured with, else Debian's own.
security="${SEAWORTHY_DEBIAN_SECURITY:-$(apt_uris "$suite-security" | head -1)}"
security="${security:-http://deb.debian.org/debian-security}"
security="${security%/}"

command -v debootstrap >/dev/null || { echo "debian-base: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
command -v podman >/dev/null || { echo "debian-base: podman is not installed (apt-get install podman)" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
  echo "debian-base: debootstrap needs root: run ci/debian-base.sh as root (or install sudo)" >&2
  exit 1
fi

root="$(mktemp -d /var/tmp/seaworthy-debootstrap.XXXXXX)"
trap 'as_root rm -rf "$root"' EXIT
echo "debian-base: debootstrap --variant=minbase $suite from $mirror (takes a few minutes)"
start=$SECONDS
if ! as_root debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1; then
  tail -30 "$root.log" >&2
  echo "debian-base: debootstrap failed; full log in $root.log" >&2
  exit 1
fi
rm -f "$root.log"

# What the official bookworm-slim image also does: the same apt sources (main, updates, security)
# so that RUN apt-get install gets security fixes, and no package caches left in the image.
as_root tee "$root/etc/apt/sources.list" >/dev/null <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SOURCES
as_root sh -c 'rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' - "$root"
# The "slim" part, as debuerreotype makes the official image: no docs, man pages or translations
# installed by later layers, no package lists in other languages, no .debs kept in a layer.
as_root tee "$root/etc/dpkg/dpkg.cfg.d/docker" >/dev/null <<'DPKG'
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
as_root sh -c '
  find "$1/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null
  find "$1/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null
  rm -rf "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/usr/share/groff/* "$1"/usr/share/lintian/*
  find "$1/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null
  true' - "$root"
as_root tee "$root/etc/apt/apt.conf.d/docker-slim" >/dev/null <<'APT'
Acquire::Languages "none";
Acquire::GzipIndexes "true";
APT::AutoRemove::SuggestsImportant "false";
APT::Install-Recommends "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT

# Read as root (some files are root's only), imported into the podman storage of whoever runs this.
as_root tar -C "$root" --numeric-owner -c . | podman import \
  --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --message "debootstrap --variant=minbase $suite $mirror" - "${tags[0]}" >/dev/null 2>"$root.import.log" \
  || { cat "$root.import.log" >&2; exit 1; }
rm -f "$root.import.log"
for t in "${tags[@]:1}"; do podman tag "${tags[0]}" "$t"; done
echo "debian-base: imported ${tags[*]} in $((SECONDS - start))s"
