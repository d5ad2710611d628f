//! `weft-loadtest`: a population of Firefox Sync clients for load-testing Weft, and the raw
//! database limit to compare it with. This file owns the process: argument checks, the tokio
//! runtime, which run to do, the result output and the exit status:
//! 0 = passed, 1 = errors or lost writes, 2 = bad arguments or setup, 3 = no tokenserver.
//! See README.md for the scenarios.

mod auth;
mod cli;
mod http;
mod ledger;
mod oauth;
mod payload;
mod raw;
mod report;
mod run;
mod scenarios;
mod stats;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::run::RunError;

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NO_TOKENSERVER: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_test_jwk {
        return match oauth::OauthKey::load() {
            Ok(key) => {
                println!("{}", key.public_jwk());
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(&e),
        };
    }
    let opts = match cli.validate() {
        Ok(opts) => opts,
        Err(e) => return usage_error(&e),
    };
    let baseline = match &opts.raw_baseline {
        Some(path) => match report::load_baseline(path, opts.scenario.name()) {
            Ok(doc) => Some(doc),
            Err(e) => return usage_error(&e),
        },
        None => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(opts.concurrency + 8)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage_error(&format!("cannot start the async runtime: {e}")),
    };
    let mode = if opts.raw.is_some() { "raw" } else { "http" };
    let result = runtime.block_on(async {
        match opts.raw.clone() {
            Some(url) => raw::run_raw(opts.clone(), url).await.map_err(RunError::Failed),
            None => run::run_http(opts.clone()).await,
        }
    });
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(RunError::NoTokenserver(message)) => {
            eprintln!("weft-loadtest: {message}");
            return ExitCode::from(EXIT_NO_TOKENSERVER);
        }
        Err(RunError::Failed(message)) => return usage_error(&message),
    };
    let doc = outcome.to_json(&opts, mode, baseline.as_ref());
    outcome.print_summary(&doc);
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("weft-loadtest: cannot write {}: {e}", path.display());
            return ExitCode::from(EXIT_FAILED);
        }
    }
    if outcome.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("weft-loadtest: {message}");
    ExitCode::from(EXIT_USAGE)
}
