//! The house by role (issue 19, ARCHITECTURE.md "Imports run one way"): every `weft`
//! subcommand's entry point is the file of its name in `src/commands/`, `main.rs` only parses
//! and dispatches, no two source files of a crate import each other, and within `src/` no
//! import runs from a lower layer back up.
//!
//! An import is a path a file names (`use crate::a::b`, `super::c::d(…)`, braces expanded),
//! resolved to the file of the deepest module it names. A file naming its own ancestors
//! (`super::Thing` from a child of `mod.rs`) is the module tree, not an import, and is not
//! counted; neither is what an inline `mod tests` names of its own file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

type Module = Vec<String>;

/// Every module file of the crate rooted at `src`, by module path.
fn module_files(src: &Path) -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<Module, PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read a source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !is_bin_root_beside_lib(&path, src) {
                let rel = path.strip_prefix(src).expect("below src").with_extension("");
                let mut module: Module = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                if matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                    module.pop();
                }
                out.insert(module, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// `src/main.rs` beside `src/lib.rs` is a crate of its own (it names the library `weft::…`).
fn is_bin_root_beside_lib(path: &Path, src: &Path) -> bool {
    path == src.join("main.rs") && src.join("lib.rs").is_file()
}

/// `crate::a::{b, c::{d, e}}` → `crate::a::b`, `crate::a::c::d`, `crate::a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let path: String = path.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = path.find("::{") else { return vec![path] };
    if !path.ends_with('}') {
        return vec![path];
    }
    let (prefix, body) = (&path[..open], &path[open + 3..path.len() - 1]);
    let mut parts = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for c in body.chars() {
        match c {
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            '{' => {
                depth += 1;
                current.push(c);
            }
            '}' => {
                depth -= 1;
                current.push(c);
            }
            _ => current.push(c),
        }
    }
    parts.push(current);
    let mut out = Vec::new();
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        if part == "self" {
            out.push(prefix.to_string());
        } else {
            out.extend(expand(&format!("{prefix}::{part}")));
        }
    }
    out
}

/// The paths starting with `crate`, `super` or `self` that `line` names, braces included.
fn paths_in(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < line.len() {
        let rest = &bytes[i..];
        let starts = ["crate::", "super::", "self::"].iter().any(|p| rest.starts_with(p.as_bytes()));
        let boundary =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':');
        if !(starts && boundary) {
            i += 1;
            continue;
        }
        let mut end = i;
        let mut depth = 0;
        while end < line.len() {
            let c = bytes[end];
            if c == b'{' {
                depth += 1;
            } else if c == b'}' {
                if depth == 0 {
                    break;
                }
                depth -= 1;
                if depth == 0 {
                    end += 1;
                    break;
                }
            } else if depth == 0 && !(c.is_ascii_alphanumeric() || c == b'_' || c == b':') {
                break;
            }
            end += 1;
        }
        out.extend(expand(line[i..end].trim_end_matches(':')));
        i = end.max(i + 1);
    }
    out
}

/// The module file `path` (named in `module`'s file) leads to.
fn resolve(module: &Module, path: &str, inline: bool, files: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    let path = path.split(" as ").next().unwrap_or(path).trim();
    let mut parts = path.split("::").map(str::to_string).peekable();
    let mut base = module.clone();
    if parts.peek().map(String::as_str) == Some("crate") {
        parts.next();
        base.clear();
    } else {
        // Inside an inline `mod tests { … }`, `super` is this file.
        if inline && parts.peek().map(String::as_str) == Some("super") {
            parts.next();
        }
        while let Some(step) = parts.peek().map(String::as_str) {
            match step {
                "super" => {
                    base.pop();
                }
                "self" => {}
                _ => break,
            }
            parts.next();
        }
    }
    let mut best = files.contains_key(&base).then(|| base.clone());
    for part in parts {
        base.push(part);
        if files.contains_key(&base) {
            best = Some(base.clone());
        }
    }
    best
}

