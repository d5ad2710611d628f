//! Creating a storage database that does not exist yet, for `weft node provision` (ops-model.md
//! §3.2 step 1). SQLite creates its file on first connection; MySQL needs `CREATE DATABASE` on
//! the server first, before the pool (which names the database) can connect and migrate.

use crate::DbError;

/// Creates the database `url` names when it is missing; an existing one is left as it is.
pub fn create_database(url: &str) -> Result<(), DbError> {
    if url.starts_with("sqlite:") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("mysql://") else {
        return Err(DbError::BadUrl(format!("{url:?} is neither sqlite: nor mysql://")));
    };
    let (server, name) = match rest.rsplit_once('/') {
        Some((server, name)) => (server, name.split('?').next().unwrap_or_default()),
        None => (rest, ""),
    };
    // The name is interpolated into the statement: only the characters of an unquoted
    // MySQL identifier are accepted.
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$') {
        return Err(DbError::BadUrl(format!("{url:?} does not end in a plain database name")));
    }
    create_mysql_database(&format!("mysql://{server}"), name)
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
