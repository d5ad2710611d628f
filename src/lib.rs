//! The `weft` library: everything the `weft` binary (`main.rs`, the CLI) runs, as modules. It
//! exists as a library so that the fuzz targets in `fuzz/` can call the request parsers
//! (BSO bodies, query strings, tokenserver headers) exactly as the server does.

pub mod accounts;
pub mod admin;
pub mod config;
pub mod data_dir;
pub mod error;
pub mod healthcheck;
pub mod master_secret;
pub mod node;
pub mod proxy;
pub mod purge;
pub mod purge_retired;
pub mod reload;
pub mod secret_commands;
pub mod secrets;
pub mod server;
pub mod startup;
pub mod telemetry;
pub mod tokenserver;
pub mod transfer;
pub mod web;
