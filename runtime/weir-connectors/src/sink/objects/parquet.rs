//! Record format conversion: JSON records to Parquet, with a schema given in the pipeline (as
//! Firehose does with a Glue table). One object is one Parquet file with one row group;
//! compression is the serializer's (Snappy by default), not the object's.
//!
//! Schema file (JSON):
//! `{"columns": [{"name": "customer", "type": "string"}, {"name": "n", "type": "long",
//! "optional": false}, {"name": "at", "type": "timestamp", "field": "meta.at"}]}`.
//! Types: `string`, `int` (32-bit), `long` (64-bit), `float`, `double`, `boolean`, `timestamp`
//! (milliseconds, UTC; from an RFC 3339 string or epoch milliseconds). `field` is a dotted path
//! into the record (default: the column name). Columns are optional unless `"optional": false`.
//! A record that is not a JSON object, lacks a required field or has a value of the wrong type
//! fails conversion and goes to the error output as `format-conversion-failed`.

use crate::config::Refused;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{
    Compression as PqCompression, LogicalType, Repetition, TimeUnit, Type as Physical,
};
use parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type,
};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    String,
    Int,
    Long,
    Float,
    Double,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default = "yes")]
    pub optional: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    pub columns: Vec<Column>,
    /// `snappy` (default) or `none`.
    #[serde(default)]
    pub compression: Option<String>,
}

/// One converted value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Str(String),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
}

pub type Row = Vec<Cell>;

/// The bytes a row holds in memory: its cells and the text of its strings. A buffer of rows is
/// counted at this size, which is several times the JSON it came from.
pub fn row_size(row: &Row) -> usize {
    let heap: usize = row
        .iter()
        .map(|c| match c {
            Cell::Str(s) => s.capacity(),
            _ => 0,
        })
        .sum();
    std::mem::size_of::<Row>() + row.capacity() * std::mem::size_of::<Cell>() + heap
}

impl Schema {
    pub fn load(path: &Path) -> Result<Schema, Refused> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read Parquet schema {}: {e}", path.display()))?;
        let schema: Schema = serde_json::from_str(&text)
            .map_err(|e| format!("Parquet schema {}: {e}", path.display()))?;
        if schema.columns.is_empty() {
            return Err(Refused::from(format!(
                "Parquet schema {}: no columns",
                path.display()
            )));
        }
        match schema.compression.as_deref() {
            None | Some("snappy") | Some("none") => {}
            Some(other) => {
                return Err(Refused::from(format!(
                    "Parquet schema {}: compression `{other}`: expected snappy or none",
                    path.display()
                )))
            }
        }
        let mut names = std::collections::HashSet::new();
        for c in &schema.columns {
            if !names.insert(&c.name) {
                return Err(Refused::from(format!(
                    "Parquet schema {}: column `{}` appears twice",
                    path.display(),
                    c.name
                )));
            }
        }
        Ok(schema)
    }

    /// Converts one JSON record to a row, or says why it does not fit.
    pub fn convert(&self, data: &[u8]) -> Result<Row, Refused> {
        let value: serde_json::Value =
            serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
        if !value.is_object() {
            return Err(Refused::from("not a JSON object".to_string()));
        }
        self.columns
            .iter()
            .map(|c| {
                let path = c.field.as_deref().unwrap_or(&c.name);
                let v = path.split('.').try_fold(&value, |v, k| v.get(k));
                match v {
                    None | Some(serde_json::Value::Null) if c.optional => Ok(Cell::Null),
                    None | Some(serde_json::Value::Null) => Err(Refused::from(format!(
                        "required column `{}` has no value",
                        c.name
                    ))),
                    Some(v) => cell(c, v).map_err(Refused),
                }
            })
            .collect()
    }

    fn parquet_type(&self) -> Type {
        let fields = self
            .columns
            .iter()
            .map(|c| {
                let (physical, logical) = match c.kind {
                    ColumnType::String => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
                    ColumnType::Int => (Physical::INT32, None),
                    ColumnType::Long => (Physical::INT64, None),
                    ColumnType::Float => (Physical::FLOAT, None),
                    ColumnType::Double => (Physical::DOUBLE, None),
                    ColumnType::Boolean => (Physical::BOOLEAN, None),
                    ColumnType::Timestamp => (
                        Physical::INT64,
                        Some(LogicalType::Timestamp {
                            is_adjusted_to_u_t_c: true,
                            unit: TimeUnit::MILLIS(Default::default()),
                        }),
                    ),
                };
                let repetition = if c.optional {
                    Repetition::OPTIONAL
                } else {
                    Repetition::REQUIRED
                };
                Arc::new(
                    Type::primitive_type_builder(&c.name, physical)
                        .with_repetition(repetition)
                        .with_logical_type(logical)
                        .build()
                        .expect("valid column type"),
                )
            })
            .collect();
        Type::group_type_builder("record")
            .with_fields(fields)
            .build()
            .expect("valid schema")
    }

    /// Writes rows as one Parquet file.
    pub fn write(&self, rows: &[Row]) -> Result<Vec<u8>, Refused> {
        let compression = match self.compression.as_deref() {
            Some("none") => PqCompression::UNCOMPRESSED,
            _ => PqCompression::SNAPPY,
        };
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(compression)
                .set_created_by("weir".into())
                .build(),
        );
        let fail = |e: parquet::errors::ParquetError| format!("cannot write Parquet: {e}");
        let mut writer =
            SerializedFileWriter::new(Vec::new(), Arc::new(self.parquet_type()), props)
                .map_err(fail)?;
        let mut group = writer.next_row_group().map_err(fail)?;
        for (i, c) in self.columns.iter().enumerate() {
            let mut col = group
                .next_column()
                .map_err(fail)?
                .expect("one writer per schema column");
            let defs: Vec<i16> = rows.iter().map(|r| i16::from(r[i] != Cell::Null)).collect();
            let defs = c.optional.then_some(&defs[..]);
            let cells = rows.iter().map(|r| &r[i]);
            // One typed write per column: the cells of that column's variant.
            macro_rules! write {
                ($data:ty, $variant:ident, $value:expr) => {{
                    let v: Vec<_> = cells
                        .filter_map(|x| match x {
                            Cell::$variant(n) => Some($value(n)),
                            _ => None,
                        })
                        .collect();
                    col.typed::<$data>().write_batch(&v, defs, None)
                }};
            }
            match c.kind {
                ColumnType::String => {
                    write!(ByteArrayType, Str, |s: &String| ByteArray::from(s.as_str()))
                }
                ColumnType::Int => write!(Int32Type, I32, |n: &i32| *n),
                ColumnType::Long | ColumnType::Timestamp => write!(Int64Type, I64, |n: &i64| *n),
                ColumnType::Float => write!(FloatType, F32, |n: &f32| *n),
                ColumnType::Double => write!(DoubleType, F64, |n: &f64| *n),
                ColumnType::Boolean => write!(BoolType, Bool, |b: &bool| *b),
            }
            .map_err(fail)?;
            col.close().map_err(fail)?;
        }
        group.close().map_err(fail)?;
        writer.into_inner().map_err(|e| Refused(fail(e)))
    }
}

