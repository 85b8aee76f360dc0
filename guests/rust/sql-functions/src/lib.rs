//! `sql-functions`: scalar SQL functions for Weir's SQL step (the `sql-udf` world).
//!
//! - `HAVERSINE_KM(lat1, lon1, lat2, lon2)`: the great-circle distance in kilometres between two
//!   points given in degrees (DOUBLE), on a sphere of the Earth's mean radius (6371.0088 km).
//!   NULL if any argument is NULL.
//! - `PARSE_DURATION(text)`: a duration such as `1h30m`, `250ms`, `2d` or `45s` as BIGINT
//!   milliseconds. Units are `d`, `h`, `m`, `s` and `ms` (lower case), each after a whole number;
//!   a bare `0` is 0. NULL gives NULL; a value that does not parse fails its row (its record goes
//!   to the error output with the reason), and the other rows go on.
//! - `UPPER_UDF(text)`: upper case, exactly as SQL's built-in `UPPER` (Rust's
//!   `str::to_uppercase`, so `ß` becomes `SS`). It exists to compare the cost of a UDF call with
//!   the built-in. NULL gives NULL.
//!
//! All are deterministic. The logic works on [`Column`]s, plain mirrors of the WIT types, so that
//! ordinary `cargo test` covers it natively; the WIT glue is in `guest` and only exists on wasm.

use weir_guest::{
    any_null, check_ends, check_nulls, check_str_ends, null_flags, str_slices, TextPacker,
};

/// The Earth's mean radius (IUGG), in kilometres.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// The type of an argument or result (`sql.data-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Boolean,
    Int64,
    Float64,
    Utf8,
    Binary,
    TimestampMs,
}

impl DataType {
    /// The name the WIT gives it.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Boolean => "boolean",
            DataType::Int64 => "int64",
            DataType::Float64 => "float64",
            DataType::Utf8 => "utf8",
            DataType::Binary => "binary",
            DataType::TimestampMs => "timestamp-ms",
        }
    }
}

/// The values of a column (`sql.values`): one list for the whole column.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Boolean(Vec<bool>),
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    /// Value `i` is `data[ends[i - 1] .. ends[i]]` (from 0 for the first), offsets in bytes.
    Utf8 {
        data: String,
        ends: Vec<u32>,
    },
    Binary {
        data: Vec<u8>,
        ends: Vec<u32>,
    },
    TimestampMs(Vec<i64>),
}

impl Values {
    pub fn data_type(&self) -> DataType {
        match self {
            Values::Boolean(_) => DataType::Boolean,
            Values::Int64(_) => DataType::Int64,
            Values::Float64(_) => DataType::Float64,
            Values::Utf8 { .. } => DataType::Utf8,
            Values::Binary { .. } => DataType::Binary,
            Values::TimestampMs(_) => DataType::TimestampMs,
        }
    }

    /// How many values (rows) there are.
    pub fn len(&self) -> usize {
        match self {
            Values::Boolean(v) => v.len(),
            Values::Int64(v) | Values::TimestampMs(v) => v.len(),
            Values::Float64(v) => v.len(),
            Values::Utf8 { ends, .. } | Values::Binary { ends, .. } => ends.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A column (`sql.column`): the NULL rows, ascending, and a value (a placeholder for NULL rows)
/// per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub nulls: Vec<u32>,
    pub values: Values,
}

/// A row whose call failed (`sql.row-error`).
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub row: u32,
    pub message: String,
}

/// A function's answer for a batch (`sql.results`).
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    pub column: Column,
    pub errors: Vec<RowError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Haversine,
    ParseDuration,
    Upper,
}

/// A function of this module (`sql.signature`; all are deterministic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    pub name: &'static str,
    pub args: &'static [DataType],
    pub returns: DataType,
    func: Func,
}

/// The functions this module provides.
pub const FUNCTIONS: &[Signature] = &[
    Signature {
        name: "HAVERSINE_KM",
        args: &[
            DataType::Float64,
            DataType::Float64,
            DataType::Float64,
            DataType::Float64,
        ],
        returns: DataType::Float64,
        func: Func::Haversine,
    },
    Signature {
        name: "PARSE_DURATION",
        args: &[DataType::Utf8],
        returns: DataType::Int64,
        func: Func::ParseDuration,
    },
    Signature {
        name: "UPPER_UDF",
        args: &[DataType::Utf8],
        returns: DataType::Utf8,
        func: Func::Upper,
    },
];

