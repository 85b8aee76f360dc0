//! The log parsers of the SQL Reference: `W3C_LOG_PARSE`, `VARIABLE_COLUMN_LOG_PARSE`,
//! `REGEX_LOG_PARSE`, `FAST_REGEX_LOG_PARSE` (whose patterns are [`crate::fastregex`]'s),
//! `FIXED_COLUMN_LOG_PARSE` and `SYS_LOG_PARSE`. Each makes a row of named, typed columns
//! of a string. The row's shape comes from the call's literal arguments (the format, the
//! regular expression, the list of columns), so a parser is compiled once, with the plan
//! ([`LogParser::new`]), and each string is only parsed ([`LogParser::parse`]).
//!
//! What a string that does not fit gives:
//! - REGEX_LOG_PARSE: "If the regular expression does not match the string passed as the
//!   first parameter, NULL is returned" (the reference): every column is NULL.
//! - FAST_REGEX_LOG_PARSE: "If the input_string contains any characters not accounted for
//!   (matched) by applying Fast Regex pattern, then FRLP returns no fields at all", and the
//!   reference's example of one selects no row: the row fails (SQLstream logged the error and
//!   skipped the row).
//! - SYS_LOG_PARSE: a line that does not start with a syslog time gives NULL columns
//!   (inferred, as for W3C_LOG_PARSE).
//! - W3C_LOG_PARSE: a line that does not fit the format gives NULL columns too (inferred: the
//!   reference does not say), and a numeric field that holds no number (`-`) is NULL.
//! - VARIABLE_COLUMN_LOG_PARSE: a missing field is NULL, fields past the last column are
//!   ignored.
//! - FIXED_COLUMN_LOG_PARSE: a field that starts past the end of the string is NULL, and one
//!   cut short by it is what there is.
//! - A field that does not convert to its column's declared type, or a NULL in a column
//!   declared NOT NULL, fails the row (SQLstream, whence KDA's SQL came, dropped the row).
//!
//! Invariants: a string is only ever cut at character boundaries (fields are found by walking
//! its characters, and cut with `str::get`), and a row has at most [`MAX_COLUMNS`] columns,
//! whatever the string holds; nothing here panics on any input.

use crate::datefmt::DateFormat;
use crate::eval::cast;
use crate::fastregex::FastRegex;
use crate::pattern::{push_literal, Pattern};
use crate::value::{SqlType, Value};

/// The most columns a log parser's row may have.
pub const MAX_COLUMNS: usize = 1000;

/// The type of the columns the reference gives no type: VARCHAR(1024).
const TEXT: SqlType = SqlType::Varchar(1024);

/// Whether `name` is one of the log parsers (each returns a row, not a value).
pub fn is_log_parse(name: &str) -> bool {
    matches!(
        name,
        "W3C_LOG_PARSE"
            | "VARIABLE_COLUMN_LOG_PARSE"
            | "REGEX_LOG_PARSE"
            | "FAST_REGEX_LOG_PARSE"
            | "FAST_REGEX_LOG_PARSER"
            | "FIXED_COLUMN_LOG_PARSE"
            | "SYS_LOG_PARSE"
    )
}

/// A column of a log parser's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    pub not_null: bool,
    /// A TIMESTAMP's or DATE's SimpleDateFormat pattern, which its field is read with.
    pub format: Option<DateFormat>,
}

/// A compiled log parser: the row it makes, and how it cuts a string into fields.
#[derive(Debug, Clone, PartialEq)]
pub struct LogParser {
    /// The function, for messages.
    pub function: String,
    pub columns: Vec<Column>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// REGEX_LOG_PARSE, and W3C_LOG_PARSE's format as a regular expression: the whole string
    /// must match, and group i is column i. `lenient`: a field that does not convert is NULL
    /// (W3C's numeric fields, `-` when there is no number) instead of failing the row.
    Regex { pattern: Pattern, lenient: bool },
    /// VARIABLE_COLUMN_LOG_PARSE: fields between delimiters.
    Variable {
        delimiter: String,
        escape: Option<char>,
        /// The opening and closing quote.
        quote: Option<(char, char)>,
    },
    /// FIXED_COLUMN_LOG_PARSE: each column's start and length, in characters from 0 (no
    /// length: to the end).
    Fixed(Vec<(usize, Option<usize>)>),
    /// FAST_REGEX_LOG_PARSE: group i is column i, matched lazily.
    Fast(FastRegex),
    /// SYS_LOG_PARSE: the time, then the message.
    Syslog,
}

/// A parser that does not compile: the message, and the literal argument at fault (counted
/// after the string), if one is.
pub type CompileError = (Option<usize>, String);

