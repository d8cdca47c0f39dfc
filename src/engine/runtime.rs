// SPDX-License-Identifier: MPL-2.0
//! ONNX Runtime: finding the shared library, the one environment of the process, and sessions built
//! for an execution-provider choice with a clean fallback to the CPU, shared by every model loaded
//! from the same file with the same options in the process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use once_cell::sync::OnceCell;
use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider as _};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use super::error::{Error, Result};
use super::locate;
use super::preprocess::Preprocess;

/// The library file name inside the wheel that set-up unpacks.
pub const BUNDLED_LIBRARY_NAME: &str = "libonnxruntime.so.1.31.1";
/// Where `make` puts ONNX Runtime in the source tree (searched after an installed plugin's own
/// folder; see [`locate`]).
pub const SETUP_LIBRARY_DIR: &str = locate::SOURCE_LIBRARY_DIR;
/// Environment variable that names the library when no explicit path is given.
pub const LIBRARY_ENV: &str = "ORT_DYLIB_PATH";
/// Name searched on the system's library path as the last resort.
pub const SYSTEM_LIBRARY_NAME: &str = "libonnxruntime.so";

/// Which hardware runs the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionProvider {
    /// The best available: TensorRT, then CUDA, then the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
    TensorRt,
}

impl ExecutionProvider {
    pub fn name(self) -> &'static str {
        match self {
            ExecutionProvider::Auto => "auto",
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::TensorRt => "tensorrt",
        }
    }
}

impl std::str::FromStr for ExecutionProvider {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "tensorrt" | "trt" => Ok(Self::TensorRt),
            _ => Err(Error::Config(format!(
                "execution provider `{s}` is not auto, cpu, cuda or tensorrt"
            ))),
        }
    }
}

/// How sessions are created.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeOptions {
    /// ONNX Runtime library; `None` searches `ORT_DYLIB_PATH`, the set-up folder, then the system.
    pub library: Option<PathBuf>,
    pub provider: ExecutionProvider,
    pub device_id: i32,
    /// Threads per session (0 lets ONNX Runtime choose: one per core). Sessions with 1 run on
    /// the calling thread, without a pool.
    pub threads: usize,
    /// Fall back to the CPU when the requested accelerator cannot be used.
    pub fallback: bool,
    /// Folder for TensorRT's engine cache (`None`: no cache).
    pub tensorrt_cache: Option<PathBuf>,
    /// Where the pre-processing runs: the host warp or the models' frame graphs (see
    /// [`super::preprocess`]).
    pub preprocess: Preprocess,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            library: None,
            provider: ExecutionProvider::Auto,
            device_id: 0,
            threads: 0,
            fallback: true,
            tensorrt_cache: None,
            preprocess: Preprocess::Auto,
        }
    }
}

