//! When a pooled connection is checked before it is handed out. r2d2 with diesel's manager
//! sends `SELECT 1` at every checkout: on MySQL and PostgreSQL a round trip, on every request,
//! before the request's own statement (for a cached read that statement is often the only
//! other one). Here a connection is checked only when it may have gone stale: it sat idle
//! longer than `IDLE_BEFORE_CHECK` (the database may have restarted or closed it meanwhile), or
//! its last use failed (a lost connection fails everything after; at this level a failure does
//! not say whether the connection was the cause). A connection in steady use is handed out as it
//! is; one that goes stale while busy fails its next use, which the retry policy
//! (`retry.rs`) runs again on another connection, and is checked, and dropped, at its next
//! checkout. The conformance suite closes an engine's connections from the database's side
//! to pin this (`connections_the_database_closed_are_replaced_*`).

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use diesel::r2d2::{ConnectionManager, ManageConnection, R2D2Connection};

/// A connection idle at least this long is checked before use. Under load connections return
/// to the pool within milliseconds, so only a quiet pool pays the check.
pub const IDLE_BEFORE_CHECK: Duration = Duration::from_secs(1);

/// A pooled connection with what its checks need: when it last returned to the pool and
/// whether its last use failed.
pub struct Checked<C> {
    conn: C,
    returned: Instant,
    failed: bool,
}

impl<C> Checked<C> {
    /// Its last use failed: check it at the next checkout.
    pub(crate) fn mark_failed(&mut self) {
        self.failed = true;
    }
}

impl<C> Deref for Checked<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C> DerefMut for Checked<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

/// diesel's manager, with the checkout check above.
pub struct Manager<C: 'static>(ConnectionManager<C>);

impl<C: R2D2Connection + Send + 'static> Manager<C> {
    pub fn new(url: &str) -> Manager<C> {
        Manager(ConnectionManager::new(url))
    }
}

impl<C: R2D2Connection + Send + 'static> ManageConnection for Manager<C> {
    type Connection = Checked<C>;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Checked<C>, Self::Error> {
        Ok(Checked { conn: self.0.connect()?, returned: Instant::now(), failed: false })
    }

    fn is_valid(&self, conn: &mut Checked<C>) -> Result<(), Self::Error> {
        if conn.failed || conn.returned.elapsed() >= IDLE_BEFORE_CHECK {
            self.0.is_valid(&mut conn.conn)?;
            conn.failed = false;
        }
        Ok(())
    }

    /// Called by r2d2 each time the connection returns to the pool.
    fn has_broken(&self, conn: &mut Checked<C>) -> bool {
        conn.returned = Instant::now();
        self.0.has_broken(&mut conn.conn)
    }
}
