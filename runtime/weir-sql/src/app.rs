//! An application's configuration, as KDA described it: the JSON `aws kinesisanalytics
//! describe-application` prints (`ApplicationDetail`), or the request form (`Inputs` as
//! CreateApplication takes it, `ReferenceDataSources` as AddApplicationReferenceDataSource's).
//!
//! AWS's JSON has many fields Weir has no use for (ARNs, role ARNs, parallelism, ids): they
//! are accepted and ignored, but only those: a misspelt key is an error that names it, with
//! its JSON path (`Inputs[0].InputSchema.RecordColumns[2].SqlType`).

use serde_json::{Map, Value as Json};

use crate::error::SqlError;
use crate::value::SqlType;

/// An application as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct AppConfig {
    /// `ApplicationCode`, when the JSON holds it.
    pub code: Option<String>,
    pub inputs: Vec<Input>,
    pub references: Vec<Reference>,
    pub outputs: Vec<Output>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name_prefix: String,
    pub schema: Schema,
}

impl Input {
    /// The in-application stream the input feeds: `<NamePrefix>_001`, as KDA named it.
    pub fn stream_name(&self) -> String {
        format!("{}_001", self.name_prefix)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub format: RecordFormat,
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RecordFormat {
    /// `RecordRowPath`: where a record's rows are (`$` for the record itself, `$.a[0:]` for
    /// one row per element of an array).
    Json { row_path: String },
    Csv {
        row_delimiter: String,
        column_delimiter: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// The JSONPath of a JSON column; `None` for CSV (columns are by position).
    pub mapping: Option<String>,
    pub ty: SqlType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub table: String,
    pub bucket_arn: Option<String>,
    pub file_key: Option<String>,
    pub schema: Schema,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    Json,
    Csv,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The in-application stream written out.
    pub name: String,
    pub format: OutputFormat,
}

/// Fields AWS prints that Weir takes no meaning from.
const IGNORED: &[&str] = &[
    "ApplicationName",
    "ApplicationDescription",
    "ApplicationARN",
    "ApplicationStatus",
    "ApplicationVersionId",
    "CreateTimestamp",
    "LastUpdateTimestamp",
    "CloudWatchLoggingOptionDescriptions",
    "InputId",
    "InAppStreamNames",
    "InputParallelism",
    "InputProcessingConfigurationDescription",
    "InputProcessingConfiguration",
    "KinesisStreamsInputDescription",
    "KinesisFirehoseInputDescription",
    "KinesisStreamsInput",
    "KinesisFirehoseInput",
    "InputStartingPositionConfiguration",
    "OutputId",
    "KinesisStreamsOutputDescription",
    "KinesisFirehoseOutputDescription",
    "LambdaOutputDescription",
    "KinesisStreamsOutput",
    "KinesisFirehoseOutput",
    "LambdaOutput",
    "ReferenceId",
    "ReferenceRoleARN",
    "RoleARN",
    "ResourceARN",
];

/// Reads an application's configuration from JSON text: `{"ApplicationDetail": {...}}` or the
/// detail itself, or `{"Inputs": [...], "ReferenceDataSources": [...], "Outputs": [...]}`, or a
/// bare `Inputs` list.
pub fn parse_app_json(text: &str) -> Result<AppConfig, SqlError> {
    let json: Json = serde_json::from_str(text).map_err(|e| {
        SqlError::config(
            format!("line {}, column {}", e.line(), e.column()),
            format!("not JSON: {e}"),
        )
    })?;
    let (obj, base) = match &json {
        Json::Array(_) => {
            let mut m = Map::new();
            m.insert("Inputs".into(), json.clone());
            return read_app(&m, "");
        }
        Json::Object(m) => match m.get("ApplicationDetail") {
            Some(Json::Object(d)) if m.len() == 1 => (d.clone(), "ApplicationDetail."),
            Some(_) if m.len() == 1 => {
                return Err(SqlError::config("ApplicationDetail", "expected an object"))
            }
            _ => (m.clone(), ""),
        },
        _ => {
            return Err(SqlError::config(
                "(top)",
                "expected an object or a list of inputs",
            ))
        }
    };
    read_app(&obj, base)
}

fn read_app(m: &Map<String, Json>, base: &str) -> Result<AppConfig, SqlError> {
    check_keys(
        m,
        base,
        &[
            "ApplicationCode",
            "InputDescriptions",
            "Inputs",
            "ReferenceDataSourceDescriptions",
            "ReferenceDataSources",
            "OutputDescriptions",
            "Outputs",
        ],
    )?;
    let code = match m.get("ApplicationCode") {
        Some(Json::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(SqlError::config(
                format!("{base}ApplicationCode"),
                "expected a string",
            ))
        }
        None => None,
    };
    let mut inputs = Vec::new();
    for key in ["InputDescriptions", "Inputs"] {
        for (i, v) in list(m, base, key)?.iter().enumerate() {
            inputs.push(read_input(v, &format!("{base}{key}[{i}]"))?);
        }
    }
    let mut references = Vec::new();
    for key in ["ReferenceDataSourceDescriptions", "ReferenceDataSources"] {
        for (i, v) in list(m, base, key)?.iter().enumerate() {
            references.push(read_reference(v, &format!("{base}{key}[{i}]"))?);
        }
    }
    let mut outputs = Vec::new();
    for key in ["OutputDescriptions", "Outputs"] {
        for (i, v) in list(m, base, key)?.iter().enumerate() {
            outputs.push(read_output(v, &format!("{base}{key}[{i}]"))?);
        }
    }
    Ok(AppConfig {
        code,
        inputs,
        references,
        outputs,
    })
}

fn check_keys(m: &Map<String, Json>, base: &str, known: &[&str]) -> Result<(), SqlError> {
    for k in m.keys() {
        if !known.contains(&k.as_str()) && !IGNORED.contains(&k.as_str()) {
            return Err(SqlError::config(
                format!("{base}{k}"),
                format!("unknown key (expected one of: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn list<'a>(m: &'a Map<String, Json>, base: &str, key: &str) -> Result<&'a [Json], SqlError> {
    match m.get(key) {
        None => Ok(&[]),
        Some(Json::Array(a)) => Ok(a),
        Some(_) => Err(SqlError::config(format!("{base}{key}"), "expected a list")),
    }
}

fn object<'a>(v: &'a Json, path: &str) -> Result<&'a Map<String, Json>, SqlError> {
    v.as_object()
        .ok_or_else(|| SqlError::config(path, "expected an object"))
}

fn string(m: &Map<String, Json>, path: &str, key: &str) -> Result<String, SqlError> {
    match m.get(key) {
        Some(Json::String(s)) => Ok(s.clone()),
        Some(_) => Err(SqlError::config(
            format!("{path}.{key}"),
            "expected a string",
        )),
        None => Err(SqlError::config(format!("{path}.{key}"), "missing")),
    }
}

fn read_input(v: &Json, path: &str) -> Result<Input, SqlError> {
    let m = object(v, path)?;
    check_keys(m, &format!("{path}."), &["NamePrefix", "InputSchema"])?;
    let name_prefix = string(m, path, "NamePrefix")?;
    if name_prefix.is_empty() || name_prefix.len() > 32 {
        return Err(SqlError::config(
            format!("{path}.NamePrefix"),
            "must be 1 to 32 characters",
        ));
    }
    let schema = read_schema(
        m.get("InputSchema")
            .ok_or_else(|| SqlError::config(format!("{path}.InputSchema"), "missing"))?,
        &format!("{path}.InputSchema"),
    )?;
    Ok(Input {
        name_prefix,
        schema,
    })
}

fn read_schema(v: &Json, path: &str) -> Result<Schema, SqlError> {
    let m = object(v, path)?;
    check_keys(
        m,
        &format!("{path}."),
        &["RecordFormat", "RecordEncoding", "RecordColumns"],
    )?;
    if let Some(enc) = m.get("RecordEncoding") {
        if enc
            .as_str()
            .is_none_or(|e| !e.eq_ignore_ascii_case("UTF-8"))
        {
            return Err(SqlError::config(
                format!("{path}.RecordEncoding"),
                "only UTF-8 is supported (as in KDA)",
            ));
        }
    }
    let fpath = format!("{path}.RecordFormat");
    let f = object(
        m.get("RecordFormat")
            .ok_or_else(|| SqlError::config(&fpath, "missing"))?,
        &fpath,
    )?;
    check_keys(
        f,
        &format!("{fpath}."),
        &["RecordFormatType", "MappingParameters"],
    )?;
    let kind = string(f, &fpath, "RecordFormatType")?;
    let params = f.get("MappingParameters");
    let ppath = format!("{fpath}.MappingParameters");
    let format = match kind.as_str() {
        "JSON" => {
            let row_path = match params {
                Some(p) => {
                    let p = object(p, &ppath)?;
                    check_keys(p, &format!("{ppath}."), &["JSONMappingParameters"])?;
                    let jpath = format!("{ppath}.JSONMappingParameters");
                    let j = object(
                        p.get("JSONMappingParameters")
                            .ok_or_else(|| SqlError::config(&jpath, "missing"))?,
                        &jpath,
                    )?;
                    check_keys(j, &format!("{jpath}."), &["RecordRowPath"])?;
                    string(j, &jpath, "RecordRowPath")?
                }
                None => "$".to_string(),
            };
            crate::jsonpath::Path::parse(&row_path).map_err(|e| {
                SqlError::config(format!("{ppath}.JSONMappingParameters.RecordRowPath"), e)
            })?;
            RecordFormat::Json { row_path }
        }
        "CSV" => {
            let (mut row, mut col) = ("\n".to_string(), ",".to_string());
            if let Some(p) = params {
                let p = object(p, &ppath)?;
                check_keys(p, &format!("{ppath}."), &["CSVMappingParameters"])?;
                let cpath = format!("{ppath}.CSVMappingParameters");
                let c = object(
                    p.get("CSVMappingParameters")
                        .ok_or_else(|| SqlError::config(&cpath, "missing"))?,
                    &cpath,
                )?;
                check_keys(
                    c,
                    &format!("{cpath}."),
                    &["RecordRowDelimiter", "RecordColumnDelimiter"],
                )?;
                row = string(c, &cpath, "RecordRowDelimiter")?;
                col = string(c, &cpath, "RecordColumnDelimiter")?;
                if row.is_empty() || col.is_empty() {
                    return Err(SqlError::config(cpath, "delimiters must not be empty"));
                }
            }
            RecordFormat::Csv {
                row_delimiter: row,
                column_delimiter: col,
            }
        }
        other => {
            return Err(SqlError::config(
                format!("{fpath}.RecordFormatType"),
                format!("`{other}`: expected JSON or CSV"),
            ))
        }
    };
    let cols = match m.get("RecordColumns") {
        Some(Json::Array(a)) if !a.is_empty() => a,
        _ => {
            return Err(SqlError::config(
                format!("{path}.RecordColumns"),
                "expected a list of at least one column",
            ))
        }
    };
    let mut columns = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        let cpath = format!("{path}.RecordColumns[{i}]");
        let c = object(c, &cpath)?;
        check_keys(c, &format!("{cpath}."), &["Name", "Mapping", "SqlType"])?;
        let name = string(c, &cpath, "Name")?;
        let ty_text = string(c, &cpath, "SqlType")?;
        let ty = crate::parse::parse_type(&ty_text).map_err(|e| {
            SqlError::config(format!("{cpath}.SqlType"), format!("`{ty_text}`: {e}"))
        })?;
        let mapping = match c.get("Mapping") {
            Some(Json::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(SqlError::config(
                    format!("{cpath}.Mapping"),
                    "expected a string",
                ))
            }
            None => None,
        };
        if let (RecordFormat::Json { .. }, None) = (&format, &mapping) {
            return Err(SqlError::config(
                format!("{cpath}.Mapping"),
                "a JSON column needs its JSONPath mapping",
            ));
        }
        if let Some(m) = &mapping {
            if matches!(format, RecordFormat::Json { .. }) {
                crate::jsonpath::Path::parse(m)
                    .map_err(|e| SqlError::config(format!("{cpath}.Mapping"), e))?;
            }
        }
        columns.push(Column {
            name: normalise(&name),
            mapping,
            ty,
        });
    }
    Ok(Schema { format, columns })
}

/// A column or stream name as configured: KDA upper-cased unquoted identifiers in SQL, and the
/// schema's names are matched the same way unless they hold lower-case letters on purpose.
fn normalise(name: &str) -> String {
    name.to_string()
}

fn read_reference(v: &Json, path: &str) -> Result<Reference, SqlError> {
    let m = object(v, path)?;
    check_keys(
        m,
        &format!("{path}."),
        &[
            "TableName",
            "S3ReferenceDataSourceDescription",
            "S3ReferenceDataSource",
            "ReferenceSchema",
        ],
    )?;
    let table = string(m, path, "TableName")?;
    let (mut bucket_arn, mut file_key) = (None, None);
    for key in ["S3ReferenceDataSourceDescription", "S3ReferenceDataSource"] {
        if let Some(s) = m.get(key) {
            let spath = format!("{path}.{key}");
            let s = object(s, &spath)?;
            check_keys(s, &format!("{spath}."), &["BucketARN", "FileKey"])?;
            bucket_arn = Some(string(s, &spath, "BucketARN")?);
            file_key = Some(string(s, &spath, "FileKey")?);
        }
    }
    let schema = read_schema(
        m.get("ReferenceSchema")
            .ok_or_else(|| SqlError::config(format!("{path}.ReferenceSchema"), "missing"))?,
        &format!("{path}.ReferenceSchema"),
    )?;
    Ok(Reference {
        table,
        bucket_arn,
        file_key,
        schema,
    })
}

fn read_output(v: &Json, path: &str) -> Result<Output, SqlError> {
    let m = object(v, path)?;
    check_keys(m, &format!("{path}."), &["Name", "DestinationSchema"])?;
    let name = string(m, path, "Name")?;
    let format = match m.get("DestinationSchema") {
        None => OutputFormat::Json,
        Some(d) => {
            let dpath = format!("{path}.DestinationSchema");
            let d = object(d, &dpath)?;
            check_keys(d, &format!("{dpath}."), &["RecordFormatType"])?;
            match string(d, &dpath, "RecordFormatType")?.as_str() {
                "JSON" => OutputFormat::Json,
                "CSV" => OutputFormat::Csv,
                other => {
                    return Err(SqlError::config(
                        format!("{dpath}.RecordFormatType"),
                        format!("`{other}`: expected JSON or CSV"),
                    ))
                }
            }
        }
    };
    Ok(Output { name, format })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETAIL: &str = r#"{"ApplicationDetail": {
        "ApplicationName": "ticker", "ApplicationARN": "arn:aws:kinesisanalytics:us-east-1:1:application/ticker",
        "ApplicationStatus": "READY", "ApplicationVersionId": 3,
        "ApplicationCode": "CREATE STREAM s (a INTEGER);",
        "InputDescriptions": [{
            "InputId": "1.1", "NamePrefix": "SOURCE_SQL_STREAM", "InAppStreamNames": ["SOURCE_SQL_STREAM_001"],
            "KinesisStreamsInputDescription": {"ResourceARN": "arn:aws:kinesis:us-east-1:1:stream/t", "RoleARN": "arn:r"},
            "InputSchema": {
                "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
                "RecordEncoding": "UTF-8",
                "RecordColumns": [
                    {"Name": "TICKER_SYMBOL", "Mapping": "$.TICKER_SYMBOL", "SqlType": "VARCHAR(4)"},
                    {"Name": "PRICE", "Mapping": "$.PRICE", "SqlType": "REAL"}
                ]},
            "InputParallelism": {"Count": 1},
            "InputStartingPositionConfiguration": {"InputStartingPosition": "NOW"}
        }],
        "OutputDescriptions": [{"OutputId": "1.2", "Name": "DESTINATION_SQL_STREAM",
            "KinesisStreamsOutputDescription": {"ResourceARN": "arn:o", "RoleARN": "arn:r"},
            "DestinationSchema": {"RecordFormatType": "CSV"}}]
    }}"#;

    #[test]
    fn reads_describe_application_output() {
        let app = parse_app_json(DETAIL).unwrap();
        assert_eq!(app.code.as_deref(), Some("CREATE STREAM s (a INTEGER);"));
        assert_eq!(app.inputs[0].stream_name(), "SOURCE_SQL_STREAM_001");
        assert_eq!(app.inputs[0].schema.columns[1].ty, SqlType::Real);
        assert_eq!(app.outputs[0].format, OutputFormat::Csv);
    }

    #[test]
    fn a_misspelt_key_is_named_with_its_path() {
        let bad = DETAIL.replace("\"SqlType\": \"REAL\"", "\"SqlTyp\": \"REAL\"");
        let err = parse_app_json(&bad).unwrap_err().to_string();
        assert!(
            err.starts_with("ApplicationDetail.InputDescriptions[0].InputSchema.RecordColumns[1].SqlTyp: unknown key"),
            "{err}"
        );
        let bad = DETAIL.replace("VARCHAR(4)", "VARCHAR(x)");
        let err = parse_app_json(&bad).unwrap_err().to_string();
        assert!(
            err.contains("RecordColumns[0].SqlType: `VARCHAR(x)`"),
            "{err}"
        );
        assert!(parse_app_json("{")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
    }
}
