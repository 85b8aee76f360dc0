//! Proposing an input schema from sample records, as KDA's DiscoverInputSchema did: `weir sql
//! discover --input FILE` prints an `InputSchema` ready for an application's `Inputs`.
//!
//! JSON records give one column per member (nested objects by their path, named by their own
//! key, or `parent_key` where two would share a name); arrays are taken whole, as their JSON
//! text. Types: integers are INTEGER (BIGINT past 32 bits), numbers with a fraction DOUBLE,
//! strings that all read as timestamps TIMESTAMP, other strings VARCHAR of the longest seen
//! (rounded up to a power of two), booleans BOOLEAN. Records that are not JSON are read as CSV
//! (comma-separated, columns `COL1`…). A name that is a reserved word gets a `COL_` prefix, as
//! KDA's discovery did (`year` became `COL_year`).

use serde_json::{json, Value as Json};

use crate::value::parse_timestamp;

/// Words a column may not be named without quotes (KDA's discovery renamed them).
const RESERVED: &[&str] = &[
    "YEAR",
    "MONTH",
    "DAY",
    "HOUR",
    "MINUTE",
    "SECOND",
    "TIMESTAMP",
    "DATE",
    "TIME",
    "ROWTIME",
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "ORDER",
    "BY",
    "VALUE",
    "USER",
    "CURRENT",
    "WINDOW",
    "RANGE",
    "ROWS",
    "TABLE",
    "STREAM",
    "INTERVAL",
    "CASE",
    "END",
    "AND",
    "OR",
    "NOT",
    "NULL",
];

#[derive(Debug, Default, Clone)]
struct Seen {
    ints: bool,
    big: bool,
    fractions: bool,
    strings: bool,
    all_timestamps: bool,
    bools: bool,
    other: bool,
    longest: usize,
}

/// An `InputSchema` for the records in `sample` (one a line), or why there is none.
pub fn discover(sample: &str) -> Result<Json, String> {
    let lines: Vec<&str> = sample.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Err("no records in the sample".into());
    }
    // Members in the records' own order (a parsed `Json` object sorts them).
    let json: Vec<Node> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Node>(l).ok())
        .filter(|n| matches!(n, Node::Object(_)))
        .collect();
    if json.len() * 2 >= lines.len() {
        let mut columns: Vec<(Vec<String>, Seen)> = Vec::new();
        for record in &json {
            walk(record, &mut Vec::new(), &mut columns);
        }
        let names = names(&columns);
        let cols: Vec<Json> = columns
            .iter()
            .zip(names)
            .map(|((path, seen), name)| {
                let mapping = std::iter::once("$".to_string())
                    .chain(path.iter().map(|k| {
                        if k.chars().all(|c| c.is_alphanumeric() || c == '_') {
                            format!(".{k}")
                        } else if k.contains('\'') {
                            format!("[\"{k}\"]")
                        } else {
                            format!("['{k}']")
                        }
                    }))
                    .collect::<String>();
                json!({"Name": name, "Mapping": mapping, "SqlType": sql_type(seen)})
            })
            .collect();
        return Ok(json!({
            "RecordFormat": {"RecordFormatType": "JSON",
                "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
            "RecordEncoding": "UTF-8",
            "RecordColumns": cols,
        }));
    }
    let mut seen: Vec<Seen> = Vec::new();
    for line in &lines {
        for (i, field) in line.split(',').enumerate() {
            if seen.len() <= i {
                seen.push(Seen {
                    all_timestamps: true,
                    ..Seen::default()
                });
            }
            // A field is text: what it holds decides its type.
            let t = field.trim();
            let v = if let Ok(n) = t.parse::<i64>() {
                Json::from(n)
            } else if let Some(n) = t.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Json::Number(n)
            } else if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
                Json::Bool(t.eq_ignore_ascii_case("true"))
            } else {
                Json::String(field.to_string())
            };
            note(&mut seen[i], &v);
        }
    }
    let cols: Vec<Json> = seen
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"Name": format!("COL{}", i + 1), "SqlType": sql_type(s)}))
        .collect();
    Ok(json!({
        "RecordFormat": {"RecordFormatType": "CSV",
            "MappingParameters": {"CSVMappingParameters":
                {"RecordRowDelimiter": "\n", "RecordColumnDelimiter": ","}}},
        "RecordEncoding": "UTF-8",
        "RecordColumns": cols,
    }))
}

