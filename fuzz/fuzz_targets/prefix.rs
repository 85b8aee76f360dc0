//! Firehose prefixes (`!{...}` templates) from arbitrary text: parsing and rendering never
//! panic, and a rendered prefix never passes its limit unnoticed.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use weir::expr::prefix::{Prefix, PrefixKind, Values};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for kind in [PrefixKind::Records, PrefixKind::Errors] {
        let Ok(prefix) = Prefix::parse(text, kind) else {
            continue;
        };
        let keys: BTreeMap<String, String> = prefix
            .query_keys()
            .chain(prefix.lambda_keys())
            .map(|k| (k.to_string(), format!("v-{k}")))
            .collect();
        let time = chrono::DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        let values = Values {
            time,
            zone: chrono_tz::UTC,
            error_output_type: Some("processing-failed"),
            query: &keys,
            lambda: &keys,
        };
        if let Ok(rendered) = prefix.render(&values) {
            assert!(rendered.chars().count() <= weir::expr::prefix::MAX_PREFIX_LEN);
        }
    }
});
