// SPDX-License-Identifier: MPL-2.0
//! A wrong ONNX Runtime library gives an error that names it, never a panic, and does not stop a
//! later load of the right one. Its own test binary, and one test function, because a process can
//! load ONNX Runtime only once and the cases must run in this order.

mod support;

use std::path::{Path, PathBuf};

use gstfacepose::engine::{Engine, EngineConfig};
use support::Picture;

/// Starts the engine with `library`, which must fail without panicking; returns the error's text.
fn load_error(library: &Path, case: &str) -> String {
    let mut config: EngineConfig = support::config().unwrap_or_else(|e| panic!("{e}"));
    config.runtime.library = Some(library.to_owned());
    match std::panic::catch_unwind(|| Engine::new(config)) {
        Err(_) => panic!("{case}: Engine::new panicked instead of returning an error"),
        Ok(Ok(_)) => panic!("{case}: Engine::new accepted {}", library.display()),
        Ok(Err(e)) => {
            let text = e.to_string();
            println!("{case}: {text}");
            assert!(
                text.contains(&library.display().to_string()),
                "{case}: the error does not name {}: {text}",
                library.display()
            );
            text
        }
    }
}

/// A shared library of the system that is not ONNX Runtime.
fn other_shared_library() -> Option<PathBuf> {
    let dirs = [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/usr/lib",
    ];
    let names = ["libz.so.1", "libm.so.6", "libc.so.6"];
    dirs.iter()
        .flat_map(|d| names.iter().map(move |n| Path::new(d).join(n)))
        .find(|p| p.is_file())
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn wrong_runtime_libraries_are_named_and_do_not_poison_the_right_one() {
    let dir = Scratch(
        std::env::temp_dir().join(format!("facepose-runtime-library-{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();

    // (a) No such file.
    let missing = dir.0.join("no-such-dir").join("libonnxruntime.so.1");
    let text = load_error(&missing, "nonexistent library");
    assert!(text.contains("no such file"), "nonexistent library: {text}");

    // (b) A text file that is not a shared library at all.
    let fake = dir.0.join("fake.so");
    std::fs::write(&fake, "this is not a shared library\n").unwrap();
    let text = load_error(&fake, "text file as the library");
    assert!(
        text.contains("ONNX Runtime"),
        "text file as the library: {text}"
    );

    // (c) A real shared library that is not ONNX Runtime.
    match other_shared_library() {
        Some(lib) => {
            let text = load_error(&lib, "a system library as ONNX Runtime");
            assert!(
                text.contains("OrtGetApiBase") || text.contains("ONNX Runtime"),
                "a system library as ONNX Runtime: {text}"
            );
        }
        None => println!("no libz/libm/libc found; skipping the wrong-library case"),
    }

    // (d) The failures above do not poison the process: the default library still loads and runs.
    let config = support::config().unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::new(config).unwrap_or_else(|e| panic!("after the failed loads: {e}"));
    let picture = support::sample_pictures()
        .into_iter()
        .find(|p| p.exists())
        .map(|p| Picture::load(&p).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|| Picture::uniform(64, 48, [128, 128, 128]));
    engine
        .process(&picture.view())
        .unwrap_or_else(|e| panic!("processing after the failed loads: {e}"));

    // (e) Once one library is loaded, asking for another is an error that names it.
    let text = load_error(&missing, "another library after a successful load");
    assert!(
        text.contains("one library per process"),
        "another library after a successful load: {text}"
    );
}
