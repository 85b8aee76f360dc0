//! The log parsers (W3C_LOG_PARSE, VARIABLE_COLUMN_LOG_PARSE, REGEX_LOG_PARSE,
//! FAST_REGEX_LOG_PARSE, FIXED_COLUMN_LOG_PARSE, SYS_LOG_PARSE) as applications use them: a
//! row selected in a FROM subquery and its fields read as `t.r.COLUMN1`, one field taken of a
//! call, a row selected whole into a stream. Their arguments after the string are compiled
//! with the plan, and a bad one is refused with its line and column; a field that does not
//! convert fails its row.

const INPUTS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordColumns": [{"Name": "log", "Mapping": "$.log", "SqlType": "VARCHAR(512)"},
                      {"Name": "P", "Mapping": "$.p", "SqlType": "VARCHAR(64)"}]}}]"#;

mod common;

fn app(columns: &str, select: &str) -> String {
    common::app(columns, select)
}

fn compile_error(sql: &str) -> String {
    common::compile_error(INPUTS, sql)
}

fn run<R: AsRef<str>>(sql: &str, records: &[R]) -> (Vec<String>, usize) {
    common::run(INPUTS, sql, records)
}

/// A record whose `log` is `line`.
fn log(line: &str) -> String {
    serde_json::json!({ "log": line }).to_string()
}

const FROM: &str = "FROM \"SOURCE_SQL_STREAM_001\"";

const JOHN: &str = r#"192.168.254.30 - John [24/May/2004:22:01:02 -0700] "GET /icons/apache_pb.gif HTTP/1.1" 304 0"#;

#[test]
fn the_developer_guides_w3c_application_runs_unchanged() {
    // examples-transforming-strings-w3clogparse.md, as it is (its VARCHAR(16) columns cut the
    // longer fields).
    let sql = r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
        column1 VARCHAR(16),
        column2 VARCHAR(16),
        column3 VARCHAR(16),
        column4 VARCHAR(16),
        column5 VARCHAR(16),
        column6 VARCHAR(16),
        column7 VARCHAR(16));

        CREATE OR REPLACE PUMP "myPUMP" AS
        INSERT INTO "DESTINATION_SQL_STREAM"
                SELECT STREAM
                    l.r.COLUMN1,
                    l.r.COLUMN2,
                    l.r.COLUMN3,
                    l.r.COLUMN4,
                    l.r.COLUMN5,
                    l.r.COLUMN6,
                    l.r.COLUMN7
                FROM (SELECT STREAM W3C_LOG_PARSE("log", 'COMMON')
                      FROM "SOURCE_SQL_STREAM_001") AS l(r);"#;
    let (rows, failed) = run(sql, &[log(JOHN), log("not a log line")]);
    assert_eq!(failed, 0);
    assert_eq!(
        rows,
        [
            r#"{"COLUMN1":"192.168.254.30","COLUMN2":"-","COLUMN3":"John","COLUMN4":"[24/May/2004:22:","COLUMN5":"GET /icons/apach","COLUMN6":"304","COLUMN7":"0"}"#,
            r#"{"COLUMN1":null,"COLUMN2":null,"COLUMN3":null,"COLUMN4":null,"COLUMN5":null,"COLUMN6":null,"COLUMN7":null}"#,
        ]
    );
}