/// A JSON value whose objects keep their members in order.
enum Node {
    Object(Vec<(String, Node)>),
    Leaf(Json),
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Node>()? {
                    members.push((k, v));
                }
                Ok(Node::Object(members))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = s.next_element::<Json>()? {
                    items.push(v);
                }
                Ok(Node::Leaf(Json::Array(items)))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
                Ok(Node::Leaf(b.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
                Ok(Node::Leaf(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
                Ok(Node::Leaf(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Node, E> {
                Ok(Node::Leaf(
                    serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number),
                ))
            }
            fn visit_str<E>(self, s: &str) -> Result<Node, E> {
                Ok(Node::Leaf(s.into()))
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf(Json::Null))
            }
        }
        d.deserialize_any(V)
    }
}

fn walk(v: &Node, path: &mut Vec<String>, columns: &mut Vec<(Vec<String>, Seen)>) {
    match v {
        Node::Object(m) if !path.is_empty() || !m.is_empty() => {
            for (k, x) in m {
                path.push(k.clone());
                walk(x, path, columns);
                path.pop();
            }
        }
        _ if path.is_empty() => {}
        Node::Object(_) => {}
        Node::Leaf(v) => {
            let at = match columns.iter().position(|(p, _)| p == path) {
                Some(i) => i,
                None => {
                    columns.push((
                        path.clone(),
                        Seen {
                            all_timestamps: true,
                            ..Seen::default()
                        },
                    ));
                    columns.len() - 1
                }
            };
            note(&mut columns[at].1, v);
        }
    }
}

fn note(s: &mut Seen, v: &Json) {
    match v {
        Json::Null => {}
        Json::Bool(_) => s.bools = true,
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                s.ints = true;
                s.big |= i32::try_from(i).is_err();
            } else {
                s.fractions = true;
            }
            s.longest = s.longest.max(n.to_string().len());
        }
        Json::String(t) => {
            s.strings = true;
            s.all_timestamps &= parse_timestamp(t).is_some();
            s.longest = s.longest.max(t.chars().count());
        }
        other => {
            s.other = true;
            s.longest = s.longest.max(other.to_string().len());
        }
    }
}

fn sql_type(s: &Seen) -> String {
    let varchar = || format!("VARCHAR({})", s.longest.max(1).next_power_of_two());
    match (s.strings || s.other, s.ints || s.fractions, s.bools) {
        (false, false, false) => "VARCHAR(64)".into(),
        (false, true, false) if s.fractions => "DOUBLE".into(),
        (false, true, false) if s.big => "BIGINT".into(),
        (false, true, false) => "INTEGER".into(),
        (false, false, true) => "BOOLEAN".into(),
        (true, false, false) if !s.other && s.all_timestamps => "TIMESTAMP".into(),
        _ => varchar(),
    }
}

/// Each column's name: its key, or `parent_key` where keys repeat; reserved words prefixed.
fn names(columns: &[(Vec<String>, Seen)]) -> Vec<String> {
    let leaf = |p: &Vec<String>| p.last().cloned().unwrap_or_default();
    columns
        .iter()
        .map(|(p, _)| {
            let mut name = leaf(p);
            if columns.iter().filter(|(q, _)| leaf(q) == name).count() > 1 {
                name = p.join("_");
            }
            if RESERVED.contains(&name.to_uppercase().as_str()) {
                name = format!("COL_{name}");
            }
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposes_columns_and_types_from_json_records() {
        let schema = discover(
            r#"{"ticker":"AMZN","price":84.5,"n":3,"ts":"2024-05-01 10:00:00","a":{"city":"X"},"b":{"city":"Y"},"year":2024,"ok":true}
{"ticker":"INTC","price":7,"n":5000000000,"ts":"2024-05-01T10:00:01.5","a":{"city":"Longer city"},"b":{"city":null},"year":2025,"ok":false,"tags":[1,2]}"#,
        )
        .unwrap();
        let cols = schema["RecordColumns"].as_array().unwrap();
        let find = |name: &str| {
            cols.iter()
                .find(|c| c["Name"] == name)
                .unwrap_or_else(|| panic!("{name} in {cols:?}"))
                .clone()
        };
        assert_eq!(find("ticker")["SqlType"], "VARCHAR(4)");
        assert_eq!(find("price")["SqlType"], "DOUBLE");
        assert_eq!(find("n")["SqlType"], "BIGINT");
        assert_eq!(find("ts")["SqlType"], "TIMESTAMP");
        assert_eq!(find("a_city")["Mapping"], "$.a.city");
        assert_eq!(find("a_city")["SqlType"], "VARCHAR(16)");
        assert_eq!(find("COL_year")["SqlType"], "INTEGER");
        assert_eq!(find("ok")["SqlType"], "BOOLEAN");
        assert_eq!(find("tags")["SqlType"], "VARCHAR(8)");
    }

    #[test]
    fn csv_records_get_numbered_columns_and_the_schema_reads_them() {
        let schema = discover("AMZN,84.5,3\nINTC,7.25,4\n").unwrap();
        assert_eq!(schema["RecordFormat"]["RecordFormatType"], "CSV");
        let types: Vec<&str> = schema["RecordColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["SqlType"].as_str().unwrap())
            .collect();
        // CSV fields are text: numbers are found by what the text holds.
        assert_eq!(types, ["VARCHAR(4)", "DOUBLE", "INTEGER"]);
        assert!(discover("").is_err());
    }
}
