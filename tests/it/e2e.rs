//! End-to-end tests: the `weir` binary run on real pipeline files, with the real guests from
//! `guests/` (built by `guests/build.sh`, which `scripts/test` runs first).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::common::{lines, objects, root, run_ok, weir};

fn guest(name: &str) -> String {
    let path = root().join("guests/dist").join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the guests with guests/build.sh (scripts/test does)",
        path.display()
    );
    path.canonicalize().unwrap().display().to_string()
}

fn error_records(dir: &Path) -> Vec<serde_json::Value> {
    lines(&objects(dir, None))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn raw(error: &serde_json::Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(error["rawData"].as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn file_through_two_rust_guests_and_a_python_guest_to_gzip_objects() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        [
            r#"{"kind":"view","email":"a@x.io","ip":"1.1.1.1","n":1}"#,
            r#"{"kind":"click","email":"b@x.io","n":2}"#,
            "this line is not json",
            r#"{"kind":"purchase","user":{"email":"c@x.io"},"n":3}"#,
            r#"{"kind":"view","email":"d@x.io","n":4,"test":true}"#,
            r#"{"kind":"view","email":"e@x.io","n":5}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let pipeline = dir.path().join("clicks.toml");
    std::fs::write(
        &pipeline,
        format!(
            r#"
[pipeline]
name = "clicks"
[source]
type = "file"
path = "in.jsonl"
format = "json"
[[process]]
type = "wasm"
module = "{filter}"
config = {{ field = "kind", one_of = ["view", "purchase"] }}
[[process]]
type = "wasm"
module = "{redact}"
config = {{ fields = ["email", "ip"], mask = "REDACTED" }}
[[process]]
type = "wasm"
module = "{enrich}"
config = {{ add = {{ env = "prod" }}, drop_when = "test" }}
limits = {{ memory = "128MiB", timeout = "5s" }}
[sink]
type = "file"
path = "out"
compression = "gzip"
"#,
            filter = guest("filter-json"),
            redact = guest("redact"),
            enrich = guest("enrich"),
        ),
    )
    .unwrap();
    let out = run_ok(weir().args(["run", "--progress", "0s"]).arg(&pipeline));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("6 records in, 3 out, 2 dropped, 1 failed"),
        "{stderr}"
    );

    let delivered = objects(&dir.path().join("out"), Some("errors"));
    assert_eq!(
        delivered.len(),
        1,
        "one object, flushed at the end of input"
    );
    let name = delivered[0].0.strip_prefix(dir.path().join("out")).unwrap();
    let name = name.display().to_string();
    let re = regex_lite::Regex::new(
        r"^\d{4}/\d{2}/\d{2}/\d{2}/clicks-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}\.gz$",
    )
    .unwrap();
    assert!(re.is_match(&name), "Firehose object name: {name}");
    assert_eq!(
        lines(&delivered),
        [
            r#"{"kind":"view","email":"REDACTED","ip":"REDACTED","n":1,"env":"prod"}"#,
            r#"{"kind":"purchase","user":{"email":"REDACTED"},"n":3,"env":"prod"}"#,
            r#"{"kind":"view","email":"REDACTED","n":5,"env":"prod"}"#,
        ]
    );

    let errors = error_records(&dir.path().join("out/errors/source-failed"));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["errorCode"], "Source.InvalidJson");
    assert_eq!(errors[0]["sequenceNumber"], "3");
    assert_eq!(raw(&errors[0]), "this line is not json");
    assert!(errors[0]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("line 3: not JSON"));
}

#[test]
fn hostile_guests_cost_only_their_own_records() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(
        &input,
        "ok 1\nLOOP\nok 2\nALLOC\nok 3\nTRAP\nok 4\nPANIC\nok 5\nDEEP\nok 6\nHUGE\nok 7\nSOCKET\nok 8\nFILE\nok 9\n",
    )
    .unwrap();
    let with_limits = |behaviour: &str, trigger: &str, limits: &str| {
        format!(
            "[[process]]\ntype = \"wasm\"\nmodule = \"{}\"\nconfig = {{ behaviour = \"{behaviour}\", trigger = \"{trigger}\", path = \"{}\" }}\nlimits = {{ {limits} }}\n",
            guest("misbehave"),
            match behaviour {
                "connect" => "127.0.0.1:9",
                _ => "/etc/hostname",
            }
        )
    };
    let step = |behaviour: &str, trigger: &str| {
        with_limits(
            behaviour,
            trigger,
            "memory = \"32MiB\", timeout = \"300ms\"",
        )
    };
    let pipeline = dir.path().join("hostile.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[pipeline]\nbatch = {{ records = 1 }}\n[source]\ntype = \"file\"\npath = \"in.txt\"\n{}{}{}{}{}{}{}{}[sink]\ntype = \"file\"\npath = \"out\"\n",
            step("loop", "LOOP"),
            // Only the memory cap may stop this one: a loaded machine must not turn it into a
            // timeout.
            with_limits("alloc", "ALLOC", "memory = \"32MiB\", timeout = \"10s\""),
            step("trap", "TRAP"),
            step("panic", "PANIC"),
            step("recurse", "DEEP"),
            with_limits("huge", "HUGE", "memory = \"128MiB\", output = \"8MiB\""),
            step("connect", "SOCKET"),
            step("read-file", "FILE"),
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = run_ok(weir().args(["run", "--progress", "0s"]).arg(&pipeline));
    assert!(started.elapsed() < Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("17 records in, 9 out, 0 dropped, 8 failed"),
        "{stderr}"
    );

    assert_eq!(
        lines(&objects(&dir.path().join("out"), Some("errors"))),
        ["ok 1", "ok 2", "ok 3", "ok 4", "ok 5", "ok 6", "ok 7", "ok 8", "ok 9"]
    );
    let mut errors = error_records(&dir.path().join("out/errors/processing-failed"));
    errors.sort_by_key(|e| {
        e["sequenceNumber"]
            .as_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
    });
    let got: Vec<(String, String)> = errors
        .iter()
        .map(|e| (raw(e), e["errorCode"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        got,
        [
            ("LOOP".to_string(), "Wasm.Timeout".to_string()),
            ("ALLOC".into(), "Wasm.MemoryLimit".into()),
            ("TRAP".into(), "Wasm.Trap".into()),
            ("PANIC".into(), "Wasm.Trap".into()),
            ("DEEP".into(), "Wasm.Trap".into()),
            ("HUGE".into(), "Wasm.OutputLimit".into()),
            ("SOCKET".into(), "Wasm.ProcessingFailed".into()),
            ("FILE".into(), "Wasm.ProcessingFailed".into()),
        ]
    );
    let message = |i: usize| errors[i]["errorMessage"].as_str().unwrap().to_string();
    // The guest's shadow stack runs into its data: a trap, never the host's stack.
    assert!(message(4).contains("guest trapped"), "{}", message(4));
    assert!(
        message(5).contains("output cap of 8388608 bytes"),
        "{}",
        message(5)
    );
    assert!(
        message(6).contains("cannot connect to 127.0.0.1:9"),
        "{}",
        message(6)
    );
    assert!(
        message(7).contains("cannot read /etc/hostname"),
        "{}",
        message(7)
    );
    assert!(errors[0]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("timeout of 300ms"));
    assert!(errors[1]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("memory cap of 33554432"));
    assert!(errors[3]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("misbehave panicked on purpose"));
    assert!(errors[0]["stage"]
        .as_str()
        .unwrap()
        .ends_with("misbehave.wasm"));
}

#[test]
fn a_misspelled_key_fails_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("bad.toml");
    std::fs::write(
        &pipeline,
        "[source]\ntype = \"stdin\"\n\n[sink]\ntype = \"file\"\npth = \"out\"\n",
    )
    .unwrap();
    let out = weir().arg("validate").arg(&pipeline).output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("bad.toml:6:1: key `sink.pth`: unknown field `pth`"),
        "{stdout}"
    );
    let out = weir().arg("run").arg(&pipeline).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:6:1: key `sink.pth`"), "{stderr}");
}

#[test]
fn a_config_the_guest_rejects_stops_the_pipeline_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("p.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[source]\ntype = \"stdin\"\n[[process]]\ntype = \"wasm\"\nmodule = \"{}\"\nconfig = {{ behaviour = \"reject\" }}\n[sink]\ntype = \"stdout\"\n",
            guest("misbehave")
        ),
    )
    .unwrap();
    let out = weir()
        .arg("run")
        .arg(&pipeline)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("process[0]"), "{stderr}");
    assert!(
        stderr.contains("misbehave: rejecting this config on purpose"),
        "{stderr}"
    );
}

