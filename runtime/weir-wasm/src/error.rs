use std::path::PathBuf;

/// Errors loading a plugin or starting an instance. These stop a pipeline from starting (or a
/// reload from taking effect); they never happen in the middle of a batch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read module {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid WebAssembly component: {reason}")]
    Compile { path: PathBuf, reason: String },
    #[error(
        "{path} exports none of the hostable worlds (`transform` exports `init` and `transform`; \
         `filter` exports `init` and `keep`)"
    )]
    UnknownWorld { path: PathBuf },
    #[error(
        "{path} targets the `{world}` world, which a `wasm` step cannot host{}",
        if *world == "sql-udf" { " (a sql-udf module goes in a sql step's `udfs`)" } else { "" }
    )]
    UnsupportedWorld { path: PathBuf, world: &'static str },
    #[error("{path} cannot be linked: {reason}")]
    Link { path: PathBuf, reason: String },
    #[error("{path} failed to start: {reason}")]
    Instantiate { path: PathBuf, reason: String },
    #[error("{path} rejected its config: {message}")]
    ConfigRejected { path: PathBuf, message: String },
    #[error("cannot grant directory {dir}: {reason}")]
    Grant { dir: PathBuf, reason: String },
    #[error("cannot grant host {host}: {reason}")]
    GrantHost { host: String, reason: String },
    #[error("wasm engine: {0}")]
    Engine(String),
}

/// Why a call into a guest failed. Each kind maps to the `errorCode` written to the error output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestErrorKind {
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access...).
    Trap,
    /// The call ran past its wall-clock timeout.
    Timeout,
    /// The call used up its fuel budget.
    FuelExhausted,
    /// The guest tried to grow its memory past the cap.
    MemoryLimit,
    /// The guest answered, but not with one result per record.
    InvalidOutput,
    /// The guest answered with more output bytes than its cap.
    OutputLimit,
    /// A fresh instance could not be started for this batch.
    Instantiate,
    /// The call of a step without a timeout was cut off because its pipeline stops; not the
    /// records' fault.
    Aborted,
}

impl GuestErrorKind {
    /// The error code recorded in the error output, in the spirit of Firehose's `Lambda.*` codes.
    pub fn code(self) -> &'static str {
        match self {
            GuestErrorKind::Trap => "Wasm.Trap",
            GuestErrorKind::Timeout => "Wasm.Timeout",
            GuestErrorKind::FuelExhausted => "Wasm.FuelExhausted",
            GuestErrorKind::MemoryLimit => "Wasm.MemoryLimit",
            GuestErrorKind::InvalidOutput => "Wasm.InvalidOutput",
            GuestErrorKind::OutputLimit => "Wasm.OutputLimit",
            GuestErrorKind::Instantiate => "Wasm.InstantiateFailed",
            GuestErrorKind::Aborted => "Wasm.Aborted",
        }
    }
}

/// A failed call into a guest. The whole batch it was given failed with it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", kind.code())]
pub struct GuestError {
    pub kind: GuestErrorKind,
    pub message: String,
}
