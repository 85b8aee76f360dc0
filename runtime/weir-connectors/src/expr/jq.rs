//! jq queries over JSON records, for `!{partitionKeyFromQuery:key}` (Firehose's dynamic
//! partitioning), through the `jaq` crates (jq semantics, jq's standard library).
//!
//! A query must give exactly one value per record, a string, number or boolean (as Firehose
//! requires); anything else fails that record with a message naming the query.

use crate::config::Refused;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Native, RcIter};
use jaq_json::Val;

/// A compiled jq query.
pub struct Query {
    text: String,
    filter: jaq_core::Filter<Native<Val>>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Query({:?})", self.text)
    }
}

impl Query {
    pub fn compile(text: &str) -> Result<Query, Refused> {
        let loader = Loader::new(jaq_std::defs().chain(jaq_json::defs()));
        let arena = Arena::default();
        let modules = loader
            .load(
                &arena,
                File {
                    code: text,
                    path: (),
                },
            )
            .map_err(|errs| format!("jq query `{text}` does not parse: {}", describe(&errs)))?;
        let filter = Compiler::default()
            .with_funs(jaq_std::funs().chain(jaq_json::funs()))
            .compile(modules)
            .map_err(|errs| {
                format!(
                    "jq query `{text}` does not compile: {} error(s), e.g. an unknown function or variable",
                    errs.len()
                )
            })?;
        Ok(Query {
            text: text.to_string(),
            filter,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Converts a record once for any number of queries (jq values share their parts, so
    /// each query's copy is cheap).
    pub fn input(json: serde_json::Value) -> Val {
        Val::from(json)
    }

    /// The query's single scalar result on a record (see [`Query::input`]), as text.
    pub fn eval(&self, input: &Val) -> Result<String, Refused> {
        let inputs = RcIter::new(core::iter::empty());
        let mut out = self.filter.run((Ctx::new([], &inputs), input.clone()));
        let first = match out.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                return Err(Refused::from(format!(
                    "jq query `{}` failed: {e}",
                    self.text
                )))
            }
            None => {
                return Err(Refused::from(format!(
                    "jq query `{}` gave no value",
                    self.text
                )))
            }
        };
        if out.next().is_some() {
            return Err(Refused::from(format!(
                "jq query `{}` gave more than one value",
                self.text
            )));
        }
        match serde_json::Value::from(first) {
            serde_json::Value::String(s) => Ok(s),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            serde_json::Value::Bool(b) => Ok(b.to_string()),
            serde_json::Value::Null => {
                Err(Refused::from(format!("jq query `{}` gave null", self.text)))
            }
            other => Err(Refused::from(format!(
                "jq query `{}` gave {}, not a string, number or boolean",
                self.text,
                if other.is_array() {
                    "an array"
                } else {
                    "an object"
                }
            ))),
        }
    }
}

fn describe<T: std::fmt::Debug>(errs: &T) -> String {
    let text = format!("{errs:?}");
    if text.len() > 200 {
        format!("{}...", &text[..200])
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries_give_one_scalar() {
        let rec = json!({"customer": {"id": 42, "name": "acme"}, "tags": ["a", "b"], "ok": true});
        let rec = Query::input(rec);
        let q = |t: &str| Query::compile(t).unwrap().eval(&rec);
        assert_eq!(q(".customer.name").unwrap(), "acme");
        assert_eq!(q(".customer.id").unwrap(), "42");
        assert_eq!(q(".ok").unwrap(), "true");
        assert_eq!(q(".customer.name | ascii_upcase").unwrap(), "ACME");
        assert!(q(".missing").unwrap_err().contains("null"));
        assert!(q(".tags[]").unwrap_err().contains("more than one"));
        assert!(q(".tags").unwrap_err().contains("an array"));
        assert!(Query::compile(".a | nosuchfn").is_err());
        assert!(Query::compile(".a[").is_err());
    }
}
