// SPDX-License-Identifier: MPL-2.0
//! Where the default models, the reference face, the descriptors and ONNX Runtime are found.
//!
//! The engine knows nothing of GStreamer: whoever loads it (the plugin, in `plugin_init`) tells it
//! where it is installed with [`set_installation`], and the search folders follow, in this order:
//!
//! 1. `FACEPOSE_MODEL_DIR` (models) and `ORT_DYLIB_PATH` (library), when set; explicit paths
//!    (element properties, [`super::EngineConfig`] fields) override everything;
//! 2. the installation's folders: `<prefix>/share/gst-plugin-facepose/` and
//!    `<prefix>/lib/gst-plugin-facepose/`, derived from the plugin's own file
//!    ([`Installation::from_plugin_file`]);
//! 3. the source tree this was built from (`models/`, `third_party/onnxruntime/lib/`), only
//!    while it exists;
//! 4. for ONNX Runtime, the system's library path.
//!
//! A file missing from an installed folder means a damaged installation: [`missing_file_hint`]
//! says which package to reinstall.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The Debian package that installs the plugin.
pub const PACKAGE_NAME: &str = "gstreamer1.0-facepose";
/// The folder name under `<prefix>/share` (models) and `<prefix>/lib` (ONNX Runtime).
pub const INSTALL_DIR_NAME: &str = "gst-plugin-facepose";
/// The models folder of the source tree, where `make models` builds them.
pub const SOURCE_MODEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models");
/// Where `make` puts ONNX Runtime in the source tree.
pub const SOURCE_LIBRARY_DIR: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/third_party/onnxruntime/lib");
/// Where `make setup-gpu` puts ONNX Runtime with its CUDA provider (its CUDA libraries are in
/// `../cuda`, see [`super::runtime`]).
pub const SOURCE_GPU_LIBRARY_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/third_party/onnxruntime-gpu/lib"
);

/// An installed copy of the plugin and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// The prefix (`/usr`, `/usr/local`, `~/.local`).
    pub prefix: PathBuf,
    /// Models, descriptors and the reference face: `<prefix>/share/gst-plugin-facepose`.
    pub data_dir: PathBuf,
    /// The private ONNX Runtime: `<prefix>/lib/gst-plugin-facepose`.
    pub library_dir: PathBuf,
}

impl Installation {
    /// The folders of an installation under `prefix`.
    pub fn under_prefix(prefix: &Path) -> Self {
        Self {
            prefix: prefix.to_owned(),
            data_dir: prefix.join("share").join(INSTALL_DIR_NAME),
            library_dir: prefix.join("lib").join(INSTALL_DIR_NAME),
        }
    }

    /// The installation that a plugin file belongs to, from where it lies:
    /// `<prefix>/lib/<multiarch>/gstreamer-1.0/<file>`, `<prefix>/lib[64]/gstreamer-1.0/<file>` or
    /// `<prefix>/share/gstreamer-1.0/plugins/<file>` (GStreamer's per-user folder, prefix
    /// `~/.local`). `None` for any other place, such as a build folder (`target/release`).
    ///
    /// The path with its symbolic links resolved counts too, and wins when only its folders exist
    /// (both of them):
    /// on a merged-/usr system GStreamer may report `/lib/<multiarch>/gstreamer-1.0/...` (prefix
    /// `/`, where nothing is), which resolves to `/usr/lib/...`; a plugin linked into a scanned
    /// folder finds the installation it links to.
    pub fn from_plugin_file(plugin: &Path) -> Option<Self> {
        let given = Self::from_layout(plugin);
        let resolved = plugin
            .canonicalize()
            .ok()
            .filter(|real| real != plugin)
            .and_then(|real| Self::from_layout(&real));
        // (Both folders: on merged /usr, `/lib/gst-plugin-facepose` exists as `/usr/lib/...`.)
        let present = |i: &Self| i.data_dir.is_dir() && i.library_dir.is_dir();
        match (given, resolved) {
            (Some(g), Some(r)) if !present(&g) && present(&r) => Some(r),
            (Some(g), _) => Some(g),
            (None, r) => r,
        }
    }

