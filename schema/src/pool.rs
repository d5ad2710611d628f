//! Connection pools and transactions. `DbPool` is an r2d2 pool for one database (one db node),
//! chosen by the URL's scheme; `DbConnection` a connection taken from it; `Tx` the handle the
//! queries run on inside a transaction. Connection setup (SQLite pragmas, MySQL and PostgreSQL
//! isolation level) and the embedded migrations live here too.

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

#[cfg(feature = "mysql")]
use diesel::mysql::MysqlConnection;

use crate::checkout::{Checked, Manager};
use crate::DbError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
#[cfg(feature = "mysql")]
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// Which database engine a pool talks to; selects the few SQL fragments that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_size: u32,
    pub connection_timeout: Duration,
    pub sqlite_busy_timeout: Duration,
    pub sqlite_synchronous: SqliteSynchronous,
}

/// SQLite's `synchronous` pragma in WAL mode. `Full` syncs the WAL at every commit, so a write
/// acknowledged with 200 survives an OS crash or power loss; `Normal` syncs only at
/// checkpoints, cheaper per write, and after such a crash the last acknowledged writes can be
/// gone while the client never sends them again. Both are safe against corruption and against
/// the process itself being killed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteSynchronous {
    #[default]
    Full,
    Normal,
}

impl SqliteSynchronous {
    fn pragma_value(self) -> &'static str {
        match self {
            SqliteSynchronous::Full => "FULL",
            SqliteSynchronous::Normal => "NORMAL",
        }
    }
}

#[derive(Clone)]
pub enum DbPool {
    Sqlite(Pool<Manager<SqliteConnection>>),
    Postgres(Pool<Manager<PgConnection>>),
    #[cfg(feature = "mysql")]
    Mysql(Pool<Manager<MysqlConnection>>),
}

pub enum DbConnection {
    Sqlite(PooledConnection<Manager<SqliteConnection>>),
    Postgres(PooledConnection<Manager<PgConnection>>),
    #[cfg(feature = "mysql")]
    Mysql(PooledConnection<Manager<MysqlConnection>>),
}

/// A connection inside an open transaction; every query in `queries` takes one.
pub enum Tx<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
    #[cfg(feature = "mysql")]
    Mysql(&'a mut MysqlConnection),
}

/// Runs `$body` with `$c` bound to the concrete connection of whichever backend `$tx` holds, and
/// `$db` naming that backend's diesel type, so one query text type-checks against each backend.
macro_rules! with_tx {
    ($tx:expr, |$c:ident, $db:ident| $body:expr) => {
        match $tx {
            $crate::pool::Tx::Sqlite($c) => {
                #[allow(unused)]
                type $db = diesel::sqlite::Sqlite;
                $body
            }
            $crate::pool::Tx::Postgres($c) => {
                #[allow(unused)]
                type $db = diesel::pg::Pg;
                $body
            }
            #[cfg(feature = "mysql")]
            $crate::pool::Tx::Mysql($c) => {
                #[allow(unused)]
                type $db = diesel::mysql::Mysql;
                $body
            }
        }
    };
}
pub(crate) use with_tx;

impl Tx<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "mysql")]
            Tx::Mysql(_) => Backend::Mysql,
        }
    }
}

/// SQLite: WAL so readers never wait for the writer, the configured `synchronous` level (FULL
/// unless the operator trades durability for write speed), and a busy timeout so a second
/// writer waits instead of failing.
#[derive(Debug)]
struct SqliteSetup {
    busy_timeout_ms: u64,
    synchronous: SqliteSynchronous,
}