/// Which module files each module file imports (ancestors and itself left out).
fn imports(src: &Path) -> (BTreeMap<Module, PathBuf>, BTreeMap<Module, BTreeSet<Module>>) {
    let files = module_files(src);
    let mut edges = BTreeMap::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).expect("read a source file");
        // One line per `use` statement, so that its braces are seen whole.
        let mut lines = Vec::new();
        let mut pending = String::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                continue;
            }
            if !pending.is_empty() || trimmed.starts_with("use ") || trimmed.starts_with("pub use ") {
                pending.push_str(line);
                pending.push(' ');
                if trimmed.ends_with(';') {
                    lines.push(std::mem::take(&mut pending));
                }
                continue;
            }
            lines.push(line.to_string());
        }
        let mut inline = false;
        let mut deps = BTreeSet::new();
        for line in &lines {
            let trimmed = line.trim_start();
            let declares_inline_mod = (trimmed.starts_with("mod ") || trimmed.starts_with("pub mod "))
                && trimmed.trim_end().ends_with('{');
            inline |= declares_inline_mod;
            for path in paths_in(line) {
                if let Some(target) = resolve(module, &path, inline, &files) {
                    if &target != module && !module.starts_with(&target) {
                        deps.insert(target);
                    }
                }
            }
        }
        edges.insert(module.clone(), deps);
    }
    (files, edges)
}

/// Every import that closes a circle: `a` imports `b` and `b` reaches `a` again.
fn circles(src: &Path) -> Vec<String> {
    let (files, edges) = imports(src);
    let reaches = |from: &Module, to: &Module| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(m) = stack.pop() {
            if &m == to {
                return true;
            }
            if seen.insert(m.clone()) {
                stack.extend(edges.get(&m).into_iter().flatten().cloned());
            }
        }
        false
    };
    let mut out = Vec::new();
    for (a, deps) in &edges {
        for b in deps {
            if reaches(b, a) {
                out.push(format!(
                    "{} imports {} and is imported back",
                    files[a].display(),
                    files[b].display()
                ));
            }
        }
    }
    out
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_two_source_files_import_each_other() {
    let mut found = Vec::new();
    for krate in ["src", "actors/src", "schema/src", "loadtests/src"] {
        found.extend(circles(&root().join(krate)));
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn no_import_in_src_runs_back_up() {
    // ARCHITECTURE.md's layers of `src/`, top (0) to bottom.
    let layer = |top: &str| match top {
        "commands" => Some(0),
        "web" => Some(1),
        "accounts" | "tokenserver" | "telemetry" | "purge_retired" | "transfer" => Some(2),
        "config" => Some(3),
        "node" => Some(4),
        _ => None,
    };
    let (files, edges) = imports(&root().join("src"));
    let mut wrong = Vec::new();
    for (from, deps) in &edges {
        let Some(from_top) = from.first() else { continue };
        let Some(from_layer) = layer(from_top) else {
            wrong.push(format!("{} is in no layer of ARCHITECTURE.md", files[from].display()));
            continue;
        };
        for to in deps.iter().filter(|to| to.first() != Some(from_top)) {
            let to_layer = to.first().and_then(|t| layer(t));
            if to_layer.is_none_or(|l| l <= from_layer) {
                wrong.push(format!(
                    "{} imports {} (not a lower layer)",
                    files[from].display(),
                    files[to].display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_subcommand_is_the_file_of_its_name_and_main_only_dispatches() {
    let out = Command::new(env!("CARGO_BIN_EXE_weft")).arg("--help").output().expect("run weft --help");
    let help = String::from_utf8_lossy(&out.stdout);
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|name| name != "help")
        .collect();
    assert!(commands.len() >= 11, "weft --help lists the subcommands:\n{help}");
    let dir = root().join("src/commands");
    for name in &commands {
        let module = name.replace('-', "_");
        let file = dir.join(format!("{module}.rs"));
        let folder = dir.join(&module).join("mod.rs");
        assert!(
            file.is_file() || folder.is_file(),
            "`weft {name}` has no src/commands/{module}.rs or {module}/"
        );
    }
    let main = std::fs::read_to_string(root().join("src/main.rs")).expect("read src/main.rs");
    assert!(main.lines().count() < 150, "src/main.rs has {} lines", main.lines().count());
}

#[test]
fn the_checker_sees_a_circle_and_braces() {
    // Two files that import each other, in a throwaway crate: the check must fail on them.
    let dir = tempfile::tempdir().expect("temporary folder");
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").expect("write lib.rs");
    std::fs::write(src.join("a.rs"), "use crate::{b::{self, B}, other};\npub struct A;\n")
        .expect("write a.rs");
    std::fs::write(src.join("b.rs"), "pub struct B;\nfn f() { let _ = super::a::A; }\n").expect("write b.rs");
    assert_eq!(circles(src).len(), 2, "{:?}", circles(src));
    std::fs::write(src.join("b.rs"), "pub struct B;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n")
        .expect("write b.rs");
    assert!(circles(src).is_empty(), "{:?}", circles(src));
}