/// Evaluates function `name` (any case) over `rows` rows. An unknown function, or arguments
/// that do not match its signature, fail the whole call; a value a function cannot handle fails
/// only its row.
pub fn call(name: &str, rows: u32, args: Vec<Column>) -> Result<Results, String> {
    let signature = FUNCTIONS
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let known: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
            format!(
                "unknown function {name}: sql-functions provides {}",
                known.join(", ")
            )
        })?;
    let rows = rows as usize;
    check_args(signature, rows, &args)?;
    match signature.func {
        Func::Haversine => haversine_column(&args),
        Func::ParseDuration => parse_duration_column(rows, first(args)?),
        Func::Upper => upper_column(first(args)?),
    }
}

/// Checks that `args` are what `signature` declares: as many, of its types, with `rows` values
/// each, and packed consistently (so that nothing below can panic on them).
fn check_args(signature: &Signature, rows: usize, args: &[Column]) -> Result<(), String> {
    let name = signature.name;
    let want = signature.args.len();
    if args.len() != want {
        return Err(format!(
            "{name} takes {want} argument{}, got {}",
            if want == 1 { "" } else { "s" },
            args.len()
        ));
    }
    for (i, (arg, &expected)) in args.iter().zip(signature.args).enumerate() {
        let n = i + 1;
        let got = arg.values.data_type();
        if got != expected {
            return Err(format!(
                "{name}: argument {n} is {}, expected {}",
                got.name(),
                expected.name()
            ));
        }
        if arg.values.len() != rows {
            return Err(format!(
                "{name}: argument {n} has {} values for {rows} rows",
                arg.values.len()
            ));
        }
        let packed = match &arg.values {
            Values::Utf8 { data, ends } => check_str_ends(data, ends),
            Values::Binary { data, ends } => check_ends(data.len(), ends),
            _ => Ok(()),
        };
        packed
            .and_then(|()| check_nulls(&arg.nulls, rows))
            .map_err(|e| format!("{name}: argument {n}: {e}"))?;
    }
    Ok(())
}

fn first(args: Vec<Column>) -> Result<Column, String> {
    args.into_iter()
        .next()
        .ok_or_else(|| "missing argument".to_string())
}

fn floats(column: &Column) -> Result<&[f64], String> {
    match &column.values {
        Values::Float64(v) => Ok(v.as_slice()),
        other => Err(format!(
            "expected float64, got {}",
            other.data_type().name()
        )),
    }
}

fn texts(values: Values) -> Result<(String, Vec<u32>), String> {
    match values {
        Values::Utf8 { data, ends } => Ok((data, ends)),
        other => Err(format!("expected utf8, got {}", other.data_type().name())),
    }
}

/// The great-circle distance in kilometres between two points given in degrees.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let half_dphi = (phi2 - phi1) / 2.0;
    let half_dlambda = (lon2 - lon1).to_radians() / 2.0;
    let a = half_dphi.sin().powi(2) + phi1.cos() * phi2.cos() * half_dlambda.sin().powi(2);
    // Rounding can push `a` a hair past 1 for antipodal points.
    2.0 * EARTH_RADIUS_KM * a.clamp(0.0, 1.0).sqrt().asin()
}

fn haversine_column(args: &[Column]) -> Result<Results, String> {
    let [lat1, lon1, lat2, lon2] = args else {
        return Err("HAVERSINE_KM takes 4 arguments".into());
    };
    let (a, b, c, d) = (floats(lat1)?, floats(lon1)?, floats(lat2)?, floats(lon2)?);
    // NULL rows hold placeholders: compute over them too (no branch per row), then reset them.
    let mut km: Vec<f64> = a
        .iter()
        .zip(b)
        .zip(c)
        .zip(d)
        .map(|(((&p, &q), &r), &s)| haversine_km(p, q, r, s))
        .collect();
    let nulls = any_null(&[
        lat1.nulls.as_slice(),
        lon1.nulls.as_slice(),
        lat2.nulls.as_slice(),
        lon2.nulls.as_slice(),
    ]);
    for &row in &nulls {
        if let Some(value) = km.get_mut(row as usize) {
            *value = 0.0;
        }
    }
    Ok(Results {
        column: Column {
            nulls,
            values: Values::Float64(km),
        },
        errors: Vec::new(),
    })
}

