//! `Sql`: a statement text plus its bind values, run on whichever backend a `Tx` holds. The
//! statements are the same text on every backend, written with `?` placeholders (SQLite's and
//! MySQL's); for PostgreSQL they are numbered `$1, $2, …` here, so dispatching here once keeps
//! every query written once.
//!
//! A statement of fixed shape stays prepared on its connection (diesel's statement cache, keyed
//! by the text): run again, it skips the parse and, on MySQL and PostgreSQL, the round trip that
//! prepares it (and on MySQL the one that closes it). Statements whose text grows with the input
//! (`IN` lists, multi-row `VALUES`) are marked `varying` and prepared per use, so that each
//! connection keeps a bounded set: MySQL counts every prepared statement of every connection
//! against `max_prepared_stmt_count`. MySQL's locking reads are prepared per use as well
//! (`is_locking_read` says why).

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, BoxedSqlQuery, Query, QueryFragment, QueryId, SqlQuery};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Integer, Nullable, Text};
use diesel::{QueryResult, QueryableByName, RunQueryDsl};

use crate::pool::{with_tx, Backend as Dialect, Tx};

/// A bind value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    I64(i64),
    OptI64(Option<i64>),
    I32(i32),
    OptI32(Option<i32>),
    Str(&'a str),
    OptStr(Option<&'a str>),
}

/// Rows loadable from every compiled-in backend.
#[cfg(feature = "mysql")]
pub(crate) trait Row:
    QueryableByName<diesel::sqlite::Sqlite>
    + QueryableByName<diesel::pg::Pg>
    + QueryableByName<diesel::mysql::Mysql>
    + 'static
{
}
#[cfg(feature = "mysql")]
impl<T> Row for T where
    T: QueryableByName<diesel::sqlite::Sqlite>
        + QueryableByName<diesel::pg::Pg>
        + QueryableByName<diesel::mysql::Mysql>
        + 'static
{
}
#[cfg(not(feature = "mysql"))]
pub(crate) trait Row:
    QueryableByName<diesel::sqlite::Sqlite> + QueryableByName<diesel::pg::Pg> + 'static
{
}
#[cfg(not(feature = "mysql"))]
impl<T> Row for T where T: QueryableByName<diesel::sqlite::Sqlite> + QueryableByName<diesel::pg::Pg> + 'static {}

pub(crate) struct Sql<'a> {
    text: String,
    args: Vec<Arg<'a>>,
    /// Kept prepared on the connection (module comment).
    prepared: bool,
}

/// A backstop for a list built without `varying`: a statement with more binds than this is
/// never kept prepared (no fixed-shape statement comes near it).
const MAX_PREPARED_BINDS: usize = 24;

impl<'a> Sql<'a> {
    /// A statement of fixed shape: kept prepared on its connection.
    pub fn new(text: impl Into<String>) -> Self {
        Sql { text: text.into(), args: Vec::new(), prepared: true }
    }

    /// A statement whose text depends on the size of the input: prepared for this use only.
    pub fn varying(text: impl Into<String>) -> Self {
        Sql { prepared: false, ..Sql::new(text) }
    }

    /// `INSERT INTO {table} ({columns}) VALUES (?, …)`: one placeholder per value, the values
    /// in the columns' order.
    pub fn insert(table: &str, columns: &str, values: impl IntoIterator<Item = Arg<'a>>) -> Self {
        let args: Vec<Arg<'a>> = values.into_iter().collect();
        let placeholders = vec!["?"; args.len()].join(", ");
        Sql::new(format!("INSERT INTO {table} ({columns}) VALUES ({placeholders})")).args(args)
    }

    /// `SELECT {columns} FROM {table} WHERE {key} = ?`: the row (or rows) of one key.
    pub fn row_by_key(columns: &str, table: &str, key: &str, value: Arg<'a>) -> Self {
        Sql::new(format!("SELECT {columns} FROM {table} WHERE {key} = ?")).arg(value)
    }

    /// `DELETE FROM {table} WHERE {key} = ?`: answers how many rows went.
    pub fn delete_by_key(table: &str, key: &str, value: Arg<'a>) -> Self {
        Sql::new(format!("DELETE FROM {table} WHERE {key} = ?")).arg(value)
    }

    /// `varying` when `cond` holds (a filter that adds a list only sometimes).
    pub fn varying_if(self, cond: bool) -> Self {
        Sql { prepared: self.prepared && !cond, ..self }
    }

    pub fn arg(mut self, arg: Arg<'a>) -> Self {
        self.args.push(arg);
        self
    }

    pub fn args(mut self, args: impl IntoIterator<Item = Arg<'a>>) -> Self {
        self.args.extend(args);
        self
    }

