//! `Sql`: a statement text plus its bind values, run on whichever backend a `Tx` holds. The
//! statements are the same text on every backend, written with `?` placeholders (SQLite's and
//! MySQL's); diesel numbers them `$1, $2, …` for PostgreSQL as it writes the statement, so
//! dispatching here once keeps every query written once.
//!
//! A statement of fixed shape stays prepared on its connection (diesel's statement cache, keyed
//! by the text): run again, it skips the parse and, on MySQL and PostgreSQL, the round trip that
//! prepares it (and on MySQL the one that closes it). Statements whose text grows with the
//! input (`IN` lists, multi-row `VALUES`) are marked `varying` and prepared per use, so that
//! each connection keeps a bounded set: MySQL counts every prepared statement of every
//! connection against `max_prepared_stmt_count`. On MySQL only plain reads are kept
//! (`Sql::statement` says why).

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Integer, Nullable, Text, Untyped};
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
        let statement = self.statement(tx.backend(), Run::Read);
        with_tx!(tx, |c, DB| statement.load::<R>(*c))
    }

    pub fn first<R: Row>(self, tx: &mut Tx<'_>) -> QueryResult<Option<R>> {
        Ok(self.load::<R>(tx)?.into_iter().next())
    }

    pub fn execute(self, tx: &mut Tx<'_>) -> QueryResult<usize> {
        let statement = self.statement(tx.backend(), Run::Write);
        with_tx!(tx, |c, DB| statement.execute(*c))
    }

    /// The statement as diesel runs it, with the decision whether it stays prepared. On MySQL
    /// only plain reads stay: its writes are prepared per use, as they have always run there
    /// (kept, they measured no faster on MariaDB, whose writes wait for the disk, not for
    /// parsing: loadtests/BENCHMARKS.md, "Writes under concurrency, third part"), and so are its
    /// locking reads (`is_locking_read`).
    fn statement(self, backend: Dialect, run: Run) -> Statement<'a> {
        let per_use_on_mysql = run == Run::Write || is_locking_read(&self.text);
        let keep_prepared = self.prepared
            && self.args.len() <= MAX_PREPARED_BINDS
            && !(backend == Dialect::Mysql && per_use_on_mysql);
        Statement { text: self.text, args: self.args, keep_prepared }
    }
}

/// How a statement runs: `load` reads rows, `execute` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Read,
    Write,
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

/// A raw SQL statement as diesel sees it: the text, each `?` a bind in order, and whether
/// diesel may keep it prepared (the cache key is then the text and the bind types). Not
/// `sql_query`: it marks itself unsafe to cache, and diesel runs `execute` on a *reference* to
/// the statement, whose `is_safe_to_cache_prepared` walks the tree down to that mark instead of
/// asking a wrapper's override — so every write was parsed again on every use (issue 26). Each
/// `?` becomes the backend's placeholder as diesel writes it (`$1, $2, …` on PostgreSQL). No
/// statement has a `?` inside a literal: values are always bound.
struct Statement<'a> {
    text: String,
    args: Vec<Arg<'a>>,
    keep_prepared: bool,
}

impl QueryId for Statement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement<'_> {
    type SqlType = Untyped;
}

impl<DB> QueryFragment<DB> for Statement<'_>
where
    DB: Backend + HasSqlType<BigInt> + HasSqlType<Integer> + HasSqlType<Text>,
    i64: ToSql<BigInt, DB>,
    i32: ToSql<Integer, DB>,
    str: ToSql<Text, DB>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.keep_prepared {
            pass.unsafe_to_cache_prepared();
        }
        let mut args = self.args.iter();
        for (n, part) in self.text.split('?').enumerate() {
            if n > 0 {
                match args.next() {
                    Some(Arg::I64(v)) => pass.push_bind_param::<BigInt, _>(v)?,
                    Some(Arg::OptI64(v)) => pass.push_bind_param::<Nullable<BigInt>, _>(v)?,
                    Some(Arg::I32(v)) => pass.push_bind_param::<Integer, _>(v)?,
                    Some(Arg::OptI32(v)) => pass.push_bind_param::<Nullable<Integer>, _>(v)?,
                    Some(Arg::Str(v)) => pass.push_bind_param::<Text, str>(v)?,
                    Some(Arg::OptStr(v)) => pass.push_bind_param::<Nullable<Text>, _>(v)?,
                    None => return Err(mismatch()),
                }
            }
            pass.push_sql(part);
        }
        match args.next() {
            Some(_) => Err(mismatch()),
            None => Ok(()),
        }
    }
}

