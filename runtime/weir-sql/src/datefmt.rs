//! Java `SimpleDateFormat` patterns, as KDA's TIMESTAMP_TO_CHAR and CHAR_TO_TIMESTAMP took
//! them (SQL Reference: sql-reference-char-to-timestamp, and its table of templates,
//! sql-reference-template-strings-create-output-timestamps), and DATE_TO_CHAR, TIME_TO_CHAR,
//! CHAR_TO_DATE and CHAR_TO_TIME with them (over the midnight of a DATE, and a TIME's time on
//! 1970-01-01: see [`crate::eval::as_date`] and [`crate::eval::as_time`]).
//!
//! A pattern is compiled once into its fields and literal text (`'T'` quoted, `''` a quote).
//! Formatting writes each field of the timestamp, in UTC. Parsing reads the fields the way
//! SimpleDateFormat does:
//! - whitespace before a field is skipped; literal text must be there exactly;
//! - a number takes all the digits there are, unless another number field follows with
//!   nothing in between (`yyyyMMdd`): then it takes as many digits as it has letters;
//! - text after the end of the pattern is ignored (`'yyyy-mm'` reads `'2011-02-08 07:23:19'`);
//! - a field the pattern lacks is that of 1970-01-01 00:00:00.000;
//! - `yy` with two digits is a year from 1969 to 2068; `y` and `yyyy` take the year as
//!   written (`'10'` with `y` is the year 10, as the reference's table has it);
//! - `MMM`/`MMMM` take a month's full or short English name, `EEE` a day's, in any case;
//! - a value out of its field's range (month 13, 30 February) does not parse.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};

/// A compiled date format, with the pattern it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct DateFormat {
    pub text: String,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Text(String),
    /// A pattern letter and how many times it is repeated.
    Field(char, usize),
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// The pattern letters Weir takes: era, year, month, day in month and in year, day name and
/// number, AM/PM, the four hour fields, minute, second, millisecond and the time zones.
const LETTERS: &str = "GyYMLdDEuaHkKhmsSzZX";

