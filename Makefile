# gst-plugin-facepose: every command does its own set-up (system packages, ONNX Runtime, models),
# idempotently; a second run only checks.

CARGO ?= cargo
INPUT ?=
LABELS ?= ../shared/data/aflw2000/labels.csv
SOAK_FRAMES ?= 100000

.PHONY: all setup setup-gpu device-check system ort models build build-lib copyright install uninstall cargo-deb deb test-install test-analytics test-publish demo demo-engine test lint eval eval-gst eval-matrix bench bench-publish soak clean

# The analytics meta (cargo feature `analytics`) is on when the system has GStreamer >= 1.24's
# gstreamer-analytics-1.0 (not Debian 12); CARGO_FEATURES= turns it off, --features analytics on.
CARGO_FEATURES ?= $(shell pkg-config --atleast-version=1.24 gstreamer-analytics-1.0 2>/dev/null && echo --features analytics)

all: build

system:
	@bash scripts/setup-system.sh

ort: system
	@bash scripts/fetch-ort.sh

models: system
	@bash models/build.sh

setup: system ort models

# GPU mode: ONNX Runtime with its CUDA provider and the CUDA 13 libraries (cuDNN, cuBLAS, cuFFT,
# cuRAND, NVRTC, runtime) from pinned PyPI wheels into third_party/onnxruntime-gpu/ (about 1.5 GB
# downloaded, 2.2 GB on disk; a second run only checks). The engine prefers it to the CPU build and
# loads its CUDA libraries itself (no LD_LIBRARY_PATH). Needs the NVIDIA driver to use a GPU.
setup-gpu: system
	@bash scripts/setup-gpu.sh

# GPU=1 (make demo GPU=1, make test GPU=1): set up GPU mode first.
ifeq ($(GPU),1)
setup: setup-gpu
endif

# On a machine with an NVIDIA GPU: set-up, the element on cuda, speed on cpu/cuda/tensorrt and the
# angles against the CPU's; out/device-report.md. Here: DEVICE_CHECK_ARGS=--cpu-rehearsal.
DEVICE_CHECK_ARGS ?=
device-check: setup
	@bash scripts/device-check.sh $(DEVICE_CHECK_ARGS)

build: setup
	$(CARGO) build --release --all-targets $(CARGO_FEATURES)

# The plugin alone (what install and deb ship).
build-lib: setup
	$(CARGO) build --release --lib $(CARGO_FEATURES)

# Every licence and notice of what gets installed, in Debian's machine-readable format.
copyright: setup
	@python3 scripts/copyright.py target/copyright

# Installs the plugin, models, ONNX Runtime and licences under PREFIX (inside DESTDIR when set);
# uninstall removes exactly what install made. See docs/install.md.
PREFIX ?= /usr/local
DESTDIR ?=
install: build-lib copyright
	@PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" bash scripts/install.sh install

uninstall:
	@PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" bash scripts/install.sh uninstall

# cargo-deb from crates.io, pinned, installed once into .cache/cargo-bin (git-ignored).
CARGO_DEB_VERSION := 3.8.0
CARGO_DEB := .cache/cargo-bin/bin/cargo-deb
cargo-deb:
	@if [ -x $(CARGO_DEB) ] && $(CARGO_DEB) --version 2>/dev/null | grep -q '$(CARGO_DEB_VERSION)'; then \
		echo "[deb] cargo-deb $(CARGO_DEB_VERSION) present"; \
	else \
		echo "[deb] installing cargo-deb $(CARGO_DEB_VERSION) into .cache/cargo-bin"; \
		$(CARGO) install cargo-deb --locked --version $(CARGO_DEB_VERSION) --root .cache/cargo-bin; \
	fi

# The Debian 12 package gstreamer1.0-facepose (Cargo.toml [package.metadata.deb]) in target/debian/.
deb: setup copyright cargo-deb
	@rm -f target/debian/gstreamer1.0-facepose_*.deb
	$(CARGO_DEB) deb --strip --output target/debian
	@ls -l target/debian/gstreamer1.0-facepose_*.deb

# Clean-room check of the package in a fresh Debian 12 (debootstrap, cached under .cache/debian):
# install with apt, gst-inspect, a picture through gst-launch compared with the source tree's run,
# the Python reader, a damaged install, purge. Also make install/uninstall into a DESTDIR.
test-install: deb build-lib
	@bash scripts/test-install.sh

# Runs the element in gst-launch-1.0 on the public-domain sample pictures (or INPUT=picture or
# video) and writes the annotated output and JSON Lines to out/.
demo: build
	@bash scripts/demo.sh $(INPUT)

# The engine alone (no GStreamer) on the same pictures, with per-stage timings.
demo-engine: build
	$(CARGO) run --release --quiet --example demo -- --out out/engine $(INPUT)

