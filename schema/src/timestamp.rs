//! `SyncTimestamp`: the protocol's timestamp (storage-api.md §4).
//!
//! Internally integer milliseconds since the epoch, always a multiple of 10 (the 10 ms tick);
//! on the wire seconds with exactly two decimals. Parsing is exact on the decimal text so that
//! every value the server emitted maps back to the same tick (§4.5).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, truncated to a multiple of 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SyncTimestamp(i64);

/// Largest value a client may send: REF rejects anything above `u64::MAX / 1000` seconds; we
/// also need it to fit an `i64` of milliseconds.
const MAX_SECONDS: i64 = i64::MAX / 1000 - 1;

impl SyncTimestamp {
    pub const ZERO: SyncTimestamp = SyncTimestamp(0);

    /// The current time truncated to the 10 ms tick.
    pub fn now() -> Self {
        Self::from_millis(unix_millis())
    }

    /// Truncates `ms` to the 10 ms tick; negative input becomes 0.
    pub fn from_millis(ms: i64) -> Self {
        let ms = ms.max(0);
        SyncTimestamp(ms - ms % 10)
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// Parses a client-sent timestamp (`newer`, `older`, `X-If-*`): a non-negative decimal
    /// number of seconds. Integer seconds and the first three fractional digits are read
    /// exactly, then truncated to the tick (REF's `1.999` → 1990 ms). An exponent form is
    /// accepted through a float, as REF parses with `f64`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let (int_part, frac_part) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        let plain_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if plain_digits(int_part) && plain_digits(frac_part) && !(int_part.is_empty() && frac_part.is_empty())
        {
            let secs: i64 = if int_part.is_empty() { 0 } else { int_part.parse().ok()? };
            if secs > MAX_SECONDS {
                return None;
            }
            let mut ms = 0i64;
            for (i, b) in frac_part.bytes().take(3).enumerate() {
                ms += i64::from(b - b'0') * [100, 10, 1][i];
            }
            return Some(Self::from_millis(secs * 1000 + ms));
        }
        let value: f64 = text.parse().ok()?;
        if !value.is_finite() || value < 0.0 || value > MAX_SECONDS as f64 {
            return None;
        }
        Some(Self::from_millis((value * 1000.0) as i64))
    }

    /// Seconds with exactly two decimals, as headers and JSON bodies carry it.
    pub fn to_seconds_string(self) -> String {
        format!("{}.{:02}", self.0 / 1000, (self.0 % 1000) / 10)
    }
}

/// The current time in whole milliseconds, not truncated to the tick (batch ids use it).
pub fn unix_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl fmt::Display for SyncTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_seconds_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_two_decimals() {
        assert_eq!(SyncTimestamp::from_millis(1_388_635_807_410).to_string(), "1388635807.41");
        assert_eq!(SyncTimestamp::ZERO.to_string(), "0.00");
        assert_eq!(SyncTimestamp::from_millis(1_500).to_string(), "1.50");
    }

    #[test]
    fn parses_emitted_values_back_exactly() {
        assert_eq!(SyncTimestamp::parse("1454709541.42").unwrap().as_millis(), 1_454_709_541_420);
        assert_eq!(SyncTimestamp::parse("1454709541.4").unwrap().as_millis(), 1_454_709_541_400);
        assert_eq!(SyncTimestamp::parse("1.999").unwrap().as_millis(), 1_990);
        assert_eq!(SyncTimestamp::parse("0").unwrap().as_millis(), 0);
        assert_eq!(SyncTimestamp::parse("12").unwrap().as_millis(), 12_000);
        assert_eq!(SyncTimestamp::parse("1e3").unwrap().as_millis(), 1_000_000);
    }

    #[test]
    fn rejects_bad_values() {
        for bad in ["", "-1", "abc", "NaN", "inf", "1.2.3", "-0.5", "99999999999999999999"] {
            assert!(SyncTimestamp::parse(bad).is_none(), "{bad} should be rejected");
        }
    }
}
