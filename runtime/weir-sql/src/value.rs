//! SQL types and values.
//!
//! TIMESTAMP is milliseconds since the Unix epoch (UTC, as KDA's ROWTIME), an INTERVAL is
//! milliseconds too (day-time intervals only: KDA's windows never use year-month ones).
//! DECIMAL is kept as a double and rounded to its scale when it is stored in a column.
//! DATE and TIME are timestamps too: a DATE the midnight (UTC) of its day, a TIME its time
//! of day on 1970-01-01 (as Java's `java.sql.Date` and `java.sql.Time` are).

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Varchar(u32),
    Char(u32),
    Tinyint,
    Smallint,
    Integer,
    Bigint,
    Real,
    Double,
    Decimal(u8, u8),
    Boolean,
    Timestamp,
    Date,
    Time,
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Varchar(n) => write!(f, "VARCHAR({n})"),
            SqlType::Char(n) => write!(f, "CHAR({n})"),
            SqlType::Tinyint => f.write_str("TINYINT"),
            SqlType::Smallint => f.write_str("SMALLINT"),
            SqlType::Integer => f.write_str("INTEGER"),
            SqlType::Bigint => f.write_str("BIGINT"),
            SqlType::Real => f.write_str("REAL"),
            SqlType::Double => f.write_str("DOUBLE"),
            SqlType::Decimal(p, s) => write!(f, "DECIMAL({p},{s})"),
            SqlType::Boolean => f.write_str("BOOLEAN"),
            SqlType::Timestamp => f.write_str("TIMESTAMP"),
            SqlType::Date => f.write_str("DATE"),
            SqlType::Time => f.write_str("TIME"),
        }
    }
}

/// Time units, for intervals, `FLOOR(x TO unit)` and `EXTRACT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Year,
}

impl Unit {
    pub fn from_keyword(word: &str) -> Option<Unit> {
        Some(match word {
            "MILLISECOND" => Unit::Millisecond,
            "SECOND" => Unit::Second,
            "MINUTE" => Unit::Minute,
            "HOUR" => Unit::Hour,
            "DAY" => Unit::Day,
            "MONTH" => Unit::Month,
            "YEAR" => Unit::Year,
            _ => return None,
        })
    }

    /// Milliseconds in one unit, for the units of fixed length.
    pub fn millis(self) -> Option<i64> {
        Some(match self {
            Unit::Millisecond => 1,
            Unit::Second => 1_000,
            Unit::Minute => 60_000,
            Unit::Hour => 3_600_000,
            Unit::Day => 86_400_000,
            Unit::Month | Unit::Year => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    /// Milliseconds since the epoch.
    Timestamp(i64),
    /// Milliseconds.
    Interval(i64),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Bool(_) => "BOOLEAN",
            Value::Int(_) => "INTEGER",
            Value::Double(_) => "DOUBLE",
            Value::Str(_) => "VARCHAR",
            Value::Timestamp(_) => "TIMESTAMP",
            Value::Interval(_) => "INTERVAL",
        }
    }

    /// The value as a JSON value, as KDA wrote output rows.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Double(d) => serde_json::Number::from_f64(*d)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Str(s) => s.clone().into(),
            Value::Timestamp(ms) => format_timestamp(*ms).into(),
            Value::Interval(ms) => format_interval(*ms).into(),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm`, as KDA printed timestamps.
pub fn format_timestamp(ms: i64) -> String {
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => t.naive_utc().format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => ms.to_string(),
    }
}

fn format_interval(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    format!(
        "{sign}{} {:02}:{:02}:{:02}.{:03}",
        ms / 86_400_000,
        ms / 3_600_000 % 24,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Parses a timestamp as KDA took them: `YYYY-MM-DD HH:MM:SS[.fff]`, with `T` or a space, an
/// optional `Z`, or a date alone.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    if let Some(ms) = parse_timestamp_fast(text.as_bytes()) {
        return Some(ms);
    }
    let t = text.trim();
    let t = t.strip_suffix('Z').unwrap_or(t);
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, format) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    for format in ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, format) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_millis())
}

/// Parses a TIME: `HH:MM:SS[.fff]` or `HH:MM`, the time of day on 1970-01-01; or a timestamp,
/// of which it takes the time of day. Milliseconds since the epoch.
pub fn parse_time(text: &str) -> Option<i64> {
    let t = text.trim();
    for format in ["%H:%M:%S%.f", "%H:%M"] {
        if let Ok(time) = NaiveTime::parse_from_str(t, format) {
            let ms = (time.nanosecond() / 1_000_000).min(999);
            return Some(i64::from(time.num_seconds_from_midnight()) * 1000 + i64::from(ms));
        }
    }
    parse_timestamp(t).map(|ms| ms.rem_euclid(86_400_000))
}

/// `YYYY-MM-DD HH:MM:SS[.f{1,9}]` (or with `T`), the form nearly every record has, read
/// without chrono's format interpreter, which took more time than the rest of a row's mapping.
/// `None` for anything else (the general parser then decides).
fn parse_timestamp_fast(b: &[u8]) -> Option<i64> {
    if b.len() < 19 || !(b[10] == b' ' || b[10] == b'T') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut ms = 0;
    match &b[19..] {
        [] => {}
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            let digits = &frac[..frac.len().min(3)];
            let v = digits.iter().try_fold(0i64, |acc, c| {
                c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
            })?;
            if !frac[3.min(frac.len())..].iter().all(u8::is_ascii_digit) {
                return None;
            }
            ms = v * 10i64.pow(3 - digits.len() as u32);
        }
        _ => return None,
    }
    if !(1..=12).contains(&mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32)?;
    let days = i64::from(date.num_days_from_ce()) - 719_163;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_timestamp_reader_agrees_with_chrono() {
        for t in [
            "2018-02-23 19:11:26.086",
            "2018-02-23T19:11:26",
            "1969-12-31 23:59:59.9",
            "2024-02-29 00:00:00.123456",
            "0001-01-01 00:00:00",
        ] {
            let slow = NaiveDateTime::parse_from_str(&t.replace('T', " "), "%Y-%m-%d %H:%M:%S%.f")
                .unwrap()
                .and_utc()
                .timestamp_millis();
            assert_eq!(parse_timestamp_fast(t.as_bytes()), Some(slow), "{t}");
        }
        for bad in [
            "2023-02-29 00:00:00",
            "2018-02-23 24:00:00",
            "2018-02-23 19:11:26.",
            "2018-02-23 19:11:26Z",
        ] {
            assert_eq!(parse_timestamp_fast(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_read_and_print_as_kda_did() {
        let ms = parse_timestamp("2018-02-23 19:11:26.086").unwrap();
        assert_eq!(format_timestamp(ms), "2018-02-23 19:11:26.086");
        assert_eq!(parse_timestamp("2018-02-23T19:11:26Z"), Some(ms - 86));
        assert_eq!(
            format_timestamp(parse_timestamp("2018-02-23").unwrap()),
            "2018-02-23 00:00:00.000"
        );
        assert_eq!(parse_timestamp("23/02/2018"), None);
        assert_eq!(parse_time("10:11:12.5"), Some(36_672_500));
        assert_eq!(parse_time(" 00:01 "), Some(60_000));
        assert_eq!(parse_time("2018-02-23 00:00:01.250"), Some(1_250));
        assert_eq!(parse_time("24:00:00"), None);
        assert_eq!(parse_time("noon"), None);
        assert_eq!(format_interval(61_500), "0 00:01:01.500");
    }
}
