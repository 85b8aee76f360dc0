//! The `sql` step: a Kinesis Data Analytics SQL application ([`weir_sql`]) as a stage.

pub mod config;
pub mod udf;

use std::sync::Arc;

use weir_sql::SqlStage;
use weir_wasm::Host;

use config::SqlStepConfig;

/// Loads the step's function modules, compiles its application and starts its stage.
pub fn start(config: &SqlStepConfig, pipeline: &str, host: &Host) -> Result<SqlStage, String> {
    let (signatures, udfs) =
        udf::load(&config.udfs, host, pipeline).map_err(|e| format!("udfs: {e}"))?;
    let plan = config.compile(signatures).map_err(|e| e.to_string())?;
    let tables = config.reference_data(&plan)?;
    let stage = SqlStage::with_tables(&format!("{pipeline}/sql"), Arc::new(plan), tables)?;
    Ok(if config.udfs.is_empty() {
        stage
    } else {
        stage.with_udfs(Box::new(udfs))
    })
}
