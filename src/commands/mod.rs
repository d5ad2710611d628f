//! The `weft` subcommands, one module each, named after the command a user types: `serve`
//! (with the server's assembly), `migrate`, `check_config` (`check-config`), `node`, `user`,
//! `account`, `secret`, `reload`, `export`, `import`, `purge` and `healthcheck`. `main.rs` parses the
//! arguments, loads the settings and calls the module's `run`. `tokenserver_db` is not a
//! command: it is how `node` and `user` reach the tokenserver database.

pub mod account;
pub mod check_config;
pub mod export;
pub mod healthcheck;
pub mod import;
pub mod migrate;
pub mod node;
pub mod purge;
pub mod reload;
pub mod secret;
pub mod serve;
pub mod tokenserver_db;
pub mod user;
