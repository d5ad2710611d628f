//! Harness shared by Weft's behavioural test files: real `weft serve` processes per backend
//! (`server`, `backend`), the suite's own token minting and Hawk signing (`hawk`), a signed
//! HTTP client per user (`client`), assertion helpers (`checks`), loopback ports (`net`), a
//! private memcached (`memcached`), a TCP proxy that makes a database server hang or go away
//! (`proxy`) and a Web Push service with a device's push keys (`push_service`).
//!
//! Every test binary compiles this module but uses only part of it.
#![allow(dead_code, unused_imports, unused_macros)]

/// Generates, from functions taking a `Backend`, a `#[test]` per backend:
/// `mod sqlite { #[test] fn name() }` and `mod postgres { … }` always, and
/// `mod mysql { #[test] fn name() }` when the `mysql` feature is on. The bodies are written once
/// as plain functions.
macro_rules! backend_tests {
    ($( $(#[$meta:meta])* fn $name:ident($b:ident : Backend) $body:block )*) => {
        $( $(#[$meta])* fn $name($b: $crate::common::Backend) $body )*

        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::common::Backend::Sqlite) } )*
        }

        #[cfg(feature = "mysql")]
        mod mysql {
            $( #[test] fn $name() { super::$name($crate::common::Backend::Mysql) } )*
        }

        mod postgres {
            $( #[test] fn $name() { super::$name($crate::common::Backend::Postgres) } )*
        }
    };
}

pub mod accounts;
pub mod backend;
pub mod checks;
pub mod client;
pub mod fxa_mock;
pub mod hawk;
pub mod mariadb;
pub mod memcached;
pub mod net;
pub mod proxy;
pub mod push_service;
pub mod server;

pub use backend::Backend;
pub use checks::*;
pub use client::{random_uid, Credentials, Req, Resp, TokenSpec, User};
pub use server::{shared, shared_small, TestServer, DEFAULT_SECRET, PUBLIC_URL, SMALL_LIMITS};
