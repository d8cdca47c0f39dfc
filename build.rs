// SPDX-License-Identifier: MPL-2.0
fn main() {
    gst_plugin_version_helper::info();
    // A build script cannot turn on a cargo feature (it would need the optional dependency), so
    // the Makefile does: it passes `--features analytics` when pkg-config finds
    // gstreamer-analytics-1.0 >= 1.24. A plain `cargo build` on such a system says so here.
    if std::env::var_os("CARGO_FEATURE_ANALYTICS").is_none()
        && std::process::Command::new("pkg-config")
            .args(["--atleast-version=1.24", "gstreamer-analytics-1.0"])
            .status()
            .is_ok_and(|s| s.success())
    {
        println!(
            "cargo:warning=GStreamer analytics (>= 1.24) found: build with --features analytics (make does) to attach GstAnalyticsRelationMeta too"
        );
    }
}
