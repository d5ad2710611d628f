//! Build script: records which source the binary is built from, for `/__version__` and
//! `weft_build_info`. `BUILD_WEFT_COMMIT` is the commit checked out (or the `BUILD_WEFT_COMMIT`
//! variable, for builds outside a git checkout such as distribution packages; `unknown`
//! otherwise); `BUILD_WEFT_NAME` names the build (a CI run id, say), `local` by default;
//! `BUILD_WEFT_SOURCE` is where the source lives (the git remote `origin`, or `unknown`).
//!
//! These names deliberately stay outside the `WEFT_*` namespace of run-time settings: cargo
//! also puts every `rustc-env` variable into the environment of the program `cargo run`
//! starts, so a `WEFT_*` name here would reach `weft serve` as if it were a setting (issue 8).

use std::path::Path;
use std::process::Command;

fn main() {
    let commit = from_env("BUILD_WEFT_COMMIT").or_else(git_head).unwrap_or_else(|| "unknown".into());
    let build = from_env("BUILD_WEFT_NAME").unwrap_or_else(|| "local".into());
    let source = from_env("BUILD_WEFT_SOURCE").or_else(git_origin).unwrap_or_else(|| "unknown".into());
    for (name, value) in
        [("BUILD_WEFT_COMMIT", commit), ("BUILD_WEFT_NAME", build), ("BUILD_WEFT_SOURCE", source)]
    {
        println!("cargo:rustc-env={name}={value}");
        println!("cargo:rerun-if-env-changed={name}");
    }
    // Re-run when a commit moves HEAD. Only existing paths: a missing one would make cargo
    // re-run the script on every build.
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn from_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn git_head() -> Option<String> {
    git(&["rev-parse", "--short=12", "HEAD"])
}

fn git_origin() -> Option<String> {
    git(&["remote", "get-url", "origin"])
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}
