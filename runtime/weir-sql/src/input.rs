//! Turning a record into rows of its in-application stream, as KDA's schema mapping did.
//!
//! Coercions (the KDA Developer Guide's): a path that finds nothing, or JSON `null`, gives
//! NULL; a numeric string into a numeric column is converted; a non-numeric value into a
//! numeric column, a fraction into an integer column, an unparseable timestamp, or a record
//! that is not JSON, fails the record (it goes to the error output); a too-long VARCHAR is
//! truncated; an object or array into a VARCHAR column is its JSON text; a string into a
//! BOOLEAN column is true when it is `true` in any case, false otherwise; JSON `true` and
//! `false` are 1 and 0 in a numeric column, a number is true in a BOOLEAN one unless it is 0;
//! a number into a TIMESTAMP column fails (KDA took timestamps as strings only).
//!
//! Arrays: a column mapped `$.a[0:].b` flattens `a`, one row per element (the other columns
//! repeat; an empty array gives one row, with NULL in the flattened columns); only one array
//! may be flattened. A column mapped `$.a[0:]` takes the whole array, as its JSON text.

use serde_json::Value as Json;

use crate::app::{Input, RecordFormat};
use crate::jsonpath::{Path, Step};
use crate::value::{parse_timestamp, SqlType, Value};

#[derive(Debug, Clone)]
enum Col {
    /// A path from the row (or, `true`, from the record's root).
    Plain(Path, bool),
    /// A path from the element of the flattened array.
    Element(Path),
}

/// An input's mapping, compiled.
#[derive(Debug, Clone)]
pub struct Mapper {
    kind: Kind,
    types: Vec<SqlType>,
    /// A value that does not convert is NULL instead of failing the record (reference data:
    /// KDA read a CSV header line as a row, NULL in its numeric columns).
    lenient: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    Json {
        rows: Path,
        /// The array flattened into rows, if any (its path from the row).
        flatten: Option<Path>,
        columns: Vec<Col>,
        /// When every column is one member of the record itself (`$.name`), the most common
        /// schema: each name with its columns. Such a record is read without building it as a
        /// JSON tree: only those members' values are, and the others are skipped.
        members: Option<Vec<(String, Vec<usize>)>>,
    },
    Csv {
        row: String,
        column: String,
    },
}

impl Mapper {
    pub fn new(input: &Input) -> Result<Mapper, String> {
        let types = input.schema.columns.iter().map(|c| c.ty).collect();
        let kind = match &input.schema.format {
            RecordFormat::Json { row_path } => {
                let rows = Path::parse(row_path)?;
                let mut flatten: Option<Path> = None;
                let mut columns = Vec::new();
                for c in &input.schema.columns {
                    let full = Path::parse(c.mapping.as_deref().unwrap_or("$"))?;
                    let (mut rel, root) = match full.strip(&rows) {
                        Some(rel) => (rel, false),
                        None => (full, true),
                    };
                    // A trailing `[0:]` takes the whole array.
                    if rel.0.last() == Some(&Step::Each) {
                        rel.0.pop();
                    }
                    let col = match rel.0.iter().position(|s| *s == Step::Each) {
                        None => Col::Plain(rel, root),
                        Some(at) if !root => {
                            let array = Path(rel.0[..at].to_vec());
                            let rest = Path(rel.0[at + 1..].to_vec());
                            if rest.fans_out() {
                                return Err(format!(
                                    "column {}: only one level of array can be flattened",
                                    c.name
                                ));
                            }
                            match &flatten {
                                Some(f) if *f != array => {
                                    return Err(format!(
                                        "column {}: only one array can be flattened in a schema",
                                        c.name
                                    ))
                                }
                                _ => flatten = Some(array),
                            }
                            Col::Element(rest)
                        }
                        Some(_) => {
                            return Err(format!(
                                "column {}: an array outside the record path cannot be flattened",
                                c.name
                            ))
                        }
                    };
                    columns.push(col);
                }
                let members = (rows.0.is_empty() && flatten.is_none())
                    .then(|| {
                        let mut members: Vec<(String, Vec<usize>)> = Vec::new();
                        for (i, c) in columns.iter().enumerate() {
                            let Col::Plain(Path(steps), _) = c else {
                                return None;
                            };
                            let [Step::Key(k)] = steps.as_slice() else {
                                return None;
                            };
                            match members.iter_mut().find(|(m, _)| m == k) {
                                Some((_, cols)) => cols.push(i),
                                None => members.push((k.clone(), vec![i])),
                            }
                        }
                        Some(members)
                    })
                    .flatten();
                Kind::Json {
                    rows,
                    flatten,
                    columns,
                    members,
                }
            }
            RecordFormat::Csv {
                row_delimiter,
                column_delimiter,
            } => Kind::Csv {
                row: row_delimiter.clone(),
                column: column_delimiter.clone(),
            },
        };
        Ok(Mapper {
            kind,
            types,
            lenient: false,
        })
    }