impl<Conn> RunQueryDsl<Conn> for Statement<'_> {}

/// A statement whose `?`s and values differ in number: a bug in the query that built it.
fn mismatch() -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError("placeholders and bind values differ in number".into())
}

/// `?, ?, ?` for an `IN (…)` list of `n` values.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[cfg(test)]
mod tests {
    use diesel::pg::Pg;
    use diesel::query_builder::{QueryBuilder, QueryFragment};
    use diesel::sqlite::Sqlite;

    use super::{Arg, Dialect, Run, Sql};

    fn sql_on<DB>(statement: &impl QueryFragment<DB>, backend: DB) -> String
    where
        DB: diesel::backend::Backend,
        DB::QueryBuilder: Default,
    {
        let mut builder = DB::QueryBuilder::default();
        statement.to_sql(&mut builder, &backend).expect("the statement renders");
        builder.finish()
    }

    #[test]
    fn postgres_placeholders_are_numbered() {
        let text = "SELECT a FROM t WHERE b = ? AND c IN (?, ?) LIMIT ?";
        let args = [Arg::I64(1), Arg::Str("x"), Arg::OptStr(None), Arg::I32(3)];
        let pg = Sql::new(text).args(args).statement(Dialect::Postgres, Run::Read);
        assert_eq!(sql_on(&pg, Pg), "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3) LIMIT $4");
        let sqlite = Sql::new(text).args(args).statement(Dialect::Sqlite, Run::Read);
        assert_eq!(sql_on(&sqlite, Sqlite), text);
    }

    /// The decision survives the reference diesel runs `execute` on (the bug `Statement` fixes:
    /// every write was parsed again on every use).
    #[test]
    fn the_caching_decision_reaches_diesel_through_a_reference() {
        let kept = Sql::new("UPDATE t SET a = ? WHERE b = ?").args([Arg::I64(1), Arg::I64(2)]);
        let kept = kept.statement(Dialect::Postgres, Run::Write);
        assert!(QueryFragment::<Pg>::is_safe_to_cache_prepared(&&kept, &Pg).unwrap());
        let varying = Sql::varying("DELETE FROM t WHERE b IN (?)")
            .arg(Arg::I64(1))
            .statement(Dialect::Postgres, Run::Write);
        assert!(!QueryFragment::<Pg>::is_safe_to_cache_prepared(&&varying, &Pg).unwrap());
    }

    #[test]
    fn mysql_keeps_only_plain_reads() {
        let lock = Sql::new("SELECT a FROM t WHERE b = ? FOR UPDATE").arg(Arg::I64(1));
        assert!(!lock.statement(Dialect::Mysql, Run::Read).keep_prepared);
        let lock = Sql::new("SELECT a FROM t WHERE b = ? FOR UPDATE").arg(Arg::I64(1));
        assert!(lock.statement(Dialect::Postgres, Run::Read).keep_prepared);
        let read = Sql::new("SELECT a FROM t WHERE b = ?").arg(Arg::I64(1));
        assert!(read.statement(Dialect::Mysql, Run::Read).keep_prepared);
        let write = Sql::new("UPDATE t SET a = ? WHERE b = ?").args([Arg::I64(1), Arg::I64(2)]);
        assert!(!write.statement(Dialect::Mysql, Run::Write).keep_prepared);
    }

    #[test]
    fn placeholders_and_values_must_agree() {
        let short = Sql::new("SELECT a FROM t WHERE b = ? AND c = ?")
            .arg(Arg::I64(1))
            .statement(Dialect::Sqlite, Run::Read);
        assert!(short.to_sql(&mut Default::default(), &Sqlite).is_err());
        let long = Sql::new("SELECT a FROM t").arg(Arg::I64(1)).statement(Dialect::Sqlite, Run::Read);
        assert!(long.to_sql(&mut Default::default(), &Sqlite).is_err());
    }
}