impl LogParser {
    /// Compiles the parser of a call of `function`; `args` are the call's arguments after
    /// the string to parse, all literals.
    pub fn new(function: &str, args: &[Value]) -> Result<LogParser, CompileError> {
        let (columns, kind) = match function {
            "REGEX_LOG_PARSE" => {
                arity(function, args, 1..=2, "(string, regex [, columns])")?;
                let regex = text_arg(function, args, 0, "regular expression")?;
                let pattern = Pattern::java_whole(regex).map_err(|m| (Some(0), m))?;
                let groups = pattern.re.captures_len().saturating_sub(1);
                if groups == 0 {
                    return Err((
                        Some(0),
                        format!(
                            "REGEX_LOG_PARSE's regular expression '{regex}' has no group: each \
                             group is a column"
                        ),
                    ));
                }
                if groups > MAX_COLUMNS {
                    return Err((
                        Some(0),
                        format!(
                            "REGEX_LOG_PARSE's regular expression has more than {MAX_COLUMNS} \
                             groups"
                        ),
                    ));
                }
                let columns = group_columns(function, args, groups)?;
                (
                    columns,
                    Kind::Regex {
                        pattern,
                        lenient: false,
                    },
                )
            }
            "FAST_REGEX_LOG_PARSE" | "FAST_REGEX_LOG_PARSER" => {
                arity(function, args, 1..=2, "(string, fast regex [, columns])")?;
                let text = text_arg(function, args, 0, "pattern")?;
                let fast = match FastRegex::new(text) {
                    Ok(fast) => fast,
                    Err(m) => return Err((Some(0), format!("{function}'s pattern '{text}': {m}"))),
                };
                if fast.groups > MAX_COLUMNS {
                    return Err((
                        Some(0),
                        format!("{function}'s pattern has more than {MAX_COLUMNS} groups"),
                    ));
                }
                let columns = group_columns(function, args, fast.groups)?;
                (columns, Kind::Fast(fast))
            }
            "SYS_LOG_PARSE" => {
                arity(function, args, 0..=0, "(string)")?;
                // The reference: "The first column is named "COLUMN1" and is SQL data type
                // TIMESTAMP. The second column is named "COLUMN2" and is SQL type VARCHAR()".
                let mut columns = numbered(2);
                columns[0].ty = SqlType::Timestamp;
                (columns, Kind::Syslog)
            }
            "W3C_LOG_PARSE" => {
                arity(function, args, 1..=1, "(string, format)")?;
                let format = text_arg(function, args, 0, "format")?;
                let (source, columns) = w3c(format).map_err(|m| (Some(0), m))?;
                let re = regex_lite::Regex::new(&source).map_err(|e| {
                    (
                        Some(0),
                        format!("W3C_LOG_PARSE's format '{format}' does not compile: {e}"),
                    )
                })?;
                let pattern = Pattern {
                    text: format.to_string(),
                    re,
                };
                (
                    columns,
                    Kind::Regex {
                        pattern,
                        lenient: true,
                    },
                )
            }
            "VARIABLE_COLUMN_LOG_PARSE" => {
                arity(
                    function,
                    args,
                    2..=4,
                    "(string, columns, delimiter [, escape [, quotes]])",
                )?;
                let columns = match &args[0] {
                    Value::Int(n) if (1..=MAX_COLUMNS as i64).contains(n) => numbered(*n as usize),
                    Value::Int(n) => {
                        return Err((
                            Some(0),
                            format!(
                                "VARIABLE_COLUMN_LOG_PARSE takes from 1 to {MAX_COLUMNS} \
                                 columns, not {n}"
                            ),
                        ))
                    }
                    Value::Str(list) => plain_columns(function, list).map_err(|m| (Some(0), m))?,
                    v => {
                        return Err((
                            Some(0),
                            format!(
                                "VARIABLE_COLUMN_LOG_PARSE's columns are a number or a list \
                                 ('NAME TYPE VARCHAR(16), ...'), not {}",
                                v.type_name()
                            ),
                        ))
                    }
                };
                let delimiter = text_arg(function, args, 1, "delimiter")?;
                if delimiter.is_empty() {
                    return Err((
                        Some(1),
                        "VARIABLE_COLUMN_LOG_PARSE's delimiter is empty".to_string(),
                    ));
                }
                let escape = match args.get(2) {
                    None => None,
                    Some(_) => {
                        let e = text_arg(function, args, 2, "escape")?;
                        let mut chars = e.chars();
                        match (chars.next(), chars.next()) {
                            (None, _) => None,
                            (Some(c), None) => Some(c),
                            _ => {
                                return Err((
                                    Some(2),
                                    format!(
                                        "VARIABLE_COLUMN_LOG_PARSE's escape '{e}' is not one \
                                         character"
                                    ),
                                ))
                            }
                        }
                    }
                };
                let quote = match args.get(3) {
                    None => None,
                    Some(_) => {
                        let q = text_arg(function, args, 3, "quotes")?;
                        let mut chars = q.chars();
                        match (chars.next(), chars.next(), chars.next()) {
                            (None, _, _) => None,
                            (Some(c), None, _) => Some((c, c)),
                            (Some(open), Some(close), None) => Some((open, close)),
                            _ => {
                                return Err((
                                    Some(3),
                                    format!(
                                        "VARIABLE_COLUMN_LOG_PARSE's quotes '{q}' are one or \
                                         two characters (the opening one, then the closing \
                                         one)"
                                    ),
                                ))
                            }
                        }
                    }
                };
                (
                    columns,
                    Kind::Variable {
                        delimiter: delimiter.to_string(),
                        escape,
                        quote,
                    },
                )
            }
            "FIXED_COLUMN_LOG_PARSE" => {
                arity(function, args, 1..=1, "(string, columns)")?;
                let list = text_arg(function, args, 0, "list of columns")?;
                let specs = columns_of(function, list).map_err(|m| (Some(0), m))?;
                let mut columns = Vec::with_capacity(specs.len());
                let mut spans = Vec::with_capacity(specs.len());
                for (c, at) in specs {
                    let Some((start, len)) = at else {
                        return Err((
                            Some(0),
                            format!(
                                "FIXED_COLUMN_LOG_PARSE's column {} has no START (its first \
                                 character, from 0)",
                                c.name
                            ),
                        ));
                    };
                    let too_big = || {
                        (
                            Some(0),
                            format!(
                                "FIXED_COLUMN_LOG_PARSE's column {}: START or FOR is too large",
                                c.name
                            ),
                        )
                    };
                    let start = usize::try_from(start).map_err(|_| too_big())?;
                    let len = match len {
                        None => None,
                        Some(l) => Some(usize::try_from(l).map_err(|_| too_big())?),
                    };
                    spans.push((start, len));
                    columns.push(c);
                }
                (columns, Kind::Fixed(spans))
            }
            other => return Err((None, format!("`{other}` is not a log parser"))),
        };
        if columns.is_empty() {
            return Err((None, format!("{function} makes no column")));
        }
        if columns.len() > MAX_COLUMNS {
            return Err((
                None,
                format!("{function} makes more than {MAX_COLUMNS} columns"),
            ));
        }
        Ok(LogParser {
            function: function.to_string(),
            columns,
            kind,
        })
    }