impl CustomizeConnection<Checked<SqliteConnection>, diesel::r2d2::Error> for SqliteSetup {
    fn on_acquire(&self, conn: &mut Checked<SqliteConnection>) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA busy_timeout = {};",
            self.synchronous.pragma_value(),
            self.busy_timeout_ms
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// MySQL: READ COMMITTED, so plain reads take no gap locks and writers of different users never
/// lock each other's key ranges — the cause of the reference's batch-commit deadlocks.
#[cfg(feature = "mysql")]
#[derive(Debug)]
struct MysqlSetup;

#[cfg(feature = "mysql")]
impl CustomizeConnection<Checked<MysqlConnection>, diesel::r2d2::Error> for MysqlSetup {
    fn on_acquire(&self, conn: &mut Checked<MysqlConnection>) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// PostgreSQL: READ COMMITTED stated explicitly (a server's `default_transaction_isolation`
/// may say otherwise). As on MySQL, every statement addresses rows by `(userid, …)` and writers
/// of one collection queue on its `user_collections` row lock (`FOR UPDATE`), so writers of
/// different users never wait for each other; SERIALIZABLE would add serialization failures
/// without protecting anything the row lock does not already.
#[derive(Debug)]
struct PostgresSetup;

impl CustomizeConnection<Checked<PgConnection>, diesel::r2d2::Error> for PostgresSetup {
    fn on_acquire(&self, conn: &mut Checked<PgConnection>) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Creates a missing SQLite file readable by its owner only: it holds every user's (encrypted)
/// records and the tokenserver's user table, and must not depend on the directory's mode or
/// the umask. SQLite gives the `-wal` and `-shm` files the database file's permissions.
/// An existing file is left as it is.
fn create_owner_only(path: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if path == ":memory:" {
        return Ok(());
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

impl DbPool {
    /// Builds a pool for `url` (`sqlite:PATH`, `postgres://…` or `mysql://…`). Does not fail when the database
    /// is unreachable: connections are made on demand, so a node that is down at start
    /// recovers without a restart (its heartbeat reports it meanwhile).
    pub fn connect(url: &str, settings: &PoolSettings) -> Result<DbPool, DbError> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if let Some(parent) = std::path::Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| DbError::BadUrl(format!("cannot create {}: {e}", parent.display())))?;
                }
            }
            create_owner_only(path).map_err(|e| DbError::BadUrl(format!("cannot create {path}: {e}")))?;
            let pool = Pool::builder()
                .max_size(settings.max_size)
                .min_idle(Some(0))
                .connection_timeout(settings.connection_timeout)
                .connection_customizer(Box::new(SqliteSetup {
                    busy_timeout_ms: settings.sqlite_busy_timeout.as_millis() as u64,
                    synchronous: settings.sqlite_synchronous,
                }))
                .build_unchecked(Manager::new(path));
            return Ok(DbPool::Sqlite(pool));
        }
        if is_postgres_url(url) {
            let pool = Pool::builder()
                .max_size(settings.max_size)
                .min_idle(Some(0))
                .connection_timeout(settings.connection_timeout)
                .connection_customizer(Box::new(PostgresSetup))
                .build_unchecked(Manager::new(url));
            return Ok(DbPool::Postgres(pool));
        }
        if url.starts_with("mysql://") {
            #[cfg(feature = "mysql")]
            {
                let pool = Pool::builder()
                    .max_size(settings.max_size)
                    .min_idle(Some(0))
                    .connection_timeout(settings.connection_timeout)
                    .connection_customizer(Box::new(MysqlSetup))
                    .build_unchecked(Manager::new(url));
                return Ok(DbPool::Mysql(pool));
            }
            #[cfg(not(feature = "mysql"))]
            return Err(DbError::BadUrl(
                "this weft was built without MySQL support; rebuild with `--features mysql`".into(),
            ));
        }
        Err(DbError::BadUrl(format!("{url:?} is not sqlite:, postgres:// or mysql://")))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DbPool::Sqlite(_) => Backend::Sqlite,
            DbPool::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "mysql")]
            DbPool::Mysql(_) => Backend::Mysql,
        }
    }

    pub fn get(&self) -> Result<DbConnection, DbError> {
        Ok(match self {
            DbPool::Sqlite(p) => DbConnection::Sqlite(p.get()?),
            DbPool::Postgres(p) => DbConnection::Postgres(p.get()?),
            #[cfg(feature = "mysql")]
            DbPool::Mysql(p) => DbConnection::Mysql(p.get()?),
        })
    }

    /// (connections open, idle connections) for pool gauges and `__lbheartbeat__`.
    pub fn state(&self) -> (u32, u32) {
        let s = match self {
            DbPool::Sqlite(p) => p.state(),
            DbPool::Postgres(p) => p.state(),
            #[cfg(feature = "mysql")]
            DbPool::Mysql(p) => p.state(),
        };
        (s.connections, s.idle_connections)
    }

    pub fn max_size(&self) -> u32 {
        match self {
            DbPool::Sqlite(p) => p.max_size(),
            DbPool::Postgres(p) => p.max_size(),
            #[cfg(feature = "mysql")]
            DbPool::Mysql(p) => p.max_size(),
        }
    }

    /// Applies the embedded migrations that have not run yet; returns how many ran. A database
    /// in a layout Weft cannot serve (`layout.rs`) is refused before any statement changes it.
    pub fn run_migrations(&self) -> Result<usize, DbError> {
        let mut conn = self.get()?;
        conn.single_statement(crate::layout::check_servable)?;
        let ran = match &mut conn {
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
            DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()),
            #[cfg(feature = "mysql")]
            DbConnection::Mysql(c) => c.run_pending_migrations(MYSQL_MIGRATIONS).map(|v| v.len()),
        };
        ran.map_err(DbError::Migration)
    }
}