# Every test: unit tests, engine tests on real pictures, bad-input tests and the AFLW2000
# regression guard (which needs ../shared; under CI=true it fails without it); with GPU mode set
# up, the honest CPU fallback of the GPU build (tests/gpu_fallback.rs); then the clean-room
# install test, the device check's CPU rehearsal (scripts/device-check.sh --cpu-rehearsal) and
# the analytics meta against GStreamer 1.26 (scripts/test-analytics.sh).
test: setup setup-gpu
	$(CARGO) test --all-targets $(CARGO_FEATURES)
	$(CARGO) test --doc $(CARGO_FEATURES)
	@bash scripts/test-install.sh --from-make-test
	@bash scripts/device-check.sh --cpu-rehearsal
	@bash scripts/test-analytics.sh --from-make-test

# The analytics meta against GStreamer 1.26 in a cached Debian 13 environment (root): read back
# from Rust and Python, drawn by upstream's objectdetectionoverlay (out/analytics-overlay.png).
test-analytics: setup
	@bash scripts/test-analytics.sh

# faceposepublish against a real Mosquitto broker (started by the tests on a loopback port).
test-publish: setup
	$(CARGO) test --test publish $(CARGO_FEATURES)

lint: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets $(CARGO_FEATURES) -- -D warnings

# Head-pose accuracy on the labelled AFLW2000-3D images (1969 with |angles| <= 99 deg). The
# labels measure the pose along each face's line of sight (weak perspective, cropped photos), so
# the camera-frame correction is off (EVAL_ARGS adds options, e.g. --tune-fusion or
# --camera-fov 60 to see the default's effect).
EVAL_ARGS ?=
eval: build
	$(CARGO) run --release --quiet --example evaluate -- $(LABELS) --camera-fov 0 --out out/eval $(EVAL_ARGS)

# The element itself on the same pictures: one gst-launch-1.0 pipeline (detection-interval=1,
# json-location), scored from its JSON Lines. EVAL_GST_ARGS: element properties; the default
# camera-fov=0 matches the labels (see eval), EVAL_GST_ARGS= runs the element's defaults.
EVAL_GST_ARGS ?= camera-fov=0
eval-gst: build
	python3 scripts/eval_gst.py $(LABELS) --out out/eval-gst $(EVAL_GST_ARGS)

# Every detector x landmark model x pose method (the seed's models from ../shared/models).
eval-matrix: build
	$(CARGO) run --release --quiet --example evaluate -- $(LABELS) --matrix --camera-fov 0 --out out/eval-matrix $(EVAL_ARGS)

# Speed on the CPU (fps, frames with a face and faces per frame beside it, per-stage ms, peak
# memory) on real faces from ../shared: AFLW2000 stills held 10 frames each (shots), a 640x480
# crop of the 1080p crowd video (crop) and the whole video (1080p), against upstream's facedetect
# (gstreamer1.0-opencv, installed here only) and MediaPipe's legacy FaceMesh (mediapipe==0.10.21
# in the bench-only venv .cache/bench-venv), same frames, same run; rows finding > 2 % fewer faces
# than detection on every frame are marked short; out/bench.md. scripts/bench.sh sets both peers
# up (a second run only checks); without them the bench says so and runs without. BENCH_ARGS=
# --quick for a one-run smoke test, --case shots|crop|1080p, --no-mediapipe.
# Then many cameras in one process: 1 and 8 pipelines of 640x480 (resident memory per extra
# pipeline, total fps); out/many_pipelines.md. crop_bench: ms per crop per pixel format.
BENCH_ARGS ?=
bench: build
	@bash scripts/bench.sh
	$(CARGO) run --release --quiet --example bench -- $(BENCH_ARGS)
	$(CARGO) run --release --quiet --example many_pipelines | tee out/many_pipelines.md
	$(CARGO) run --release --quiet --example crop_bench | tee out/crop_bench.md

# MQTT publishing speed before and after rumqttc, one run, one table (out/bench_publish.md):
# messages per second and push-to-subscriber latency (p50/p95/p99) at QoS 0 and 1, one and ten
# faces per message, the hand-written client of 1a23ae1 (examples/support/handwritten_mqtt/)
# against src/mqtt/, both against a Mosquitto the bench starts on a free loopback port.
# BENCH_PUBLISH_ARGS: e.g. --messages 20000 --inflight 20.
BENCH_PUBLISH_ARGS ?=
bench-publish: system
	@mkdir -p out
	$(CARGO) run --release --quiet --example bench_publish -- --out out/bench_publish.md $(BENCH_PUBLISH_ARGS)

# Memory soak (not part of `make test`): SOAK_FRAMES frames with a face through the element; fails
# when resident memory grows by 5 % or more, or on a bus error. About 35 minutes on a 2-core machine.
soak: setup
	$(CARGO) run --release --quiet --example soak -- --frames $(SOAK_FRAMES)

clean:
	$(CARGO) clean
	rm -rf out