fn cell(c: &Column, v: &serde_json::Value) -> Result<Cell, String> {
    let wrong = || {
        format!(
            "column `{}` expects {:?}, the record has {}",
            c.name,
            c.kind,
            v.to_string().chars().take(40).collect::<String>()
        )
    };
    Ok(match c.kind {
        ColumnType::String => match v {
            serde_json::Value::String(s) => Cell::Str(s.clone()),
            // Glue's JSON SerDe reads scalars into string columns as their text.
            serde_json::Value::Number(n) => Cell::Str(n.to_string()),
            serde_json::Value::Bool(b) => Cell::Str(b.to_string()),
            _ => return Err(wrong()),
        },
        ColumnType::Int => Cell::I32(
            v.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(wrong)?,
        ),
        ColumnType::Long => Cell::I64(v.as_i64().ok_or_else(wrong)?),
        ColumnType::Float => {
            // A double beyond f32's range would become infinity: it does not fit the column.
            let n = v.as_f64().ok_or_else(wrong)?;
            let f = n as f32;
            if !f.is_finite() {
                return Err(format!(
                    "column `{}` is a float, and {n} is beyond its range (±3.4e38)",
                    c.name
                ));
            }
            Cell::F32(f)
        }
        ColumnType::Double => Cell::F64(v.as_f64().ok_or_else(wrong)?),
        ColumnType::Boolean => Cell::Bool(v.as_bool().ok_or_else(wrong)?),
        ColumnType::Timestamp => Cell::I64(match v {
            serde_json::Value::Number(n) => n.as_i64().ok_or_else(wrong)?,
            serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| wrong())?
                .timestamp_millis(),
            _ => return Err(wrong()),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    fn schema() -> Schema {
        serde_json::from_str(
            r#"{"columns": [
                {"name": "customer", "type": "string", "optional": false},
                {"name": "n", "type": "long"},
                {"name": "price", "type": "double"},
                {"name": "ok", "type": "boolean"},
                {"name": "at", "type": "timestamp", "field": "meta.at"}
            ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn rows_convert_write_and_read_back() {
        let s = schema();
        let rows: Vec<Row> = [
            r#"{"customer":"acme","n":1,"price":2.5,"ok":true,"meta":{"at":"2026-11-26T10:00:00Z"}}"#,
            r#"{"customer":"zeta","n":null}"#,
        ]
        .iter()
        .map(|r| s.convert(r.as_bytes()).unwrap())
        .collect();
        let bytes = s.write(&rows).unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        let read: Vec<String> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap().to_string())
            .collect();
        assert_eq!(read.len(), 2);
        assert!(read[0].contains("customer: \"acme\""), "{}", read[0]);
        assert!(read[0].contains("n: 1"), "{}", read[0]);
        assert!(read[0].contains("price: 2.5"), "{}", read[0]);
        assert!(read[1].contains("n: null"), "{}", read[1]);
    }

    #[test]
    fn records_that_do_not_fit_say_why() {
        let s = schema();
        assert!(s.convert(b"[1]").unwrap_err().contains("not a JSON object"));
        assert!(s.convert(b"{").unwrap_err().contains("not JSON"));
        assert!(s
            .convert(br#"{"n":1}"#)
            .unwrap_err()
            .contains("required column `customer`"));
        assert!(s
            .convert(br#"{"customer":"a","n":"x"}"#)
            .unwrap_err()
            .contains("column `n` expects Long"));
        let floats: Schema =
            serde_json::from_str(r#"{"columns": [{"name": "f", "type": "float"}]}"#).unwrap();
        assert!(floats.convert(br#"{"f":1.5}"#).is_ok());
        assert!(floats
            .convert(br#"{"f":1e300}"#)
            .unwrap_err()
            .contains("beyond its range"));
    }
}
