#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# make test-install: the installed plugin, checked without the source tree.
#
#  1. make install into a DESTDIR: the plugin run from there finds its models and ONNX Runtime in
#     that prefix; the installed files are the package's; make uninstall leaves the tree as it was.
#  2. A fresh Debian 12 (debootstrap --variant=minbase from the Debian registry, cached under
#     .cache/debian by scripts/debian-env.sh): apt-get install ./gstreamer1.0-facepose_*.deb
#     (dependencies from the registry), then with no environment variables (env -i, a plain PATH):
#     gst-inspect-1.0 lists the element; gst-launch-1.0 on a sample picture writes one face whose
#     angles match the source tree's run of the same pipeline within 0.1 degrees; the Python reader
#     example works; a missing model and a missing ONNX Runtime fail the start with an error naming
#     the file and the package; apt-get purge leaves no file of the package behind.
#
#   bash scripts/test-install.sh                   # needs the .deb (make deb) and root
#   bash scripts/test-install.sh --from-make-test  # from make test: builds the .deb first, and
#                                                  # skips (saying why) without root or registry;
#                                                  # under CI=true it never skips
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD

SUITE=bookworm
ENV_NAME=bookworm-facepose
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# What the tests use inside, fetched into the environment's apt cache when it is made and
# installed by the test after the package (so that the package's own Depends are what apt
# resolves first).
TOOLS=(gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good python3-gi
    python3-gst-1.0 gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0)
RUNTIME=(libgstreamer1.0-0 libgstreamer-plugins-base1.0-0)
PICTURE=models/samples/astronaut.png
PROPS="camera-fov=0 detection-interval=1"
TOLERANCE=0.1

T0=$SECONDS
log() { echo "[test-install] $*"; }
fail() { echo "[test-install] FAIL: $*" >&2; exit 1; }

from_make_test=0
[ "${1:-}" = --from-make-test ] && from_make_test=1

NAME=test-install
# shellcheck source=scripts/clean-room-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/clean-room-common.sh"

# ------------------------------------------------------------------ preconditions
require_root_and_debootstrap
if ! registry_reachable; then
    if [ -f ".cache/debian/$ENV_NAME/stamp" ]; then
        log "the Debian registry ($MIRROR) is not reachable; using the cached environment"
    else
        skip "the Debian registry ($MIRROR) is not reachable and no cached environment exists"
    fi
fi
if [ $from_make_test = 1 ]; then
    log "building the package (make deb)"
    ${MAKE:-make} --no-print-directory deb build-lib
