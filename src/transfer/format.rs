//! The export file format, version 1 (documented in docs/export-format.md): JSON Lines, one
//! record per line, UTF-8. A header, then (with `--tokenserver`) the tokenserver's `node` and
//! `account` records, then per user a `user` record, its `collection` records
//! and optional `tombstone`, its `bso` records (grouped by collection, in id order) and a
//! `user_end`; an `end` record closes a complete file. Records carry the stored values as they
//! are: still-encrypted payloads, ids, integer-millisecond timestamps, sortindex and the
//! absolute expiry (`ttl`), so an import reproduces them exactly.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::TransferError;

pub const FORMAT: &str = "weft-export";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    Header {
        format: String,
        version: u32,
        /// Milliseconds since the epoch when the export started.
        exported_at: i64,
        /// `sqlite`, `mysql`, `postgres`, `reference-mysql` or `reference-postgres`.
        source: String,
    },
    /// A tokenserver node (`nodes` row of `sync-1.5`), identified by its URL.
    Node { node: String, available: i32, current_load: i32, capacity: i32, downed: i32, backoff: i32 },
    /// A tokenserver `users` row; `node` is its node's URL (`None`: no node).
    Account {
        uid: i64,
        email: String,
        generation: i64,
        client_state: String,
        created_at: i64,
        replaced_at: Option<i64>,
        keys_changed_at: Option<i64>,
        node: Option<String>,
    },
    /// A user's records follow, up to the matching `user_end`.
    User { uid: i64 },
    /// One of the user's collections and its last-modified (ms).
    Collection { name: String, modified: i64 },
    /// The time (ms) of the user's last collection deletion, which the storage timestamp
    /// includes.
    Tombstone { modified: i64 },
    Bso {
        collection: String,
        id: String,
        modified: i64,
        sortindex: Option<i32>,
        /// Absolute expiry, ms.
        ttl: i64,
        payload: String,
    },
    /// The user is complete: `bsos` records were written for them.
    UserEnd { uid: i64, bsos: u64 },
    /// The file is complete.
    End { users: u64, bsos: u64 },
}

/// Where records go: a file, or (for `--from-reference`) straight into an import.
pub trait Sink {
    fn put(&mut self, record: Record) -> Result<(), TransferError>;
}

/// JSON Lines to a writer.
pub struct JsonLines<W: Write> {
    out: W,
}

impl<W: Write> JsonLines<W> {
    pub fn new(out: W) -> Self {
        JsonLines { out }
    }

    pub fn finish(mut self) -> Result<W, TransferError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Sink for JsonLines<W> {
    fn put(&mut self, record: Record) -> Result<(), TransferError> {
        serde_json::to_writer(&mut self.out, &record).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }
}

impl Sink for std::sync::mpsc::SyncSender<Record> {
    fn put(&mut self, record: Record) -> Result<(), TransferError> {
        self.send(record).map_err(|_| TransferError::Aborted)
    }
}

/// Reads records line by line (one line in memory at a time), counting bytes for progress.
pub struct RecordReader<R: BufRead> {
    input: R,
    line: String,
    line_number: u64,
    pub bytes_read: u64,
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(input: R) -> Self {
        RecordReader { input, line: String::new(), line_number: 0, bytes_read: 0 }
    }
}

impl<R: BufRead> Iterator for RecordReader<R> {
    type Item = Result<Record, TransferError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.line.clear();
        match self.input.read_line(&mut self.line) {
            Ok(0) => None,
            Ok(n) => {
                self.line_number += 1;
                self.bytes_read += n as u64;
                Some(
                    serde_json::from_str(self.line.trim_end_matches(['\n', '\r'])).map_err(|e| {
                        TransferError::Format { line: self.line_number, message: e.to_string() }
                    }),
                )
            }
            Err(e) => Some(Err(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_as_single_lines() {
        let records = vec![
            Record::Header {
                format: FORMAT.into(),
                version: VERSION,
                exported_at: 1,
                source: "sqlite".into(),
            },
            Record::Node {
                node: "https://sync-1.example.com".into(),
                available: 9,
                current_load: 1,
                capacity: 100,
                downed: 0,
                backoff: 0,
            },
            Record::Account {
                uid: 7,
                email: "abc@api.accounts.firefox.com".into(),
                generation: 1234,
                client_state: "aaaa".into(),
                created_at: 1_700_000_000_000,
                replaced_at: None,
                keys_changed_at: Some(1234),
                node: Some("https://sync-1.example.com".into()),
            },
            Record::User { uid: 7 },
            Record::Collection { name: "bookmarks".into(), modified: 1_700_000_000_010 },
            Record::Tombstone { modified: 1_700_000_000_000 },
            Record::Bso {
                collection: "bookmarks".into(),
                id: "ab\"c\n".into(),
                modified: 1_700_000_000_010,
                sortindex: None,
                ttl: 2_100_000_000_000,
                payload: "{\"ciphertext\":\"ü✓\"}".into(),
            },
            Record::UserEnd { uid: 7, bsos: 1 },
            Record::End { users: 1, bsos: 1 },
        ];
        let mut sink = JsonLines::new(Vec::new());
        for r in &records {
            sink.put(r.clone()).expect("write");
        }
        let bytes = sink.finish().expect("flush");
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), records.len());
        let back: Vec<Record> =
            RecordReader::new(&bytes[..]).collect::<Result<_, _>>().expect("every line parses");
        assert_eq!(back, records);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let input = b"{\"type\":\"user\",\"uid\":1}\n{\"type\":\"nope\"}\n";
        let results: Vec<_> = RecordReader::new(&input[..]).collect();
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(TransferError::Format { line: 2, .. })));
    }
}