    pub fn load<R: Row>(self, tx: &mut Tx<'_>) -> QueryResult<Vec<R>> {
        let backend = tx.backend();
        with_tx!(tx, |c, DB| self.statement::<DB>(backend).load::<R>(*c))
    }

    pub fn first<R: Row>(self, tx: &mut Tx<'_>) -> QueryResult<Option<R>> {
        Ok(self.load::<R>(tx)?.into_iter().next())
    }

    pub fn execute(self, tx: &mut Tx<'_>) -> QueryResult<usize> {
        let backend = tx.backend();
        with_tx!(tx, |c, DB| self.statement::<DB>(backend).execute(*c))
    }

    /// The diesel statement: the text in the backend's placeholders, the values bound.
    fn statement<DB>(self, backend: Dialect) -> Statement<BoxedSqlQuery<'a, DB, SqlQuery>>
    where
        DB: Backend + HasSqlType<BigInt> + HasSqlType<Integer> + HasSqlType<Text>,
        i64: ToSql<BigInt, DB>,
        i32: ToSql<Integer, DB>,
        str: ToSql<Text, DB>,
    {
        let keep_prepared = self.prepared
            && self.args.len() <= MAX_PREPARED_BINDS
            && !(backend == Dialect::Mysql && is_locking_read(&self.text));
        let mut query = diesel::sql_query(placeholders_for(backend, self.text)).into_boxed::<DB>();
        for arg in self.args {
            query = match arg {
                Arg::I64(v) => query.bind::<BigInt, _>(v),
                Arg::OptI64(v) => query.bind::<Nullable<BigInt>, _>(v),
                Arg::I32(v) => query.bind::<Integer, _>(v),
                Arg::OptI32(v) => query.bind::<Nullable<Integer>, _>(v),
                Arg::Str(v) => query.bind::<Text, _>(v),
                Arg::OptStr(v) => query.bind::<Nullable<Text>, _>(v),
            };
        }
        Statement { query, keep_prepared }
    }
}

/// A MySQL locking read (`FOR UPDATE`, `LOCK IN SHARE MODE`) is prepared per use, never kept:
/// it can fail after its result's metadata has been sent (a deadlock or a lock-wait timeout
/// while it waits for a row), and libmariadb then leaves the kept statement believing rows are
/// still to come, so its next execute waits for them on a connection the server holds idle —
/// forever (seen: two writers of one user stuck in `mysql_stmt_execute` of the lock statement,
/// the server showing their connections asleep, InnoDB's latest deadlock naming one of them).
/// A statement closed after each use carries no such state into the retry.
fn is_locking_read(text: &str) -> bool {
    text.contains(" FOR UPDATE") || text.contains(" LOCK IN SHARE MODE")
}

/// A raw SQL statement and whether diesel may keep it prepared: `sql_query` declares itself
/// unsafe to cache because diesel cannot see whether its text is of fixed shape; `Sql::new`
/// promises it. The cache key is then the statement's text and bind types.
struct Statement<Q> {
    query: Q,
    keep_prepared: bool,
}

impl<Q> QueryId for Statement<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Statement<Q> {
    type SqlType = Q::SqlType;
}

impl<DB: Backend, Q: QueryFragment<DB>> QueryFragment<DB> for Statement<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(self.keep_prepared)
    }
}

impl<Q, Conn> RunQueryDsl<Conn> for Statement<Q> {}

/// The statement with PostgreSQL's numbered placeholders when the backend needs them. Every `?`
/// is a placeholder: no statement has a `?` inside a literal (values are always bound).
fn placeholders_for(backend: Dialect, text: String) -> String {
    if backend != Dialect::Postgres {
        return text;
    }
    let mut numbered = String::with_capacity(text.len() + text.len() / 8);
    for (n, part) in text.split('?').enumerate() {
        if n > 0 {
            numbered.push('$');
            numbered.push_str(&n.to_string());
        }
        numbered.push_str(part);
    }
    numbered
}

/// `?, ?, ?` for an `IN (…)` list of `n` values.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[cfg(test)]
mod tests {
    use super::{placeholders_for, Dialect};

    #[test]
    fn postgres_placeholders_are_numbered() {
        let text = "SELECT a FROM t WHERE b = ? AND c IN (?, ?) LIMIT ?".to_string();
        assert_eq!(
            placeholders_for(Dialect::Postgres, text.clone()),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3) LIMIT $4"
        );
        assert_eq!(placeholders_for(Dialect::Sqlite, text.clone()), text);
        assert_eq!(placeholders_for(Dialect::Postgres, "SELECT 1".into()), "SELECT 1");
    }
}
