//! Errors that say what went wrong and where.
//!
//! Every problem found in a user's file is a [`Error::Data`] that carries the file, the 1-based
//! line and a [`Problem`]; its `Display` reads `file:line: problem`, the form editors jump to.

use std::fmt;
use std::path::PathBuf;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is wrong with one line (or the whole) of an input file.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A character that is neither a base (ACGT), `N` nor an IUPAC ambiguity code.
    BadBase {
        /// The character.
        ch: char,
        /// Its 0-based position in the sequence.
        position: usize,
    },
    /// The line has the wrong number of fields.
    ColumnCount {
        /// What was expected, in words.
        expected: String,
        /// Fields found.
        found: usize,
    },
    /// A label that does not parse as a number.
    NonNumeric {
        /// The column.
        column: String,
        /// The text found.
        value: String,
        /// A hint appended to the message (may be empty).
        hint: &'static str,
    },
    /// A label that parses but is NaN or infinite.
    NonFinite {
        /// The column.
        column: String,
        /// The text found.
        value: String,
    },
    /// An empty sequence field.
    EmptySequence,
    /// A sequence longer than the model accepts.
    TooLong {
        /// Its length.
        length: usize,
        /// The model's input length.
        max: usize,
    },
    /// The file holds no records at all.
    EmptyFile,
    /// An id seen before in a file whose ids must be unique.
    DuplicateId {
        /// The id.
        id: String,
        /// Where it was first seen.
        first_line: usize,
    },
    /// A header that lacks a needed column.
    MissingColumn {
        /// The column asked for.
        column: String,
        /// The columns the header has.
        available: Vec<String>,
    },
    /// Anything else, in words.
    Other(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::BadBase { ch, position } => write!(
                f,
                "invalid base {ch:?} at sequence position {position} (allowed: A C G T, N and IUPAC codes, any case)"
            ),
            Problem::ColumnCount { expected, found } => {
                write!(f, "expected {expected} but found {found} field(s)")
            }
            Problem::NonNumeric {
                column,
                value,
                hint,
            } => {
                write!(f, "{column} {value:?} is not a number{hint}")
            }
            Problem::NonFinite { column, value } => {
                write!(f, "{column} {value:?} is not a finite number")
            }
            Problem::EmptySequence => write!(f, "empty sequence"),
            Problem::TooLong { length, max } => write!(
                f,
                "sequence of {length} nt is longer than the model input ({max} nt)"
            ),
            Problem::EmptyFile => write!(f, "the file holds no records"),
            Problem::DuplicateId { id, first_line } => {
                write!(f, "duplicate id {id:?} (first seen on line {first_line})")
            }
            Problem::MissingColumn { column, available } => write!(
                f,
                "no column named {column:?} in the header (columns: {})",
                available.join(", ")
            ),
            Problem::Other(s) => f.write_str(s),
        }
    }
}

/// Everything that can go wrong in prixfixe.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem in an input file, with where it is. `line` is 1-based; 0 means the whole file.
    #[error("{}{}: {problem}", path.display(), if *line > 0 { format!(":{line}") } else { String::new() })]
    Data {
        /// The file.
        path: PathBuf,
        /// 1-based line; 0 for the whole file.
        line: usize,
        /// What is wrong.
        problem: Problem,
    },
    /// An I/O error on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration that cannot work (unknown names, shapes that do not fit, bad values).
    #[error("{0}")]
    Config(String),
    /// The training loss stopped being a finite number.
    #[error("the training loss became {value} at epoch {epoch}, batch {batch}; try a lower max_lr")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch of that epoch.
        batch: usize,
        /// The loss.
        value: f64,
    },
    /// Training was asked to stop (a signal) before the end of an epoch.
    #[error(
        "stopped on request with {epochs_done} epoch(s) committed; resuming trains the \
         unfinished epoch again"
    )]
    Stopped {
        /// Epochs committed.
        epochs_done: usize,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub(crate) fn data(path: impl Into<PathBuf>, line: usize, problem: Problem) -> Self {
        Error::Data {
            path: path.into(),
            line,
            problem,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The line the error points at, when it is about a line of a file.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Data { line, .. } if *line > 0 => Some(*line),
            _ => None,
        }
    }

    /// The problem, when it is about a file's content.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Data { problem, .. } => Some(problem),
            _ => None,
        }
    }
}