impl DateFormat {
    pub fn new(pattern: &str) -> Result<DateFormat, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut items = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                if chars.get(i + 1) == Some(&'\'') {
                    text.push('\'');
                    i += 2;
                    continue;
                }
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!(
                                "the date format '{pattern}' has an unterminated quote"
                            ))
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&x) => {
                            text.push(x);
                            i += 1;
                        }
                    }
                }
                continue;
            }
            if c.is_ascii_alphabetic() {
                let mut n = 1;
                while chars.get(i + n) == Some(&c) {
                    n += 1;
                }
                if !LETTERS.contains(c) {
                    let why = if "wWF".contains(c) {
                        "a week field, which Weir does not support"
                    } else {
                        "not a pattern letter (quote text, as in 'T')"
                    };
                    return Err(format!("the date format '{pattern}' has `{c}`: {why}"));
                }
                if !text.is_empty() {
                    items.push(Item::Text(std::mem::take(&mut text)));
                }
                items.push(Item::Field(c, n));
                i += n;
                continue;
            }
            text.push(c);
            i += 1;
        }
        if !text.is_empty() {
            items.push(Item::Text(text));
        }
        Ok(DateFormat {
            text: pattern.to_string(),
            items,
        })
    }

    /// The timestamp (milliseconds since the epoch) as text, in UTC.
    pub fn format(&self, ms: i64) -> Result<String, String> {
        let t = DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| format!("timestamp {ms} is out of range"))?
            .naive_utc();
        let mut out = String::with_capacity(self.text.len() + 8);
        for item in &self.items {
            match item {
                Item::Text(s) => out.push_str(s),
                Item::Field(c, n) => write_field(&mut out, *c, *n, &t, ms),
            }
        }
        Ok(out)
    }

    /// Reads a timestamp (milliseconds since the epoch, UTC unless the text has a zone).
    pub fn parse(&self, text: &str) -> Result<i64, String> {
        let bad = || format!("'{text}' does not match the date format '{}'", self.text);
        let s: Vec<char> = text.chars().collect();
        let mut at = 0;
        let mut f = Fields::default();
        for (k, item) in self.items.iter().enumerate() {
            match item {
                Item::Text(t) => {
                    for c in t.chars() {
                        if s.get(at) != Some(&c) {
                            return Err(bad());
                        }
                        at += 1;
                    }
                }
                Item::Field(c, n) => {
                    while s.get(at).is_some_and(|x| x.is_whitespace()) {
                        at += 1;
                    }
                    if is_numeric(*c, *n) {
                        let abutting = matches!(
                            self.items.get(k + 1),
                            Some(Item::Field(d, m)) if is_numeric(*d, *m)
                        );
                        // At most 18 digits: any more would not fit, and cannot be valid.
                        let limit = if abutting { *n } else { 18 };
                        let begin = at;
                        while at < s.len() && at - begin < limit && s[at].is_ascii_digit() {
                            at += 1;
                        }
                        if at == begin {
                            return Err(bad());
                        }
                        let v = s[begin..at].iter().fold(0i64, |acc, d| {
                            acc * 10 + i64::from(d.to_digit(10).unwrap_or(0))
                        });
                        f.set_number(*c, *n, v, at - begin).ok_or_else(bad)?;
                    } else {
                        at = f.set_text(*c, &s, at).ok_or_else(bad)?;
                    }
                }
            }
        }
        let year = f.year.unwrap_or(1970);
        let year = if f.bc { 1 - year } else { year };
        let year = i32::try_from(year).map_err(|_| bad())?;
        let date = match (f.day_of_year, f.month, f.day) {
            (Some(d), None, None) => NaiveDate::from_yo_opt(year, d),
            _ => NaiveDate::from_ymd_opt(year, f.month.unwrap_or(1), f.day.unwrap_or(1)),
        }
        .ok_or_else(|| format!("'{text}' is not a valid date (date format '{}')", self.text))?;
        let hour = match f.hour {
            Some(h) => h,
            None => f.hour12.unwrap_or(0) + if f.pm { 12 } else { 0 },
        };
        let t = date
            .and_hms_milli_opt(hour, f.minute, f.second, f.milli)
            .ok_or_else(bad)?;
        t.and_utc()
            .timestamp_millis()
            .checked_sub(f.offset_minutes * 60_000)
            .ok_or_else(bad)
    }
}

/// Whether a field is read and written as a number (a month with three letters or more is a
/// name).
fn is_numeric(c: char, n: usize) -> bool {
    match c {
        'M' | 'L' => n <= 2,
        'y' | 'Y' | 'd' | 'D' | 'u' | 'H' | 'k' | 'K' | 'h' | 'm' | 's' | 'S' => true,
        _ => false,
    }
}

fn number(out: &mut String, v: i64, width: usize) {
    use std::fmt::Write;
    let _ = write!(out, "{:0width$}", v, width = width);
}

