//! Observability of the running process (ops-model.md §2, §7): the Prometheus recorder and its
//! own listener (`prometheus`), the database and saturation checks behind the health endpoints
//! and the scrape (`health`), and the outermost middleware giving every request an id, one log
//! line and its HTTP metrics (`request`). What the shard actors measure is recorded where it
//! happens, in weft-actors. ops/metrics.md lists every series.

pub mod health;
pub mod prometheus;
pub mod request;

/// The build, for `/__version__` and `weft_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit, recorded by build.rs (`unknown` outside a git checkout).
pub const COMMIT: &str = env!("BUILD_WEFT_COMMIT");
/// What produced the binary, from `BUILD_WEFT_NAME` at build time (e.g. a CI run), else `local`.
pub const BUILD: &str = env!("BUILD_WEFT_NAME");
/// Where the source of this build lives (build.rs).
pub const SOURCE: &str = env!("BUILD_WEFT_SOURCE");
