//! The input flags every command that reads sequences shares: `--format`, `--seq-col`,
//! `--id-col`. Left out, the format is told from the file itself, so every sequence file
//! prixfixe writes (`predict`'s and `design`'s tables, FASTA, DREAM files) reads back as is.

use std::path::Path;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use prixfixe::data::formats::detect::{Format, detect_format, read_any_sequences};
use prixfixe::data::io::is_regular_file;
use prixfixe::data::{Padding, ReadOptions, ReverseRule, SeqDataset, TableSpec};

use super::err;

/// A sequence file's format, as the CLI spells it.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// DREAM training file: sequence<TAB>expression[<TAB>fold], no header.
    Dream,
    /// DREAM test file: sequence[<TAB>measured], no header.
    DreamTest,
    /// FASTA.
    Fasta,
    /// Table with a header (tab- or comma-separated); the sequence column is `sequence` or
    /// `seq` unless --seq-col names it.
    Table,
    /// DREAM test-subset CSV.
    Subset,
}

/// How to read a sequence file.
#[derive(Args, Clone, Default)]
pub struct InputArgs {
    /// The input's format. Left out, it is told from the file: FASTA by its name or a `>`,
    /// a DREAM file by a sequence in the first field, a table by its header (a column called
    /// `sequence` or `seq`, as in prixfixe's own outputs, or the Drosophila and human
    /// layouts).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Tables: the sequence column (implies --format table).
    #[arg(long)]
    pub seq_col: Option<String>,
    /// Tables: the id column, written back beside the results (ids must be unique).
    #[arg(long)]
    pub id_col: Option<String>,
}

impl InputArgs {
    /// The format these flags name for `path` (`None`: tell it from the file), with
    /// `targets` and `fold` as a table's label and fold columns.
    pub fn format_with(
        &self,
        path: &Path,
        targets: &[String],
        fold: &Option<String>,
    ) -> Result<Option<Format>, String> {
        let table = self.seq_col.is_some()
            || self.id_col.is_some()
            || !targets.is_empty()
            || fold.is_some()
            || self.format == Some(FormatArg::Table);
        if !table {
            return Ok(self.format.map(|f| match f {
                FormatArg::Dream => Format::Dream,
                FormatArg::DreamTest => Format::DreamTest,
                FormatArg::Fasta => Format::Fasta,
                FormatArg::Subset => Format::Subset,
                FormatArg::Table => unreachable!("handled above"),
            }));
        }
        if let Some(f) = self.format.filter(|&f| f != FormatArg::Table) {
            let name = f.to_possible_value().expect("no skipped values");
            return Err(format!(
                "--seq-col, --id-col, --target-col and --fold-col are for tables; --format {} \
                 has no named columns",
                name.get_name()
            ));
        }
        // Columns not named come from the header, as detection would find them. Only a
        // regular file is peeked at here: peeking at a pipe would take its header away from
        // the reader.
        let missing = self.seq_col.is_none() || self.id_col.is_none();
        let detected = match missing && is_regular_file(path) {
            true => match detect_format(path) {
                Ok(Format::Table(spec)) => Some(spec),
                _ => None,
            },
            false => None,
        };
        let sequence = match (&self.seq_col, &detected) {
            (Some(c), _) => c.clone(),
            (None, Some(spec)) => spec.sequence.clone(),
            (None, None) => {
                return Err(format!(
                    "{}: name the sequence column with --seq-col (no column is called \
                     `sequence` or `seq`)",
                    path.display()
                ));
            }
        };
        let same_seq = detected.as_ref().is_some_and(|s| s.sequence == sequence);
        Ok(Some(Format::Table(TableSpec {
            id: self
                .id_col
                .clone()
                .or_else(|| detected.as_ref().filter(|_| same_seq)?.id.clone()),
            targets: targets.to_vec(),
            fold: fold.clone(),
            // The orientation rule of a detected layout holds only with its own id column.
            reverse: match &detected {
                Some(s)
                    if same_seq
                        && self
                            .id_col
                            .as_ref()
                            .is_none_or(|c| Some(c) == s.id.as_ref()) =>
                {
                    s.reverse.clone()
                }
                _ => ReverseRule::None,
            },
            sequence,
        })))
    }

    /// The format for `path` as an unlabelled input.
    pub fn format(&self, path: &Path) -> Result<Option<Format>, String> {
        let format = self.format_with(path, &[], &None)?;
        match &format {
            Some(Format::Table(spec)) => tracing::debug!(
                "{}: a table, sequences in column {:?}, ids in {:?}",
                path.display(),
                spec.sequence,
                spec.id
            ),
            Some(f) => tracing::debug!("{}: read as {}", path.display(), f.name()),
            None => tracing::debug!("{}: format told from the file", path.display()),
        }
        Ok(format)
    }

    /// Read `path` whole, every sequence checked against `padding`.
    pub fn read(&self, path: &Path, padding: &Padding) -> Result<Arc<SeqDataset>, String> {
        let opts = ReadOptions {
            padding: Some(padding.clone()),
        };
        let format = self.format(path)?;
        Ok(Arc::new(
            read_any_sequences(path, format, &opts).map_err(err)?,
        ))
    }
}
