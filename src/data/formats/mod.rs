//! Readers, one per file format. Each validates every row before any model work starts and
//! reports the first problem as `file:line: problem`.

mod dream;
mod fasta;
mod subset;
pub(crate) mod table;

pub use dream::{DreamFile, read_dream};
pub use fasta::read_fasta;
pub use subset::{Subset, SubsetRows, read_subset};
pub use table::{ReverseRule, TableSpec, read_table};

use std::path::Path;

use super::dataset::SeqDataset;
use super::pad::Padding;
use crate::error::{Error, Problem, Result};

/// Options shared by the readers.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// When given, every sequence must be one this padding accepts (length checks).
    pub padding: Option<Padding>,
}

/// Validate one sequence field and append it to `ds`, with its line.
fn push_sequence(
    ds: &mut SeqDataset,
    path: &Path,
    line: usize,
    field: &[u8],
    opts: &ReadOptions,
) -> Result<()> {
    if field.is_empty() {
        return Err(Error::data(path, line, Problem::EmptySequence));
    }
    ds.seqs
        .push_letters(field)
        .map_err(|(position, ch)| Error::data(path, line, Problem::BadBase { ch, position }))?;
    if let Some(p) = &opts.padding
        && let Err(problem) = p.check(field.len())
    {
        return Err(Error::data(path, line, problem));
    }
    ds.lines.push(line as u32);
    Ok(())
}

/// Parse a label field: a finite number.
fn parse_label(
    path: &Path,
    line: usize,
    column: &str,
    field: &[u8],
    hint: &'static str,
) -> Result<f64> {
    let text = String::from_utf8_lossy(field);
    let value: f64 = text.trim().parse().map_err(|_| {
        Error::data(
            path,
            line,
            Problem::NonNumeric {
                column: column.to_string(),
                value: text.to_string(),
                hint,
            },
        )
    })?;
    if !value.is_finite() {
        return Err(Error::data(
            path,
            line,
            Problem::NonFinite {
                column: column.to_string(),
                value: text.to_string(),
            },
        ));
    }
    Ok(value)
}

/// Parse a fold id: a small non-negative integer.
fn parse_fold(path: &Path, line: usize, column: &str, field: &[u8]) -> Result<u16> {
    let text = String::from_utf8_lossy(field);
    text.trim().parse().map_err(|_| {
        Error::data(
            path,
            line,
            Problem::Other(format!(
                "{column} {text:?} is not a fold id (a whole number 0–65535)"
            )),
        )
    })
}

/// Ids seen so far with the line of each, refusing a repeat.
#[derive(Default)]
struct UniqueIds(std::collections::HashMap<String, usize>);

impl UniqueIds {
    fn insert(&mut self, path: &Path, line: usize, id: &str) -> Result<()> {
        if let Some(&first_line) = self.0.get(id) {
            return Err(Error::data(
                path,
                line,
                Problem::DuplicateId {
                    id: id.to_string(),
                    first_line,
                },
            ));
        }
        self.0.insert(id.to_string(), line);
        Ok(())
    }
}

/// A sequence field as base codes, or the error naming file, line and the bad base (or the
/// empty field).
pub(crate) fn sequence_codes(path: &Path, line: usize, field: &[u8]) -> Result<Vec<u8>> {
    if field.is_empty() {
        return Err(Error::data(path, line, Problem::EmptySequence));
    }
    crate::data::alphabet::encode(field)
        .map_err(|(position, ch)| Error::data(path, line, Problem::BadBase { ch, position }))
}

fn empty_file(path: &Path) -> Error {
    Error::data(path, 0, Problem::EmptyFile)
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::io::Write;
    use std::path::PathBuf;

    /// Write `content` to a file named `name` in a fresh temporary directory.
    pub fn file(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        (dir, path)
    }
}