    /// The row of string `v`: one value per column. NULL gives NULL columns.
    pub fn parse(&self, v: &Value) -> Result<Vec<Value>, String> {
        let text = match v {
            Value::Null => return Ok(vec![Value::Null; self.columns.len()]),
            Value::Str(s) => s.as_str(),
            v => {
                return Err(format!(
                    "{} takes a string, not {}",
                    self.function,
                    v.type_name()
                ))
            }
        };
        let mut out = Vec::with_capacity(self.columns.len());
        match &self.kind {
            Kind::Regex { pattern, lenient } => {
                let Some(caps) = pattern.re.captures(text) else {
                    return Ok(vec![Value::Null; self.columns.len()]);
                };
                for (i, c) in self.columns.iter().enumerate() {
                    let field = caps.get(i + 1).map(|m| m.as_str());
                    out.push(self.field(c, field, *lenient)?);
                }
            }
            Kind::Variable {
                delimiter,
                escape,
                quote,
            } => {
                let fields = split(text, delimiter, *escape, *quote, self.columns.len());
                for (i, c) in self.columns.iter().enumerate() {
                    out.push(self.field(c, fields.get(i).map(String::as_str), false)?);
                }
            }
            Kind::Fixed(spans) => {
                for (c, &(start, len)) in self.columns.iter().zip(spans) {
                    out.push(self.field(c, chars_at(text, start, len), false)?);
                }
            }
            Kind::Fast(fast) => {
                let Some(fields) = fast.fields(text) else {
                    return Err(format!(
                        "{}: the pattern '{}' does not account for all of the string, so \
                         there is no row",
                        self.function, fast.text
                    ));
                };
                for (i, c) in self.columns.iter().enumerate() {
                    out.push(self.field(c, fields.get(i).copied(), false)?);
                }
            }
            Kind::Syslog => {
                let Some((ms, message)) = syslog(text) else {
                    return Ok(vec![Value::Null; self.columns.len()]);
                };
                out.push(Value::Timestamp(ms));
                out.push(cast(Value::Str(message.to_string()), TEXT)?);
            }
        }
        Ok(out)
    }

    /// A field's value in its column.
    fn field(&self, c: &Column, field: Option<&str>, lenient: bool) -> Result<Value, String> {
        let v = match field {
            None => Value::Null,
            Some(f) => match value_of(f, c) {
                Ok(v) => v,
                Err(_) if lenient => Value::Null,
                Err(e) => return Err(format!("{} column {}: {e}", self.function, c.name)),
            },
        };
        if c.not_null && v.is_null() {
            return Err(format!(
                "{} column {} is NOT NULL, and the string has no value for it",
                self.function, c.name
            ));
        }
        Ok(v)
    }
}

fn arity(
    function: &str,
    args: &[Value],
    takes: std::ops::RangeInclusive<usize>,
    usage: &str,
) -> Result<(), CompileError> {
    if takes.contains(&args.len()) {
        Ok(())
    } else {
        Err((
            None,
            format!(
                "{function} takes {usage}, not {} argument(s)",
                args.len() + 1
            ),
        ))
    }
}

/// Argument `i` (after the string), which must be a string literal.
fn text_arg<'a>(
    function: &str,
    args: &'a [Value],
    i: usize,
    what: &str,
) -> Result<&'a str, CompileError> {
    match args.get(i) {
        Some(Value::Str(s)) => Ok(s.as_str()),
        Some(v) => Err((
            Some(i),
            format!(
                "{function}'s {what} is a string literal, not {}",
                v.type_name()
            ),
        )),
        None => Err((None, format!("{function} needs its {what}"))),
    }
}

/// COLUMN1 to COLUMNn, each VARCHAR(1024): the reference's default.
fn numbered(n: usize) -> Vec<Column> {
    (1..=n)
        .map(|i| Column {
            name: format!("COLUMN{i}"),
            ty: TEXT,
            not_null: false,
            format: None,
        })
        .collect()
}

/// The columns of a parser whose groups are its columns (REGEX_LOG_PARSE's,
/// FAST_REGEX_LOG_PARSE's): COLUMN1 to COLUMNn, or the list given after the pattern, of at
/// most as many columns as there are groups.
fn group_columns(
    function: &str,
    args: &[Value],
    groups: usize,
) -> Result<Vec<Column>, CompileError> {
    if args.get(1).is_none() {
        return Ok(numbered(groups));
    }
    let list = text_arg(function, args, 1, "list of columns")?;
    let columns = plain_columns(function, list).map_err(|m| (Some(1), m))?;
    if columns.len() > groups {
        return Err((
            Some(1),
            format!(
                "{function}'s list has {} columns, and its pattern {groups} group(s): a column \
                 is a group",
                columns.len()
            ),
        ));
    }
    Ok(columns)
}

/// A list of columns without START (REGEX_LOG_PARSE's, VARIABLE_COLUMN_LOG_PARSE's).
fn plain_columns(function: &str, list: &str) -> Result<Vec<Column>, String> {
    let mut out = Vec::new();
    for (c, at) in columns_of(function, list)? {
        if at.is_some() {
            return Err(format!(
                "{function}'s column {}: START is FIXED_COLUMN_LOG_PARSE's",
                c.name
            ));
        }
        out.push(c);
    }
    Ok(out)
}

/// Column position as FIXED_COLUMN_LOG_PARSE gives it: START and FOR.
type Span = Option<(u64, Option<u64>)>;