fn write_field(out: &mut String, c: char, n: usize, t: &NaiveDateTime, ms: i64) {
    let year = i64::from(t.year());
    let hour = t.hour();
    match c {
        'G' => out.push_str(if year > 0 { "AD" } else { "BC" }),
        'y' | 'Y' => {
            // The year of the era, as Java writes it; `yy` is its last two digits.
            let y = if year > 0 { year } else { 1 - year };
            if n == 2 {
                number(out, y % 100, 2);
            } else {
                number(out, y, n);
            }
        }
        'M' | 'L' => {
            let name = MONTHS[t.month0() as usize];
            match n {
                1 | 2 => number(out, i64::from(t.month()), n),
                3 => out.push_str(&name[..3]),
                _ => out.push_str(name),
            }
        }
        'd' => number(out, i64::from(t.day()), n),
        'D' => number(out, i64::from(t.ordinal()), n),
        'E' => {
            let name = DAYS[t.weekday().num_days_from_monday() as usize];
            out.push_str(if n >= 4 { name } else { &name[..3] });
        }
        'u' => number(out, i64::from(t.weekday().number_from_monday()), n),
        'a' => out.push_str(if hour < 12 { "AM" } else { "PM" }),
        'H' => number(out, i64::from(hour), n),
        'k' => number(out, i64::from(if hour == 0 { 24 } else { hour }), n),
        'K' => number(out, i64::from(hour % 12), n),
        'h' => number(
            out,
            i64::from(if hour.is_multiple_of(12) {
                12
            } else {
                hour % 12
            }),
            n,
        ),
        'm' => number(out, i64::from(t.minute()), n),
        's' => number(out, i64::from(t.second()), n),
        'S' => number(out, ms.rem_euclid(1000), n),
        'z' => out.push_str(if n >= 4 {
            "Coordinated Universal Time"
        } else {
            "UTC"
        }),
        'Z' => out.push_str("+0000"),
        'X' => out.push('Z'),
        _ => {}
    }
}

/// The fields read from a text so far.
#[derive(Default)]
struct Fields {
    year: Option<i64>,
    bc: bool,
    month: Option<u32>,
    day: Option<u32>,
    day_of_year: Option<u32>,
    /// `H` or `k`: the hour of the day.
    hour: Option<u32>,
    /// `h` or `K`: the hour before noon or after (12 read as 0, as Java does).
    hour12: Option<u32>,
    pm: bool,
    minute: u32,
    second: u32,
    milli: u32,
    /// Minutes east of UTC.
    offset_minutes: i64,
}

impl Fields {
    /// Sets a number field (`digits` long); `None` if it is out of range.
    fn set_number(&mut self, c: char, n: usize, v: i64, digits: usize) -> Option<()> {
        let within = |lo: i64, hi: i64| (lo..=hi).contains(&v).then_some(v as u32);
        match c {
            'y' | 'Y' => {
                self.year = Some(if n == 2 && digits == 2 {
                    if v < 69 {
                        2000 + v
                    } else {
                        1900 + v
                    }
                } else {
                    v
                });
            }
            'M' | 'L' => self.month = Some(within(1, 12)?),
            'd' => self.day = Some(within(1, 31)?),
            'D' => self.day_of_year = Some(within(1, 366)?),
            'u' => {
                within(1, 7)?;
            }
            'H' => self.hour = Some(within(0, 23)?),
            'k' => self.hour = Some(within(1, 24)? % 24),
            'K' => self.hour12 = Some(within(0, 11)?),
            // Java takes 13 to 23 too (leniently, as the hour of the day) and 12 as 0.
            'h' => {
                self.hour12 = Some(match within(0, 23)? {
                    12 => 0,
                    h => h,
                })
            }
            'm' => self.minute = within(0, 59)?,
            's' => self.second = within(0, 59)?,
            'S' => self.milli = within(0, 999)?,
            _ => return None,
        }
        Some(())
    }

    /// Reads a text field at `s[at]`; where it ends, or `None` if it is not there.
    fn set_text(&mut self, c: char, s: &[char], at: usize) -> Option<usize> {
        match c {
            'M' | 'L' => {
                let (i, len) = name_at(s, at, &MONTHS)?;
                self.month = Some(i as u32 + 1);
                Some(at + len)
            }
            'E' => name_at(s, at, &DAYS).map(|(_, len)| at + len),
            'a' => {
                let (i, len) = name_at(s, at, &["AM", "PM"])?;
                self.pm = i == 1;
                Some(at + len)
            }
            'G' => {
                let (i, len) = name_at(s, at, &["BC", "AD"])?;
                self.bc = i == 0;
                Some(at + len)
            }
            'z' | 'Z' | 'X' => {
                let (offset, len) = zone_at(s, at)?;
                self.offset_minutes = offset;
                Some(at + len)
            }
            _ => None,
        }
    }
}

