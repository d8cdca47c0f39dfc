#!/usr/bin/env bash
# Set-up for `make bench` only: upstream's `facedetect` element (Debian 12's gstreamer1.0-opencv)
# and the Haar cascades it loads by default (/usr/share/opencv4/haarcascades/, package
# opencv-data, which gstreamer1.0-opencv only recommends). As root it runs apt-get when one is
# missing; otherwise it prints the exact command and carries on: the bench runs without
# facedetect and says so.
set -euo pipefail

packages=(gstreamer1.0-opencv opencv-data)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "[bench] facedetect packages present"
    exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "[bench] missing Debian packages: ${missing[*]} (the facedetect comparison is skipped)" >&2
    echo "[bench] to compare with facedetect, run as root:" >&2
    echo "    sudo sh -c '$cmd'" >&2
    exit 0
fi
echo "[bench] installing: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