#[test]
fn sigterm_mid_buffer_flushes_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("gen.toml");
    std::fs::write(
        &pipeline,
        format!(
            r#"
[pipeline]
name = "gen"
[source]
type = "generator"
template = '{{"n":{{{{seq}}}},"email":"x@y.z"}}'
rate = 2000
[[process]]
type = "wasm"
module = "{}"
config = {{ fields = ["email"] }}
[sink]
type = "file"
path = "out"
compression = "gzip"
buffer = {{ size = "128MiB", interval = "900s" }}
"#,
            guest("redact")
        ),
    )
    .unwrap();
    let child = weir()
        .args(["run", "--progress", "0s"])
        .arg(&pipeline)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let records pile up in the sink's buffer (its hints would hold them for 15 minutes).
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        objects(&dir.path().join("out"), None).is_empty(),
        "nothing delivered before shutdown"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let got = lines(&objects(&dir.path().join("out"), Some("errors")));
    assert!(got.len() > 100, "records were generated: {}", got.len());
    for (i, line) in got.iter().enumerate() {
        assert_eq!(
            line,
            &format!(r#"{{"n":{i},"email":"***"}}"#),
            "no gap, no duplicate"
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{n} records in, {n} out", n = got.len())),
        "everything read was delivered: {stderr}"
    );
}

#[test]
fn weir_test_prints_outputs_and_failures_of_the_example_pipeline() {
    let out = weir()
        .current_dir(root())
        .args([
            "test",
            "pipelines/clicks.toml",
            "--input",
            "pipelines/data/clicks.jsonl",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed record makes the exit code 1: {stdout}"
    );
    assert!(stdout.contains(r#"ok      #1     {"kind":"view","user":"ana","email":"***","ip":"***","page":"/","env":"prod","pipeline":"clicks"}"#), "{stdout}");
    assert!(
        stdout.contains("failed  #5     Source.InvalidJson"),
        "{stdout}"
    );
    assert!(
        stdout.contains("6 in, 3 out, 2 dropped, 1 failed"),
        "{stdout}"
    );
}

#[test]
fn every_example_pipeline_validates() {
    let out = run_ok(weir().current_dir(root()).args(["validate", "pipelines"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok: pipelines/quickstart.toml"), "{stdout}");
    assert!(stdout.contains("ok: pipelines/clicks.toml"), "{stdout}");
}

#[test]
fn stdin_to_stdout_with_errors_kept_in_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("pipe.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[source]\ntype = \"stdin\"\nformat = \"json\"\n[[process]]\ntype = \"wasm\"\nmodule = \"{}\"\nconfig = {{ fields = [\"pw\"] }}\n[sink]\ntype = \"stdout\"\n",
            guest("redact")
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let mut child = weir()
        .env("RUST_LOG", "info")
        .args(["run", "--progress", "0s", "--state-dir"])
        .arg(&state)
        .arg(&pipeline)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"u\":1,\"pw\":\"x\"}\n[1,\n{\"u\":2}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"u\":1,\"pw\":\"***\"}\n{\"u\":2}\n"
    );
    // The failed record is not printed (printed is not kept): it is in the durable default
    // error output under the state directory, in Firehose's layout, and the run says where.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("\"errorCode\""), "{stderr}");
    let errors = state.join("pipe/errors");
    assert!(
        stderr.contains(&format!("errors=files under {}", errors.display())),
        "{stderr}"
    );
    let found = error_records(&errors.join("source-failed"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["errorCode"], "Source.InvalidJson");
    assert_eq!(raw(&found[0]), "[1,");
}

#[test]
fn quickstart_delivers_redacted_records_and_exits_0() {
    // The README's first command, as a newcomer runs it (with the weir these tests built).
    let out = Command::new(root().join("scripts/quickstart"))
        .current_dir(root())
        .env("WEIR_BIN", env!("CARGO_BIN_EXE_weir"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{}: {stdout}\n{stderr}", out.status);
    assert!(
        stdout.contains("quickstart: all 5000 records delivered"),
        "{stdout}"
    );
    assert!(
        stderr.contains("5000 records in, 5000 out, 0 dropped, 0 failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("output: "),
        "says where the output went: {stderr}"
    );
    let records = lines(&objects(&root().join("out/quickstart"), Some("errors")));
    assert_eq!(records.len(), 5000);
    let mut seen: Vec<u64> = records
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["email"], "***");
            assert_eq!(v["ip"], "***");
            v["id"].as_u64().unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..5000).collect::<Vec<_>>());
}

#[test]
fn a_followed_file_delivers_appended_lines_until_sigterm() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("app.log");
    std::fs::write(&input, "first\nsecond\n").unwrap();
    let pipeline = dir.path().join("tail.toml");
    std::fs::write(
        &pipeline,
        "[pipeline]\nbatch = { linger = \"10ms\" }\n[source]\ntype = \"file\"\npath = \"app.log\"\nfollow = true\n[sink]\ntype = \"file\"\npath = \"out\"\nbuffer = { interval = \"0s\" }\n",
    )
    .unwrap();
    let child = weir()
        .args(["run", "--progress", "0s"])
        .arg(&pipeline)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wait_for = |n: usize| {
        let started = Instant::now();
        loop {
            let got = lines(&objects(&dir.path().join("out"), Some("errors")));
            if got.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "waiting for {n} lines, have {got:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(wait_for(2), ["first", "second"]);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    // A line written in two parts is one record, delivered once its newline arrives.
    file.write_all(b"thi").unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    file.write_all(b"rd\nfourth\n").unwrap();
    assert_eq!(wait_for(4), ["first", "second", "third", "fourth"]);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lines(&objects(&dir.path().join("out"), Some("errors"))).len(),
        4
    );
}

#[test]
fn guests_spinning_without_a_timeout_do_not_starve_the_other_pipelines() {
    let dir = tempfile::tempdir().unwrap();
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir(&pipelines).unwrap();
    std::fs::write(dir.path().join("spin.log"), "boom\n").unwrap();
    let good: String = (0..200).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    std::fs::write(dir.path().join("good.log"), &good).unwrap();
    // Three guests that never return (no timeout), on a pool of one thread: each holds its
    // thread until the pool sets it aside.
    for k in 0..3 {
        std::fs::write(
            pipelines.join(format!("a-spin{k}.toml")),
            format!(
                "[source]\ntype = \"file\"\npath = \"../spin.log\"\n[[process]]\ntype = \"wasm\"\nmodule = \"{}\"\nconfig = {{ behaviour = \"loop\" }}\nlimits = {{ timeout = \"0s\" }}\n[sink]\ntype = \"file\"\npath = \"../out-spin{k}\"\n",
                guest("misbehave")
            ),
        )
        .unwrap();
    }
    std::fs::write(
        pipelines.join("b-good.toml"),
        format!(
            "[pipeline]\nbatch = {{ records = 10, linger = \"10ms\" }}\n[source]\ntype = \"file\"\npath = \"../good.log\"\nfollow = true\n[[process]]\ntype = \"wasm\"\nmodule = \"{}\"\n[sink]\ntype = \"file\"\npath = \"../out-good\"\nbuffer = {{ interval = \"0s\" }}\n",
            guest("identity")
        ),
    )
    .unwrap();
    // Killed if the test fails: its guests would spin on.
    struct Running(Option<std::process::Child>);
    impl Drop for Running {
        fn drop(&mut self) {
            if let Some(child) = &mut self.0 {
                let _ = child.kill();
            }
        }
    }
    let mut child = Running(Some(
        weir()
            .env("WEIR_STEP_THREADS", "1")
            .args(["run", "--progress", "0s", "--no-watch"])
            .arg(&pipelines)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    crate::common::eventually(
        || "every record of the good pipeline delivered".into(),
        || lines(&objects(&dir.path().join("out-good"), Some("errors"))).len() == 200,
    );
    let mut got = lines(&objects(&dir.path().join("out-good"), Some("errors")));
    got.sort_by_key(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["n"].as_u64());
    assert_eq!(got.join("\n") + "\n", good);
    // The spinning calls are cut off at shutdown (they have no timeout of their own).
    let child = child.0.take().unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Wasm.Aborted"), "{stderr}");
}