/// Milliseconds of a duration such as `1h30m`, `250ms`, `2d` or `45s`; the error names the value.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    duration_ms(text).map_err(|why| {
        format!(
            "PARSE_DURATION: cannot parse {} as a duration: {why}",
            quote(text)
        )
    })
}

fn duration_ms(text: &str) -> Result<i64, String> {
    const UNITS: &str = "use d, h, m, s or ms after a whole number, e.g. 1h30m";
    if text.is_empty() {
        return Err(format!("it is empty ({UNITS})"));
    }
    if text == "0" {
        return Ok(0);
    }
    let too_long = || "it is too long for BIGINT milliseconds".to_string();
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut total: i64 = 0;
    while pos < bytes.len() {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == start {
            return Err(format!(
                "expected a number at {} ({UNITS})",
                quote(&text[start..])
            ));
        }
        let number = &text[start..pos];
        // The unit runs to the next digit; both ends are ASCII, so on character boundaries.
        let unit_start = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let scale: i64 = match &text[unit_start..pos] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("{number} has no unit ({UNITS})")),
            unit => return Err(format!("unknown unit {} ({UNITS})", quote(unit))),
        };
        // Only digits: parsing fails only when the number overflows.
        let n: i64 = number.parse().map_err(|_| too_long())?;
        total = n
            .checked_mul(scale)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(too_long)?;
    }
    Ok(total)
}

/// `text` quoted for a message, cut after 64 characters.
fn quote(text: &str) -> String {
    match text.char_indices().nth(64) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
    }
}

fn parse_duration_column(rows: usize, column: Column) -> Result<Results, String> {
    let Column { nulls, values } = column;
    let (data, ends) = texts(values)?;
    let mut ms = Vec::with_capacity(rows);
    let mut errors = Vec::new();
    let rows_in = str_slices(&data, &ends).zip(null_flags(&nulls, rows));
    for (row, (text, null)) in rows_in.enumerate() {
        if null {
            ms.push(0);
            continue;
        }
        match parse_duration(text) {
            Ok(value) => ms.push(value),
            Err(message) => {
                ms.push(0);
                errors.push(RowError {
                    row: row as u32,
                    message,
                });
            }
        }
    }
    Ok(Results {
        column: Column {
            nulls,
            values: Values::Int64(ms),
        },
        errors,
    })
}

/// Appends `text` in upper case, as `str::to_uppercase` (and so SQL's `UPPER`) writes it: that
/// maps every character on its own, so it can be done character by character.
pub fn push_upper(text: &str, out: &mut String) {
    if text.is_ascii() {
        let start = out.len();
        out.push_str(text);
        out[start..].make_ascii_uppercase();
        return;
    }
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_uppercase());
        } else {
            out.extend(c.to_uppercase());
        }
    }
}

/// Upper-cases a packed column of strings, in one pass and without a string per value. An
/// all-ASCII column (the usual case) is changed in place: its ends stay as they are.
pub fn upper_texts(mut data: String, ends: Vec<u32>) -> (String, Vec<u32>) {
    if data.is_ascii() {
        data.make_ascii_uppercase();
        return (data, ends);
    }
    // Upper case is mostly the same length; `ß` and a few others grow.
    let mut out = TextPacker::with_capacity(ends.len(), data.len() + data.len() / 8);
    for value in str_slices(&data, &ends) {
        out.push_with(|buf| push_upper(value, buf));
    }
    (out.data, out.ends)
}

fn upper_column(column: Column) -> Result<Results, String> {
    let Column { nulls, values } = column;
    let (data, ends) = texts(values)?;
    // A NULL row's placeholder is empty, and stays so: the NULLs carry over unchanged.
    let (data, ends) = upper_texts(data, ends);
    Ok(Results {
        column: Column {
            nulls,
            values: Values::Utf8 { data, ends },
        },
        errors: Vec::new(),
    })
}

