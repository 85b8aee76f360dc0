//! `misbehave`: a test guest that misbehaves on purpose, to prove the sandbox holds.
//!
//! Config: `{ "behaviour": "<what>", "trigger": "boom", "path": "/etc/passwd" }`. Records whose data
//! contains `trigger` (default `boom`) misbehave; every other record passes through unchanged.
//! Behaviours: `loop` (spins forever), `alloc` (allocates without bound), `trap` (executes
//! `unreachable`), `panic` (panics with a message), `recurse` (unbounded recursion),
//! `wrong-count` (returns one outcome too few), `read-file` (tries to read `path` and returns its
//! contents, or fails with the error), `env` (returns the value of `$path` or fails), `connect`
//! (opens a TCP connection to the address in `path`, sends `hello` and returns `connected`, or
//! fails with the error), `huge` (returns one record of `size` bytes, default 40 MiB),
//! `long-failure` (fails the record with a message of `size` bytes), `sleep` (sleeps an hour in
//! a WASI clock wait) and `reject` (rejects its config in `init`).

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    behaviour: String,
    #[serde(default = "default_trigger")]
    trigger: String,
    #[serde(default)]
    path: String,
    #[serde(default = "default_size")]
    size: usize,
}

fn default_size() -> usize {
    40 << 20
}

fn default_trigger() -> String {
    "boom".into()
}

#[cfg(target_arch = "wasm32")]
mod guest {
    use std::sync::OnceLock;

    wit_bindgen::generate!({ path: "../../../wit", world: "transform" });

    use weir::plugin::host::{self, Level};
    use weir::plugin::types::Outcome;
    use weir_guest::Packer;

    static CONFIG: OnceLock<super::Config> = OnceLock::new();

    fn ok(out: &mut Packer, data: &[u8]) -> Outcome {
        out.push(data);
        Outcome::Ok(1)
    }

    #[inline(never)]
    #[allow(unconditional_recursion)]
    fn recurse(depth: u64) -> u64 {
        let frame = std::hint::black_box([depth; 64]);
        recurse(depth + 1) + frame[(depth % 64) as usize]
    }

    struct Misbehave;

    impl Guest for Misbehave {
        fn init() -> Result<(), String> {
            let config: super::Config = serde_json::from_str(&host::config())
                .map_err(|e| format!("misbehave: bad config: {e}"))?;
            if config.behaviour == "reject" {
                return Err("misbehave: rejecting this config on purpose".into());
            }
            host::log(
                Level::Info,
                "misbehave ready",
                &[("behaviour".to_string(), config.behaviour.clone())],
            );
            let _ = CONFIG.set(config);
            Ok(())
        }

        fn transform(batch: Batch) -> Transformed {
            let config = CONFIG.get().expect("init runs before transform");
            let trigger = config.trigger.as_bytes();
            let mut outcomes: Vec<Outcome> = Vec::new();
            let mut out = Packer::default();
            for data in weir_guest::slices(&batch.data, &batch.data_ends) {
                let triggered = data.windows(trigger.len()).any(|w| w == trigger);
                if !triggered {
                    outcomes.push(ok(&mut out, data));
                    continue;
                }
                match config.behaviour.as_str() {
                    "loop" => {
                        let mut n: u64 = 0;
                        loop {
                            n = std::hint::black_box(n.wrapping_add(1));
                        }
                    }
                    "alloc" => {
                        let mut hoard: Vec<Vec<u8>> = Vec::new();
                        loop {
                            hoard.push(vec![1u8; 1 << 20]);
                            std::hint::black_box(&hoard);
                        }
                    }
                    "trap" => core::arch::wasm32::unreachable(),
                    "panic" => panic!("misbehave panicked on purpose"),
                    "recurse" => {
                        let depth = recurse(0).to_string();
                        outcomes.push(ok(&mut out, depth.as_bytes()));
                    }
                    "wrong-count" => {}
                    "read-file" => outcomes.push(match std::fs::read(&config.path) {
                        Ok(bytes) => ok(&mut out, &bytes),
                        Err(e) => {
                            Outcome::ProcessingFailed(format!("cannot read {}: {e}", config.path))
                        }
                    }),
                    "connect" => outcomes.push(
                        match std::net::TcpStream::connect(&config.path)
                            .and_then(|mut s| std::io::Write::write_all(&mut s, b"hello"))
                        {
                            Ok(()) => ok(&mut out, b"connected"),
                            Err(e) => Outcome::ProcessingFailed(format!(
                                "cannot connect to {}: {e}",
                                config.path
                            )),
                        },
                    ),
                    "huge" => outcomes.push(ok(&mut out, &vec![b'x'; config.size])),
                    "long-failure" => {
                        outcomes.push(Outcome::ProcessingFailed("x".repeat(config.size)))
                    }
                    "sleep" => {
                        std::thread::sleep(std::time::Duration::from_secs(3600));
                        outcomes.push(ok(&mut out, b"woke up"));
                    }
                    "env" => outcomes.push(match std::env::var(&config.path) {
                        Ok(v) => ok(&mut out, v.as_bytes()),
                        Err(e) => Outcome::ProcessingFailed(format!("no ${}: {e}", config.path)),
                    }),
                    other => outcomes.push(Outcome::ProcessingFailed(format!(
                        "unknown behaviour {other}"
                    ))),
                }
            }
            Transformed {
                outcomes,
                data: out.data,
                data_ends: out.ends,
                keys: Vec::new(),
                partition_keys: Vec::new(),
            }
        }
    }

    export!(Misbehave);
}