/// The candidate library paths in search order, with where each came from: the explicit path;
/// else `ORT_DYLIB_PATH`; else the installed plugin's private folder, the source tree's set-up
/// folder and the system library path (see [`locate::library_dirs`]).
pub fn library_candidates(explicit: Option<&Path>) -> Vec<(PathBuf, &'static str)> {
    if let Some(p) = explicit {
        return vec![(p.to_owned(), "explicit path")];
    }
    if let Some(p) = std::env::var_os(LIBRARY_ENV).filter(|p| !p.is_empty()) {
        return vec![(PathBuf::from(p), LIBRARY_ENV)];
    }
    let mut candidates: Vec<(PathBuf, &'static str)> = locate::library_dirs()
        .into_iter()
        .map(|d| (d.path.join(BUNDLED_LIBRARY_NAME), d.origin.describe()))
        .collect();
    candidates.push((PathBuf::from(SYSTEM_LIBRARY_NAME), "system library path"));
    candidates
}

struct Loaded {
    environment: Environment,
    path: PathBuf,
}

static ENVIRONMENT: OnceCell<Loaded> = OnceCell::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// The process's ONNX Runtime environment, created on first use from the library `explicit` (or
/// the search order of [`library_candidates`]). Later calls share it; asking for a different
/// library once one is loaded is an error, since a process can hold only one.
pub fn environment(explicit: Option<&Path>) -> Result<(Environment, PathBuf)> {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(loaded) = ENVIRONMENT.get() {
        if let Some(p) = explicit {
            let same = match (p.canonicalize(), loaded.path.canonicalize()) {
                (Ok(a), Ok(b)) => a == b,
                _ => p == loaded.path,
            };
            if !same {
                return Err(Error::Runtime {
                    path: Some(p.to_owned()),
                    message: format!(
                        "cannot load it: this process already uses ONNX Runtime from {} (one library per process)",
                        loaded.path.display()
                    ),
                });
            }
        }
        return Ok((loaded.environment.clone(), loaded.path.clone()));
    }

    let candidates = library_candidates(explicit);
    let mut failures = Vec::new();
    for (path, origin) in &candidates {
        let is_bare_name = path.components().count() == 1 && *origin == "system library path";
        if !is_bare_name && !path.exists() {
            failures.push((
                path,
                origin,
                format!("no such file; expected the ONNX Runtime shared library ({BUNDLED_LIBRARY_NAME})"),
            ));
            continue;
        }
        if path.is_dir() {
            failures.push((
                path,
                origin,
                format!("is a folder; expected the library file ({BUNDLED_LIBRARY_NAME})"),
            ));
            continue;
        }
        match ort::init_from(path) {
            Ok(builder) => {
                let environment =
                    builder
                        .with_name("facepose")
                        .build()
                        .map_err(|e| Error::Runtime {
                            path: Some(path.clone()),
                            message: format!("loaded, but creating the environment failed: {e}"),
                        })?;
                let loaded = Loaded {
                    environment: environment.clone(),
                    path: path.clone(),
                };
                let _ = ENVIRONMENT.set(loaded);
                return Ok((environment, path.clone()));
            }
            Err(e) => failures.push((
                path,
                origin,
                format!(
                    "cannot be loaded as ONNX Runtime ({e}); expected the ONNX Runtime shared library, \
                     version 1.24 or newer (the set-up installs 1.31.1)"
                ),
            )),
        }
    }
    // A missing library of an installed plugin: the installation is damaged.
    let advice = match locate::installation() {
        Some(i) if explicit.is_none() && failures.iter().any(|(p, ..)| i.contains(p)) => {
            locate::reinstall_advice(&i)
        }
        _ => format!("run `make setup` or set {LIBRARY_ENV}"),
    };
    let (path, message) = match failures.as_slice() {
        [(path, origin, why)] => (Some((*path).clone()), format!("({origin}) {why}")),
        _ => {
            let tried: Vec<String> = failures
                .iter()
                .map(|(p, origin, why)| format!("{} ({origin}): {why}", p.display()))
                .collect();
            (
                None,
                format!("not found; tried {}. To fix: {advice}", tried.join("; ")),
            )
        }
    };
    Err(Error::Runtime { path, message })
}

/// A session and what runs it.
pub struct LoadedSession {
    pub session: Session,
    /// The provider actually in use: "cpu", "cuda" or "tensorrt".
    pub provider: &'static str,
    /// Things the user should hear about: a requested provider that could not be used.
    pub warnings: Vec<String>,
    /// Things worth saying once: `auto` found an accelerator's provider in the library but could
    /// not use it.
    pub notices: Vec<String>,
}

fn model_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Model {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Checks that `path` is a readable, non-empty file before ONNX Runtime sees it.
pub fn check_model_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| {
        model_error(
            path,
            match e.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "no such file; {}",
                    locate::missing_file_hint(path, "run `make models`, or set the model path")
                ),
                _ => format!("cannot read it: {e}"),
            },
        )
    })?;
    if meta.is_dir() {
        return Err(model_error(path, "is a folder, expected an .onnx file"));
    }
    if meta.len() == 0 {
        return Err(model_error(path, "is empty, expected an ONNX model"));
    }
    std::fs::File::open(path).map_err(|e| model_error(path, format!("cannot read it: {e}")))?;
    Ok(())
}

