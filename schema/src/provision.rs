//! Creating a storage database that does not exist yet, for `weft node provision` (ops-model.md
//! §3.2 step 1). SQLite creates its file on first connection; MySQL and PostgreSQL need
//! `CREATE DATABASE` on the server first, before the pool (which names the database) can
//! connect and migrate.

use crate::DbError;

/// Creates the database `url` names when it is missing; an existing one is left as it is.
pub fn create_database(url: &str) -> Result<(), DbError> {
    if url.starts_with("sqlite:") {
        return Ok(());
    }
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme @ ("mysql" | "postgres" | "postgresql"), rest)) => (scheme, rest),
        _ => return Err(DbError::BadUrl(format!("{url:?} is neither sqlite:, mysql:// nor postgres://"))),
    };
    let (server, name) = match rest.rsplit_once('/') {
        Some((server, name)) => (server, name.split('?').next().unwrap_or_default()),
        None => (rest, ""),
    };
    // The name is interpolated into the statement: only the characters of an unquoted
    // identifier are accepted.
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$') {
        return Err(DbError::BadUrl(format!("{url:?} does not end in a plain database name")));
    }
    if scheme == "mysql" {
        create_mysql_database(&format!("mysql://{server}"), name)
    } else {
        // PostgreSQL has no CREATE DATABASE IF NOT EXISTS: ask pg_database first, on the
        // server's maintenance database.
        use diesel::{Connection, RunQueryDsl};
        let mut conn = diesel::pg::PgConnection::establish(&format!("{scheme}://{server}/postgres"))
            .map_err(DbError::Connect)?;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let found: Count =
            diesel::sql_query(format!("SELECT COUNT(*) AS n FROM pg_database WHERE datname = '{name}'"))
                .get_result(&mut conn)?;
        if found.n == 0 {
            diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn)?;
        }
        Ok(())
    }
}

#[cfg(feature = "mysql")]
fn create_mysql_database(server_url: &str, name: &str) -> Result<(), DbError> {
    use diesel::{Connection, RunQueryDsl};
    let mut conn = diesel::mysql::MysqlConnection::establish(server_url).map_err(DbError::Connect)?;
    diesel::sql_query(format!("CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET utf8mb4"))
        .execute(&mut conn)?;
    Ok(())
}

#[cfg(not(feature = "mysql"))]
fn create_mysql_database(_server_url: &str, _name: &str) -> Result<(), DbError> {
    Err(DbError::BadUrl("this weft was built without MySQL support; rebuild with `--features mysql`".into()))
}