#[test]
fn a_row_is_read_as_t_r_field_beside_the_subquerys_columns() {
    // The SQL Reference's REGEX_LOG_PARSE Example 2: T.SECTOR beside T.REC.COLUMN1, with the
    // subquery and the outer select each filtering.
    let (rows, failed) = run(
        &app(
            "SECTOR VARCHAR(24), MATCH1 VARCHAR(24), MATCH2 VARCHAR(24), N BIGINT",
            "SELECT STREAM T.SECTOR, T.REC.COLUMN1, REC.COLUMN2, CHAR_LENGTH(T.REC.COLUMN2)
             FROM (SELECT STREAM \"log\" AS SECTOR,
                       REGEX_LOG_PARSE(\"log\", '.*([E].).*([R].*)') AS REC
                   FROM SOURCE_SQL_STREAM_001 WHERE P IS NULL) AS T
             WHERE T.REC.COLUMN1 IS NOT NULL OR T.SECTOR = 'TECHNOLOGY'",
        ),
        &[
            log("ENERGY"),
            log("HEALTHCARE"),
            log("TECHNOLOGY"),
            log("RETAIL"),
            serde_json::json!({"log": "ENERGY", "p": "skip"}).to_string(),
        ],
    );
    assert_eq!(failed, 0);
    assert_eq!(
        rows,
        [
            r#"{"SECTOR":"ENERGY","MATCH1":"EN","MATCH2":"RGY","N":3}"#,
            r#"{"SECTOR":"HEALTHCARE","MATCH1":"EA","MATCH2":"RE","N":2}"#,
            r#"{"SECTOR":"TECHNOLOGY","MATCH1":null,"MATCH2":null,"N":null}"#,
        ]
    );
}

#[test]
fn a_field_of_a_call_and_a_row_selected_whole() {
    let (rows, failed) = run(
        &app(
            "A VARCHAR(8), B VARCHAR(8), N INTEGER",
            &format!(
                "SELECT STREAM REGEX_LOG_PARSE(\"log\", '(\\w+)-(\\w+)').COLUMN2,
                    (VARIABLE_COLUMN_LOG_PARSE(\"log\", 2, '-')).COLUMN1,
                    FIXED_COLUMN_LOG_PARSE(\"log\", 'N TYPE INTEGER START 0 FOR 2').N
                 {FROM}"
            ),
        ),
        &[log("12-ab"), log("x")],
    );
    assert_eq!(failed, 1, "`x` is not an INTEGER");
    assert_eq!(rows, [r#"{"A":"ab","B":"12","N":12}"#]);
    // A row selected whole fills as many columns as it has fields.
    let (rows, failed) = run(
        &app(
            "REFERRER VARCHAR(32), PAGE VARCHAR(32)",
            &format!("SELECT STREAM W3C_LOG_PARSE(\"log\", 'REFERER') r {FROM}"),
        ),
        &[log("http://a.example/ ---> /index.html")],
    );
    assert_eq!(failed, 0);
    assert_eq!(
        rows,
        [r#"{"REFERRER":"http://a.example/","PAGE":"/index.html"}"#]
    );
    // ... also from a subquery, and through a second one.
    let (rows, failed) = run(
        &app(
            "X VARCHAR(8), Y VARCHAR(8), Z VARCHAR(8)",
            &format!(
                "SELECT STREAM * FROM (SELECT STREAM u.r FROM (SELECT STREAM
                     VARIABLE_COLUMN_LOG_PARSE(\"log\", 'X, Y, Z', ',') AS r {FROM}) u) AS t"
            ),
        ),
        &[log("a,b,c"), log("a")],
    );
    assert_eq!(failed, 0);
    assert_eq!(
        rows,
        [
            r#"{"X":"a","Y":"b","Z":"c"}"#,
            r#"{"X":"a","Y":null,"Z":null}"#
        ]
    );
}

#[test]
fn a_window_over_a_subquerys_fields() {
    // Requests per status per minute, of COMMON log lines.
    let lines: Vec<String> = [200, 304, 200, 404, 200]
        .iter()
        .map(|s| log(&JOHN.replace(" 304 0", &format!(" {s} 10"))))
        .collect();
    let (rows, failed) = run(
        &app(
            "STATUS INTEGER, REQUESTS BIGINT, BYTES BIGINT",
            "SELECT STREAM w.r.COLUMN6, COUNT(*), SUM(w.r.COLUMN7)
             FROM (SELECT STREAM W3C_LOG_PARSE(\"log\", 'COMMON') AS r
                   FROM \"SOURCE_SQL_STREAM_001\") AS w
             GROUP BY w.r.COLUMN6, FLOOR(w.ROWTIME TO MINUTE)",
        ),
        &lines,
    );
    assert_eq!(failed, 0);
    let mut rows = rows;
    rows.sort();
    assert_eq!(
        rows,
        [
            r#"{"STATUS":200,"REQUESTS":3,"BYTES":30}"#,
            r#"{"STATUS":304,"REQUESTS":1,"BYTES":10}"#,
            r#"{"STATUS":404,"REQUESTS":1,"BYTES":10}"#,
        ]
    );
}

#[test]
fn conversions_and_not_null_fail_the_row() {
    let (rows, failed) = run(
        &app(
            "N INTEGER, WHEN_ TIMESTAMP, OK BOOLEAN",
            &format!(
                "SELECT STREAM t.r.N, t.r.\"when\", t.r.OK FROM (SELECT STREAM
                     VARIABLE_COLUMN_LOG_PARSE(\"log\",
                         'N TYPE INTEGER, \"when\" TYPE TIMESTAMP ''dd/MMM/yyyy:HH:mm:ss'',
                          OK TYPE BOOLEAN NOT NULL', U&'\\0009') AS r {FROM}) t"
            ),
        ),
        &[
            log("1\t24/May/2004:22:01:02\ttrue"),
            log("x\t24/May/2004:22:01:02\ttrue"),
            log("2\t24/May/2004:22:01:02"),
            log("\t\tFALSE"),
        ],
    );
    assert_eq!(failed, 2);
    assert_eq!(
        rows,
        [
            r#"{"N":1,"WHEN_":"2004-05-24 22:01:02.000","OK":true}"#,
            r#"{"N":null,"WHEN_":null,"OK":false}"#
        ]
    );
}

#[test]
fn bad_arguments_are_refused_with_their_line_and_column() {
    let one = "X VARCHAR(32)";
    let err = compile_error(&app(
        one,
        &format!("SELECT STREAM t.r.COLUMN1 FROM (SELECT STREAM\nREGEX_LOG_PARSE(\"log\", '(a') AS r {FROM}) t"),
    ));
    assert!(err.starts_with("line 4, column 24:"), "{err}");
    assert!(err.contains("regular expression"), "{err}");
    let err = compile_error(&app(
        one,
        &format!("SELECT STREAM REGEX_LOG_PARSE(\"log\", P).COLUMN1 {FROM}"),
    ));
    assert!(err.starts_with("line 3, column 38:"), "{err}");
    assert!(err.contains("literals"), "{err}");
    let err = compile_error(&app(
        one,
        &format!("SELECT STREAM t.r.COLUMN3 FROM (SELECT STREAM REGEX_LOG_PARSE(\"log\", '(a)(b)') AS r {FROM}) t"),
    ));
    assert!(err.starts_with("line 3, column 19:"), "{err}");
    assert!(err.contains("COLUMN1, COLUMN2"), "{err}");
    let err = compile_error(&app(
        one,
        &format!("SELECT STREAM t.q.COLUMN1 FROM (SELECT STREAM REGEX_LOG_PARSE(\"log\", '(a)(b)') AS r {FROM}) t"),
    ));
    assert!(err.contains("not a row"), "{err}");
    let err = compile_error(&app(
        one,
        &format!("SELECT STREAM UPPER(W3C_LOG_PARSE(\"log\", 'AGENT')) {FROM}"),
    ));
    assert!(err.starts_with("line 3, column 21:"), "{err}");
    assert!(err.contains("makes a row"), "{err}");
    let err = compile_error(&app(
        one,
        &format!("SELECT STREAM t.a FROM (SELECT STREAM \"log\", P {FROM}) AS t(a)"),
    ));
    assert!(err.contains("1 name(s) for the 2 column(s)"), "{err}");
    let err = compile_error(&app(
        one,
        &format!("SELECT STREAM W3C_LOG_PARSE(\"log\", 'IIS').COLUMN1 {FROM}"),
    ));
    assert!(err.contains("IIS"), "{err}");
    // The row has as many fields as the target has columns, or the pump is refused.
    let err = compile_error(&app(
        one,
        &format!("SELECT STREAM W3C_LOG_PARSE(\"log\", 'COMMON') {FROM}"),
    ));
    assert!(err.contains("selects 7 column(s) into 1"), "{err}");
    // A row's field outside GROUP BY.
    let err = compile_error(&app(
        "N BIGINT, X VARCHAR(32)",
        "SELECT STREAM COUNT(*), w.r.COLUMN1
         FROM (SELECT STREAM W3C_LOG_PARSE(\"log\", 'COMMON') AS r FROM \"SOURCE_SQL_STREAM_001\") AS w
         GROUP BY FLOOR(w.ROWTIME TO MINUTE)",
    ));
    assert!(err.contains("must appear in GROUP BY"), "{err}");
}

#[test]
fn fast_regex_and_syslog_rows() {
    // FAST_REGEX_LOG_PARSE (the reference's Example C): a string its pattern does not account
    // for fails its row.
    let (rows, failed) = run(
        &app(
            "A VARCHAR(16), B VARCHAR(32)",
            &format!(
                "SELECT STREAM t.r.COLUMN1, t.r.COLUMN2 FROM (SELECT STREAM
                     FAST_REGEX_LOG_PARSE(\"log\", '(.*)_+(<Alpha>.*)') AS r {FROM}) AS t"
            ),
        ),
        &[
            log("Mary____had_a_little_lamb"),
            log("Mary_"),
            log("Mary_4"),
        ],
    );
    assert_eq!(failed, 2);
    assert_eq!(rows, [r#"{"A":"Mary","B":"had_a_little_lamb"}"#]);
    // SYS_LOG_PARSE's row selected whole, and one field of a call.
    let (rows, failed) = run(
        &app(
            "LOGGED TIMESTAMP, MSG VARCHAR(32)",
            &format!("SELECT STREAM SYS_LOG_PARSE(\"log\") r {FROM}"),
        ),
        &[
            log("Feb  5 17:32:18 10.0.0.99 Use the BFG!"),
            log("Use the BFG!"),
        ],
    );
    assert_eq!(failed, 0);
    assert_eq!(
        rows,
        [
            r#"{"LOGGED":"1970-02-05 17:32:18.000","MSG":"10.0.0.99 Use the BFG!"}"#,
            r#"{"LOGGED":null,"MSG":null}"#,
        ]
    );
    let (rows, failed) = run(
        &app(
            "N BIGINT",
            &format!("SELECT STREAM UNIX_TIMESTAMP(SYS_LOG_PARSE(\"log\").COLUMN1) {FROM}"),
        ),
        &[log("Jan  1 00:00:01 x")],
    );
    assert_eq!(failed, 0);
    assert_eq!(rows, [r#"{"N":1000}"#]);
    // Their arguments are checked when the application starts.
    let err = compile_error(&app(
        "X VARCHAR(8)",
        &format!("SELECT STREAM FAST_REGEX_LOG_PARSE(\"log\", '(a)&(b)').COLUMN1 {FROM}"),
    ));
    assert!(err.starts_with("line 3, column 43:"), "{err}");
    assert!(err.contains("intersection"), "{err}");
    let err = compile_error(&app(
        "X TIMESTAMP",
        &format!("SELECT STREAM SYS_LOG_PARSE(\"log\", 'x').COLUMN1 {FROM}"),
    ));
    assert!(err.contains("SYS_LOG_PARSE takes (string)"), "{err}");
}

#[test]
fn a_pump_created_again_takes_its_subquery_with_it() {
    let select = format!(
        "SELECT STREAM t.r.COLUMN1 FROM (SELECT STREAM REGEX_LOG_PARSE(\"log\", '(.*)') AS r \
         {FROM}) t"
    );
    let sql = format!(
        "{}\nCREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\n{select};",
        app("X VARCHAR(8)", &select)
    );
    let (rows, failed) = run(&sql, &[log("a")]);
    assert_eq!(failed, 0);
    assert_eq!(rows, [r#"{"X":"a"}"#]);
}
