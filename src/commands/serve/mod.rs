//! `weft serve`: the server's assembly. `startup` turns settings into pools, actors and
//! secrets, `server` runs the HTTP server, `live_reload` applies a changed configuration on
//! SIGHUP.

pub mod live_reload;
pub mod server;
pub mod startup;
