//! Every SQL statement Weft runs, grouped by the tables they serve. Each function takes a `Tx`
//! and does one thing; the rules that combine them (preconditions, timestamps, merging) live
//! in the shard actor and the tokenserver actor.

pub mod accounts;
pub mod device_commands;
mod dialect;
pub mod password_changes;
pub mod purge;
pub mod reference;
pub(crate) mod sql;
pub mod storage;
pub mod tokenserver;
pub mod transfer;
pub mod user_move;
