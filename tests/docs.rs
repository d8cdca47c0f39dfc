// SPDX-License-Identifier: MPL-2.0
//! The documentation stays usable: every relative link of README.md and docs/*.md points at a file
//! that exists and, for a Markdown file, at a heading it has; docs/layout.md lists every file under
//! src/ and nothing that is not there; and every property blurb of both elements is one or two
//! short sentences (at most 200 characters), as `gst-inspect-1.0` shows them; and no two engine
//! modules import each other.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Once;

use gst::prelude::*;

const MAX_BLURB: usize = 200;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file under docs/.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("a docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines of a Markdown text outside fenced code blocks, with their numbers (from 1).
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            lines.push((i + 1, line));
        }
    }
    lines
}

/// A line with its inline code spans (`…`) taken out.
fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, everything but letters, digits, spaces, hyphens
/// and underscores dropped, spaces made hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (a repeated heading gets `-1`, `-2`, … as on GitHub).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let level = line.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&level) && line[level..].starts_with(' ') {
            let base = slug(&line[level..]);
            let mut anchor = base.clone();
            let mut n = 1;
            while found.contains(&anchor) {
                anchor = format!("{base}-{n}");
                n += 1;
            }
            found.insert(anchor);
        }
    }
    found
}

/// The targets of the inline links and images of a line: `[text](target)`.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(end) => {
                let target = after[..end].trim();
                // A title after the address (`(path "title")`) is not part of it.
                let target = target.split_whitespace().next().unwrap_or("");
                if !target.is_empty() {
                    targets.push(target.to_string());
                }
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    targets
}

/// Every broken relative link of `file` (`text` is its content), as "file:line: why".
fn broken_links(file: &Path, text: &str) -> Vec<String> {
    let mut broken = Vec::new();
    let own_anchors = anchors(text);
    let name = file
        .strip_prefix(root())
        .unwrap_or(file)
        .display()
        .to_string();
    for (number, line) in prose_lines(text) {
        for target in link_targets(&without_code(line)) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let (target_file, target_anchors) = if path.is_empty() {
                (file.to_path_buf(), Some(own_anchors.clone()))
            } else {
                let resolved = file.parent().expect("a folder").join(path);
                if !resolved.exists() {
                    broken.push(format!("{name}:{number}: {target}: no file {path}"));
                    continue;
                }
                let anchors = if resolved.extension().is_some_and(|e| e == "md") {
                    std::fs::read_to_string(&resolved).ok().map(|t| anchors(&t))
                } else {
                    None
                };
                (resolved, anchors)
            };
            if let Some(anchor) = anchor {
                match target_anchors {
                    Some(a) if a.contains(anchor) => {}
                    Some(_) => broken.push(format!(
                        "{name}:{number}: {target}: {} has no heading #{anchor}",
                        target_file.display()
                    )),
                    None => broken.push(format!(
                        "{name}:{number}: {target}: an anchor into a file that is not Markdown"
                    )),
                }
            }
        }
    }
    broken
}

#[test]
fn every_readme_and_docs_link_points_at_a_file_and_heading() {
    let mut broken = Vec::new();
    let mut links = 0;
    for file in documents() {
        let text = std::fs::read_to_string(&file).expect("readable");
        links += prose_lines(&text)
            .iter()
            .map(|(_, l)| link_targets(&without_code(l)).len())
            .sum::<usize>();
        broken.extend(broken_links(&file, &text));
    }
    assert!(
        links > 50,
        "only {links} links found: is the parser broken?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_finds_a_missing_file_and_a_missing_heading() {
    let file = root().join("docs").join("element.md");
    let text = "# Title\n\n[ok](#title) [ok](metadata.md) [ok](../README.md#troubleshooting)\n\
                [bad](nowhere.md) [bad](metadata.md#no-such-heading) [bad](#missing)\n\
                `[not a link](nowhere.md)`\n```\n[not a link](nowhere.md)\n```\n";
    let broken = broken_links(&file, text);
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken[0].contains("nowhere.md"));
    assert!(broken[1].contains("no-such-heading"));
    assert!(broken[2].contains("#missing"));
}

