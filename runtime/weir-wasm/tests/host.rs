//! The sandbox, exercised with the real guests from `guests/` (built by `guests/build.sh`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use weir_wasm::{
    Batch, CompileCache, Decision, Error, GuestErrorKind, Host, HostOptions, Limits, Outcome,
    PluginKind, Settings, SourceRun, Verdicts,
};

fn guest(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../guests/dist")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the guests with guests/build.sh (scripts/test does)",
        path.display()
    );
    path
}

fn host() -> Host {
    let dir = std::env::var_os("WEIR_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("weir-wasm-tests"));
    Host::new(HostOptions {
        cache: Some(CompileCache::new(dir)),
    })
    .unwrap()
}

fn batch(records: &[&str]) -> Batch {
    let mut b = Batch {
        data: Vec::new(),
        data_ends: Vec::new(),
        keys: String::new(),
        key_ends: Vec::new(),
        sequence_numbers: String::new(),
        sequence_number_ends: Vec::new(),
        arrival_timestamps: Vec::new(),
        sub_sequence_numbers: Vec::new(),
        sources: vec![SourceRun {
            start: 0,
            name: "test".into(),
        }],
        attributes: Vec::new(),
    };
    for (i, r) in records.iter().enumerate() {
        b.data.extend_from_slice(r.as_bytes());
        b.data_ends.push(b.data.len() as u32);
        b.keys.push_str(&i.to_string());
        b.key_ends.push(b.keys.len() as u32);
        b.sequence_number_ends.push(0);
        b.arrival_timestamps.push(0);
    }
    b
}

fn settings(config: &str, limits: Limits) -> Settings {
    Settings {
        config_json: config.into(),
        limits,
        label: "test".into(),
        ..Settings::default()
    }
}

/// One line per input record: its output records joined by `|`, or what happened to it.
fn outputs(v: Verdicts) -> Vec<String> {
    let Verdicts::Transform(t) = v else {
        panic!("expected a transform")
    };
    let mut data = t
        .data_ends
        .iter()
        .scan(0usize, |start, &end| {
            let s = String::from_utf8_lossy(&t.data[*start..end as usize]).into_owned();
            *start = end as usize;
            Some(s)
        })
        .collect::<Vec<_>>()
        .into_iter();
    t.outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Ok(n) => (0..n)
                .map(|_| data.next().unwrap())
                .collect::<Vec<_>>()
                .join("|"),
            Outcome::Dropped => "<dropped>".into(),
            Outcome::ProcessingFailed(m) => format!("<failed: {m}>"),
        })
        .collect()
}