impl DbConnection {
    /// Runs `f` in a transaction that reads a consistent view of one collection.
    pub fn read_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
    {
        let result = match self {
            DbConnection::Sqlite(c) => c.transaction(|c| f(&mut Tx::Sqlite(c))),
            DbConnection::Postgres(c) => c.transaction(|c| f(&mut Tx::Postgres(c))),
            #[cfg(feature = "mysql")]
            DbConnection::Mysql(c) => c.transaction(|c| f(&mut Tx::Mysql(c))),
        };
        self.checked_after(result)
    }

    /// Runs `f` in a read-only transaction that sees one snapshot of the whole database from
    /// its first statement to its end, whatever commits meanwhile: REPEATABLE READ (the
    /// pool's sessions default to READ COMMITTED, which takes a new snapshot per statement),
    /// on MySQL started WITH CONSISTENT SNAPSHOT. For reading another server's database (`weft
    /// import --from-reference`): nothing in it can be written through this transaction.
    pub fn snapshot_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
    {
        let result = match self {
            // A SQLite read transaction is a snapshot already.
            DbConnection::Sqlite(c) => read_only(&mut ***c, "BEGIN DEFERRED", |c| f(&mut Tx::Sqlite(c))),
            DbConnection::Postgres(c) => {
                read_only(&mut ***c, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", |c| {
                    f(&mut Tx::Postgres(c))
                })
            }
            #[cfg(feature = "mysql")]
            DbConnection::Mysql(c) => read_only(
                &mut ***c,
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
                 START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
                |c| f(&mut Tx::Mysql(c)),
            ),
        };
        self.checked_after(result)
    }

    /// Runs `f` outside any transaction: each statement is its own consistent snapshot. For
    /// reads that are a single statement, this saves the BEGIN and COMMIT round trips.
    pub fn single_statement<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
    {
        let result = match self {
            DbConnection::Sqlite(c) => f(&mut Tx::Sqlite(c)),
            DbConnection::Postgres(c) => f(&mut Tx::Postgres(c)),
            #[cfg(feature = "mysql")]
            DbConnection::Mysql(c) => f(&mut Tx::Mysql(c)),
        };
        self.checked_after(result)
    }

    /// Runs `f` in a write transaction. SQLite takes the write lock at BEGIN (IMMEDIATE) so two
    /// writers never both read and then fail to upgrade; MySQL and PostgreSQL lock rows as they
    /// go.
    pub fn write_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
    {
        let result = match self {
            DbConnection::Sqlite(c) => c.immediate_transaction(|c| f(&mut Tx::Sqlite(c))),
            DbConnection::Postgres(c) => c.transaction(|c| f(&mut Tx::Postgres(c))),
            #[cfg(feature = "mysql")]
            DbConnection::Mysql(c) => c.transaction(|c| f(&mut Tx::Mysql(c))),
        };
        self.checked_after(result)
    }

    /// `SELECT 1`, for heartbeats.
    pub fn check(&mut self) -> Result<(), DbError> {
        let result = match self {
            DbConnection::Sqlite(c) => c.batch_execute("SELECT 1"),
            DbConnection::Postgres(c) => c.batch_execute("SELECT 1"),
            #[cfg(feature = "mysql")]
            DbConnection::Mysql(c) => c.batch_execute("SELECT 1"),
        };
        self.checked_after(result.map_err(DbError::from))
    }

    /// A use that failed may have failed because the connection is gone: it is checked before
    /// it is handed out again (`checkout.rs`).
    fn checked_after<T, E>(&mut self, result: Result<T, E>) -> Result<T, E> {
        if result.is_err() {
            match self {
                DbConnection::Sqlite(c) => c.mark_failed(),
                DbConnection::Postgres(c) => c.mark_failed(),
                #[cfg(feature = "mysql")]
                DbConnection::Mysql(c) => c.mark_failed(),
            }
        }
        result
    }
}

/// Runs `f` in a transaction opened with `begin`, always ended by ROLLBACK: it only read.
fn read_only<C, T, E, F>(conn: &mut C, begin: &str, f: F) -> Result<T, E>
where
    C: Connection<TransactionManager = AnsiTransactionManager>,
    E: From<diesel::result::Error>,
    F: FnOnce(&mut C) -> Result<T, E>,
{
    AnsiTransactionManager::begin_transaction_sql(conn, begin)?;
    let result = f(conn);
    let ended = AnsiTransactionManager::rollback_transaction(conn);
    let value = result?;
    ended?;
    Ok(value)
}

/// `postgres://` or `postgresql://`: the two schemes libpq accepts.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}
