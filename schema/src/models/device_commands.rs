//! Row type of `account_device_commands` (issue 25, migration `*_account_device_commands`): a
//! device command waiting for its target device. Times are integer milliseconds.

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct DeviceCommandRow {
    /// The target device.
    #[diesel(sql_type = Text)]
    pub device_id: String,
    /// FxA's `index`: increasing per target device, never reused.
    #[diesel(sql_type = BigInt)]
    pub idx: i64,
    #[diesel(sql_type = Text)]
    pub uid: String,
    #[diesel(sql_type = Text)]
    pub command: String,
    /// The JSON object the sender sent, encrypted by it for the target; never read.
    #[diesel(sql_type = Text)]
    pub payload: String,
    /// The sending device's id; empty when its session had registered no device.
    #[diesel(sql_type = Text)]
    pub sender: String,
    #[diesel(sql_type = BigInt)]
    pub created_at: i64,
    #[diesel(sql_type = BigInt)]
    pub expires_at: i64,
}