/// Builds a session for the model at `path`.
pub fn load_session(path: &Path, options: &RuntimeOptions) -> Result<LoadedSession> {
    check_model_file(path)?;
    let (environment, library) = environment(options.library.as_deref())?;
    let mut warnings = Vec::new();
    // auto: the accelerators the build has but that could not be used, with why.
    let mut untried: Vec<(&'static str, String)> = Vec::new();

    let wanted: &[ExecutionProvider] = match options.provider {
        ExecutionProvider::Auto => &[ExecutionProvider::TensorRt, ExecutionProvider::Cuda],
        ExecutionProvider::Cuda => &[ExecutionProvider::Cuda],
        ExecutionProvider::TensorRt => &[ExecutionProvider::TensorRt],
        ExecutionProvider::Cpu => &[],
    };

    for &provider in wanted {
        match build_session(&environment, &library, path, options, Some(provider)) {
            Ok(session) => {
                return Ok(LoadedSession {
                    session,
                    provider: provider.name(),
                    warnings,
                    notices: auto_notices(&untried),
                });
            }
            Err(reason) => {
                if options.provider == ExecutionProvider::Auto {
                    if provider_in_build(provider) {
                        untried.push((provider.name(), reason));
                    }
                    continue;
                }
                if !options.fallback {
                    return Err(model_error(
                        path,
                        format!(
                            "execution provider {} unavailable: {reason}",
                            provider.name()
                        ),
                    ));
                }
                warnings.push(format!(
                    "execution provider {} unavailable ({reason}); falling back to the CPU",
                    provider.name(),
                ));
            }
        }
    }
    let session = build_session(&environment, &library, path, options, None)
        .map_err(|reason| model_error(path, reason))?;
    Ok(LoadedSession {
        session,
        provider: "cpu",
        warnings,
        notices: auto_notices(&untried),
    })
}

/// One notice per distinct cause: "execution provider auto: tensorrt and cuda are in this ONNX
/// Runtime build but cannot be used (cause); running on the CPU".
fn auto_notices(untried: &[(&'static str, String)]) -> Vec<String> {
    let mut causes: Vec<(&str, Vec<&str>)> = Vec::new();
    for (provider, reason) in untried {
        match causes.iter_mut().find(|(r, _)| r == reason) {
            Some((_, providers)) => providers.push(provider),
            None => causes.push((reason, vec![provider])),
        }
    }
    causes
        .into_iter()
        .map(|(reason, providers)| {
            let (names, verb) = match providers.as_slice() {
                [one] => (one.to_string(), "is"),
                many => (many.join(" and "), "are"),
            };
            format!(
                "execution provider auto: {names} {verb} in this ONNX Runtime build but cannot be \
                 used ({reason}); running on the CPU"
            )
        })
        .collect()
}

/// The NVIDIA driver's CUDA library.
pub const CUDA_DRIVER_LIBRARY: &str = "libcuda.so.1";

/// Loads the shared library `file` (a path, or a bare name searched as the dynamic linker does)
/// with its symbols global, for the life of the process; the error is the dynamic linker's.
fn load_global(file: &Path) -> std::result::Result<(), String> {
    // SAFETY: loading a shared library runs its initialisers; these are NVIDIA's CUDA libraries
    // (the driver's, and those `make setup-gpu` laid out from their pinned wheels), loaded the
    // way ONNX Runtime's CUDA provider would load them itself.
    let opened = unsafe {
        libloading::os::unix::Library::open(
            Some(file),
            libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
        )
    };
    match opened {
        // Kept for the life of the process, as the provider needs them.
        Ok(lib) => {
            std::mem::forget(lib);
            Ok(())
        }
        Err(e) => {
            let detail = std::error::Error::source(&e).map(|s| s.to_string());
            Err(detail.unwrap_or_else(|| e.to_string()))
        }
    }
}

/// Whether the loaded ONNX Runtime library has `provider` (it may still fail to start).
fn provider_in_build(provider: ExecutionProvider) -> bool {
    match provider {
        ExecutionProvider::Cuda => ep::CUDA::is_available().unwrap_or(false),
        ExecutionProvider::TensorRt => ep::TensorRT::is_available().unwrap_or(false),
        _ => false,
    }
}

/// The list of CUDA libraries that `make setup-gpu` lays out beside the GPU build of ONNX
/// Runtime (`<lib>/../cuda/preload.txt`), in load order.
pub const GPU_PRELOAD_LIST: &str = "cuda/preload.txt";

/// Loads, once per process, the CUDA libraries listed beside the ONNX Runtime library at
/// `library` (see [`GPU_PRELOAD_LIST`]), each with its symbols global, in the listed order, so
/// that the CUDA provider finds them without `LD_LIBRARY_PATH` (the dynamic linker matches a
/// library's needs against the libraries already loaded). Nothing to do without such a list
/// (another build of ONNX Runtime, CUDA installed on the system). The error names the library
/// that failed and why.
pub fn preload_gpu_libraries(library: &Path) -> std::result::Result<usize, String> {
    static PRELOADED: Mutex<Option<std::result::Result<usize, String>>> = Mutex::new(None);
    let mut done = PRELOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = done.as_ref() {
        return r.clone();
    }
    let result = preload_listed(library);
    *done = Some(result.clone());
    result
}

/// [`preload_gpu_libraries`] without the once-per-process memory.
fn preload_listed(library: &Path) -> std::result::Result<usize, String> {
    {
        let Some(root) = library.parent().and_then(Path::parent) else {
            return Ok(0);
        };
        let list = root.join(GPU_PRELOAD_LIST);
        let Ok(text) = std::fs::read_to_string(&list) else {
            return Ok(0);
        };
        let folder = list.parent().unwrap_or(root);
        // The driver's own library comes with the NVIDIA driver, not with set-up: without it
        // nothing of CUDA can run, and that is the cause to report.
        load_global(Path::new(CUDA_DRIVER_LIBRARY)).map_err(|e| {
            format!(
                "the NVIDIA driver's {CUDA_DRIVER_LIBRARY} cannot be loaded ({e}): this machine has \
                 no NVIDIA driver (CUDA 13 needs driver 580 or newer)"
            )
        })?;
        let mut count = 0;
        for name in text.lines().map(str::trim) {
            if name.is_empty() || name.starts_with('#') {
                continue;
            }
            let file = folder.join(name);
            load_global(&file).map_err(|e| {
                format!(
                    "cannot load {} (listed in {}): {e}; run `make setup-gpu` again",
                    file.display(),
                    list.display()
                )
            })?;
            count += 1;
        }
        Ok(count)
    }
}

/// A session shared by every model loaded from the same file with the same [`RuntimeOptions`] in
/// this process (many elements, one per camera, hold one loaded copy). ONNX Runtime's `Run` may
/// not be called concurrently on one session, so runs take turns.
pub struct SharedSession {
    session: Mutex<Session>,
    /// The provider actually in use: "cpu", "cuda" or "tensorrt".
    pub provider: &'static str,
    /// Things the user should hear about (fallbacks), told to every holder.
    pub warnings: Vec<String>,
    /// Things worth saying once (see [`LoadedSession::notices`]).
    pub notices: Vec<String>,
}

impl SharedSession {
    /// The session, for one run (or a look at its inputs and outputs).
    pub fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for SharedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSession")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// Loaded sessions by [`session_key`]; entries die with their last holder.
static SESSIONS: Mutex<Option<HashMap<String, Weak<SharedSession>>>> = Mutex::new(None);

/// What makes two loads the same: the model file (its canonical path, size and modification
/// time, so a rebuilt file loads afresh) and every runtime option.
fn session_key(path: &Path, options: &RuntimeOptions) -> String {
    // Where the pre-processing runs does not change the session of a file.
    let options = RuntimeOptions {
        preprocess: Preprocess::Auto,
        ..options.clone()
    };
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let stamp = std::fs::metadata(path)
        .map(|m| (m.len(), m.modified().ok()))
        .ok();
    format!("{}|{stamp:?}|{options:?}", canonical.display())
}

/// The session for the model at `path`: the one already loaded in this process from the same file
/// with the same options, else a new one ([`load_session`]).
pub fn shared_session(path: &Path, options: &RuntimeOptions) -> Result<Arc<SharedSession>> {
    check_model_file(path)?;
    let key = session_key(path, options);
    // Held while loading, so that elements starting together load a model once.
    let mut guard = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    let sessions = guard.get_or_insert_with(HashMap::new);
    if let Some(shared) = sessions.get(&key).and_then(Weak::upgrade) {
        return Ok(shared);
    }
    let loaded = load_session(path, options)?;
    let shared = Arc::new(SharedSession {
        session: Mutex::new(loaded.session),
        provider: loaded.provider,
        warnings: loaded.warnings,
        notices: loaded.notices,
    });
    sessions.retain(|_, s| s.strong_count() > 0);
    sessions.insert(key, Arc::downgrade(&shared));
    Ok(shared)
}

/// How many distinct sessions are loaded in this process.
pub fn live_sessions() -> usize {
    let guard = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .map_or(0, |s| s.values().filter(|s| s.strong_count() > 0).count())
}

fn build_session(
    environment: &Environment,
    library: &Path,
    path: &Path,
    options: &RuntimeOptions,
    provider: Option<ExecutionProvider>,
) -> std::result::Result<Session, String> {
    if matches!(
        provider,
        Some(ExecutionProvider::Cuda | ExecutionProvider::TensorRt)
    ) && provider_in_build(provider.unwrap_or_default())
    {
        preload_gpu_libraries(library)?;
    }
    let mut builder = Session::builder(environment).map_err(|e| e.to_string())?;
    builder = builder
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| e.to_string())?;
    // A pool's threads spin for work while a run lasts and sleep as soon as it ends: a pool that
    // sleeps between operators makes every run slower, and idle threads left spinning after a
    // run (ONNX Runtime's default) take the core another model runs on. The figures:
    // docs/performance.md, "Measurements behind the code".
    builder = builder
        .with_intra_op_spinning(true)
        .map_err(|e| e.to_string())?
        .with_config_entry("session.force_spinning_stop", "1")
        .map_err(|e| e.to_string())?;
    if options.threads > 0 {
        builder = builder
            .with_intra_threads(options.threads)
            .map_err(|e| e.to_string())?;
    }
    match provider {
        None | Some(ExecutionProvider::Cpu) | Some(ExecutionProvider::Auto) => {}
        Some(ExecutionProvider::Cuda) => {
            if !ep::CUDA::is_available().unwrap_or(false) {
                return Err("this ONNX Runtime build has no CUDA provider".into());
            }
            let cuda = ep::CUDA::default()
                .with_device_id(options.device_id)
                .build()
                .error_on_failure();
            builder = builder
                .with_execution_providers([cuda])
                .map_err(|e| e.to_string())?;
        }
        Some(ExecutionProvider::TensorRt) => {
            if !ep::TensorRT::is_available().unwrap_or(false) {
                return Err("this ONNX Runtime build has no TensorRT provider".into());
            }
            let mut trt = ep::TensorRT::default().with_device_id(options.device_id);
            if let Some(cache) = &options.tensorrt_cache {
                trt = trt
                    .with_engine_cache(true)
                    .with_engine_cache_path(cache.display());
            }
            // CUDA after TensorRT: the nodes TensorRT declines run on the device too, rather than
            // on the CPU with their tensors copied back and forth. Its failure is not fatal here
            // (TensorRT needs the CUDA libraries anyway; without them TensorRT fails first).
            let cuda = ep::CUDA::default()
                .with_device_id(options.device_id)
                .build();
            builder = builder
                .with_execution_providers([trt.build().error_on_failure(), cuda])
                .map_err(|e| e.to_string())?;
        }
    }
    builder.commit_from_file(path).map_err(|e| {
        let text = e.to_string();
        if text.contains("Protobuf parsing failed") || text.contains("INVALID_PROTOBUF") {
            format!("is not an ONNX model (ONNX Runtime: {text})")
        } else {
            format!("ONNX Runtime could not load it: {text}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_library_path_is_the_only_candidate() {
        let c = library_candidates(Some(Path::new("/x/libonnxruntime.so")));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, Path::new("/x/libonnxruntime.so"));
    }

    #[test]
    fn auto_says_once_per_cause_which_providers_it_could_not_use() {
        let notices = auto_notices(&[
            ("tensorrt", "no driver".into()),
            ("cuda", "no driver".into()),
        ]);
        assert_eq!(notices.len(), 1);
        assert!(notices[0].contains("tensorrt and cuda are in this ONNX Runtime build"));
        assert!(notices[0].contains("(no driver); running on the CPU"));
        let notices = auto_notices(&[
            ("tensorrt", "no libnvinfer".into()),
            ("cuda", "no device".into()),
        ]);
        assert_eq!(notices.len(), 2);
        assert!(notices[1].contains("cuda is in") && notices[1].contains("(no device)"));
        assert!(auto_notices(&[]).is_empty());
    }

    #[test]
    fn preloading_needs_a_list_and_names_what_fails() {
        let dir = std::env::temp_dir().join(format!("facepose-preload-{}", std::process::id()));
        let lib = dir.join("lib");
        std::fs::create_dir_all(&lib).unwrap();
        let library = lib.join(BUNDLED_LIBRARY_NAME);
        // No list beside the library (the CPU build, a system CUDA): nothing to load.
        assert_eq!(preload_listed(&library), Ok(0));
        // A list naming a library that is not there: the error names the driver (when this
        // machine has none) or that library.
        std::fs::create_dir_all(dir.join("cuda")).unwrap();
        std::fs::write(dir.join(GPU_PRELOAD_LIST), "# order\nlibnot-there.so.1\n").unwrap();
        let err = preload_listed(&library).unwrap_err();
        assert!(
            err.contains(CUDA_DRIVER_LIBRARY) || err.contains("libnot-there.so.1"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn provider_names_parse() {
        assert_eq!(
            "CUDA".parse::<ExecutionProvider>().unwrap(),
            ExecutionProvider::Cuda
        );
        assert_eq!(
            "trt".parse::<ExecutionProvider>().unwrap(),
            ExecutionProvider::TensorRt
        );
        assert!("gpu".parse::<ExecutionProvider>().is_err());
    }
}