    /// The same mapping, with values that do not convert read as NULL.
    pub fn lenient(mut self) -> Mapper {
        self.lenient = true;
        self
    }

    fn value(&self, v: Option<&Json>, ty: SqlType) -> Result<Value, String> {
        match coerce(v, ty) {
            Err(_) if self.lenient => Ok(Value::Null),
            other => other,
        }
    }

    /// The rows of one record, appended to `out`; `Err` says why the record does not fit.
    pub fn rows(&self, data: &[u8], out: &mut Vec<Vec<Value>>) -> Result<(), String> {
        match &self.kind {
            Kind::Json {
                members: Some(members),
                ..
            } => {
                let mut found: Vec<Option<Json>> = vec![None; self.types.len()];
                let mut de = serde_json::Deserializer::from_slice(data);
                serde::de::DeserializeSeed::deserialize(
                    Members {
                        members,
                        found: &mut found,
                    },
                    &mut de,
                )
                .and_then(|()| de.end())
                .map_err(|e| format!("the record is not JSON: {e}"))?;
                let mut vals = Vec::with_capacity(found.len());
                for (v, ty) in found.iter().zip(&self.types) {
                    vals.push(self.value(v.as_ref(), *ty)?);
                }
                out.push(vals);
                Ok(())
            }
            Kind::Json {
                rows,
                flatten,
                columns,
                ..
            } => {
                let doc: Json = serde_json::from_slice(data)
                    .map_err(|e| format!("the record is not JSON: {e}"))?;
                let mut found = Vec::new();
                rows.all(&doc, &mut found);
                for row in found {
                    let elements: Vec<Option<&Json>> = match flatten.as_ref().map(|f| f.get(row)) {
                        Some(Some(Json::Array(a))) if !a.is_empty() => a.iter().map(Some).collect(),
                        _ => vec![None],
                    };
                    for element in elements {
                        let mut vals = Vec::with_capacity(columns.len());
                        for (col, ty) in columns.iter().zip(&self.types) {
                            let v = match col {
                                Col::Plain(path, true) => path.get(&doc),
                                Col::Plain(path, false) => path.get(row),
                                Col::Element(path) => element.and_then(|e| path.get(e)),
                            };
                            vals.push(self.value(v, *ty)?);
                        }
                        out.push(vals);
                    }
                }
                Ok(())
            }
            Kind::Csv { row, column } => {
                let text = std::str::from_utf8(data)
                    .map_err(|e| format!("the record is not UTF-8: {e}"))?;
                for line in text.split(row.as_str()).filter(|l| !l.is_empty()) {
                    let fields: Vec<&str> = line.split(column.as_str()).collect();
                    let mut vals = Vec::with_capacity(self.types.len());
                    for (i, ty) in self.types.iter().enumerate() {
                        vals.push(match fields.get(i) {
                            None => Value::Null,
                            Some(f) => self.value(Some(&Json::String((*f).to_string())), *ty)?,
                        });
                    }
                    out.push(vals);
                }
                Ok(())
            }
        }
    }
}

/// Reads a record's members that columns map, skipping the others; a record that is not an
/// object finds none (its columns are NULL, as a path that finds nothing is).
struct Members<'a> {
    members: &'a [(String, Vec<usize>)],
    found: &'a mut [Option<Json>],
}

