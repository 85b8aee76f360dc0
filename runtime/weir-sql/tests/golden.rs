//! The golden cases in `tests/sql/cases/` (see its README): each is an application, its
//! input records with their arrival times, and the rows it must produce. The runner feeds the
//! records in small batches (so windows span batches), ends the input, and compares.

use std::path::{Path, PathBuf};

use weir_core::batch::{Batch, BatchBuilder, Meta};
use weir_core::process::Processor;
use weir_sql::{compile, parse_app_json, Options, SqlStage};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sql/cases");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no cases in {}", root.display());
    dirs
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Case {
    about: String,
    source: String,
    output: Option<String>,
    rowtime: Option<String>,
    #[serde(default)]
    ordered: bool,
    checked: Option<String>,
    /// Records the case expects in the error output (by default none).
    #[serde(default)]
    errors: usize,
    /// The files of the reference tables, by table name.
    #[serde(default)]
    references: std::collections::BTreeMap<String, String>,
}

fn read(dir: &Path, name: &str) -> Result<String, String> {
    std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{name}: {e}"))
}

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Runs one case; returns what went wrong, if anything.
fn run(dir: &Path) -> Result<(), String> {
    let case: Case =
        toml::from_str(&read(dir, "case.toml")?).map_err(|e| format!("case.toml: {e}"))?;
    let code = read(dir, "app.sql")?;
    let config =
        parse_app_json(&read(dir, "inputs.json")?).map_err(|e| format!("inputs.json: {e}"))?;
    let options = Options {
        output: case.output.clone(),
        rowtime: case.rowtime.clone(),
        ..Options::default()
    };
    let plan = compile(&code, &config, &options).map_err(|e| format!("app.sql: {e}"))?;
    let mut tables = Vec::new();
    for t in &plan.tables {
        let file = case
            .references
            .get(&t.name)
            .ok_or_else(|| format!("case.toml: no file for reference table {}", t.name))?;
        tables.push(read(dir, file)?.into_bytes());
    }
    let mut stage = SqlStage::with_tables("sql", plan.into(), tables)?;
    let inputs = lines(&read(dir, "input.jsonl")?);
    let mut got = Vec::new();
    let mut failed = Vec::new();
    let mut collect = |p: weir_core::process::Processed| {
        for r in p.records.iter() {
            got.push(
                serde_json::from_slice::<serde_json::Value>(r.data()).unwrap_or_else(|e| {
                    panic!(
                        "output is not JSON: {e}: {}",
                        String::from_utf8_lossy(r.data())
                    )
                }),
            );
        }
        failed.extend(p.failed);
    };
    for chunk in inputs.chunks(3) {
        let mut b = BatchBuilder::new();
        for line in chunk {
            let arrival = line["arrival"].as_str().expect("arrival");
            let arrival_ms = weir_sql::value::parse_timestamp(arrival).expect("an arrival time");
            let data = match &line["data"] {
                serde_json::Value::String(s) => s.clone().into_bytes(),
                v => v.to_string().into_bytes(),
            };
            b.push(
                &data,
                Meta {
                    arrival_ms,
                    ..Meta::default()
                },
            );
        }
        let batch: Batch = b.finish();
        let last = batch.arrival_column().last().copied().unwrap_or(0);
        collect(stage.process(batch, last));
    }
    collect(stage.flush(0));
    let want = lines(&read(dir, "expected.jsonl")?);
    let (mut g, mut w): (Vec<String>, Vec<String>) = (
        got.iter().map(|v| v.to_string()).collect(),
        want.iter().map(|v| v.to_string()).collect(),
    );
    if !case.ordered {
        g.sort();
        w.sort();
    }
    if failed.len() != case.errors {
        return Err(format!(
            "{} record(s) failed, the case expects {}: {:?}",
            failed.len(),
            case.errors,
            failed.iter().map(|f| &f.message).collect::<Vec<_>>()
        ));
    }
    if g != w {
        return Err(format!(
            "rows differ\n  got:  {}\n  want: {}",
            g.join("\n        "),
            w.join("\n        ")
        ));
    }
    Ok(())
}

#[test]
fn every_golden_case_produces_its_rows() {
    let mut failures = Vec::new();
    let all = cases();
    for dir in &all {
        if let Err(e) = run(dir) {
            failures.push(format!(
                "{}: {e}",
                dir.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n\n")
    );
}
