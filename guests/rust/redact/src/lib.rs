//! `redact`: masks the JSON fields named in its config, at any depth.
//!
//! Config: `{ "fields": ["email", "ip"], "mask": "***" }` (`mask` is optional). A record that is
//! not a JSON value fails with `processing-failed`, so it reaches the error output unchanged.
//!
//! The masking logic is plain Rust so that `weir bench` can run the very same code natively and
//! as a guest; the WIT glue is in `guest` and only exists on wasm.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub fields: Vec<String>,
    #[serde(default = "default_mask")]
    pub mask: String,
}

fn default_mask() -> String {
    "***".to_string()
}

impl Config {
    /// Parses and checks the JSON config a pipeline gives the guest.
    pub fn from_json(json: &str) -> Result<Config, String> {
        let config: Config =
            serde_json::from_str(json).map_err(|e| format!("redact: bad config: {e}"))?;
        if config.fields.is_empty() {
            return Err("redact: `fields` must name at least one field".into());
        }
        Ok(config)
    }
}

/// Masks every object member whose name is in `config.fields`, writing the result to `out`.
pub fn redact(input: &[u8], config: &Config, out: &mut Vec<u8>) -> Result<(), String> {
    let mut value: Value =
        serde_json::from_slice(input).map_err(|e| format!("record is not JSON: {e}"))?;
    mask(&mut value, config);
    serde_json::to_writer(out, &value).map_err(|e| e.to_string())
}

fn mask(value: &mut Value, config: &Config) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if config.fields.iter().any(|f| f == key) {
                    *v = Value::String(config.mask.clone());
                } else {
                    mask(v, config);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask(v, config)),
        _ => {}
    }
}

#[cfg(target_arch = "wasm32")]
mod guest {
    use std::sync::OnceLock;

    wit_bindgen::generate!({ path: "../../../wit", world: "transform" });

    use weir::plugin::types::{OutputRecord, Transformed};

    static CONFIG: OnceLock<super::Config> = OnceLock::new();

    struct Redact;

    impl Guest for Redact {
        fn init() -> Result<(), String> {
            let config = super::Config::from_json(&weir::plugin::host::config())?;
            let _ = CONFIG.set(config);
            Ok(())
        }

        fn transform(batch: Batch) -> Vec<Outcome> {
            let config = CONFIG.get().expect("init runs before transform");
            weir_guest::slices(&batch.data, &batch.data_ends)
                .map(|data| {
                    let mut out = Vec::with_capacity(data.len());
                    match super::redact(data, config, &mut out) {
                        Ok(()) => Outcome::Ok(Transformed {
                            records: vec![OutputRecord {
                                data: out,
                                partition_key: None,
                            }],
                            partition_keys: Vec::new(),
                        }),
                        Err(reason) => Outcome::ProcessingFailed(reason),
                    }
                })
                .collect()
        }
    }

    export!(Redact);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_named_fields_at_any_depth_and_keeps_order() {
        let config = Config::from_json(r#"{"fields":["email","ip"]}"#).unwrap();
        let mut out = Vec::new();
        redact(
            br#"{"z":1,"email":"a@b.c","nested":{"ip":"1.2.3.4","ok":true},"list":[{"email":"x"}]}"#,
            &config,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"z":1,"email":"***","nested":{"ip":"***","ok":true},"list":[{"email":"***"}]}"#
        );
    }

    #[test]
    fn rejects_bad_config_and_non_json_records() {
        assert!(Config::from_json(r#"{"fields":[]}"#).is_err());
        assert!(Config::from_json(r#"{"feilds":["a"]}"#)
            .unwrap_err()
            .contains("unknown field"));
        let config = Config::from_json(r#"{"fields":["a"]}"#).unwrap();
        assert!(redact(b"not json", &config, &mut Vec::new())
            .unwrap_err()
            .contains("not JSON"));
    }
}