/// The name (in full, or its first three letters) that `s` has at `at`, in any case: which
/// one, and how many characters it takes. The longest wins, as in SimpleDateFormat.
fn name_at(s: &[char], at: usize, names: &[&str]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for (i, name) in names.iter().enumerate() {
        let short: &str = if name.len() > 3 { &name[..3] } else { name };
        for form in [*name, short] {
            let len = form.chars().count();
            let hit = s.len() >= at + len
                && s[at..at + len]
                    .iter()
                    .zip(form.chars())
                    .all(|(a, b)| a.eq_ignore_ascii_case(&b));
            if hit && best.is_none_or(|(_, l)| len > l) {
                best = Some((i, len));
            }
        }
    }
    best
}

/// A time zone as SimpleDateFormat reads one: `GMT` or `UTC` with an optional offset, an
/// offset alone (`-0700`, `+05:30`, `+05`), `Z`, or one of the North American abbreviations.
/// Its offset in minutes east of UTC, and how many characters it takes.
fn zone_at(s: &[char], at: usize) -> Option<(i64, usize)> {
    let word: String = s[at..]
        .iter()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    if word.is_empty() {
        return offset_at(s, at);
    }
    let len = word.len();
    let offset = match word.as_str() {
        "GMT" | "UTC" | "UT" => {
            return Some(match offset_at(s, at + len) {
                Some((o, more)) => (o, len + more),
                None => (0, len),
            })
        }
        "Z" => 0,
        "EST" => -300,
        "EDT" => -240,
        "CST" => -360,
        "CDT" => -300,
        "MST" => -420,
        "MDT" => -360,
        "PST" => -480,
        "PDT" => -420,
        _ => return None,
    };
    Some((offset, len))
}

