//! The embedded migrations (`migrations/<backend>/`), applied by `DbPool::run_migrations`
//! after the database's layout was found servable (`layout.rs`).

use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::layout;
use crate::pool::{DbConnection, DbPool};
use crate::DbError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
#[cfg(feature = "mysql")]
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

impl DbPool {
    /// Applies the embedded migrations that have not run yet; returns how many ran. A database
    /// in a layout Weft cannot serve (`layout.rs`) is refused before any statement changes it.
    pub fn run_migrations(&self) -> Result<usize, DbError> {
        let mut conn = self.get()?;
        conn.single_statement(layout::check_servable)?;
        let ran = match &mut conn {
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
            DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()),
            #[cfg(feature = "mysql")]
            DbConnection::Mysql(c) => c.run_pending_migrations(MYSQL_MIGRATIONS).map(|v| v.len()),
        };
        ran.map_err(DbError::Migration)
    }
}
