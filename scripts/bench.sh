#!/usr/bin/env bash
# Set-up for `make bench` only, idempotent (a second run only checks):
# - upstream's `facedetect` element (Debian 12's gstreamer1.0-opencv) and the Haar cascades it
#   loads by default (/usr/share/opencv4/haarcascades/, package opencv-data, which
#   gstreamer1.0-opencv only recommends);
# - MediaPipe's legacy FaceMesh, the speed peer: a virtual environment .cache/bench-venv (git-
#   ignored) with the pins of scripts/bench-requirements.txt (mediapipe==0.10.21), run by
#   scripts/bench_mediapipe.py (BENCH_PYTHON: the python that makes it, python3 by default).
# As root it runs apt-get when a Debian package is missing; otherwise it prints the exact command
# and carries on. Neither is part of the product nor of `make test`: when one cannot be set up,
# the bench runs without that comparison and says so.
set -euo pipefail

cd "$(dirname "$0")/.."

apt_install() {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

missing_packages() {
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            echo "$p"
        fi
    done
}

# --- facedetect ------------------------------------------------------------------------------
mapfile -t missing < <(missing_packages gstreamer1.0-opencv opencv-data)
if [ ${#missing[@]} -eq 0 ]; then
    echo "[bench] facedetect packages present"
elif [ "$(id -u)" -ne 0 ]; then
    cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    echo "[bench] missing Debian packages: ${missing[*]} (the facedetect comparison is skipped)" >&2
    echo "[bench] to compare with facedetect, run as root:" >&2
    echo "    sudo sh -c '$cmd'" >&2
else
    echo "[bench] installing: ${missing[*]}"
    apt_install "${missing[@]}"
fi

# --- MediaPipe -------------------------------------------------------------------------------
venv=.cache/bench-venv
requirements=scripts/bench-requirements.txt
# The requirements the venv was made from: a changed pin makes it anew.
stamp=$venv/bench-requirements.txt
python=${BENCH_PYTHON:-python3}

mediapipe_ready() {
    [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp" &&
        "$venv/bin/python" scripts/bench_mediapipe.py --check 2>/dev/null
}

skip() {
    echo "[bench] MediaPipe not set up ($1): the MediaPipe comparison is skipped" >&2
    exit 0
}

if version=$(mediapipe_ready); then
    echo "[bench] MediaPipe present: $version ($venv)"
    exit 0
fi
command -v "$python" >/dev/null || skip "no $python"
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        skip "$python has no venv module; as root: apt-get install -y --no-install-recommends python3-venv"
    fi
    echo "[bench] installing: python3-venv"
    apt_install python3-venv || skip "apt-get install python3-venv failed"
fi
echo "[bench] making $venv with $requirements (mediapipe==0.10.21; about 1 GB with its dependencies)"
rm -rf "$venv"
"$python" -m venv "$venv" || skip "$python -m venv failed"
"$venv/bin/pip" install --disable-pip-version-check -q -r "$requirements" ||
    skip "pip install -r $requirements failed"
cp "$requirements" "$stamp"
version=$(mediapipe_ready) || skip "mediapipe does not import in $venv"
echo "[bench] MediaPipe ready: $version ($venv)"
