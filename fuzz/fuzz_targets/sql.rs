//! SQL applications and records from arbitrary bytes: parsing, compiling and running a stage
//! never panic, an error names a line and column within the SQL, and a stage given any record
//! accounts for it (a row, a failure or nothing held).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_core::batch::{BatchBuilder, Meta};
use weir_core::process::Processor;
use weir_sql::{compile, parse_app_json, Options, SqlError, SqlStage};

const INPUTS: &str = r#"[{"NamePrefix":"SOURCE_SQL_STREAM","InputSchema":{"RecordFormat":{"RecordFormatType":"JSON","MappingParameters":{"JSONMappingParameters":{"RecordRowPath":"$"}}},"RecordColumns":[{"Name":"A","Mapping":"$.a","SqlType":"INTEGER"},{"Name":"B","Mapping":"$.b[0:].c","SqlType":"VARCHAR(8)"},{"Name":"T","Mapping":"$.t","SqlType":"TIMESTAMP"}]}}]"#;

fuzz_target!(|data: &[u8]| {
    // The first line is the SQL's, the rest records, one a line.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (sql, records) = text.split_once('\n').unwrap_or((text, ""));
    let _ = parse_app_json(records);
    let config = parse_app_json(INPUTS).expect("the fuzz inputs");
    let plan = match compile(sql, &config, &Options::default()) {
        Ok(plan) => plan,
        Err(SqlError::Sql { line, column, .. }) => {
            assert!(line >= 1 && line <= sql.lines().count().max(1) + 1, "{line}");
            assert!(column >= 1);
            return;
        }
        Err(_) => return,
    };
    let Ok(mut stage) = SqlStage::new("fuzz", plan.into()) else {
        return;
    };
    let mut b = BatchBuilder::new();
    for (i, r) in records.lines().enumerate() {
        b.push(
            r.as_bytes(),
            Meta {
                arrival_ms: i as i64 * 1000,
                ..Meta::default()
            },
        );
    }
    let _ = stage.process(b.finish(), 0);
    let _ = stage.tick(1 << 40, 1 << 40);
    let _ = stage.flush(0);
});