#[cfg(target_arch = "wasm32")]
mod guest {
    wit_bindgen::generate!({ path: "../../../wit", world: "sql-udf" });

    use weir::plugin::sql;

    struct SqlFunctions;

    impl Guest for SqlFunctions {
        fn init() -> Result<(), String> {
            Ok(())
        }

        fn functions() -> Vec<Signature> {
            super::FUNCTIONS
                .iter()
                .map(|f| Signature {
                    name: f.name.to_string(),
                    args: f.args.iter().map(|&t| to_wit_type(t)).collect(),
                    returns: to_wit_type(f.returns),
                    deterministic: true,
                })
                .collect()
        }

        fn call(name: String, rows: u32, args: Vec<Column>) -> Result<Results, String> {
            let args = args.into_iter().map(from_wit).collect();
            let results = super::call(&name, rows, args)?;
            Ok(Results {
                column: to_wit(results.column),
                errors: results
                    .errors
                    .into_iter()
                    .map(|e| sql::RowError {
                        row: e.row,
                        message: e.message,
                    })
                    .collect(),
            })
        }
    }

    fn to_wit_type(t: super::DataType) -> sql::DataType {
        match t {
            super::DataType::Boolean => sql::DataType::Boolean,
            super::DataType::Int64 => sql::DataType::Int64,
            super::DataType::Float64 => sql::DataType::Float64,
            super::DataType::Utf8 => sql::DataType::Utf8,
            super::DataType::Binary => sql::DataType::Binary,
            super::DataType::TimestampMs => sql::DataType::TimestampMs,
        }
    }

    /// Moves a column out of the bindings' types: no value is copied.
    fn from_wit(column: sql::Column) -> super::Column {
        let values = match column.values {
            sql::Values::Boolean(v) => super::Values::Boolean(v),
            sql::Values::Int64(v) => super::Values::Int64(v),
            sql::Values::Float64(v) => super::Values::Float64(v),
            sql::Values::Utf8(t) => super::Values::Utf8 {
                data: t.data,
                ends: t.ends,
            },
            sql::Values::Binary(b) => super::Values::Binary {
                data: b.data,
                ends: b.ends,
            },
            sql::Values::TimestampMs(v) => super::Values::TimestampMs(v),
        };
        super::Column {
            nulls: column.nulls,
            values,
        }
    }

    fn to_wit(column: super::Column) -> sql::Column {
        let values = match column.values {
            super::Values::Boolean(v) => sql::Values::Boolean(v),
            super::Values::Int64(v) => sql::Values::Int64(v),
            super::Values::Float64(v) => sql::Values::Float64(v),
            super::Values::Utf8 { data, ends } => sql::Values::Utf8(sql::Texts { data, ends }),
            super::Values::Binary { data, ends } => sql::Values::Binary(sql::Blobs { data, ends }),
            super::Values::TimestampMs(v) => sql::Values::TimestampMs(v),
        };
        sql::Column {
            nulls: column.nulls,
            values,
        }
    }

    export!(SqlFunctions);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats_col(values: &[f64], nulls: &[u32]) -> Column {
        Column {
            nulls: nulls.to_vec(),
            values: Values::Float64(values.to_vec()),
        }
    }

    fn texts_col(values: &[Option<&str>]) -> Column {
        let mut packed = TextPacker::default();
        let mut nulls = Vec::new();
        for (row, value) in values.iter().enumerate() {
            match value {
                Some(text) => packed.push(text),
                None => {
                    nulls.push(row as u32);
                    packed.push("");
                }
            }
        }
        Column {
            nulls,
            values: Values::Utf8 {
                data: packed.data,
                ends: packed.ends,
            },
        }
    }

    /// A text column's values, None for NULL.
    fn texts_of(column: &Column) -> Vec<Option<String>> {
        let Values::Utf8 { data, ends } = &column.values else {
            panic!("not utf8: {column:?}");
        };
        str_slices(data, ends)
            .zip(null_flags(&column.nulls, ends.len()))
            .map(|(text, null)| (!null).then(|| text.to_string()))
            .collect()
    }

