//! The one retry policy for database transactions, used by the storage engine (and so by the
//! shard actors and the load generator's raw mode) and by the tokenserver database actor: a
//! transaction that failed on a deadlock or a lost connection is run again as a whole, a few
//! times, after a short growing pause.

use std::time::Duration;

use crate::DbError;

/// How many times a transaction runs at most before its error is reported.
pub const ATTEMPTS: u32 = 5;

/// An error that may carry a database failure.
pub trait DbFailure {
    fn db_error(&self) -> Option<&DbError>;
}

impl DbFailure for DbError {
    fn db_error(&self) -> Option<&DbError> {
        Some(self)
    }
}

/// Runs `attempt` until it succeeds, fails with an error that is not retryable
/// (`DbError::is_retryable`), or has run `ATTEMPTS` times. `on_retry` is told of each failure
/// that is retried (attempt number from 1, the error), to log and count it.
pub fn with_retries<T, E: DbFailure>(
    mut on_retry: impl FnMut(u32, &DbError),
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt() {
            Err(err) if tries < ATTEMPTS => match err.db_error().filter(|db| db.is_retryable()) {
                Some(db) => {
                    on_retry(tries, db);
                    // A short, growing pause lets the transaction that won finish first, or the
                    // database come back.
                    std::thread::sleep(Duration::from_millis(5 * u64::from(tries)));
                }
                None => return Err(err),
            },
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    fn deadlock() -> DbError {
        DbError::from(DieselError::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            Box::new("x".to_string()),
        ))
    }

    #[test]
    fn retries_only_retryable_failures_and_gives_up() {
        let mut runs = 0;
        let mut retried = 0;
        let result: Result<(), DbError> = with_retries(
            |_, _| retried += 1,
            || {
                runs += 1;
                Err(deadlock())
            },
        );
        assert!(result.is_err());
        assert_eq!((runs, retried), (ATTEMPTS, ATTEMPTS - 1));

        let mut runs = 0;
        let result: Result<u8, DbError> = with_retries(
            |_, _| {},
            || {
                runs += 1;
                if runs < 3 {
                    Err(deadlock())
                } else {
                    Ok(7)
                }
            },
        );
        assert_eq!((result.ok(), runs), (Some(7), 3));

        let mut runs = 0;
        let result: Result<(), DbError> = with_retries(
            |_, _| {},
            || {
                runs += 1;
                Err(DbError::from(DieselError::NotFound))
            },
        );
        assert!(result.is_err());
        assert_eq!(runs, 1);
    }
}
