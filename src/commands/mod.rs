//! The `weft` subcommands, one module each, named after the command a user types: `serve`
//! (with the server's assembly), `migrate`, `check_config`, `node`, `user`, `account`, `secret`,
//! `reload`, `export`, `import` and `purge`. `main.rs` parses the arguments and calls one of them.

pub mod account;
pub mod node;
pub mod purge;
pub mod secret;
pub mod serve;