/// A list of columns, as the reference writes them: `'NAME TYPE VARCHAR(16), "ts" TYPE
/// TIMESTAMP ''dd/MMM/yyyy:HH:mm:ss'' NOT NULL, ...'` (a column's type defaults to
/// VARCHAR(1024)).
fn columns_of(function: &str, list: &str) -> Result<Vec<(Column, Span)>, String> {
    let specs = crate::parse::parse_log_columns(list)
        .map_err(|m| format!("{function}'s list of columns '{list}': {m}"))?;
    if specs.len() > MAX_COLUMNS {
        return Err(format!(
            "{function}'s list has more than {MAX_COLUMNS} columns"
        ));
    }
    let mut out: Vec<(Column, Span)> = Vec::with_capacity(specs.len());
    for s in specs {
        if out.iter().any(|(c, _)| c.name == s.name) {
            return Err(format!("{function}'s list has column {} twice", s.name));
        }
        let ty = s.ty.unwrap_or(TEXT);
        let format = match s.format {
            None => None,
            Some(f) if matches!(ty, SqlType::Timestamp | SqlType::Date) => Some(
                DateFormat::new(&f).map_err(|m| format!("{function}'s column {}: {m}", s.name))?,
            ),
            Some(_) => {
                return Err(format!(
                    "{function}'s column {}: only a TIMESTAMP or a DATE takes a format",
                    s.name
                ))
            }
        };
        out.push((
            Column {
                name: s.name,
                ty,
                not_null: s.not_null,
                format,
            },
            s.start,
        ));
    }
    Ok(out)
}

/// A field's text as a value of its column's type. Text columns take it as it is; other
/// types are read with the spaces around it trimmed, and an empty field is NULL.
fn value_of(text: &str, c: &Column) -> Result<Value, String> {
    if matches!(c.ty, SqlType::Varchar(_) | SqlType::Char(_)) {
        return cast(Value::Str(text.to_string()), c.ty);
    }
    let t = text.trim();
    if t.is_empty() {
        return Ok(Value::Null);
    }
    match (c.ty, &c.format) {
        (SqlType::Timestamp | SqlType::Date, Some(f)) => cast(Value::Timestamp(f.parse(t)?), c.ty),
        (SqlType::Boolean, _) if t.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
        (SqlType::Boolean, _) if t.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
        _ => cast(Value::Str(t.to_string()), c.ty),
    }
}

/// The first `n` fields of `text` between `delimiter`s. An `escape` character makes the next
/// character part of the field (an escaped delimiter does not end it); between an opening
/// and a closing quote, delimiters are part of the field too, and the quotes are not.
fn split(
    text: &str,
    delimiter: &str,
    escape: Option<char>,
    quote: Option<(char, char)>,
    n: usize,
) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut i = 0;
    while fields.len() < n {
        // `i` is always at a character boundary: it moves by whole characters and
        // delimiters.
        let Some(rest) = text.get(i..) else {
            break;
        };
        let Some(c) = rest.chars().next() else {
            break;
        };
        if Some(c) == escape {
            i += c.len_utf8();
            if let Some(next) = text.get(i..).and_then(|r| r.chars().next()) {
                field.push(next);
                i += next.len_utf8();
            }
            continue;
        }
        if let Some((open, close)) = quote {
            if quoted && c == close {
                quoted = false;
                i += c.len_utf8();
                continue;
            }
            if !quoted && c == open {
                quoted = true;
                i += c.len_utf8();
                continue;
            }
        }
        if !quoted && rest.starts_with(delimiter) {
            fields.push(std::mem::take(&mut field));
            i += delimiter.len();
            continue;
        }
        field.push(c);
        i += c.len_utf8();
    }
    if fields.len() < n {
        fields.push(field);
    }
    fields
}

/// The characters of `text` from `start` (0-based), `len` of them (or to the end); `None`
/// when `text` ends before `start`.
fn chars_at(text: &str, start: usize, len: Option<usize>) -> Option<&str> {
    let mut at = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()));
    let from = at.nth(start)?;
    if from >= text.len() {
        return None;
    }
    let to = match len {
        None => text.len(),
        Some(0) => from,
        Some(l) => at.nth(l - 1).unwrap_or(text.len()),
    };
    text.get(from..to)
}

/// The months as syslog writes them.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The days of 1970 before each month's first.
const DAYS_BEFORE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

/// A syslog line's time and message: `Mon DD HH:MM:SS message`, as the reference gives it (RFC
/// 3164's BSD syslog), after an optional `<PRI>` and before an optional line break. The month
/// is English, in any case; the day has one or two digits (syslog pads it with a space:
/// `Feb  5`). The line has no year, so the time is in 1970 (as SimpleDateFormat reads `MMM d
/// HH:mm:ss`), UTC, and a day past the month's end runs into the next month (SimpleDateFormat
/// is lenient: `Feb 29` is March 1st). `None` when the line does not start so.
fn syslog(line: &str) -> Option<(i64, &str)> {
    let line = match line.strip_suffix('\n') {
        Some(l) => l.strip_suffix('\r').unwrap_or(l),
        None => line,
    };
    let mut rest = line;
    if let Some((pri, after)) = line.strip_prefix('<').and_then(|l| l.split_once('>')) {
        if (1..=3).contains(&pri.len()) && pri.bytes().all(|b| b.is_ascii_digit()) {
            rest = after;
        }
    }
    let name = rest.get(..3)?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))?;
    let rest = spaces(rest.get(3..)?)?;
    let (day, rest) = digits(rest)?;
    let (hour, rest) = digits(spaces(rest)?)?;
    let (minute, rest) = digits(rest.strip_prefix(':')?)?;
    let (second, rest) = digits(rest.strip_prefix(':')?)?;
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let message = if rest.is_empty() {
        rest
    } else {
        rest.strip_prefix(' ')?
    };
    let days = DAYS_BEFORE.get(month)? + day - 1;
    let ms = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1000;
    Some((ms, message))
}

/// `s` after the spaces it starts with, if it starts with one.
fn spaces(s: &str) -> Option<&str> {
    let rest = s.trim_start_matches(' ');
    (rest.len() < s.len()).then_some(rest)
}

/// The number of the one or two digits `s` starts with, and what follows them.
fn digits(s: &str) -> Option<(i64, &str)> {
    let n = s.bytes().take(2).take_while(u8::is_ascii_digit).count();
    let value = s.get(..n)?.parse().ok()?;
    Some((value, s.get(n..)?))
}

/// A piece of a W3C (Apache) log format.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece {
    Text(char),
    /// A specifier: its letter, and whether it had a `{name}` (or `[name]`).
    Field(char, bool),
}

