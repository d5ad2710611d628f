//! Recognising a database Weft cannot serve in place before anything is migrated: one that
//! holds Mozilla syncstorage-rs's PostgreSQL storage tables (reference-databases.md §3: `bsos`,
//! `batches`, and `user_collections` / `collections` with other columns than Weft's). Weft's
//! migrations would meet `collections` with other columns and stop with an error about a
//! column; the operator is told instead what was found and what to run (`weft import
//! --from-reference` into a new database). The reference's MySQL tables, and its tokenserver
//! tables on either backend, are Weft's own layout and are served as they are.

use diesel::QueryResult;

use crate::pool::{Backend, Tx};
use crate::queries::sql::{Arg, Sql};
use crate::DbError;

/// Table and column names only the reference's PostgreSQL storage schema has.
const REFERENCE_ONLY: [(&str, Option<&str>); 4] = [
    ("bsos", None),
    ("batch_bsos", None),
    ("user_collections", Some("user_id")),
    ("collections", Some("collection_id")),
];

#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
struct Column {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
}

/// `Err(DbError::ForeignLayout)` naming what was found when the database holds the reference's
/// PostgreSQL storage tables.
pub fn check_servable(tx: &mut Tx<'_>) -> Result<(), DbError> {
    let found = reference_tables(tx)?;
    if found.is_empty() {
        return Ok(());
    }
    Err(DbError::ForeignLayout(found.join(", ")))
}

fn reference_tables(tx: &mut Tx<'_>) -> QueryResult<Vec<String>> {
    let (schema, text) = match tx.backend() {
        Backend::Sqlite => return Ok(Vec::new()),
        Backend::Postgres => ("current_schema()", "TEXT"),
        Backend::Mysql => ("DATABASE()", "CHAR"),
    };
    let names: Vec<Arg<'_>> = REFERENCE_ONLY.iter().map(|(table, _)| Arg::Str(table)).collect();
    let columns: Vec<Column> = Sql::new(format!(
        "SELECT CAST(table_name AS {text}) AS table_name, CAST(column_name AS {text}) AS column_name \
         FROM information_schema.columns WHERE table_schema = {schema} AND table_name IN (?, ?, ?, ?)"
    ))
    .args(names)
    .load(tx)?;
    let mut found = Vec::new();
    for (table, column) in REFERENCE_ONLY {
        let hit =
            columns.iter().any(|c| c.table_name == table && column.is_none_or(|name| c.column_name == name));
        if hit {
            found.push(match column {
                Some(name) => format!("{table}.{name}"),
                None => format!("table {table}"),
            });
        }
    }
    Ok(found)
}

/// Whether the database holds the tokenserver's tables (`services`, `nodes`, `users`), as a
/// reference database that keeps storage and tokenserver in one database does.
pub fn holds_tokenserver(tx: &mut Tx<'_>) -> QueryResult<bool> {
    let schema = match tx.backend() {
        Backend::Sqlite => {
            return Ok(Sql::new(
                "SELECT COUNT(*) AS value FROM sqlite_master \
                 WHERE type = 'table' AND name IN ('services', 'nodes', 'users')",
            )
            .first::<crate::models::Single>(tx)?
            .is_some_and(|r| r.value == 3))
        }
        Backend::Postgres => "current_schema()",
        Backend::Mysql => "DATABASE()",
    };
    let text = format!(
        "SELECT COUNT(*) AS value FROM information_schema.tables \
         WHERE table_schema = {schema} AND table_name IN ('services', 'nodes', 'users')"
    );
    Ok(Sql::new(text).first::<crate::models::Single>(tx)?.is_some_and(|r| r.value == 3))
}
