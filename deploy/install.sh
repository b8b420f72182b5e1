#!/usr/bin/env bash
# Installs facegate on the board as a systemd service (README, "Field installation on a Jetson").
#
#   sudo deploy/install.sh BINARY            install, create the user, enable and start
#   deploy/install.sh BINARY --root DIR      stage the same layout under DIR (no user, no start)
#
# Layout:
#   /usr/bin/facegate                          the device program (BINARY)
#   /usr/share/facegate/models/{default,detector,liveness}   the shipped models (FACEGATE_MODELS)
#   /usr/share/doc/facegate/README.md
#   /etc/facegate/facegate.toml                the field config (kept if present), 0640 root:facegate
#   /etc/facegate/people/                      enrollment photos the config names
#   /etc/systemd/system/facegate.service       the unit (deploy/facegate.service)
#   /etc/systemd/system/facegate@.service      one instance per further camera (NAME.toml)
#   /var/lib/facegate/                         state: gallery, keys, event queue, 0700 facegate
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() { echo "usage: $0 BINARY [--root DIR]" >&2; exit 2; }
[ $# -ge 1 ] || usage
binary=$1
shift
root=""
if [ $# -gt 0 ]; then
  [ "$1" = "--root" ] && [ $# -eq 2 ] || usage
  root=$(mkdir -p "$2" && cd "$2" && pwd)
fi
[ -f "$binary" ] && [ -x "$binary" ] || { echo "error: $binary: not an executable file" >&2; exit 2; }
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
  echo "error: installing into / needs root (or stage with --root DIR)" >&2
  exit 2
fi
for m in default/facegate.card.json default/facegate.onnx detector/pnet.onnx detector/rnet.onnx detector/onet.onnx \
  liveness/liveness.json liveness/minifasnet-v2.onnx liveness/minifasnet-v1se.onnx; do
  [ -f "$here/models/$m" ] || { echo "error: models/$m missing in $here" >&2; exit 2; }
done

say() { printf '==> %s\n' "$*"; }

say "installing into ${root:-/}"
install -D -m 0755 "$binary" "$root/usr/bin/facegate"
for m in default/facegate.card.json default/facegate.onnx detector/pnet.onnx detector/rnet.onnx \
  detector/onet.onnx detector/LICENSE-mtcnn.txt liveness/liveness.json liveness/minifasnet-v2.onnx \
  liveness/minifasnet-v1se.onnx liveness/LICENSE-minifasnet.txt; do
  install -D -m 0644 "$here/models/$m" "$root/usr/share/facegate/models/$m"
done
install -D -m 0644 "$here/README.md" "$root/usr/share/doc/facegate/README.md"
install -D -m 0644 "$here/deploy/facegate.service" "$root/etc/systemd/system/facegate.service"
install -D -m 0644 "$here/deploy/facegate@.service" "$root/etc/systemd/system/facegate@.service"
install -d -m 0750 "$root/etc/facegate" "$root/etc/facegate/people"
if [ -e "$root/etc/facegate/facegate.toml" ]; then
  say "keeping the existing /etc/facegate/facegate.toml (the new template is facegate.toml.new)"
  install -m 0640 "$here/deploy/facegate.toml" "$root/etc/facegate/facegate.toml.new"
else
  install -m 0640 "$here/deploy/facegate.toml" "$root/etc/facegate/facegate.toml"
fi
install -d -m 0700 "$root/var/lib/facegate"

if [ -z "$root" ]; then
  # The user (groups video, gpio), the config's group, the private state folder, systemd told:
  # the Debian package's own step, so both installs end alike (a running door is restarted).
  say "user facegate, ownership, systemd"
  sh "$here/deploy/debian/postinst" configure install.sh
  if /usr/bin/facegate check-config /etc/facegate/facegate.toml; then
    systemctl enable --now facegate
    say "started: journalctl -u facegate -f"
  else
    systemctl enable facegate
    say "enabled, not started: fix /etc/facegate/facegate.toml, then systemctl start facegate"
  fi
fi