/// W3C_LOG_PARSE's format (a predefined one's name, or Apache `%` specifiers) as a regular
/// expression matching a whole line, with a group and a column per specifier.
fn w3c(format: &str) -> Result<(String, Vec<Column>), String> {
    let named = format
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase();
    // The reference's table of predefined formats.
    let spec: &str = match named.as_str() {
        "COMMON" => r#"%h %l %u %t "%r" %>s %b"#,
        "COMMON WITH VHOST" => r#"%v %h %l %u %t "%r" %>s %b"#,
        "NCSA EXTENDED" => r#"%h %l %u %t "%r" %>s %b "%[Referer]i" "%[User-agent]i""#,
        "REFERER" => "%[Referer]i ---> %U",
        "AGENT" => "%[User-agent]i",
        "IIS" => {
            return Err(
                "W3C_LOG_PARSE's IIS format is not supported by Weir: the reference \
                        does not say what it is (give its fields as a format of % specifiers)"
                    .to_string(),
            )
        }
        _ if format.contains('%') => format,
        _ => {
            return Err(format!(
                "W3C_LOG_PARSE's format '{format}' is neither a predefined format (COMMON, \
                 COMMON WITH VHOST, NCSA EXTENDED, REFERER, AGENT) nor made of % specifiers"
            ))
        }
    };
    let pieces = w3c_pieces(spec)?;
    let mut re = String::from(r"\A");
    let mut columns = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        let (letter, has_name) = match *p {
            Piece::Text(c) => {
                push_literal(c, &mut re);
                continue;
            }
            Piece::Field(letter, has_name) => (letter, has_name),
        };
        // A field runs to the next character of the format (the last one, to the end of the
        // line, without its line break).
        let until = match pieces.get(i + 1) {
            None => ".*?".to_string(),
            Some(Piece::Field(..)) => ".*?".to_string(),
            // A quoted field may hold quotes escaped with a backslash, as Apache writes them.
            Some(Piece::Text('"')) => r#"(?:[^"\\]|\\.)*"#.to_string(),
            Some(Piece::Text(d)) => {
                let mut class = String::from("[^");
                push_literal(*d, &mut class);
                class.push_str("]*");
                class
            }
        };
        re.push('(');
        // %t is in brackets, which are part of it ("If you change %t to [%t], the date
        // column contains 24/May/2004:22:01:02 -0700", instead of the bracketed time).
        if letter == 't' && !has_name {
            re.push_str(r"\[[^\]]*\]|");
        }
        re.push_str(&until);
        re.push(')');
        columns.push(Column {
            name: format!("COLUMN{}", columns.len() + 1),
            ty: w3c_type(letter, has_name),
            not_null: false,
            format: None,
        });
        if columns.len() > MAX_COLUMNS {
            return Err(format!(
                "W3C_LOG_PARSE's format has more than {MAX_COLUMNS} specifiers"
            ));
        }
    }
    if columns.is_empty() {
        return Err(format!(
            "W3C_LOG_PARSE's format '{format}' has no % specifier"
        ));
    }
    re.push_str(r"(?:\r?\n)?\z");
    Ok((re, columns))
}

/// The pieces of an Apache log format: `%` specifiers (with their modifiers, such as `>` or
/// `!200,304`, and a `{name}`, which the reference writes `[name]`), `%%` for a percent sign,
/// `\"` and the like for the character, and text.
fn w3c_pieces(spec: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => pieces.push(Piece::Text(match chars.next() {
                Some('n') => '\n',
                Some('t') => '\t',
                Some(other) => other,
                None => '\\',
            })),
            '%' => {
                if chars.peek() == Some(&'%') {
                    chars.next();
                    pieces.push(Piece::Text('%'));
                    continue;
                }
                let mut has_name = false;
                loop {
                    match chars.peek().copied() {
                        Some('!' | ',' | '<' | '>') => {
                            chars.next();
                        }
                        Some(m) if m.is_ascii_digit() => {
                            chars.next();
                        }
                        Some(open) if (open == '{' || open == '[') && !has_name => {
                            let close = if open == '{' { '}' } else { ']' };
                            chars.next();
                            loop {
                                match chars.next() {
                                    Some(x) if x == close => break,
                                    Some(_) => {}
                                    None => {
                                        return Err(format!(
                                            "W3C_LOG_PARSE's format '{spec}' has an unclosed \
                                             `{open}`"
                                        ))
                                    }
                                }
                            }
                            has_name = true;
                        }
                        _ => break,
                    }
                }
                match chars.next() {
                    Some(letter) if letter.is_ascii_alphabetic() => {
                        pieces.push(Piece::Field(letter, has_name))
                    }
                    _ => {
                        return Err(format!(
                            "W3C_LOG_PARSE's format '{spec}' has a % without a specifier \
                             letter (a percent sign is %%)"
                        ))
                    }
                }
            }
            c => pieces.push(Piece::Text(c)),
        }
    }
    Ok(pieces)
}