#[test]
fn slugs_are_githubs() {
    assert_eq!(
        slug("Attention: who looks where"),
        "attention-who-looks-where"
    );
    assert_eq!(slug("How `make bench` measures"), "how-make-bench-measures");
    assert_eq!(
        slug("Accuracy (AFLW2000-3D, 1969 images with all angles within ±99°)"),
        "accuracy-aflw2000-3d-1969-images-with-all-angles-within-99"
    );
    let a = anchors("# A\n## A\n```\n# B\n```\n");
    assert_eq!(a, BTreeSet::from(["a".to_string(), "a-1".to_string()]));
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_layout_lists_every_source_file_and_no_other() {
    let layout = std::fs::read_to_string(root().join("docs").join("layout.md")).expect("layout");
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let files: BTreeSet<String> = files
        .iter()
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    let named: BTreeSet<String> = layout
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("src/") && s.ends_with(".rs"))
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = files.difference(&named).collect();
    let stale: Vec<&String> = named.difference(&files).collect();
    assert!(missing.is_empty(), "not in docs/layout.md: {missing:?}");
    assert!(
        stale.is_empty(),
        "in docs/layout.md but not in src/: {stale:?}"
    );

    // No two files share a name for different jobs (mod.rs and imp.rs aside).
    let mut names = BTreeSet::new();
    for f in &files {
        let name = Path::new(f)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        if name != "mod.rs" && name != "imp.rs" {
            assert!(
                names.insert(name.clone()),
                "two files named {name} under src/"
            );
        }
    }
}

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacepose::plugin_register_static().expect("registering the facepose plugin");
    });
}

#[test]
fn every_property_blurb_is_short() {
    init();
    let mut long = Vec::new();
    for factory in ["faceposeestimator", "faceposepublish"] {
        let element = gst::ElementFactory::make(factory)
            .build()
            .expect("the element");
        for pspec in element.list_properties().iter() {
            let blurb = pspec.blurb().unwrap_or("");
            assert!(
                !blurb.is_empty(),
                "{factory}::{} has no blurb",
                pspec.name()
            );
            let chars = blurb.chars().count();
            if chars > MAX_BLURB {
                long.push(format!("{factory}::{} ({chars}): {blurb}", pspec.name()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "blurbs over {MAX_BLURB} characters:\n{}",
        long.join("\n")
    );
}

/// The engine's modules, by path below `src/engine/` ("" for `mod.rs`, "detect" for
/// `detect/mod.rs`, "detect/background" for `detect/background.rs`), with their files.
fn engine_modules() -> Vec<(String, PathBuf)> {
    let base = root().join("src").join("engine");
    let mut files = Vec::new();
    rust_files(&base, &mut files);
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(&base).unwrap().with_extension("");
            let mut name = rel.display().to_string();
            if name == "mod" {
                name.clear();
            } else if let Some(dir) = name.strip_suffix("/mod") {
                name = dir.to_string();
            }
            (name, f)
        })
        .collect()
}

/// The module a path (`super::model::Output`, `crate::engine::face::Face`) seen from `module`
/// names: the longest prefix that is an engine module.
fn resolve(module: &str, is_dir: bool, path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = if module.is_empty() {
        Vec::new()
    } else {
        module.split('/').collect()
    };
    if !is_dir {
        base.pop();
    }
    if segs.first() == Some(&"crate") {
        if segs.get(1) != Some(&"engine") {
            return None;
        }
        base.clear();
        segs.drain(..2);
    } else if segs.first() == Some(&"super") {
        while segs.first() == Some(&"super") {
            base.pop();
            segs.remove(0);
        }
    } else {
        return None;
    }
    (0..=segs.len()).rev().find_map(|k| {
        let mut parts = base.clone();
        parts.extend(&segs[..k]);
        let name = parts.join("/");
        modules.contains(&name).then_some(name)
    })
}

#[test]
fn no_two_engine_modules_import_each_other() {
    let modules = engine_modules();
    let names: BTreeSet<String> = modules.iter().map(|(n, _)| n.clone()).collect();
    let mut deps: Vec<(String, BTreeSet<String>)> = Vec::new();
    for (name, file) in &modules {
        let text = std::fs::read_to_string(file).expect("readable");
        // The module's own code: unit tests and comments aside.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let is_dir = file.file_name().is_some_and(|f| f == "mod.rs");
        let mut used = BTreeSet::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or("");
            for start in ["super::", "crate::engine::"] {
                let mut rest = line;
                while let Some(i) = rest.find(start) {
                    let tail = &rest[i..];
                    let end = tail
                        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                        .unwrap_or(tail.len());
                    let path = tail[..end].trim_end_matches(':');
                    if let Some(m) = resolve(name, is_dir, path, &names)
                        && &m != name
                    {
                        used.insert(m);
                    }
                    rest = &tail[end..];
                }
            }
        }
        deps.push((name.clone(), used));
    }
    let mut cycles = Vec::new();
    for (a, used) in &deps {
        for b in used {
            let nested = a.is_empty()
                || b.is_empty()
                || a.starts_with(&format!("{b}/"))
                || b.starts_with(&format!("{a}/"));
            let back = deps.iter().any(|(n, u)| n == b && u.contains(a));
            if a < b && back && !nested {
                cycles.push(format!("engine/{a} <-> engine/{b}"));
            }
        }
    }
    assert!(
        deps.iter()
            .any(|(n, u)| n == "model" && u.contains("output")),
        "the import scan finds nothing: is it broken?"
    );
    assert!(
        cycles.is_empty(),
        "engine modules importing each other:\n{}",
        cycles.join("\n")
    );
}