fi
shopt -s nullglob
debs=(target/debian/gstreamer1.0-facepose_*.deb)
shopt -u nullglob
[ ${#debs[@]} -eq 1 ] || fail "expected one target/debian/gstreamer1.0-facepose_*.deb (run make deb), found ${#debs[@]}"
DEB=${debs[0]}
[ -f target/release/libgstfacepose.so ] || fail "target/release/libgstfacepose.so missing (make build-lib)"
[ -f "$PICTURE" ] || fail "$PICTURE missing (make models)"

WORK=$(mktemp -d /tmp/facepose-test-install.XXXXXX)
CLONE="$ROOT_DIR/.cache/debian/$ENV_NAME.test"
cleanup() {
    bash scripts/debian-env.sh remove "$CLONE" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

listing() {  # ROOT: every path below it, with type and symlink target, sorted
    (cd "$1" && find . -mindepth 1 -printf '%y %p %l\n' | sort)
}

angles() {  # JSONL: "yaw pitch roll faces" of the first frame
    python3 - "$1" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not lines:
    sys.exit(f"{sys.argv[1]}: no frame")
faces = lines[0]["faces"]
if len(faces) != 1:
    sys.exit(f"{sys.argv[1]}: {len(faces)} faces in the first frame, expected 1")
f = faces[0]
print(f"{f['yaw']:.4f} {f['pitch']:.4f} {f['roll']:.4f}")
PY
}

compare() {  # NAME "y p r" "y p r"
    python3 - "$@" "$TOLERANCE" <<'PY'
import sys
name, a, b, tol = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), float(sys.argv[4])
d = [abs(float(x) - float(y)) for x, y in zip(a, b)]
print(f"[test-install]   {name}: yaw/pitch/roll {' '.join(b)} vs source tree {' '.join(a)}: "
      f"max difference {max(d):.4f} deg (tolerance {tol})")
sys.exit(0 if max(d) <= tol else 1)
PY
}

# ------------------------------------------------------------------ source-tree reference
log "source tree: $PICTURE through target/release"
GST_PLUGIN_PATH="$ROOT_DIR/target/release" gst-launch-1.0 -q filesrc location="$PICTURE" ! decodebin \
    ! videoconvert ! faceposeestimator $PROPS json-location="$WORK/source.jsonl" ! fakesink \
    || fail "the source-tree pipeline failed"
REF=$(angles "$WORK/source.jsonl") || fail "source-tree run: $REF"
log "  source tree: yaw/pitch/roll $REF"

# ------------------------------------------------------------------ 1. make install into DESTDIR
T1=$SECONDS
log "1. make install / uninstall with DESTDIR"
DEST="$WORK/destdir"
mkdir -p "$DEST/usr/local/lib" "$DEST/usr/local/share/doc"   # standard folders that exist before
listing "$DEST" > "$WORK/destdir-before.txt"
PREFIX=/usr/local DESTDIR="$DEST" bash scripts/install.sh install > "$WORK/install.log" \
    || { cat "$WORK/install.log"; fail "make install failed"; }
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
plugin_dir="$DEST/usr/local/lib/$ma/gstreamer-1.0"
[ -f "$plugin_dir/libgstfacepose.so" ] || fail "make install did not put the plugin into $plugin_dir"
installed_files=$(cd "$DEST" && find . -type f -o -type l | wc -l)
installed_size=$(du -sh "$DEST" | cut -f1)
log "  $installed_files files ($installed_size) under DESTDIR/usr/local"
# The same files as the package (prefix /usr, the doc folder named after the package).
(cd "$DEST" && find . \( -type f -o -type l \) -printf '%P\n' | grep -v '/\.install-manifest$' \
    | sed -e 's|^usr/local/|usr/|' -e 's|^usr/share/doc/gst-plugin-facepose/|usr/share/doc/gstreamer1.0-facepose/|' \
    | sort) > "$WORK/install-files.txt"
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {p=$6; sub(/^\.\//, "", p); print p}' | sort > "$WORK/deb-files.txt"
if ! diff -u "$WORK/deb-files.txt" "$WORK/install-files.txt" > "$WORK/files.diff"; then
    cat "$WORK/files.diff" >&2
    fail "make install and the package install different files (- package, + make install)"
fi
log "  make install and the package ship the same $(wc -l < "$WORK/deb-files.txt") files"
# The plugin from there loads its models from there, whatever the source tree has.
GST_PLUGIN_PATH="$plugin_dir" GST_REGISTRY="$WORK/registry.bin" GST_DEBUG=faceposeestimator:4 GST_DEBUG_NO_COLOR=1 \
    gst-launch-1.0 -q filesrc location="$PICTURE" ! decodebin ! videoconvert \
    ! faceposeestimator $PROPS json-location="$WORK/destdir.jsonl" ! fakesink > "$WORK/destdir-run.log" 2>&1 \
    || { tail -20 "$WORK/destdir-run.log" >&2; fail "the plugin installed into DESTDIR does not run"; }
grep -q "Loaded $DEST/usr/local/share/gst-plugin-facepose/retinaface_mbv2.onnx" "$WORK/destdir-run.log" \
    || { grep -i loaded "$WORK/destdir-run.log" >&2; fail "the DESTDIR plugin did not load its models from DESTDIR/usr/local/share/gst-plugin-facepose"; }
compare "make install (DESTDIR)" "$REF" "$(angles "$WORK/destdir.jsonl")" || fail "angles of the DESTDIR install differ"
PREFIX=/usr/local DESTDIR="$DEST" bash scripts/install.sh uninstall > "$WORK/uninstall.log" \
    || { cat "$WORK/uninstall.log"; fail "make uninstall failed"; }
listing "$DEST" > "$WORK/destdir-after.txt"
if ! diff -u "$WORK/destdir-before.txt" "$WORK/destdir-after.txt" >&2; then
    fail "make uninstall did not leave DESTDIR as it was (diff above)"
fi
log "  uninstall left DESTDIR as it was ($((SECONDS - T1)) s)"

# ------------------------------------------------------------------ 2. clean-room Debian 12
T2=$SECONDS
log "2. clean room: Debian $SUITE (minbase) from the registry"
download=()
for p in "${TOOLS[@]}" "${RUNTIME[@]}"; do download+=(--download "$p"); done
bash scripts/debian-env.sh ensure "$SUITE" "$ENV_NAME" "${download[@]}" > "$WORK/env.txt" \
    || fail "could not make the Debian environment"
T_ENV=$((SECONDS - T2))
bash scripts/debian-env.sh clone "$ENV_NAME" "$CLONE" > /dev/null
T_CLONE=$((SECONDS - T2 - T_ENV))
IN=/tmp/facepose-test
mkdir -p "$CLONE$IN/out"
cp "$DEB" "$CLONE$IN/"
cp "$PICTURE" "$CLONE$IN/picture.png"
cp examples/read_metas.py "$CLONE$IN/"
cat > "$CLONE$IN/inside.sh" <<EOF
#!/bin/bash
# Runs inside the clean room (written by scripts/test-install.sh).
set -euo pipefail
IN=$IN
PROPS="$PROPS"
TOOLS="${TOOLS[*]}"
EOF
cat >> "$CLONE$IN/inside.sh" <<'EOF'
OUT=$IN/out
say() { echo "[inside] $*"; }
bad() { echo "[inside] FAIL: $*" >&2; exit 1; }
# Nothing of the environment: a plain PATH only.
clean() { env -i PATH=/usr/bin:/bin "$@"; }
snapshot() {
    find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /var/cache/apt \
        -o -path /var/lib/apt/lists -o -path /var/log -o -path /root/.cache \) -prune -o -print | sort
}
PLUGIN=/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstfacepose.so
DATA=/usr/share/gst-plugin-facepose
ORTDIR=/usr/lib/gst-plugin-facepose

snapshot > $OUT/before-install.txt
cd $IN
# Dependencies come from the registry's index (their packages are already in the apt cache).
if ! apt-get install -y --no-install-recommends ./gstreamer1.0-facepose_*.deb > $OUT/apt-install.log 2>&1; then
    say "apt-get install failed with the cached index; updating it"
    apt-get update -qq && apt-get install -y --no-install-recommends ./gstreamer1.0-facepose_*.deb > $OUT/apt-install.log 2>&1 \
        || { cat $OUT/apt-install.log; bad "apt-get install ./gstreamer1.0-facepose_*.deb"; }
fi
pulled=$(sed -n '/NEW packages will be installed/,/upgraded/p' $OUT/apt-install.log | sed '1d;$d' | xargs)
say "installed the package; apt added: $pulled"
missing=$(ldd $PLUGIN $ORTDIR/libonnxruntime.so.1.31.1 | grep 'not found' || true)
[ -z "$missing" ] || bad "libraries missing with only the package's Depends: $missing"
say "ldd: every library of the plugin and of ONNX Runtime resolves with the Depends alone"
dpkg -L gstreamer1.0-facepose | sort > $OUT/package-files.txt
if ! apt-get install -y --no-install-recommends $TOOLS > $OUT/apt-tools.log 2>&1; then
    apt-get update -qq
    apt-get install -y --no-install-recommends $TOOLS >> $OUT/apt-tools.log 2>&1 \
        || { tail $OUT/apt-tools.log; bad "installing the test tools"; }
fi

# gst-inspect-1.0 finds the element with no GST_PLUGIN_PATH.
clean gst-inspect-1.0 faceposeestimator > $OUT/inspect.txt 2>&1 || { cat $OUT/inspect.txt; bad "gst-inspect-1.0 faceposeestimator"; }
# (merged /usr: GStreamer may name it by /lib/..., the same file)
grep -Eq "Filename +(/usr)?/lib/x86_64-linux-gnu/gstreamer-1.0/libgstfacepose.so" $OUT/inspect.txt \
    || { head -30 $OUT/inspect.txt; bad "gst-inspect-1.0 does not show $PLUGIN"; }
say "gst-inspect-1.0 faceposeestimator: $(grep -m1 'Long-name' $OUT/inspect.txt | sed 's/^ *//')"

clean gst-launch-1.0 -q filesrc location=$IN/picture.png ! decodebin ! videoconvert \
    ! faceposeestimator $PROPS json-location=$OUT/installed.jsonl ! fakesink > $OUT/launch.log 2>&1 \
    || { cat $OUT/launch.log; bad "gst-launch-1.0 with the installed plugin"; }
say "gst-launch-1.0: $(wc -l < $OUT/installed.jsonl) frame(s) of JSON Lines"

# The frame graphs ship too: graph pre-processing (on the CPU here) gives the same face.
clean gst-launch-1.0 -q filesrc location=$IN/picture.png ! decodebin ! videoconvert \
    ! faceposeestimator $PROPS preprocess=graph json-location=$OUT/installed-graph.jsonl ! fakesink \
    > $OUT/launch-graph.log 2>&1 \
    || { cat $OUT/launch-graph.log; bad "gst-launch-1.0 with the installed plugin, preprocess=graph"; }
say "gst-launch-1.0 preprocess=graph: $(wc -l < $OUT/installed-graph.jsonl) frame(s) of JSON Lines"

clean python3 $IN/read_metas.py --pipeline "filesrc location=$IN/picture.png ! pngdec ! imagefreeze num-buffers=3 ! videoconvert ! faceposeestimator $PROPS ! appsink name=sink sync=false" \
    > $OUT/read_metas.jsonl 2> $OUT/read_metas.err || { cat $OUT/read_metas.err; bad "examples/read_metas.py"; }
say "read_metas.py: $(wc -l < $OUT/read_metas.jsonl) line(s)"

# A damaged install: the start fails, naming the file and the package; nothing panics.
damaged() {  # FILE LABEL
    local file=$1 label=$2 rc=0
    mv "$file" "$file.away"
    clean gst-launch-1.0 -q filesrc location=$IN/picture.png ! decodebin ! videoconvert \
        ! faceposeestimator ! fakesink > $OUT/damaged-$label.log 2>&1 || rc=$?
    mv "$file.away" "$file"
    [ $rc -ne 0 ] || bad "without $file the pipeline did not fail"
    grep -q "$file" $OUT/damaged-$label.log || { cat $OUT/damaged-$label.log; bad "the error does not name $file"; }
    grep -q "gstreamer1.0-facepose" $OUT/damaged-$label.log || { cat $OUT/damaged-$label.log; bad "the error does not name the package"; }
    ! grep -qi "panick" $OUT/damaged-$label.log || { cat $OUT/damaged-$label.log; bad "panic without $file"; }
    say "without $file: $(grep -m1 -i 'error' $OUT/damaged-$label.log | cut -c1-400)"
}
damaged $DATA/whenet.onnx model
damaged $ORTDIR/libonnxruntime.so.1.31.1 runtime

snapshot > $OUT/before-purge.txt
apt-get purge -y gstreamer1.0-facepose > $OUT/purge.log 2>&1 || { cat $OUT/purge.log; bad "apt-get purge"; }
snapshot > $OUT/after-purge.txt
left=$(while read -r f; do
    if [ ! -d "$f" ] && { [ -e "$f" ] || [ -L "$f" ]; }; then echo "$f"; fi
done < $OUT/package-files.txt)
[ -z "$left" ] || bad "files of the package left after purge: $left"
for d in $DATA $ORTDIR /usr/share/doc/gstreamer1.0-facepose; do [ ! -e $d ] || bad "$d left after purge"; done
# Only the package's own files went away, and nothing of it is left that was not there before.
comm -23 $OUT/before-purge.txt $OUT/after-purge.txt > $OUT/removed.txt
extra=$(comm -13 $OUT/before-install.txt $OUT/after-purge.txt | grep -i facepose || true)
[ -z "$extra" ] || bad "after purge, paths not there before install: $extra"
say "apt-get purge: $(wc -l < $OUT/removed.txt) paths removed, none of the package's $(grep -c . $OUT/package-files.txt) left"
EOF
log "  environment ready in $T_ENV s, cloned in $T_CLONE s; running inside (env -i)"
T3=$SECONDS
bash scripts/debian-env.sh run "$CLONE" /bin/bash "$IN/inside.sh" || fail "inside the clean room (above)"
T_IN=$((SECONDS - T3))
OUT="$CLONE$IN/out"
compare "installed package, gst-launch-1.0" "$REF" "$(angles "$OUT/installed.jsonl")" \
    || fail "angles of the installed package differ from the source tree's"
compare "installed package, preprocess=graph" "$REF" "$(angles "$OUT/installed-graph.jsonl")" \
    || fail "angles of the installed package with preprocess=graph differ from the source tree's"
compare "installed package, read_metas.py" "$REF" "$(angles <(python3 -c '
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    print(json.dumps({"faces": d["faces"]}))
    break' "$OUT/read_metas.jsonl"))" || fail "read_metas.py angles differ from the source tree's"
log "PASS in $((SECONDS - T0)) s (environment $T_ENV s, clone $T_CLONE s, inside $T_IN s); installed files: $installed_files ($installed_size)"