impl<'de> serde::de::DeserializeSeed<'de> for Members<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Members<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.members.iter().find(|(m, _)| *m == *key) {
                Some((_, cols)) => {
                    let v: Json = map.next_value()?;
                    // A repeated member: the last one counts, as in a parsed object.
                    for &c in cols {
                        self.found[c] = Some(v.clone());
                    }
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

fn coerce(v: Option<&Json>, ty: SqlType) -> Result<Value, String> {
    let Some(v) = v else {
        return Ok(Value::Null);
    };
    let bad = || format!("cannot convert `{v}` to {ty}");
    Ok(match (v, ty) {
        (Json::Null, _) => Value::Null,
        (_, SqlType::Varchar(_) | SqlType::Char(_)) => {
            let text = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            crate::eval::cast(Value::Str(text), ty)?
        }
        (
            Json::Number(n),
            SqlType::Tinyint | SqlType::Smallint | SqlType::Integer | SqlType::Bigint,
        ) => match n.as_i64() {
            Some(i) => crate::eval::cast(Value::Int(i), ty)?,
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 => crate::eval::cast(Value::Double(f), ty)?,
                _ => return Err(format!("cannot convert `{v}` to {ty}: not an integer")),
            },
        },
        (Json::Number(n), SqlType::Real | SqlType::Double | SqlType::Decimal(..)) => {
            crate::eval::cast(Value::Double(n.as_f64().ok_or_else(bad)?), ty)?
        }
        (
            Json::String(s),
            SqlType::Tinyint | SqlType::Smallint | SqlType::Integer | SqlType::Bigint,
        ) => {
            let s = s.trim();
            match s.parse::<i64>() {
                Ok(i) => crate::eval::cast(Value::Int(i), ty)?,
                Err(_) => return Err(bad()),
            }
        }
        (Json::String(s), SqlType::Real | SqlType::Double | SqlType::Decimal(..)) => {
            match s.trim().parse::<f64>() {
                Ok(d) if d.is_finite() => crate::eval::cast(Value::Double(d), ty)?,
                _ => return Err(bad()),
            }
        }
        (Json::Bool(b), SqlType::Boolean) => Value::Bool(*b),
        // KDA: true is 1 and false 0 in a numeric column; a number is true unless it is 0.
        (
            Json::Bool(b),
            SqlType::Tinyint | SqlType::Smallint | SqlType::Integer | SqlType::Bigint,
        ) => Value::Int(i64::from(*b)),
        (Json::Bool(b), SqlType::Real | SqlType::Double | SqlType::Decimal(..)) => {
            Value::Double(if *b { 1.0 } else { 0.0 })
        }
        (Json::Number(n), SqlType::Boolean) => Value::Bool(n.as_f64() != Some(0.0)),
        // KDA: a string is true when it is `true` (in any case), false otherwise.
        (Json::String(s), SqlType::Boolean) => Value::Bool(s.trim().eq_ignore_ascii_case("true")),
        (Json::String(s), SqlType::Timestamp) => {
            Value::Timestamp(parse_timestamp(s).ok_or_else(bad)?)
        }
        // A DATE keeps the day (midnight), a TIME the time of day (`HH:MM:SS[.fff]`, or that
        // of a timestamp), as CAST does.
        (Json::String(s), SqlType::Date | SqlType::Time) => {
            crate::eval::cast(Value::Str(s.clone()), ty).map_err(|_| bad())?
        }
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::parse_app_json;

    fn mapper(row_path: &str, cols: &str) -> Mapper {
        let json = format!(
            r#"[{{"NamePrefix":"S","InputSchema":{{"RecordFormat":{{"RecordFormatType":"JSON",
            "MappingParameters":{{"JSONMappingParameters":{{"RecordRowPath":"{row_path}"}}}}}},
            "RecordColumns":{cols}}}}}]"#
        );
        Mapper::new(&parse_app_json(&json).unwrap().inputs[0]).unwrap()
    }

    #[test]
    fn json_records_become_rows_with_kda_coercions() {
        let m = mapper(
            "$",
            r#"[{"Name":"A","Mapping":"$.a","SqlType":"INTEGER"},
                {"Name":"B","Mapping":"$.b.c","SqlType":"VARCHAR(3)"},
                {"Name":"T","Mapping":"$.t","SqlType":"TIMESTAMP"}]"#,
        );
        let mut rows = Vec::new();
        m.rows(
            br#"{"a":"42","b":{"c":"abcdef"},"t":"2024-05-01 10:00:00"}"#,
            &mut rows,
        )
        .unwrap();
        m.rows(br#"{"b":{"c":{"x":1}}}"#, &mut rows).unwrap();
        assert_eq!(rows[0][0], Value::Int(42));
        assert_eq!(rows[0][1], Value::Str("abc".into()));
        assert!(matches!(rows[0][2], Value::Timestamp(_)));
        assert_eq!(
            rows[1],
            vec![Value::Null, Value::Str("{\"x".into()), Value::Null]
        );
        for bad in [
            r#"{"a":1.5}"#,
            r#"{"a":"x"}"#,
            r#"{"t":"yesterday"}"#,
            r#"{"t":1714557600000}"#,
            "not json",
        ] {
            assert!(m.rows(bad.as_bytes(), &mut Vec::new()).is_err(), "{bad}");
        }
    }

    #[test]
    fn top_level_members_are_read_without_a_tree_and_agree_with_one() {
        let cols = r#"[{"Name":"A","Mapping":"$.a","SqlType":"INTEGER"},
                       {"Name":"B","Mapping":"$['b c']","SqlType":"VARCHAR(9)"},
                       {"Name":"A2","Mapping":"$.a","SqlType":"VARCHAR(4)"}]"#;
        let fast = mapper("$", cols);
        assert!(matches!(
            fast.kind,
            Kind::Json {
                members: Some(_),
                ..
            }
        ));
        // The same schema, read through the tree (a mapping the fast path does not take).
        let mut slow = fast.clone();
        if let Kind::Json { members, .. } = &mut slow.kind {
            *members = None;
        }
        for record in [
            r#"{"a":1,"b c":"x","pad":{"deep":[1,2,{"z":null}]}}"#,
            r#"{"a":1,"a":2,"b c":{"k":[1]}}"#,
            r#"[1,2]"#,
            r#"7"#,
            r#"{"a":"12"}"#,
        ] {
            let (mut f, mut s) = (Vec::new(), Vec::new());
            fast.rows(record.as_bytes(), &mut f).unwrap();
            slow.rows(record.as_bytes(), &mut s).unwrap();
            assert_eq!(f, s, "{record}");
        }
        for bad in [r#"{"a":1"#, r#"{"a":1} x"#, r#"{"a":1.5}"#] {
            assert!(fast.rows(bad.as_bytes(), &mut Vec::new()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_column_path_through_an_array_flattens_it() {
        let m = mapper(
            "$",
            r#"[{"Name":"ID","Mapping":"$.id","SqlType":"BIGINT"},
                {"Name":"P","Mapping":"$.trades[0:].p","SqlType":"DOUBLE"},
                {"Name":"ALL","Mapping":"$.tags[0:]","SqlType":"VARCHAR(20)"}]"#,
        );
        let mut rows = Vec::new();
        m.rows(
            br#"{"id":7,"trades":[{"p":1.5},{"q":1}],"tags":["a","b"]}"#,
            &mut rows,
        )
        .unwrap();
        m.rows(br#"{"id":8,"trades":[]}"#, &mut rows).unwrap();
        let tags = Value::Str(r#"["a","b"]"#.into());
        assert_eq!(
            rows,
            vec![
                vec![Value::Int(7), Value::Double(1.5), tags.clone()],
                vec![Value::Int(7), Value::Null, tags],
                vec![Value::Int(8), Value::Null, Value::Null],
            ]
        );
    }

    #[test]
    fn a_record_path_over_an_array_fans_out() {
        let m = mapper(
            "$.trades[0:]",
            r#"[{"Name":"P","Mapping":"$.trades[0:].p","SqlType":"DOUBLE"},
                {"Name":"ID","Mapping":"$.id","SqlType":"BIGINT"}]"#,
        );
        let mut rows = Vec::new();
        m.rows(br#"{"id":7,"trades":[{"p":1.5},{"p":"2"}]}"#, &mut rows)
            .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Value::Double(1.5), Value::Int(7)],
                vec![Value::Double(2.0), Value::Int(7)]
            ]
        );
    }
}
