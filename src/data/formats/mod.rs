//! Readers, one per file format. Each validates every row before any model work starts and
//! reports the first problem as `file:line: problem`.

pub mod detect;
mod dream;
mod fasta;
mod subset;
pub(crate) mod table;

pub use dream::{DreamFile, DreamRecords, read_dream};
pub use fasta::{FastaRecords, read_fasta};
pub use subset::{Subset, SubsetRows, read_subset};
pub use table::{ReverseRule, TableRecords, TableSpec, read_table};

use std::path::Path;

use super::dataset::{ReadStats, SeqDataset};
use super::pad::Padding;
use crate::error::{Error, Problem, Result};

/// Options shared by the readers.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// When given, every sequence must be one this padding accepts (length, adapters).
    pub padding: Option<Padding>,
}

/// One validated row of any sequence file.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The 1-based line it starts on.
    pub line: usize,
    /// Base codes.
    pub seq: Vec<u8>,
    /// Labels (none for unlabelled files).
    pub targets: Vec<f64>,
    /// Its id, when the format has ids.
    pub id: Option<String>,
    /// Reverse orientation (`is_reverse` channel).
    pub is_reverse: bool,
    /// An integer yeast value (`is_singleton` channel).
    pub is_singleton: bool,
    /// Its fold, when the file has folds.
    pub fold: Option<u16>,
    /// A table's other fields, as written, when the reader was asked to keep them
    /// ([`Records::keep_other_columns`]); empty otherwise.
    pub other: Vec<String>,
}

/// The rows of a sequence file, read one at a time: memory does not grow with the file.
pub enum Records<'p> {
    /// A DREAM file.
    Dream(DreamRecords<'p>),
    /// A FASTA file.
    Fasta(FastaRecords<'p>),
    /// A table.
    Table(Box<TableRecords<'p>>),
}

impl<'p> Records<'p> {
    /// The next row, validated.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        match self {
            Records::Dream(r) => r.next_record(),
            Records::Fasta(r) => r.next_record(),
            Records::Table(r) => r.next_record(),
        }
    }

    /// Names of the label columns (known once a row has been read for DREAM files).
    pub fn task_names(&self) -> Vec<String> {
        match self {
            Records::Dream(r) => r.task_names(),
            Records::Fasta(_) => Vec::new(),
            Records::Table(r) => r.task_names().to_vec(),
        }
    }

    /// Keep the fields of a table's other columns (neither sequence nor id) in each
    /// [`Record::other`], so that a command can write them back beside its results; returns
    /// their names, or `None` where the format has no named columns.
    pub fn keep_other_columns(&mut self) -> Option<Vec<String>> {
        match self {
            Records::Table(r) => Some(r.keep_other_columns()),
            Records::Dream(_) | Records::Fasta(_) => None,
        }
    }

    /// What the reader passed over so far.
    pub fn stats(&self) -> &ReadStats {
        match self {
            Records::Dream(r) => &r.stats,
            Records::Fasta(r) => &r.stats,
            Records::Table(r) => &r.stats,
        }
    }

    fn has_ids(&self) -> bool {
        match self {
            Records::Dream(_) => false,
            Records::Fasta(_) => true,
            Records::Table(r) => r.has_ids(),
        }
    }

    fn has_folds(&self) -> bool {
        match self {
            Records::Dream(r) => r.has_folds(),
            Records::Fasta(_) => false,
            Records::Table(r) => r.has_folds(),
        }
    }

    /// The file.
    pub fn path(&self) -> &'p Path {
        match self {
            Records::Dream(r) => r.path(),
            Records::Fasta(r) => r.path(),
            Records::Table(r) => r.path(),
        }
    }
}

/// Read every row into a [`SeqDataset`]; ids must be unique.
pub fn collect(mut records: Records<'_>) -> Result<SeqDataset> {
    let path = records.path();
    let mut ds = SeqDataset {
        path: path.to_path_buf(),
        ..Default::default()
    };
    let mut ids = Vec::new();
    let mut folds = Vec::new();
    let mut seen = UniqueIds::default();
    while let Some(r) = records.next_record()? {
        if let Some(id) = &r.id {
            seen.insert(path, r.line, id)?;
        }
        ds.seqs.push_codes(&r.seq);
        ds.lines.push(r.line as u32);
        ds.targets.extend_from_slice(&r.targets);
        ds.is_reverse.push(r.is_reverse);
        ds.is_singleton.push(r.is_singleton);
        if let Some(id) = r.id {
            ids.push(id);
        }
        if let Some(f) = r.fold {
            folds.push(f);
        }
    }
    if ds.is_empty() {
        return Err(empty_file(path));
    }
    ds.task_names = records.task_names();
    ds.stats = records.stats().clone();
    if records.has_ids() {
        ds.ids = Some(ids);
    }
    if records.has_folds() {
        ds.folds = Some(folds);
    }
    ds.finish();
    Ok(ds)
}

/// Validate one sequence field: its bases, and that the padding accepts it.
fn checked_sequence(
    path: &Path,
    line: usize,
    field: &[u8],
    opts: &ReadOptions,
    stats: &mut ReadStats,
) -> Result<Vec<u8>> {
    let codes = sequence_codes(path, line, field)?;
    if let Some(p) = &opts.padding {
        let fit = p
            .fit(&codes)
            .map_err(|problem| Error::data(path, line, problem))?;
        stats.adapters_added += usize::from(fit.adapters != crate::data::pad::Adapters::None);
        stats.cropped += usize::from(fit.cropped);
    }
    Ok(codes)
}

/// Parse a label field: a finite number.
pub(crate) fn parse_label(
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
