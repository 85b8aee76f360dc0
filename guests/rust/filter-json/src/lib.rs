//! `filter-json`: keeps records whose JSON field matches a value from config.
//!
//! Config: `{ "field": "user.country", "equals": "NZ" }` or `{ "field": "kind", "one_of": ["a", "b"] }`.
//! `field` is a dotted path into the JSON object; the values are any JSON. A record whose field is
//! missing or different is dropped; a record that is not JSON fails, so it reaches the error output.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    field: String,
    #[serde(default)]
    equals: Option<Value>,
    #[serde(default)]
    one_of: Option<Vec<Value>>,
}

struct Rule {
    path: Vec<String>,
    accepted: Vec<Value>,
}

impl Rule {
    fn from_json(json: &str) -> Result<Rule, String> {
        let config: Config =
            serde_json::from_str(json).map_err(|e| format!("filter-json: bad config: {e}"))?;
        let accepted = match (config.equals, config.one_of) {
            (Some(v), None) => vec![v],
            (None, Some(vs)) if !vs.is_empty() => vs,
            _ => {
                return Err(
                    "filter-json: give exactly one of `equals` or a non-empty `one_of`".into(),
                )
            }
        };
        if config.field.is_empty() {
            return Err("filter-json: `field` is empty".into());
        }
        Ok(Rule {
            path: config.field.split('.').map(str::to_string).collect(),
            accepted,
        })
    }

    /// `Ok(true)` to keep, `Ok(false)` to drop, `Err` for a record that is not JSON.
    fn keeps(&self, data: &[u8]) -> Result<bool, String> {
        let value: Value =
            serde_json::from_slice(data).map_err(|e| format!("record is not JSON: {e}"))?;
        let found = self
            .path
            .iter()
            .try_fold(&value, |v, key| v.as_object().and_then(|o| o.get(key)));
        Ok(found.is_some_and(|v| self.accepted.contains(v)))
    }
}

#[cfg(target_arch = "wasm32")]
mod guest {
    use std::sync::OnceLock;

    wit_bindgen::generate!({ path: "../../../wit", world: "filter" });

    static RULE: OnceLock<super::Rule> = OnceLock::new();

    struct FilterJson;

    impl Guest for FilterJson {
        fn init() -> Result<(), String> {
            let _ = RULE.set(super::Rule::from_json(&weir::plugin::host::config())?);
            Ok(())
        }

        fn keep(batch: Batch) -> Vec<Decision> {
            let rule = RULE.get().expect("init runs before keep");
            weir_guest::slices(&batch.data, &batch.data_ends)
                .map(|data| match rule.keeps(data) {
                    Ok(true) => Decision::Keep,
                    Ok(false) => Decision::Drop,
                    Err(reason) => Decision::Failed(reason),
                })
                .collect()
        }
    }

    export!(FilterJson);
}

#[cfg(test)]
mod tests {
    use super::Rule;

    #[test]
    fn matches_dotted_paths_against_equals_and_one_of() {
        let rule = Rule::from_json(r#"{"field":"user.country","equals":"NZ"}"#).unwrap();
        assert!(rule.keeps(br#"{"user":{"country":"NZ"}}"#).unwrap());
        assert!(!rule.keeps(br#"{"user":{"country":"AU"}}"#).unwrap());
        assert!(!rule.keeps(br#"{"user":"NZ"}"#).unwrap());
        assert!(rule.keeps(b"nope").is_err());
        let rule = Rule::from_json(r#"{"field":"n","one_of":[1,2]}"#).unwrap();
        assert!(rule.keeps(br#"{"n":2}"#).unwrap());
        assert!(Rule::from_json(r#"{"field":"n"}"#).is_err());
    }
}
