#!/usr/bin/env bash
# Installs the Debian packages the project needs, when any is missing. As root it runs apt-get;
# otherwise it prints the exact command and stops. Quiet and quick when everything is there.
set -euo pipefail

packages=(
    pkg-config
    libgstreamer1.0-dev
    libgstreamer-plugins-base1.0-dev
    gstreamer1.0-tools
    gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad
    gstreamer1.0-libav
    gstreamer1.0-plugins-ugly
    python3-gi
    python3-gst-1.0
    gir1.2-gst-plugins-base-1.0
    gir1.2-gst-rtsp-server-1.0
    python3-venv
    fonts-dejavu-core
    dpkg-dev
    debootstrap
    mosquitto
    mosquitto-clients
    openssl
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "[system] packages present"
    exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "[system] missing Debian packages: ${missing[*]}" >&2
    echo "[system] run as root, then 'make' again:" >&2
    echo "    sudo sh -c '$cmd'" >&2
    exit 1
fi
echo "[system] installing: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