    #[test]
    fn haversine_matches_known_distances() {
        let close = |got: f64, want: f64| assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        // Near the antipodes `asin` is steep: allow for another libm's last bit.
        let near = |got: f64, want: f64| assert!((got - want).abs() < 1e-3, "{got} vs {want}");
        // Paris to London.
        close(
            haversine_km(48.8566, 2.3522, 51.5074, -0.1278),
            343.556_534_880_883,
        );
        // New York to Tokyo.
        close(
            haversine_km(40.7128, -74.0060, 35.6762, 139.6503),
            10_851.747_837_814_11,
        );
        // One degree of the equator, antipodes (half the circumference), the same point.
        close(haversine_km(0.0, 0.0, 0.0, 1.0), 111.195_080_233_532_9);
        near(
            haversine_km(0.0, 0.0, 0.0, 180.0),
            std::f64::consts::PI * EARTH_RADIUS_KM,
        );
        near(
            haversine_km(90.0, 0.0, -90.0, 0.0),
            std::f64::consts::PI * EARTH_RADIUS_KM,
        );
        assert_eq!(haversine_km(12.5, -7.25, 12.5, -7.25), 0.0);
        // Symmetric.
        close(
            haversine_km(1.0, 2.0, 3.0, 4.0),
            haversine_km(3.0, 4.0, 1.0, 2.0),
        );
    }

    #[test]
    fn haversine_column_is_null_where_any_argument_is() {
        let args = vec![
            floats_col(&[48.8566, 0.0, 0.0, 1.0], &[1]),
            floats_col(&[2.3522, 0.0, 0.0, 2.0], &[]),
            floats_col(&[51.5074, 0.0, 0.0, 3.0], &[]),
            floats_col(&[-0.1278, 1.0, 0.0, 4.0], &[1, 2]),
        ];
        let results = call("haversine_km", 4, args).unwrap();
        assert_eq!(results.column.nulls, vec![1, 2]);
        assert!(results.errors.is_empty());
        let Values::Float64(km) = &results.column.values else {
            panic!("not float64");
        };
        assert_eq!(km.len(), 4);
        assert!((km[0] - 343.556_534_880_883).abs() < 1e-6);
        assert_eq!((km[1], km[2]), (0.0, 0.0));
        assert_eq!(km[3], haversine_km(1.0, 2.0, 3.0, 4.0));
    }

    #[test]
    fn parses_durations() {
        for (text, ms) in [
            ("250ms", 250),
            ("45s", 45_000),
            ("1m", 60_000),
            ("1h30m", 5_400_000),
            ("2d", 172_800_000),
            ("1d2h3m4s5ms", 93_784_005),
            ("1ms5s", 5_001),
            ("0", 0),
            ("0s", 0),
            ("007s", 7_000),
        ] {
            assert_eq!(parse_duration(text), Ok(ms), "{text}");
        }
        assert_eq!(
            parse_duration("106751991167d").unwrap(),
            106_751_991_167 * 86_400_000
        );
    }

    #[test]
    fn duration_errors_name_the_value_and_the_reason() {
        for (text, reason) in [
            ("", "it is empty"),
            ("abc", "expected a number at \"abc\""),
            ("1h30", "30 has no unit"),
            ("5", "5 has no unit"),
            ("1.5h", "unknown unit \".\""),
            ("10x", "unknown unit \"x\""),
            ("3 s", "unknown unit \" s\""),
            ("2µs", "unknown unit \"µs\""),
            ("1H", "unknown unit \"H\""),
            ("-5s", "expected a number at \"-5s\""),
            ("106751991168d", "too long"),
            ("99999999999999999999ms", "too long"),
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(
                err.starts_with(&format!(
                    "PARSE_DURATION: cannot parse {text:?} as a duration"
                )),
                "{err}"
            );
            assert!(err.contains(reason), "{text}: {err}");
        }
        let long = "x".repeat(100);
        let err = parse_duration(&long).unwrap_err();
        assert!(err.contains(&format!("{:?}…", "x".repeat(64))), "{err}");
        assert!(err.len() < 300, "{err}");
    }