    fn from_layout(plugin: &Path) -> Option<Self> {
        let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
        let is_lib = |p: &Path| name(p).is_some_and(|n| n == "lib" || n.starts_with("lib"));
        let dir = plugin.parent()?;
        match name(dir)?.as_str() {
            "gstreamer-1.0" => {
                let lib = dir.parent()?;
                if is_lib(lib) {
                    return Some(Self::under_prefix(lib.parent()?));
                }
                // lib/<multiarch>/gstreamer-1.0
                let lib = lib.parent()?;
                if is_lib(lib) {
                    return Some(Self::under_prefix(lib.parent()?));
                }
                None
            }
            "plugins" => {
                let gst = dir.parent()?;
                let share = gst.parent()?;
                if name(gst)? == "gstreamer-1.0" && name(share)? == "share" {
                    Some(Self::under_prefix(share.parent()?))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Whether `path` lies in one of the installation's folders.
    pub fn contains(&self, path: &Path) -> bool {
        path.starts_with(&self.data_dir) || path.starts_with(&self.library_dir)
    }
}

static INSTALLATION: RwLock<Option<Installation>> = RwLock::new(None);

/// Tells the engine where it is installed (the plugin does this when GStreamer loads it). Until
/// then, and in programs that link the library, only the environment and the source tree count.
pub fn set_installation(installation: Option<Installation>) {
    *INSTALLATION.write().unwrap_or_else(|e| e.into_inner()) = installation;
}

/// The installation set by [`set_installation`].
pub fn installation() -> Option<Installation> {
    INSTALLATION
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Where a search folder comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `FACEPOSE_MODEL_DIR` or `ORT_DYLIB_PATH`.
    Environment,
    /// The installed plugin's own folders.
    Installed,
    /// The source tree the library was built from.
    SourceTree,
    /// The source tree's GPU set-up (`make setup-gpu`).
    GpuSetup,
}

impl Origin {
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Environment => "environment",
            Origin::Installed => "installed plugin's folder",
            Origin::SourceTree => "set-up folder",
            Origin::GpuSetup => "GPU set-up folder",
        }
    }
}

/// One folder to search, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDir {
    pub path: PathBuf,
    pub origin: Origin,
}

/// The folders of default models, best first: the environment variable's value (when set and not
/// empty), the installation's data folder, the source tree's `models/` (when `source_tree` is a
/// folder, or when nothing else is left).
pub fn model_dirs_from(
    env: Option<OsString>,
    installed: Option<&Installation>,
    source_tree: &Path,
) -> Vec<SearchDir> {
    search_order(
        env.filter(|v| !v.is_empty()).map(PathBuf::from),
        installed.map(|i| i.data_dir.clone()),
        source_tree,
    )
}

/// The folders in order: the environment's, the installation's, then the source tree's when it is
/// a folder or nothing comes before it.
fn search_order(
    env: Option<PathBuf>,
    installed: Option<PathBuf>,
    source_tree: &Path,
) -> Vec<SearchDir> {
    let mut dirs: Vec<SearchDir> = [(env, Origin::Environment), (installed, Origin::Installed)]
        .into_iter()
        .filter_map(|(path, origin)| path.map(|path| SearchDir { path, origin }))
        .collect();
    if dirs.is_empty() || source_tree.is_dir() {
        dirs.push(SearchDir {
            path: source_tree.to_owned(),
            origin: Origin::SourceTree,
        });
    }
    dirs
}

/// The folder to take the default models from: the environment's when set (as given, even when it
/// is wrong, so that the error names it), else the first folder that exists, else the first.
pub fn choose(dirs: &[SearchDir]) -> Option<&SearchDir> {
    match dirs.first() {
        Some(d) if d.origin == Origin::Environment => Some(d),
        _ => dirs.iter().find(|d| d.path.is_dir()).or(dirs.first()),
    }
}

/// The folders of default models for this process (see [`model_dirs_from`]).
pub fn model_dirs() -> Vec<SearchDir> {
    model_dirs_from(
        std::env::var_os(super::MODEL_DIR_ENV),
        installation().as_ref(),
        Path::new(SOURCE_MODEL_DIR),
    )
}

/// The folder of default models for this process.
pub fn model_dir() -> PathBuf {
    let dirs = model_dirs();
    choose(&dirs)
        .map(|d| d.path.clone())
        .unwrap_or_else(|| PathBuf::from(SOURCE_MODEL_DIR))
}

/// The folders that may hold the bundled ONNX Runtime library, best first (after an explicit path
/// and `ORT_DYLIB_PATH`, before the system): the installation's private folder, then the source
/// tree's set-up folder (only while it exists, once installed).
pub fn library_dirs_from(installed: Option<&Installation>, source_tree: &Path) -> Vec<SearchDir> {
    search_order(None, installed.map(|i| i.library_dir.clone()), source_tree)
}

/// The library folders for this process (see [`library_dirs_from`]); the source tree's GPU
/// set-up, when there is one, goes before its CPU one (its library runs on the CPU as well).
pub fn library_dirs() -> Vec<SearchDir> {
    let mut dirs = library_dirs_from(installation().as_ref(), Path::new(SOURCE_LIBRARY_DIR));
    let gpu = Path::new(SOURCE_GPU_LIBRARY_DIR);
    if gpu.is_dir() {
        let at = dirs
            .iter()
            .position(|d| d.origin == Origin::SourceTree)
            .unwrap_or(dirs.len());
        dirs.insert(
            at,
            SearchDir {
                path: gpu.to_owned(),
                origin: Origin::GpuSetup,
            },
        );
    }
    dirs
}

/// What to do about a file of the installation that is missing or unreadable: reinstall.
pub fn reinstall_advice(installation: &Installation) -> String {
    format!(
        "the installation in {} is damaged: reinstall the package {PACKAGE_NAME} \
         (`apt-get install --reinstall {PACKAGE_NAME}`), or run `make install` again for an \
         install from source",
        installation.prefix.display()
    )
}

/// What to do about a missing default file at `path`: reinstall, when it belongs to the
/// installation; otherwise `fallback` (the source tree's advice, such as "run `make models`").
pub fn missing_file_hint(path: &Path, fallback: &str) -> String {
    match installation() {
        Some(i) if i.contains(path) => reinstall_advice(&i),
        _ => fallback.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("facepose-locate-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn installation_from_multiarch_plugin_folder() {
        let i = Installation::from_plugin_file(Path::new(
            "/opt/x/lib/x86_64-linux-gnu/gstreamer-1.0/libgstfacepose.so",
        ))
        .unwrap();
        assert_eq!(i.prefix, Path::new("/opt/x"));
        assert_eq!(i.data_dir, Path::new("/opt/x/share/gst-plugin-facepose"));
        assert_eq!(i.library_dir, Path::new("/opt/x/lib/gst-plugin-facepose"));
    }

    #[test]
    fn installation_from_plain_and_user_plugin_folders() {
        let i =
            Installation::from_plugin_file(Path::new("/usr/lib64/gstreamer-1.0/libgstfacepose.so"))
                .unwrap();
        assert_eq!(i.prefix, Path::new("/usr"));
        let i = Installation::from_plugin_file(Path::new(
            "/home/u/.local/share/gstreamer-1.0/plugins/libgstfacepose.so",
        ))
        .unwrap();
        assert_eq!(
            i.data_dir,
            Path::new("/home/u/.local/share/gst-plugin-facepose")
        );
        assert_eq!(
            i.library_dir,
            Path::new("/home/u/.local/lib/gst-plugin-facepose")
        );
    }

    #[test]
    fn build_folders_are_not_installations() {
        for p in [
            "/src/gst-plugin-facepose/target/release/libgstfacepose.so",
            "/src/lib/target/debug/libgstfacepose.so",
            "/gstreamer-1.0/libgstfacepose.so",
            "/x/gstreamer-1.0/libgstfacepose.so",
            "/x/share/plugins/libgstfacepose.so",
            "libgstfacepose.so",
        ] {
            assert_eq!(Installation::from_plugin_file(Path::new(p)), None, "{p}");
        }
    }

    #[test]
    fn symbolic_link_into_an_installation_is_followed() {
        let root = temp_dir("symlink");
        let real = root.join("prefix/lib/aarch64-linux-gnu/gstreamer-1.0");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join("libgstfacepose.so"), b"").unwrap();
        let link_dir = root.join("elsewhere");
        std::fs::create_dir_all(&link_dir).unwrap();
        let link = link_dir.join("libgstfacepose.so");
        std::os::unix::fs::symlink(real.join("libgstfacepose.so"), &link).unwrap();
        let i = Installation::from_plugin_file(&link).unwrap();
        assert_eq!(i.prefix, root.join("prefix").canonicalize().unwrap());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn merged_usr_lib_path_resolves_to_usr() {
        // A merged-/usr system: <root>/lib -> usr/lib; GStreamer reports the plugin under /lib.
        let root = temp_dir("merged");
        let plugins = root.join("usr/lib/x86_64-linux-gnu/gstreamer-1.0");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::write(plugins.join("libgstfacepose.so"), b"").unwrap();
        std::fs::create_dir_all(root.join("usr/share/gst-plugin-facepose")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib/gst-plugin-facepose")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        let reported = root.join("lib/x86_64-linux-gnu/gstreamer-1.0/libgstfacepose.so");
        let i = Installation::from_plugin_file(&reported).unwrap();
        let usr = root.join("usr").canonicalize().unwrap();
        assert_eq!(i.prefix, usr);
        assert_eq!(i.data_dir, usr.join("share/gst-plugin-facepose"));
        // Without the installation's folders, the path as given.
        std::fs::remove_dir_all(root.join("usr/share")).unwrap();
        let i = Installation::from_plugin_file(&reported).unwrap();
        assert_eq!(i.prefix, root);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn environment_wins_even_when_missing() {
        let root = temp_dir("env");
        let installed = Installation::under_prefix(&root);
        std::fs::create_dir_all(&installed.data_dir).unwrap();
        let dirs = model_dirs_from(Some("/no/such/models".into()), Some(&installed), &root);
        assert_eq!(dirs[0].origin, Origin::Environment);
        assert_eq!(choose(&dirs).unwrap().path, Path::new("/no/such/models"));
        // An empty variable counts as unset.
        let dirs = model_dirs_from(Some("".into()), Some(&installed), &root.join("none"));
        assert_eq!(choose(&dirs).unwrap().path, installed.data_dir);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn installed_folder_before_the_source_tree() {
        let root = temp_dir("order");
        let source = root.join("src/models");
        std::fs::create_dir_all(&source).unwrap();
        let installed = Installation::under_prefix(&root.join("usr"));
        // Installed data present: it wins over an existing source tree.
        std::fs::create_dir_all(&installed.data_dir).unwrap();
        let dirs = model_dirs_from(None, Some(&installed), &source);
        assert_eq!(
            dirs.iter().map(|d| d.origin).collect::<Vec<_>>(),
            [Origin::Installed, Origin::SourceTree]
        );
        assert_eq!(choose(&dirs).unwrap().path, installed.data_dir);
        // Installed folder gone, source tree there: the source tree.
        std::fs::remove_dir_all(&installed.data_dir).unwrap();
        let dirs = model_dirs_from(None, Some(&installed), &source);
        assert_eq!(choose(&dirs).unwrap().path, source);
        // Neither: the installed folder, so that errors name the installed files.
        std::fs::remove_dir_all(&source).unwrap();
        let dirs = model_dirs_from(None, Some(&installed), &source);
        assert_eq!(dirs.len(), 1);
        assert_eq!(choose(&dirs).unwrap().path, installed.data_dir);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn without_installation_the_source_tree_even_when_missing() {
        let dirs = model_dirs_from(None, None, Path::new("/no/such/tree/models"));
        assert_eq!(dirs.len(), 1);
        assert_eq!(dirs[0].origin, Origin::SourceTree);
        let dirs = library_dirs_from(None, Path::new("/no/such/tree/lib"));
        assert_eq!(dirs[0].path, Path::new("/no/such/tree/lib"));
    }

    #[test]
    fn library_folders_skip_a_missing_source_tree_once_installed() {
        let root = temp_dir("lib");
        let installed = Installation::under_prefix(&root);
        let dirs = library_dirs_from(Some(&installed), &root.join("no-tree"));
        assert_eq!(dirs.len(), 1);
        assert_eq!(dirs[0].path, installed.library_dir);
        std::fs::create_dir_all(root.join("tree")).unwrap();
        let dirs = library_dirs_from(Some(&installed), &root.join("tree"));
        assert_eq!(dirs.len(), 2);
        assert_eq!(dirs[1].origin, Origin::SourceTree);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn reinstall_advice_names_the_package() {
        let i = Installation::under_prefix(Path::new("/usr"));
        assert!(i.contains(Path::new("/usr/share/gst-plugin-facepose/whenet.onnx")));
        assert!(i.contains(Path::new(
            "/usr/lib/gst-plugin-facepose/libonnxruntime.so.1.31.1"
        )));
        assert!(!i.contains(Path::new("/usr/share/other/whenet.onnx")));
        let advice = reinstall_advice(&i);
        assert!(advice.contains("gstreamer1.0-facepose"), "{advice}");
        assert!(advice.contains("/usr"), "{advice}");
    }
}