/// `+hh:mm`, `+hhmm` or `+hh` (or with `-`) at `s[at]`.
fn offset_at(s: &[char], at: usize) -> Option<(i64, usize)> {
    let sign = match *s.get(at)? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let digit = |i: usize| s.get(i).and_then(|c| c.to_digit(10)).map(i64::from);
    let h = digit(at + 1)? * 10 + digit(at + 2)?;
    let (m, len) = if s.get(at + 3) == Some(&':') {
        (digit(at + 4)? * 10 + digit(at + 5)?, 6)
    } else if let (Some(a), Some(b)) = (digit(at + 3), digit(at + 4)) {
        (a * 10 + b, 5)
    } else {
        (0, 3)
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some((sign * (h * 60 + m), len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{format_timestamp, parse_timestamp};

    fn read(format: &str, text: &str) -> Result<String, String> {
        DateFormat::new(format)?.parse(text).map(format_timestamp)
    }

    fn write(format: &str, ts: &str) -> String {
        DateFormat::new(format)
            .unwrap()
            .format(parse_timestamp(ts).unwrap())
            .unwrap()
    }

    #[test]
    fn the_reference_table_of_templates() {
        // sql-reference-template-strings-create-output-timestamps, row by row.
        for (format, text, want) in [
            (
                "yyyy-MM-dd hh:mm:ss",
                "2009-09-16 03:15:24",
                "2009-09-16 03:15:24",
            ),
            ("yyyy-mm", "2011-02-08 07:23:19", "2011-01-01 00:02:00"),
            ("MMM dd, yyyy", "March 7, 2010", "2010-03-07 00:00:00"),
            ("MMM dd,", "March 7, 2010", "1970-03-07 00:00:00"),
            ("MMM dd,y", "March 7, 2010", "2010-03-07 00:00:00"),
            ("MMM dd,y", "March 7, 10", "0010-03-07 00:00:00"),
            ("M-d", "2-8", "1970-02-08 00:00:00"),
            ("M-d", "2-8-2011", "1970-02-08 00:00:00"),
            ("MM-dd-yyyy", "06-23-2011 10:11:12", "2011-06-23 00:00:00"),
            (
                "dd-MM-yy hh:mm:ss",
                "23-06-11 10:11:12",
                "2011-06-23 10:11:12",
            ),
            (
                "MM-dd-yy ss:hh:mm",
                "06-23-11 12:10:11",
                "2011-06-23 10:11:12",
            ),
            (
                "yy-dd-MM ss:hh:mm",
                "06-23-11 12:10:11",
                "2006-11-23 10:11:12",
            ),
        ] {
            assert_eq!(
                read(format, text).as_deref(),
                Ok(format!("{want}.000").as_str()),
                "{format} {text}"
            );
        }
        // "using '2011-2-8' would give no result because 2011 is not a valid month"
        assert!(read("M-d", "2011-2-8").is_err());
        // "If the template lacks the comma, so must the input string, or there is no output"
        assert!(read("MMM dd yyyy", "March 7, 2010").is_err());
        assert!(read("yyyy-MM-dd", "2011-02-30").is_err());
    }

    #[test]
    fn reads_what_applications_use() {
        // The web-analytics solution's Apache log time.
        assert_eq!(
            read("dd/MMM/yyyy:HH:mm:ss z", "10/Oct/2000:13:55:36 -0700").unwrap(),
            "2000-10-10 20:55:36.000"
        );
        assert_eq!(
            read(
                "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
                "2024-05-01T10:00:00.250+02:00"
            )
            .unwrap(),
            "2024-05-01 08:00:00.250"
        );
        assert_eq!(
            read("yyyy-MM-dd'T'HH:mm:ss'Z'", "2024-05-01T10:00:00Z").unwrap(),
            "2024-05-01 10:00:00.000"
        );
        assert_eq!(
            read("yyyyMMddHHmmss", "20240501103005").unwrap(),
            "2024-05-01 10:30:05.000"
        );
        assert_eq!(
            read("EEE, d MMM yyyy hh:mm a", "wed, 1 may 2024 12:30 pm").unwrap(),
            "2024-05-01 12:30:00.000"
        );
        assert_eq!(
            read("hh:mm a", "12:30 AM").unwrap(),
            "1970-01-01 00:30:00.000"
        );
        assert_eq!(
            read("yyyy-MM-dd HH:mm z", "2024-05-01 10:00 PDT").unwrap(),
            "2024-05-01 17:00:00.000"
        );
        assert_eq!(
            read("D yyyy", "32 2024").unwrap(),
            "2024-02-01 00:00:00.000"
        );
        assert_eq!(
            read("''yyyy''", "'2024'").unwrap(),
            "2024-01-01 00:00:00.000"
        );
        assert!(read("yyyy-MM-dd", "").is_err());
        assert!(read("HH:mm", "25:00").is_err());
    }

    #[test]
    fn writes_java_fields() {
        let ts = "2009-09-16 03:15:24.007";
        assert_eq!(write("yyyy-MM-dd HH:mm:ss", ts), "2009-09-16 03:15:24");
        assert_eq!(
            write("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", ts),
            "2009-09-16T03:15:24.007Z"
        );
        assert_eq!(write("EEE, d MMM yy", ts), "Wed, 16 Sep 09");
        assert_eq!(
            write("EEEE d MMMM y G", ts),
            "Wednesday 16 September 2009 AD"
        );
        assert_eq!(write("h:mm a", "2009-09-16 15:05:00"), "3:05 PM");
        assert_eq!(
            write("hh:mm a, K k", "2009-09-16 00:05:00"),
            "12:05 AM, 0 24"
        );
        assert_eq!(write("D u S", ts), "259 3 7");
        assert_eq!(write("z Z X", ts), "UTC +0000 Z");
        assert_eq!(write("'o''clock' ''", ts), "o'clock '");
        assert!(DateFormat::new("yyyy-MM-dd T").is_err());
        assert!(DateFormat::new("ww yyyy").is_err());
        assert!(DateFormat::new("'open").is_err());
    }
}
