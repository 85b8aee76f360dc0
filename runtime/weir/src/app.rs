//! Wiring: from parsed pipeline files to engine plans.

use std::path::Path;

use weir_wasm::Host;

use crate::config::{
    BackupComponent, Component, ErrorsConfig, PipelineFile, ProcessConfig, SinkComponent,
    SourceComponent,
};
use crate::engine::PipelinePlan;
use crate::process::wasm::WasmProcessor;
use crate::process::Processor;

/// Why a pipeline could not be built. Each names the file, and the table and key at fault.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A component's settings read well but cannot be used (see [`Component::check`]): at
    /// the file, line (of its table) and key.
    #[error("{at}: {}", source.message)]
    Check {
        at: crate::config::Location,
        source: crate::config::CheckError,
    },
    /// A step did not start.
    #[error("{}: process[{index}]: {source}", path.display())]
    Step {
        path: std::path::PathBuf,
        index: usize,
        source: crate::process::wasm::StepError,
    },
    /// A SQL step's application did not compile (checked before, so only if its files
    /// changed in between).
    #[error("{}: process[{index}]: {message}", path.display())]
    Sql {
        path: std::path::PathBuf,
        index: usize,
        message: String,
    },
}

/// Builds a pipeline: loads and compiles its modules and starts their first instances, so that
/// a module that does not load or a config a guest rejects fails here, before any record moves.
pub fn build(
    file: &PipelineFile,
    host: &Host,
    state_dir: &Path,
) -> Result<PipelinePlan, BuildError> {
    check_source(file)?;
    let processors = processors(file, host)?;
    let errors = errors_of(file, state_dir);
    Ok(PipelinePlan {
        name: file.name.clone(),
        state_dir: state_dir.to_path_buf(),
        source: Box::new(file.spec.source.clone()),
        batch: file.spec.pipeline.batch,
        processors,
        sink: Box::new(file.spec.sink.clone()),
        errors: Box::new(errors),
        backup: file.spec.backup.clone().map(|b| Box::new(b).into_backup()),
        paused: None,
        swaps: None,
        cpu: None,
        memory: file.spec.pipeline.buffer_memory.0,
    })
}

/// Where a pipeline's failed records go: its `[errors]`, or its sink's default (see
/// [`SinkComponent::default_errors`]), under the pipeline's directory in `state_dir`.
pub fn errors_of(file: &PipelineFile, state_dir: &Path) -> ErrorsConfig {
    file.spec.errors.clone().unwrap_or_else(|| {
        let dir = crate::checkpoint::LocalStore::pipeline_dir(state_dir, &file.name).join("errors");
        file.spec.sink.default_errors(&dir)
    })
}

/// Checks what reading the file could not, for each of its components (see
/// [`Component::check`]): the error names the file, the table's line and the key.
pub fn check_source(file: &PipelineFile) -> Result<(), BuildError> {
    let (spec, lines) = (&file.spec, &file.lines);
    let mut tables: Vec<(String, usize, &dyn Component)> = vec![
        ("source".into(), lines.source, &spec.source),
        ("sink".into(), lines.sink, &spec.sink),
    ];
    if let Some(e) = &spec.errors {
        tables.push(("errors".into(), lines.errors, e));
    }
    if let Some(b) = &spec.backup {
        tables.push(("backup".into(), lines.backup, b));
    }
    for (i, step) in spec.process.iter().enumerate() {
        let line = lines.process.get(i).copied().unwrap_or(1);
        tables.push((format!("process[{i}]"), line, step));
    }
    for (table, line, component) in tables {
        component.check().map_err(|source| BuildError::Check {
            at: file.locate(line, format!("{table}.{}", source.key)),
            source,
        })?;
    }
    Ok(())
}

/// The processors of a pipeline, started.
pub fn processors(file: &PipelineFile, host: &Host) -> Result<Vec<Box<dyn Processor>>, BuildError> {
    let mut out: Vec<Box<dyn Processor>> = Vec::new();
    for (i, step) in file.spec.process.iter().enumerate() {
        match step {
            ProcessConfig::Wasm(w) => {
                let processor = WasmProcessor::start(host, w, &file.name).map_err(|source| {
                    BuildError::Step {
                        path: file.path.clone(),
                        index: i,
                        source,
                    }
                })?;
                out.push(Box::new(processor));
            }
            ProcessConfig::Sql(s) => {
                let stage = crate::process::sql::start(s, &file.name, host).map_err(|message| {
                    BuildError::Sql {
                        path: file.path.clone(),
                        index: i,
                        message,
                    }
                })?;
                out.push(Box::new(stage));
            }
        }
    }
    Ok(out)
}

/// A warning for a pipeline that keeps a checkpoint but prints its records (stdout) or its
/// failures (stderr): printing never releases a checkpoint, so it stays where it was and every
/// start reads those records again.
pub fn printing_warning(file: &PipelineFile, errors: &ErrorsConfig) -> Option<&'static str> {
    if !file.spec.source.checkpoints() {
        return None;
    }
    if file.spec.sink.prints() {
        return Some("This pipeline keeps a checkpoint but prints its records to stdout: printing is not delivery, so the checkpoint never moves and every start reads the same records again (send them to a sink that keeps them)");
    }
    if errors.prints() {
        return Some("This pipeline keeps a checkpoint but prints failed records to stderr: a failed record never releases the checkpoint, so it stays before it and every start reads it again (name a file or s3 error output to keep them)");
    }
    None
}

/// Whether the pipeline reads standard input (only one pipeline of a run may).
pub fn reads_stdin(file: &PipelineFile) -> bool {
    file.spec.source.reads_stdin()
}

pub use crate::config::show;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_that_cannot_be_used_is_reported_at_its_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        let text = "[source]\ntype = \"stdin\"\n\n[sink]\ntype = \"file\"\npath = \"out\"\nformat = { parquet = { schema = \"missing.json\" } }\n";
        std::fs::write(&path, text).unwrap();
        let file = crate::config::load(&path, &[]).unwrap();
        let err = check_source(&file).unwrap_err().to_string();
        let want = format!("{}:4:1: key `sink.format.parquet.schema`: ", path.display());
        assert!(err.starts_with(&want), "{err}");
        assert!(err.contains("missing.json"), "{err}");
    }
}
