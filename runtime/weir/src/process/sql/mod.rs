//! The `sql` step: a Kinesis Data Analytics SQL application ([`weir_sql`]) as a stage.

pub mod config;

use std::sync::Arc;

use weir_sql::SqlStage;

use config::SqlStepConfig;

/// Compiles the step's application and starts its stage.
pub fn start(config: &SqlStepConfig, pipeline: &str) -> Result<SqlStage, String> {
    let plan = config.compile().map_err(|e| e.to_string())?;
    let tables = config.reference_data(&plan)?;
    SqlStage::with_tables(&format!("{pipeline}/sql"), Arc::new(plan), tables)
}
