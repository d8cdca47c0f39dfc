#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# make install / make uninstall: the plugin, its models, its private ONNX Runtime and the licences
# under PREFIX (default /usr/local), inside DESTDIR when set (staging).
#
#   bash scripts/install.sh install   [PREFIX=...] [DESTDIR=...] [MULTIARCH=...]
#   bash scripts/install.sh uninstall [PREFIX=...] [DESTDIR=...]
#   bash scripts/install.sh list      # the files, one "source<TAB>destination" a line (relative to PREFIX)
#
# Layout (the plugin finds the rest from where its own file lies; src/engine/locate.rs):
#   lib/<multiarch>/gstreamer-1.0/libgstfacepose.so
#   share/gst-plugin-facepose/        models, descriptors, canonical_face.txt
#   lib/gst-plugin-facepose/          libonnxruntime.so.1.31.1 (+ .so.1, .so links), providers_shared
#   share/doc/gst-plugin-facepose/    copyright (every licence and notice), LICENSE, NOTICES.md, ...
#
# install records what it created (files, links and the folders that did not exist before, the
# prefix's own included) in share/gst-plugin-facepose/.install-manifest; uninstall removes exactly
# those (folders only when empty), so that install then uninstall leaves the tree as it was.
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:-}
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
ORT_LIB=libonnxruntime.so.1.31.1
NAME=gst-plugin-facepose

log() { echo "[$action] $*"; }
die() { echo "[$action] ERROR: $*" >&2; exit 1; }

case "$PREFIX" in /*) ;; *) die "PREFIX must be an absolute path (got '$PREFIX')" ;; esac
PREFIX=${PREFIX%/}

multiarch() {
    if [ -n "${MULTIARCH+x}" ]; then
        echo "$MULTIARCH"
    elif command -v dpkg-architecture >/dev/null 2>&1; then
        dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null
    elif command -v gcc >/dev/null 2>&1 && [ -n "$(gcc -print-multiarch 2>/dev/null)" ]; then
        gcc -print-multiarch
    fi
}
MA=$(multiarch || true)
PLUGIN_DIR=lib${MA:+/$MA}/gstreamer-1.0
DATA_DIR=share/$NAME
ORT_DIR=lib/$NAME
DOC_DIR=share/doc/$NAME
MANIFEST=$DATA_DIR/.install-manifest

# source <TAB> destination (relative to PREFIX) <TAB> mode; mode "link" makes a symbolic link to source.
files() {
    printf '%s\t%s\t%s\n' target/release/libgstfacepose.so "$PLUGIN_DIR/libgstfacepose.so" 644
    local m
    for m in retinaface_mbv2 face_landmark blazeface_full whenet; do
        printf '%s\t%s\t%s\n' "models/$m.onnx" "$DATA_DIR/$m.onnx" 644
        printf '%s\t%s\t%s\n' "models/$m.descriptor" "$DATA_DIR/$m.descriptor" 644
    done
    # The frame graphs their descriptors name (preprocess=graph; docs/gpu.md).
    for m in face_landmark whenet retinaface_mbv2; do
        printf '%s\t%s\t%s\n' "models/$m.frame.onnx" "$DATA_DIR/$m.frame.onnx" 644
        printf '%s\t%s\t%s\n' "models/$m.frame-yuv.onnx" "$DATA_DIR/$m.frame-yuv.onnx" 644
    done
    printf '%s\t%s\t%s\n' models/canonical_face.txt "$DATA_DIR/canonical_face.txt" 644
    printf '%s\t%s\t%s\n' "third_party/onnxruntime/lib/$ORT_LIB" "$ORT_DIR/$ORT_LIB" 644
    printf '%s\t%s\t%s\n' "$ORT_LIB" "$ORT_DIR/libonnxruntime.so.1" link
    printf '%s\t%s\t%s\n' "$ORT_LIB" "$ORT_DIR/libonnxruntime.so" link
    printf '%s\t%s\t%s\n' third_party/onnxruntime/lib/libonnxruntime_providers_shared.so \
        "$ORT_DIR/libonnxruntime_providers_shared.so" 644
    printf '%s\t%s\t%s\n' target/copyright "$DOC_DIR/copyright" 644
    printf '%s\t%s\t%s\n' LICENSE "$DOC_DIR/LICENSE" 644
    printf '%s\t%s\t%s\n' models/NOTICES.md "$DOC_DIR/NOTICES.md" 644
    printf '%s\t%s\t%s\n' models/LICENSE-WHENet.txt "$DOC_DIR/LICENSE-WHENet.txt" 644
    printf '%s\t%s\t%s\n' third_party/onnxruntime/lib/LICENSE "$DOC_DIR/onnxruntime-LICENSE" 644
    printf '%s\t%s\t%s\n' third_party/onnxruntime/lib/ThirdPartyNotices.txt \
        "$DOC_DIR/onnxruntime-ThirdPartyNotices.txt" 644
    printf '%s\t%s\t%s\n' README.md "$DOC_DIR/README.md" 644
    # The pages README.md links to, so that its links work where it is installed.
    for f in docs/*.md docs/*.png; do
        printf '%s\t%s\t%s\n' "$f" "$DOC_DIR/$f" 644
    done
}

root="$DESTDIR$PREFIX"

# Creates dir (an absolute path, inside DESTDIR) and its missing parents, recording each one it
# made.
created=()
make_dir() {
    local abs=$1 path="" part
    local IFS=/
    for part in $abs; do
        [ -n "$part" ] || continue
        path=$path/$part
        if [ ! -d "$DESTDIR$path" ]; then
            mkdir "$DESTDIR$path"
            created+=("$path")
        fi
    done
}

do_install() {
    local src dest mode missing=()
    while IFS=$'\t' read -r src dest mode; do
        [ "$mode" = link ] || [ -e "$src" ] || missing+=("$src")
    done < <(files)
    [ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]} (run 'make install', which builds them, or 'make setup' and 'cargo build --release')"

    [ -z "$DESTDIR" ] || [ -d "$DESTDIR" ] || die "DESTDIR $DESTDIR does not exist"
    # Folders an earlier install created stay recorded.
    local old=()
    if [ -f "$root/$MANIFEST" ]; then
        mapfile -t old < <(sed -n 's/^d //p' "$root/$MANIFEST")
    fi
    local entries=()
    while IFS=$'\t' read -r src dest mode; do
        make_dir "$PREFIX/$(dirname "$dest")"
        if [ "$mode" = link ]; then
            ln -sfn "$src" "$root/$dest"
        else
            install -m "$mode" "$src" "$root/$dest"
        fi
        entries+=("f $PREFIX/$dest")
    done < <(files)
    {
        local d
        for d in "${old[@]}" "${created[@]}"; do echo "d $d"; done | awk '!seen[$0]++'
        printf '%s\n' "${entries[@]}"
        echo "f $PREFIX/$MANIFEST"
    } > "$root/$MANIFEST.tmp"
    mv "$root/$MANIFEST.tmp" "$root/$MANIFEST"
    log "installed ${#entries[@]} files under $root"
    log "  plugin:  $PREFIX/$PLUGIN_DIR/libgstfacepose.so"
    log "  models:  $PREFIX/$DATA_DIR/"
    log "  runtime: $PREFIX/$ORT_DIR/"
    log "  docs:    $PREFIX/$DOC_DIR/"
    case "$PREFIX/$PLUGIN_DIR" in
        /usr/lib/*/gstreamer-1.0 | /usr/lib/gstreamer-1.0 | /usr/lib64/gstreamer-1.0) ;;
        *) log "GStreamer does not scan $PREFIX/$PLUGIN_DIR by itself: export GST_PLUGIN_PATH=$PREFIX/$PLUGIN_DIR" ;;
    esac
}

