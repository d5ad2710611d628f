//! The `weft` library: everything the `weft` binary (`main.rs`, the CLI) runs, as modules. It
//! exists as a library so that the fuzz targets in `fuzz/` can call the request parsers
//! (BSO bodies, query strings, tokenserver headers) exactly as the server does.

pub mod accounts;
pub mod commands;
pub mod config;
pub mod node;
pub mod purge_retired;
pub mod telemetry;
pub mod tokenserver;
pub mod transfer;
pub mod web;