/// A specifier's column type. The reference: "%b represents the number of bytes sent ..., so
/// the column type is numeric. For %B, however, zero bytes is represented by a dash -
/// forcing the column type to be text." Status, times, ports, process ids and byte counts
/// are numbers; everything else is text.
fn w3c_type(letter: char, has_name: bool) -> SqlType {
    match letter {
        'b' | 's' | 'D' | 'T' | 'p' | 'I' | 'O' => SqlType::Bigint,
        'P' if !has_name => SqlType::Bigint,
        _ => TEXT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> Value {
        Value::Str(t.to_string())
    }

    fn parser(function: &str, args: &[Value]) -> LogParser {
        LogParser::new(function, args).unwrap_or_else(|(_, m)| panic!("{m}"))
    }

    fn names(p: &LogParser) -> Vec<&str> {
        p.columns.iter().map(|c| c.name.as_str()).collect()
    }

    const JOHN: &str = r#"192.168.254.30 - John [24/May/2004:22:01:02 -0700] "GET /icons/apache_pb.gif HTTP/1.1" 304 0"#;

    #[test]
    fn w3c_common_is_the_references_example() {
        // SQL Reference, W3C_LOG_PARSE, Example 1: its input and output.
        let p = parser("W3C_LOG_PARSE", &[s("COMMON")]);
        assert_eq!(
            names(&p),
            ["COLUMN1", "COLUMN2", "COLUMN3", "COLUMN4", "COLUMN5", "COLUMN6", "COLUMN7"]
        );
        assert_eq!(
            p.parse(&s(JOHN)).unwrap(),
            vec![
                s("192.168.254.30"),
                s("-"),
                s("John"),
                s("[24/May/2004:22:01:02 -0700]"),
                s("GET /icons/apache_pb.gif HTTP/1.1"),
                Value::Int(304),
                Value::Int(0),
            ]
        );
        // The same as the specifiers named ("W3C Customized Formats"), with the reference's
        // backslashed quotes.
        let custom = parser("W3C_LOG_PARSE", &[s(r#"%h %l %u %t \"%r\" %>s %b"#)]);
        assert_eq!(custom.parse(&s(JOHN)), p.parse(&s(JOHN)));
        // "If you change %t to [%t], the date column contains 24/May/2004:22:01:02 -0700".
        let bracketed = parser("W3C_LOG_PARSE", &[s(r#"%h %l %u [%t] "%r" %>s %b"#)]);
        assert_eq!(
            bracketed.parse(&s(JOHN)).unwrap()[3],
            s("24/May/2004:22:01:02 -0700")
        );
        // A line break ends the line; a line that does not fit: NULL columns; `-` bytes:
        // NULL; NULL in, NULL out.
        let crlf = format!("{JOHN}\r\n");
        assert_eq!(p.parse(&s(&crlf)), p.parse(&s(JOHN)));
        assert_eq!(p.parse(&s("nonsense")).unwrap(), vec![Value::Null; 7]);
        let dash = JOHN.replace(" 304 0", " 304 -");
        assert_eq!(p.parse(&s(&dash)).unwrap()[6], Value::Null);
        assert_eq!(p.parse(&Value::Null).unwrap(), vec![Value::Null; 7]);
        assert!(p.parse(&Value::Int(1)).is_err());
    }

    #[test]
    fn w3c_predefined_formats() {
        let combined = format!(r#"{JOHN} "http://example.com/a b" "Mozilla/5.0 (X11; \"x\")""#);
        let p = parser("W3C_LOG_PARSE", &[s("ncsa  extended")]);
        let row = p.parse(&s(&combined)).unwrap();
        assert_eq!(row.len(), 9);
        assert_eq!(row[7], s("http://example.com/a b"));
        assert_eq!(row[8], s(r#"Mozilla/5.0 (X11; \"x\")"#));
        let p = parser("W3C_LOG_PARSE", &[s("COMMON WITH VHOST")]);
        let row = p.parse(&s(&format!("www.example.com {JOHN}"))).unwrap();
        assert_eq!(row[0], s("www.example.com"));
        assert_eq!(row[7], Value::Int(0));
        let p = parser("W3C_LOG_PARSE", &[s("REFERER")]);
        assert_eq!(
            p.parse(&s("http://a.example/x ---> /index.html")).unwrap(),
            vec![s("http://a.example/x"), s("/index.html")]
        );
        let p = parser("W3C_LOG_PARSE", &[s("AGENT")]);
        assert_eq!(
            p.parse(&s("Mozilla/4.08 [en] (Win98; I ;Nav)")).unwrap(),
            vec![s("Mozilla/4.08 [en] (Win98; I ;Nav)")]
        );
        for bad in ["IIS", "CUSTOM", "%{Referer", "%h %", "plain text", "100%%"] {
            assert!(LogParser::new("W3C_LOG_PARSE", &[s(bad)]).is_err(), "{bad}");
        }
        assert!(LogParser::new("W3C_LOG_PARSE", &[]).is_err());
        assert!(LogParser::new("W3C_LOG_PARSE", &[Value::Int(1)]).is_err());
    }

    #[test]
    fn regex_columns_are_its_groups() {
        // SQL Reference, REGEX_LOG_PARSE, Example 1.
        let p = parser("REGEX_LOG_PARSE", &[s(".*([E].).*([R].*)")]);
        assert_eq!(names(&p), ["COLUMN1", "COLUMN2"]);
        assert_eq!(p.columns[0].ty, SqlType::Varchar(1024));
        assert_eq!(p.parse(&s("ENERGY")).unwrap(), vec![s("EN"), s("RGY")]);
        assert_eq!(p.parse(&s("HEALTHCARE")).unwrap(), vec![s("EA"), s("RE")]);
        // No match: NULL.
        assert_eq!(p.parse(&s("TECHNOLOGY")).unwrap(), vec![Value::Null; 2]);
        // The Developer Guide's example.
        let p = parser("REGEX_LOG_PARSE", &[s(r"(\w.+) (\d.+) (\w.+) (\w.+)")]);
        let log = r#"203.0.113.24 - - [25/Mar/2018:15:25:37 -0700] "GET /index.php HTTP/1.1" 200 125 "-" "Mozilla/5.0 [en] Gecko/20100101 Firefox/52.0""#;
        assert_eq!(
            p.parse(&s(log)).unwrap(),
            vec![
                s(r#"203.0.113.24 - - [25/Mar/2018:15:25:37 -0700] "GET /index.php HTTP/1.1" 200"#),
                s(r#"125 "-" "Mozilla/5.0 [en]"#),
                s("Gecko/20100101"),
                s(r#"Firefox/52.0""#),
            ]
        );
        // Typed columns; a group that takes no part is NULL; one that does not convert fails.
        let p = parser(
            "REGEX_LOG_PARSE",
            &[s(r"(\d+)-(x)?(\w+)"), s("N INTEGER, X, W TYPE VARCHAR(2)")],
        );
        assert_eq!(names(&p), ["N", "X", "W"]);
        assert_eq!(
            p.parse(&s("42-abc")).unwrap(),
            vec![Value::Int(42), Value::Null, s("ab")]
        );
        let p = parser("REGEX_LOG_PARSE", &[s(r"(\w+)"), s("N INTEGER")]);
        assert!(p.parse(&s("abc")).is_err());
        for (re, cols) in [
            ("abc", None),
            ("(a", None),
            ("(a)", Some("A, B")),
            ("(a)", Some("A START 1")),
        ] {
            let mut args = vec![s(re)];
            args.extend(cols.map(s));
            assert!(
                LogParser::new("REGEX_LOG_PARSE", &args).is_err(),
                "{re} {cols:?}"
            );
        }
    }

    #[test]
    fn fast_regex_columns_are_its_groups_matched_lazily() {
        // SQL Reference, FAST_REGEX_LOG_PARSER, Example C; the name as its heading spells it
        // too.
        for name in ["FAST_REGEX_LOG_PARSE", "FAST_REGEX_LOG_PARSER"] {
            let p = parser(name, &[s("(.*)_+(<Alpha>.*)")]);
            assert_eq!(names(&p), ["COLUMN1", "COLUMN2"]);
            assert_eq!(p.columns[1].ty, SqlType::Varchar(1024));
            assert_eq!(
                p.parse(&s("Mary____had_a_little_lamb")).unwrap(),
                vec![s("Mary"), s("had_a_little_lamb")]
            );
        }
        // A string it does not account for fails the row (Example A: no row); NULL gives
        // NULL columns.
        let p = parser("FAST_REGEX_LOG_PARSE", &[s("(.*)_+(._.*)")]);
        let err = p.parse(&s("Mary_had_a_little_lamb")).unwrap_err();
        assert!(err.contains("does not account for"), "{err}");
        assert_eq!(p.parse(&Value::Null).unwrap(), vec![Value::Null; 2]);
        assert!(p.parse(&Value::Int(1)).is_err());
        // A list of columns, as REGEX_LOG_PARSE takes one.
        let p = parser(
            "FAST_REGEX_LOG_PARSE",
            &[s("(<Digit>+) (.*)"), s("N INTEGER, REST VARCHAR(3)")],
        );
        assert_eq!(names(&p), ["N", "REST"]);
        assert_eq!(
            p.parse(&s("42 abcd")).unwrap(),
            vec![Value::Int(42), s("abc")]
        );
        for args in [
            vec![s("abc")],
            vec![s("(a)&(b)")],
            vec![s("(a)"), s("A, B")],
            vec![Value::Int(1)],
            vec![],
        ] {
            assert!(
                LogParser::new("FAST_REGEX_LOG_PARSE", &args).is_err(),
                "{args:?}"
            );
        }
    }

    #[test]
    fn syslog_lines_are_a_time_and_a_message() {
        let p = parser("SYS_LOG_PARSE", &[]);
        assert_eq!(names(&p), ["COLUMN1", "COLUMN2"]);
        assert_eq!(p.columns[0].ty, SqlType::Timestamp);
        assert_eq!(p.columns[1].ty, SqlType::Varchar(1024));
        let row = |line: &str| p.parse(&s(line)).unwrap();
        let at = |time: &str, message: &str| {
            let ms = crate::value::parse_timestamp(time).unwrap();
            vec![Value::Timestamp(ms), s(message)]
        };
        // RFC 3164's examples, with their priorities.
        let su = "mymachine su: 'su root' failed for lonvick on /dev/pts/8";
        assert_eq!(
            row(&format!("<34>Oct 11 22:14:15 {su}")),
            at("1970-10-11 22:14:15", su)
        );
        let bfg = "10.0.0.99 Use the BFG!";
        assert_eq!(
            row(&format!("<13>Feb  5 17:32:18 {bfg}")),
            at("1970-02-05 17:32:18", bfg)
        );
        // No priority, a line break, any case; a day past the month's end; no message.
        assert_eq!(
            row("mar  1 08:00:09 host sshd[7]: ok\r\n"),
            at("1970-03-01 08:00:09", "host sshd[7]: ok")
        );
        assert_eq!(
            row("Feb 29 00:00:00 leap"),
            at("1970-03-01 00:00:00", "leap")
        );
        assert_eq!(row("Dec 31 23:59:59"), at("1970-12-31 23:59:59", ""));
        // Lines that do not start with a syslog time: NULL columns.
        for line in [
            "Use the BFG!",
            "<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org sched[0]: That's All",
            "Oct 11 22:14:15.003 host x",
            "Oct 11 24:00:00 host x",
            "Oct 32 22:14:15 host x",
            "Oct 11 22:14 host x",
            "Oct11 22:14:15 host x",
            "Oct 11 22:14:15x",
            "Octo 11 22:14:15 x",
            "<1234>Oct 11 22:14:15 x",
            "Ét 11 22:14:15 x",
            "",
        ] {
            assert_eq!(row(line), vec![Value::Null; 2], "{line}");
        }
        assert_eq!(p.parse(&Value::Null).unwrap(), vec![Value::Null; 2]);
        assert!(LogParser::new("SYS_LOG_PARSE", &[s("x")]).is_err());
    }

    #[test]
    fn variable_columns_split_on_the_delimiter() {
        // The Developer Guide's example: 'COL_1 TYPE VARCHAR(16), ...' and ','.
        let p = parser(
            "VARIABLE_COLUMN_LOG_PARSE",
            &[
                s("COL_1 TYPE VARCHAR(16), COL_2 TYPE VARCHAR(16), COL_3 TYPE VARCHAR(16)"),
                s(","),
            ],
        );
        assert_eq!(names(&p), ["COL_1", "COL_2", "COL_3"]);
        assert_eq!(p.parse(&s("x,y,z")).unwrap(), vec![s("x"), s("y"), s("z")]);
        // Missing fields are NULL, extra ones ignored, empty ones empty.
        assert_eq!(
            p.parse(&s("x")).unwrap(),
            vec![s("x"), Value::Null, Value::Null]
        );
        assert_eq!(
            p.parse(&s("a,,b,c,d")).unwrap(),
            vec![s("a"), s(""), s("b")]
        );
        // The reference's escape example: "a\,b" is one field.
        let p = parser(
            "VARIABLE_COLUMN_LOG_PARSE",
            &[Value::Int(2), s(","), s("\\")],
        );
        assert_eq!(names(&p), ["COLUMN1", "COLUMN2"]);
        assert_eq!(p.parse(&s("a,b")).unwrap(), vec![s("a"), s("b")]);
        assert_eq!(p.parse(&s("a\\,b")).unwrap(), vec![s("a,b"), Value::Null]);
        // Quotes, the same or two different ones, and a delimiter of several characters.
        let p = parser(
            "VARIABLE_COLUMN_LOG_PARSE",
            &[Value::Int(3), s("::"), s(""), s("\"")],
        );
        assert_eq!(
            p.parse(&s("\"a::b\"::c::é")).unwrap(),
            vec![s("a::b"), s("c"), s("é")]
        );
        let p = parser(
            "VARIABLE_COLUMN_LOG_PARSE",
            &[Value::Int(2), s("\t"), s(""), s("[]")],
        );
        assert_eq!(p.parse(&s("[x\ty]\tz")).unwrap(), vec![s("x\ty"), s("z")]);
        // Types, a format, NOT NULL.
        let p = parser(
            "VARIABLE_COLUMN_LOG_PARSE",
            &[
                s("N TYPE INTEGER, \"when\" TYPE TIMESTAMP 'dd/MMM/yyyy:HH:mm:ss', OK BOOLEAN NOT NULL"),
                s("|"),
            ],
        );
        assert_eq!(names(&p), ["N", "when", "OK"]);
        assert_eq!(
            p.parse(&s(" 7 |01/Jan/1970:00:00:01| true")).unwrap(),
            vec![Value::Int(7), Value::Timestamp(1000), Value::Bool(true)]
        );
        assert_eq!(
            p.parse(&s("|01/Jan/1970:00:00:01|FALSE")).unwrap(),
            vec![Value::Null, Value::Timestamp(1000), Value::Bool(false)]
        );
        assert!(p.parse(&s("x|01/Jan/1970:00:00:01|true")).is_err());
        assert!(p.parse(&s("1|01/Jan/1970:00:00:01")).is_err());
        assert!(p.parse(&s("1|1970|true")).is_err());
        for args in [
            vec![Value::Int(0), s(",")],
            vec![Value::Int(1), s("")],
            vec![Value::Int(1), s(","), s("ab")],
            vec![Value::Int(1), s(","), s(""), s("abc")],
            vec![s("A INTEGER, A INTEGER"), s(",")],
            vec![s("A VARCHAR(4) 'yyyy'"), s(",")],
            vec![s("A TYPE NOPE"), s(",")],
            vec![Value::Int(2)],
        ] {
            assert!(
                LogParser::new("VARIABLE_COLUMN_LOG_PARSE", &args).is_err(),
                "{args:?}"
            );
        }
    }

    #[test]
    fn fixed_columns_are_cut_by_character() {
        // SQLstream's example (the KDA reference has none): '  1   true'.
        let p = parser(
            "FIXED_COLUMN_LOG_PARSE",
            &[s("a TYPE Integer START 0 FOR 3, b TYPE boolean START 4")],
        );
        assert_eq!(names(&p), ["A", "B"]);
        assert_eq!(
            p.parse(&s("  1   true")).unwrap(),
            vec![Value::Int(1), Value::Bool(true)]
        );
        let p = parser(
            "FIXED_COLUMN_LOG_PARSE",
            &[s("A TYPE VARCHAR(8) START 0 FOR 2, B TYPE VARCHAR(8) START 2 FOR 3, C TYPE VARCHAR(8) START 9")],
        );
        assert_eq!(
            p.parse(&s("ééabc")).unwrap(),
            vec![s("éé"), s("abc"), Value::Null]
        );
        assert_eq!(
            p.parse(&s("ééa")).unwrap(),
            vec![s("éé"), s("a"), Value::Null]
        );
        assert_eq!(p.parse(&s("")).unwrap(), vec![Value::Null; 3]);
        assert_eq!(chars_at("abc", 1, Some(0)), Some(""));
        assert_eq!(chars_at("abc", 3, None), None);
        assert_eq!(chars_at("abc", usize::MAX, Some(usize::MAX)), None);
        assert_eq!(chars_at("abc", 0, Some(usize::MAX)), Some("abc"));
        for list in [
            "A INTEGER",
            "A INTEGER START x",
            "A INTEGER START 99999999999999999999",
        ] {
            assert!(
                LogParser::new("FIXED_COLUMN_LOG_PARSE", &[s(list)]).is_err(),
                "{list}"
            );
        }
    }

    #[test]
    fn no_input_panics() {
        let parsers = [
            parser("W3C_LOG_PARSE", &[s("NCSA EXTENDED")]),
            parser("W3C_LOG_PARSE", &[s("%h%l%{x}i%[y]o %t")]),
            parser("REGEX_LOG_PARSE", &[s("(.)(.)?(é)")]),
            parser(
                "VARIABLE_COLUMN_LOG_PARSE",
                &[Value::Int(5), s("é"), s("\\"), s("«»")],
            ),
            parser(
                "FIXED_COLUMN_LOG_PARSE",
                &[s("A START 1 FOR 2, B START 0, C START 5 FOR 0")],
            ),
            parser("FAST_REGEX_LOG_PARSE", &[s("(.)(é*)«(.*)»(<Alpha>+)")]),
            parser("SYS_LOG_PARSE", &[]),
        ];
        let inputs = "|é|\\|«|»é«|a\\|éé\\é|[|\"|\\\"\"|\n|\r\n|a b c|ééééééééé|«é»é«é|\\«»";
        for p in &parsers {
            for i in inputs.split('|') {
                if let Ok(row) = p.parse(&s(i)) {
                    assert_eq!(row.len(), p.columns.len(), "{i:?}");
                }
            }
        }
    }
}