do_uninstall() {
    local removed=0 kind rel dirs=()
    if [ -f "$root/$MANIFEST" ]; then
        while read -r kind rel; do
            case "$kind" in
                f) if [ -e "$DESTDIR$rel" ] || [ -L "$DESTDIR$rel" ]; then rm -f "$DESTDIR$rel"; removed=$((removed + 1)); fi ;;
                d) dirs+=("$rel") ;;
            esac
        done < "$root/$MANIFEST"
    else
        log "no $PREFIX/$MANIFEST: removing the known files"
        local src dest mode
        while IFS=$'\t' read -r src dest mode; do
            if [ -e "$root/$dest" ] || [ -L "$root/$dest" ]; then rm -f "$root/$dest"; removed=$((removed + 1)); fi
        done < <(files)
    fi
    # Our own folders, then the folders install created, deepest first, while empty.
    local d
    for d in "$DATA_DIR" "$ORT_DIR" "$DOC_DIR"; do
        if [ -d "$root/$d" ]; then rmdir --ignore-fail-on-non-empty "$root/$d"; fi
    done
    for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do
        d=${dirs[$i]}
        if [ -d "$DESTDIR$d" ]; then rmdir --ignore-fail-on-non-empty "$DESTDIR$d"; fi
    done
    log "removed $removed files from $root"
}

case "$action" in
    install) do_install ;;
    uninstall) do_uninstall ;;
    list) files ;;
    *) echo "usage: $0 install|uninstall|list" >&2; exit 2 ;;
esac