    #[test]
    fn parse_duration_fails_bad_rows_only_and_keeps_nulls() {
        let args = vec![texts_col(&[
            Some("1h30m"),
            None,
            Some("soon"),
            Some("250ms"),
        ])];
        let results = call("PARSE_DURATION", 4, args).unwrap();
        assert_eq!(
            results.column,
            Column {
                nulls: vec![1],
                values: Values::Int64(vec![5_400_000, 0, 0, 250]),
            }
        );
        assert_eq!(results.errors.len(), 1);
        assert_eq!(results.errors[0].row, 2);
        assert!(
            results.errors[0].message.contains("\"soon\""),
            "{}",
            results.errors[0].message
        );
    }

    #[test]
    fn upper_is_the_same_as_str_to_uppercase() {
        let samples = [
            "hello, World 42",
            "",
            "straße",
            "ﬁsh ǆ ǅ",
            "ıi İ ŉ",
            "ὀδυσσεύς",
            "日本語 🎉 ä",
            "mixed ascii then é",
        ];
        for text in samples {
            let mut out = String::from("keep:");
            push_upper(text, &mut out);
            assert_eq!(out, format!("keep:{}", text.to_uppercase()), "{text}");
        }
        // Whole columns, ASCII only (in place) and not.
        for column in [&samples[..2], &samples[..]] {
            let values: Vec<Option<&str>> = column.iter().map(|&s| Some(s)).collect();
            let args = vec![texts_col(&values)];
            let results = call("UPPER_UDF", column.len() as u32, args).unwrap();
            let want: Vec<Option<String>> = column.iter().map(|s| Some(s.to_uppercase())).collect();
            assert_eq!(texts_of(&results.column), want);
            assert!(results.errors.is_empty());
        }
    }

    #[test]
    fn upper_keeps_nulls() {
        let args = vec![texts_col(&[Some("a"), None, Some("é"), None])];
        let results = call("Upper_Udf", 4, args).unwrap();
        assert_eq!(results.column.nulls, vec![1, 3]);
        assert_eq!(
            texts_of(&results.column),
            vec![Some("A".to_string()), None, Some("É".to_string()), None]
        );
    }

    #[test]
    fn bad_calls_fail_whole() {
        let text = || texts_col(&[Some("1s")]);
        let err = |name: &str, rows: u32, args: Vec<Column>| call(name, rows, args).unwrap_err();

        let e = err("NOPE", 1, vec![text()]);
        assert!(e.starts_with("unknown function NOPE"), "{e}");
        assert!(e.contains("HAVERSINE_KM, PARSE_DURATION, UPPER_UDF"), "{e}");

        let e = err("PARSE_DURATION", 1, vec![text(), text()]);
        assert_eq!(e, "PARSE_DURATION takes 1 argument, got 2");
        let e = err("HAVERSINE_KM", 1, vec![floats_col(&[1.0], &[])]);
        assert_eq!(e, "HAVERSINE_KM takes 4 arguments, got 1");

        let e = err("UPPER_UDF", 1, vec![floats_col(&[1.0], &[])]);
        assert_eq!(e, "UPPER_UDF: argument 1 is float64, expected utf8");
        let mut args = vec![floats_col(&[1.0], &[]); 4];
        args[2] = text();
        let e = err("HAVERSINE_KM", 1, args);
        assert_eq!(e, "HAVERSINE_KM: argument 3 is utf8, expected float64");

        let e = err("PARSE_DURATION", 2, vec![text()]);
        assert_eq!(e, "PARSE_DURATION: argument 1 has 1 values for 2 rows");

        let bad_ends = Column {
            nulls: vec![],
            values: Values::Utf8 {
                data: "é".into(),
                ends: vec![1],
            },
        };
        let e = err("UPPER_UDF", 1, vec![bad_ends]);
        assert!(e.contains("inside a character"), "{e}");
        let bad_nulls = Column {
            nulls: vec![1],
            ..text()
        };
        let e = err("PARSE_DURATION", 1, vec![bad_nulls]);
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn signatures_are_unique_and_consistent() {
        for (i, f) in FUNCTIONS.iter().enumerate() {
            assert!(FUNCTIONS[..i]
                .iter()
                .all(|g| !g.name.eq_ignore_ascii_case(f.name)));
            assert_eq!(f.name, f.name.to_ascii_uppercase());
        }
        assert_eq!(FUNCTIONS[0].args.to_vec(), vec![DataType::Float64; 4]);
        assert_eq!(FUNCTIONS[1].returns, DataType::Int64);
    }
}
