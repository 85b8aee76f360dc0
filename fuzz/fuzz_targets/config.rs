//! Pipeline files (and tenants files) from arbitrary text: parsing, `${VAR}` interpolation and
//! validation never panic; an error names a line within the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use weir::config::{self, tenants::TenantsFile, Vars};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let allowed = ["*".to_string()];
    // Values that try to break out of strings, as an attacker's environment would.
    let lookup = |name: &str| Some(format!("{name}\"\n'\\]}} = x"));
    let vars = Vars {
        allowed: &allowed,
        lookup: &lookup,
    };
    if let Err(config::ConfigError::Invalid { location, .. }) =
        config::parse(Path::new("fuzz.toml"), text, &vars)
    {
        assert!(location.line >= 1 && location.line <= text.lines().count().max(1) + 1);
    }
    let _ = TenantsFile::parse(Path::new("tenants.toml"), text);
});