#[test]
fn a_trapping_guest_fails_its_batch_and_the_next_batch_gets_a_fresh_instance() {
    let host = host();
    let plugin = host.load(&guest("misbehave"), false).unwrap();
    assert_eq!(plugin.kind(), PluginKind::Transform);
    let mut runner = plugin
        .runner(settings(r#"{"behaviour":"panic"}"#, Limits::default()))
        .unwrap();
    let err = runner.call(&batch(&["a", "boom"])).unwrap_err();
    assert_eq!(err.kind, GuestErrorKind::Trap);
    assert!(
        err.message.contains("misbehave panicked on purpose"),
        "the panic message from the guest's stderr is kept: {}",
        err.message
    );
    assert_eq!(
        outputs(runner.call(&batch(&["a", "b"])).unwrap()),
        ["a", "b"]
    );
    assert_eq!(runner.instances_started(), 2);
}

#[test]
fn an_endless_loop_is_cut_off_by_the_timeout_and_by_fuel() {
    let host = host();
    let plugin = host.load(&guest("misbehave"), false).unwrap();
    let limits = Limits {
        timeout: Some(Duration::from_millis(100)),
        ..Limits::default()
    };
    let mut runner = plugin
        .runner(settings(r#"{"behaviour":"loop"}"#, limits))
        .unwrap();
    let started = Instant::now();
    let err = runner.call(&batch(&["boom"])).unwrap_err();
    assert_eq!(err.kind, GuestErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let limits = Limits {
        fuel: Some(5_000_000),
        timeout: None,
        ..Limits::default()
    };
    // A fuel budget needs the module compiled for metering.
    let refused = plugin
        .runner(settings(r#"{"behaviour":"loop"}"#, limits.clone()))
        .err()
        .expect("a budget without metering is refused")
        .to_string();
    assert!(
        refused.contains("was loaded without fuel metering but its limits set a fuel budget"),
        "{refused}"
    );
    let plugin = host.load(&guest("misbehave"), true).unwrap();
    let mut runner = plugin
        .runner(settings(r#"{"behaviour":"loop"}"#, limits))
        .unwrap();
    let err = runner.call(&batch(&["boom"])).unwrap_err();
    assert_eq!(err.kind, GuestErrorKind::FuelExhausted, "{err}");
    // Fuel is per call: ordinary batches after the failure still run.
    assert_eq!(outputs(runner.call(&batch(&["x"])).unwrap()), ["x"]);
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    let host = host();
    let plugin = host.load(&guest("misbehave"), false).unwrap();
    let limits = Limits {
        memory: 16 << 20,
        ..Limits::default()
    };
    let mut runner = plugin
        .runner(settings(r#"{"behaviour":"alloc"}"#, limits))
        .unwrap();
    let err = runner.call(&batch(&["boom"])).unwrap_err();
    assert_eq!(err.kind, GuestErrorKind::MemoryLimit, "{err}");
    assert_eq!(outputs(runner.call(&batch(&["y"])).unwrap()), ["y"]);
}

#[test]
fn deep_recursion_traps_instead_of_crashing_the_host() {
    let host = host();
    let plugin = host.load(&guest("misbehave"), false).unwrap();
    let mut runner = plugin
        .runner(settings(r#"{"behaviour":"recurse"}"#, Limits::default()))
        .unwrap();
    let err = runner.call(&batch(&["boom"])).unwrap_err();
    assert_eq!(err.kind, GuestErrorKind::Trap, "{err}");
}

#[test]
fn a_wrong_number_of_outcomes_is_invalid_output() {
    let host = host();
    let plugin = host.load(&guest("misbehave"), false).unwrap();
    let mut runner = plugin
        .runner(settings(
            r#"{"behaviour":"wrong-count"}"#,
            Limits::default(),
        ))
        .unwrap();
    let err = runner.call(&batch(&["a", "boom", "c"])).unwrap_err();
    assert_eq!(err.kind, GuestErrorKind::InvalidOutput);
    assert!(
        err.message.contains("returned 2 results for a batch of 3"),
        "{err}"
    );
}

#[test]
fn a_rejected_config_fails_the_start_with_the_guests_message() {
    let host = host();
    let plugin = host.load(&guest("misbehave"), false).unwrap();
    let err = plugin
        .runner(settings(r#"{"behaviour":"reject"}"#, Limits::default()))
        .err()
        .expect("rejected");
    assert!(matches!(err, Error::ConfigRejected { .. }));
    assert!(
        err.to_string().contains("rejecting this config on purpose"),
        "{err}"
    );
    let plugin = host.load(&guest("redact"), false).unwrap();
    let err = plugin
        .runner(settings(r#"{"fieldz":["a"]}"#, Limits::default()))
        .err()
        .expect("rejected");
    assert!(err.to_string().contains("unknown field `fieldz`"), "{err}");
}

#[test]
fn files_and_environment_are_denied_unless_granted() {
    let host = host();
    let plugin = host.load(&guest("misbehave"), false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "granted contents").unwrap();
    let file = dir.path().join("secret.txt").display().to_string();
    let config = format!(r#"{{"behaviour":"read-file","path":"{file}"}}"#);

    let mut denied = plugin.runner(settings(&config, Limits::default())).unwrap();
    let out = outputs(denied.call(&batch(&["boom"])).unwrap());
    assert!(out[0].starts_with("<failed: cannot read"), "{out:?}");

    let mut s = settings(&config, Limits::default());
    s.grants.dirs = vec![(dir.path().to_owned(), dir.path().display().to_string())];
    let mut granted = plugin.runner(s).unwrap();
    assert_eq!(
        outputs(granted.call(&batch(&["boom"])).unwrap()),
        ["granted contents"]
    );

    let config = r#"{"behaviour":"env","path":"WEIR_TEST_SECRET"}"#;
    let mut denied = plugin.runner(settings(config, Limits::default())).unwrap();
    assert!(outputs(denied.call(&batch(&["boom"])).unwrap())[0].starts_with("<failed: no $"));
    let mut s = settings(config, Limits::default());
    s.grants.env = vec![("WEIR_TEST_SECRET".into(), "hunter2".into())];
    let mut granted = plugin.runner(s).unwrap();
    assert_eq!(
        outputs(granted.call(&batch(&["boom"])).unwrap()),
        ["hunter2"]
    );
}

#[test]
fn sockets_are_denied_unless_the_host_is_granted() {
    let host = host();
    let plugin = host.load(&guest("misbehave"), false).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = format!(r#"{{"behaviour":"connect","path":"{addr}"}}"#);

    let mut denied = plugin.runner(settings(&config, Limits::default())).unwrap();
    let out = outputs(denied.call(&batch(&["boom"])).unwrap());
    assert!(
        out[0].starts_with(&format!("<failed: cannot connect to {addr}")),
        "{out:?}"
    );

    // Another address than the one granted is still refused.
    let mut s = settings(&config, Limits::default());
    s.grants.hosts = vec!["127.0.0.1:9".into()];
    let mut elsewhere = plugin.runner(s).unwrap();
    let out = outputs(elsewhere.call(&batch(&["boom"])).unwrap());
    assert!(out[0].starts_with("<failed: cannot connect"), "{out:?}");

    let mut s = settings(&config, Limits::default());
    s.grants.hosts = vec![addr.clone()];
    let mut granted = plugin.runner(s).unwrap();
    assert_eq!(
        outputs(granted.call(&batch(&["boom"])).unwrap()),
        ["connected"]
    );
    let (mut conn, _) = listener.accept().unwrap();
    let mut hello = [0u8; 5];
    std::io::Read::read_exact(&mut conn, &mut hello).unwrap();
    assert_eq!(
        &hello, b"hello",
        "the granted connection carried the guest's bytes"
    );

    // `network` grants every address.
    let mut s = settings(&config, Limits::default());
    s.grants.network = true;
    let mut open = plugin.runner(s).unwrap();
    assert_eq!(
        outputs(open.call(&batch(&["boom"])).unwrap()),
        ["connected"]
    );
}

#[test]
fn a_huge_output_fails_its_batch_at_the_output_cap() {
    let host = host();
    let plugin = host.load(&guest("misbehave"), false).unwrap();
    let limits = Limits {
        memory: 256 << 20,
        output: 8 << 20,
        ..Limits::default()
    };
    let mut runner = plugin
        .runner(settings(r#"{"behaviour":"huge","size":10000000}"#, limits))
        .unwrap();
    let err = runner.call(&batch(&["a", "boom"])).unwrap_err();
    assert_eq!(err.kind, GuestErrorKind::OutputLimit, "{err}");
    assert!(
        err.message.contains("over its output cap of 8388608 bytes"),
        "{err}"
    );
    assert_eq!(outputs(runner.call(&batch(&["z"])).unwrap()), ["z"]);
    assert_eq!(
        runner.instances_started(),
        2,
        "the instance that went over its cap was thrown away"
    );

    // Failure messages count too: two records failed with 600 KB messages each pass a
    // 1 MiB cap, though no record data is returned at all.
    let mut wordy = plugin
        .runner(settings(
            r#"{"behaviour":"long-failure","size":600000}"#,
            Limits {
                output: 1 << 20,
                ..Limits::default()
            },
        ))
        .unwrap();
    let err = wordy.call(&batch(&["boom", "boom"])).unwrap_err();
    assert_eq!(err.kind, GuestErrorKind::OutputLimit, "{err}");
    let one = wordy.call(&batch(&["boom"])).unwrap();
    assert!(
        outputs(one)[0].starts_with("<failed: xxx"),
        "one message fits"
    );

    // Without the room to build it, the same output hits the memory cap first.
    let mut tight = plugin
        .runner(settings(
            r#"{"behaviour":"huge","size":100000000}"#,
            Limits::default(),
        ))
        .unwrap();
    let err = tight.call(&batch(&["boom"])).unwrap_err();
    assert_eq!(err.kind, GuestErrorKind::MemoryLimit, "{err}");
}

#[test]
fn filters_return_one_decision_per_record() {
    let host = host();
    let plugin = host.load(&guest("filter-json"), false).unwrap();
    assert_eq!(plugin.kind(), PluginKind::Filter);
    let mut runner = plugin
        .runner(settings(r#"{"field":"k","equals":1}"#, Limits::default()))
        .unwrap();
    let Verdicts::Filter(d) = runner
        .call(&batch(&[r#"{"k":1}"#, r#"{"k":2}"#, "nope"]))
        .unwrap()
    else {
        panic!("expected a filter")
    };
    assert!(matches!(d[0], Decision::Keep));
    assert!(matches!(d[1], Decision::Drop));
    assert!(matches!(&d[2], Decision::Failed(m) if m.contains("not JSON")));
}

#[test]
fn compiled_components_are_cached_on_disk_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let host = || {
        Host::new(HostOptions {
            cache: Some(CompileCache::new(dir.path())),
        })
        .unwrap()
    };
    assert!(host()
        .load(&guest("identity"), false)
        .unwrap()
        .was_compiled());
    assert!(!host()
        .load(&guest("identity"), false)
        .unwrap()
        .was_compiled());
    let cached: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(cached.len(), 1);
    // A corrupt artifact is recompiled, not trusted.
    let file = cached[0].as_ref().unwrap().path();
    std::fs::write(&file, b"garbage").unwrap();
    assert!(host()
        .load(&guest("identity"), false)
        .unwrap()
        .was_compiled());
}

#[test]
fn a_non_component_is_a_clear_error() {
    let host = host();
    let err = host
        .load_bytes(std::path::Path::new("junk.wasm"), b"\0asm\x01\0\0\0", false)
        .err()
        .expect("a core module is not a component");
    assert!(
        err.to_string()
            .starts_with("junk.wasm is not a valid WebAssembly component"),
        "{err}"
    );
}

#[test]
fn a_guest_asleep_in_a_host_call_is_stopped_by_its_timeout_or_an_abort() {
    let host = host();
    let plugin = host.load(&guest("misbehave"), false).unwrap();
    let limits = Limits {
        timeout: Some(Duration::from_millis(300)),
        ..Limits::default()
    };
    let mut runner = plugin
        .runner(settings(r#"{"behaviour":"sleep"}"#, limits))
        .unwrap();
    // The guest waits on a WASI clock for an hour: no guest code runs for the epoch interrupt
    // to stop, yet the call ends at its timeout.
    let started = Instant::now();
    let err = runner.call(&batch(&["boom"])).unwrap_err();
    assert_eq!(err.kind, GuestErrorKind::Timeout, "{err}");
    assert!(err.message.contains("blocked in a host call"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outputs(runner.call(&batch(&["fine"])).unwrap()), ["fine"]);
    assert_eq!(runner.instances_started(), 2);

    // Without a timeout, only the abort switch (a stopping pipeline) ends it.
    let mut forever = plugin
        .runner(settings(
            r#"{"behaviour":"sleep"}"#,
            Limits {
                timeout: None,
                ..Limits::default()
            },
        ))
        .unwrap();
    let (stop, abort) = tokio::sync::watch::channel(false);
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        stop.send(true).unwrap();
    });
    let started = Instant::now();
    let err = forever.call_until(&batch(&["boom"]), &abort).unwrap_err();
    stopper.join().unwrap();
    assert_eq!(err.kind, GuestErrorKind::Aborted, "{err}");
    assert!(err.message.contains("pipeline is stopping"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A transform component built from a core module that also holds `memories` memories of
/// `pages` 64 KiB pages each and a table of `table` entries: each under a memory cap on its
/// own, not together. Its `transform` answers nothing (empty lists).
fn hog_component(memories: usize, pages: u32, table: u32) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let wit = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../wit");
    let (package, _) = resolve.push_dir(&wit).unwrap();
    let world = resolve.select_world(&[package], Some("transform")).unwrap();
    let extra: String = (0..memories)
        .map(|_| format!("(memory {pages})\n"))
        .collect();
    let wat = format!(
        r#"(module
            (memory (export "memory") 2)
            {extra}
            (table {table} funcref)
            (global $next (mut i32) (i32.const 4096))
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (local $at i32)
                ;; bump allocation, aligned
                global.get $next
                local.get 2 i32.const 1 i32.sub i32.add
                local.get 2 i32.const 1 i32.sub i32.const -1 i32.xor i32.and
                local.tee $at
                local.get 3 i32.add global.set $next
                local.get $at)
            (func (export "init") (result i32) i32.const 16)
            (func (export "transform") (param i32) (result i32) i32.const 64))"#
    );
    let mut core = wat::parse_str(&wat).unwrap();
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&core)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

#[test]
fn every_memory_and_table_of_a_component_counts_against_one_cap() {
    let host = host();
    // Eight memories of 1 MiB and a table of 200,000 entries (1.6 MB): 10 MB in all.
    let hog = hog_component(8, 16, 200_000);
    let plugin = host
        .load_bytes(std::path::Path::new("hog.wasm"), &hog, false)
        .unwrap();
    let capped = |memory: u64| {
        plugin.runner(settings(
            "{}",
            Limits {
                memory,
                ..Limits::default()
            },
        ))
    };
    let err = capped(4 << 20).err().expect("over a 4 MiB cap");
    let text = err.to_string();
    assert!(text.contains("memory"), "{text}");
    // Under a cap that holds them all it starts, and answers (wrongly, with nothing).
    let mut runner = capped(64 << 20).unwrap();
    let err = runner.call(&batch(&["a"])).unwrap_err();
    assert_eq!(err.kind, GuestErrorKind::InvalidOutput, "{err}");
    // More memories than an instance may create at all.
    let many = hog_component(40, 0, 0);
    let plugin = host
        .load_bytes(std::path::Path::new("many.wasm"), &many, false)
        .unwrap();
    assert!(plugin
        .runner(settings("{}", Limits::default()))
        .err()
        .is_some());
}

/// A transform built against `weir:plugin@0.1.0` (the WIT as it was before 0.2 reworked the
/// `sql-udf` world) whose `init` calls `host.monotonic-now` of 0.1.0: it must still link.
#[test]
fn a_guest_built_against_0_1_still_loads_and_runs() {
    let mut resolve = wit_parser::Resolve::default();
    let wit = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/wit-0.1.0");
    let (package, _) = resolve.push_dir(&wit).unwrap();
    let world = resolve.select_world(&[package], Some("transform")).unwrap();
    let wat = r#"(module
        (import "weir:plugin/host@0.1.0" "monotonic-now" (func $now (result i64)))
        (memory (export "memory") 1)
        (global $next (mut i32) (i32.const 4096))
        (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (local $at i32)
            global.get $next
            local.get 2 i32.const 1 i32.sub i32.add
            local.get 2 i32.const 1 i32.sub i32.const -1 i32.xor i32.and
            local.tee $at
            local.get 3 i32.add global.set $next
            local.get $at)
        ;; init: reads the clock, answers ok (a zeroed result<_, string> at 16).
        (func (export "init") (result i32) call $now drop i32.const 16)
        ;; transform: an empty answer (all lists empty, at 64).
        (func (export "transform") (param i32) (result i32) i32.const 64))"#;
    let mut core = wat::parse_str(wat).unwrap();
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    let old = wit_component::ComponentEncoder::default()
        .module(&core)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap();
    let host = host();
    let plugin = host
        .load_bytes(std::path::Path::new("old.wasm"), &old, false)
        .unwrap();
    assert_eq!(plugin.kind(), PluginKind::Transform);
    let mut runner = plugin.runner(settings("{}", Limits::default())).unwrap();
    let v = runner.call(&batch(&[])).unwrap();
    assert!(outputs(v).is_empty());
}

fn texts_column() -> weir_wasm::Column {
    weir_wasm::Column {
        nulls: vec![],
        values: weir_wasm::Values::Utf8(weir_wasm::Texts {
            data: "1h2h3h4h".into(),
            ends: vec![2, 4, 6, 8],
        }),
    }
}

#[test]
fn sql_functions_are_listed_and_called_over_packed_columns() {
    use weir_wasm::{Column, DataType, Texts, Values};
    let host = host();
    let plugin = host.load(&guest("sql-functions"), false).unwrap();
    assert_eq!(plugin.kind(), PluginKind::SqlUdf);
    let mut runner = plugin.runner(settings("{}", Limits::default())).unwrap();
    let functions = runner.functions().unwrap();
    let parse = functions
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("parse_duration"))
        .expect("PARSE_DURATION");
    assert_eq!(parse.args, [DataType::Utf8]);
    assert_eq!(parse.returns, DataType::Int64);

    let texts = ["1h", "", "2m30s", "later"];
    let mut data = String::new();
    let ends = texts
        .iter()
        .map(|t| {
            data.push_str(t);
            data.len() as u32
        })
        .collect();
    let column = Column {
        // The second row is NULL.
        nulls: vec![1],
        values: Values::Utf8(Texts { data, ends }),
    };
    let results = runner
        .call_udf(&parse.name, 4, &[column], DataType::Int64, None)
        .unwrap()
        .unwrap();
    let Values::Int64(ms) = &results.column.values else {
        panic!("{:?}", results.column.values)
    };
    assert_eq!(ms[0], 3_600_000);
    assert_eq!(ms[2], 150_000);
    assert!(results.column.nulls.contains(&1));
    assert_eq!(results.errors.len(), 1);
    assert_eq!(results.errors[0].row, 3);
    assert!(results.errors[0].message.contains("later"));

    // A whole call the module refuses: the wrong number of arguments.
    let refused = runner
        .call_udf(&parse.name, 0, &[], DataType::Int64, None)
        .unwrap();
    // An answer of another type than the declared one is invalid output.
    let wrong = runner
        .call_udf(&parse.name, 4, &[texts_column()], DataType::Utf8, None)
        .unwrap_err();
    assert_eq!(wrong.kind, GuestErrorKind::InvalidOutput);
    assert!(wrong.message.contains("int64"), "{}", wrong.message);
    assert!(refused.is_err(), "{refused:?}");
    // A sql-udf module is not a batch transform.
    let err = runner.call(&batch(&["x"])).unwrap_err();
    assert_eq!(err.kind, GuestErrorKind::InvalidOutput);
    assert!(err.message.contains("sql-udf"), "{}", err.message);
}
