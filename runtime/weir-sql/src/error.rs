//! Errors, and the stable codes Weir writes into the error output for SQL rows.
//!
//! A compile error names where in the SQL it is (line and column, 1-based) and, when a name
//! is at fault, the name; the caller adds the file. Codes are stable: users match on them.

/// A byte offset in the SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos(pub usize);

/// What is wrong with an application, before it runs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    /// The SQL does not parse, or names something that does not exist, or mixes types.
    #[error("line {line}, column {column}: {message}")]
    Sql {
        line: usize,
        column: usize,
        message: String,
        /// The name at fault, if a name is.
        name: Option<String>,
        /// Where, as a byte offset (turned into line and column by [`SqlError::located`]).
        #[doc(hidden)]
        offset: usize,
    },
    /// The application's input, output or reference configuration is wrong (the JSON of
    /// `describe-application` or of `Inputs`); `path` is the JSON key, as `Inputs[0].NamePrefix`.
    #[error("{path}: {message}")]
    Config { path: String, message: String },
}

impl SqlError {
    pub(crate) fn syntax(pos: Pos, message: impl Into<String>) -> SqlError {
        SqlError::Sql {
            line: 0,
            column: 0,
            message: message.into(),
            name: None,
            offset: pos.0,
        }
    }

    pub(crate) fn name(pos: Pos, name: &str, message: impl Into<String>) -> SqlError {
        SqlError::Sql {
            line: 0,
            column: 0,
            message: message.into(),
            name: Some(name.to_string()),
            offset: pos.0,
        }
    }

    pub(crate) fn config(path: impl Into<String>, message: impl Into<String>) -> SqlError {
        SqlError::Config {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Fills in the line and column of an error made with a byte offset into `src`.
    pub(crate) fn located(self, src: &str) -> SqlError {
        match self {
            SqlError::Sql {
                message,
                name,
                offset,
                ..
            } => {
                let (line, column) = line_column(src, offset);
                SqlError::Sql {
                    line,
                    column,
                    message,
                    name,
                    offset,
                }
            }
            other => other,
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` of `src`.
pub fn line_column(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let mut cut = offset;
    while !src.is_char_boundary(cut) {
        cut -= 1;
    }
    let before = &src[..cut];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before, |n| &before[n + 1..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// The stable codes of the records a SQL stage sends to the error output.
pub mod codes {
    /// A record did not fit the input schema (not JSON, or a value of the wrong type).
    pub const TYPE_CONVERSION: &str = "SQL.TypeConversion";
    /// A row would have moved ROWTIME back.
    pub const ROWTIME_DECREASED: &str = "SQL.RowtimeDecreased";
    /// An expression failed on a row (a division by zero, a bad cast).
    pub const EVALUATION: &str = "SQL.Evaluation";
}
