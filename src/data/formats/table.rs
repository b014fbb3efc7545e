//! A generic delimited table with a header, where the user names the columns: covers the
//! Drosophila STARR-seq and human lentiMPRA files (SPEC §2.7) and any similar file.
//! Tab or comma is detected from the header line.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ReadOptions, Record, empty_file, parse_fold, parse_label};
use crate::data::dataset::SeqDataset;
use crate::data::io::open_text;
use crate::error::{Error, Problem, Result};

/// How a row's orientation (`is_reverse`) is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "rule", content = "text", rename_all = "kebab-case")]
pub enum ReverseRule {
    /// Every row is forward.
    #[default]
    None,
    /// The id contains this text (Drosophila: `_-_`).
    IdContains(String),
    /// The id ends with this text (human: `_Reversed:`).
    IdEndsWith(String),
}

/// Which columns of a table hold what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSpec {
    /// The sequence column.
    pub sequence: String,
    /// Label columns (none for prediction input).
    #[serde(default)]
    pub targets: Vec<String>,
    /// An id column; ids must then be unique.
    #[serde(default)]
    pub id: Option<String>,
    /// A fold column (whole numbers).
    #[serde(default)]
    pub fold: Option<String>,
    /// How the orientation is known.
    #[serde(default)]
    pub reverse: ReverseRule,
}

impl TableSpec {
    /// The DeepSTARR Drosophila files: two tasks, minus-strand ids contain `_-_`.
    pub fn drosophila() -> Self {
        TableSpec {
            sequence: "Sequence".into(),
            targets: vec!["Dev_log2_enrichment".into(), "Hk_log2_enrichment".into()],
            id: Some("ID".into()),
            fold: None,
            reverse: ReverseRule::IdContains("_-_".into()),
        }
    }

    /// The human lentiMPRA files: one task, folds 0–9, reversed ids end with `_Reversed:`.
    pub fn human() -> Self {
        TableSpec {
            sequence: "seq".into(),
            targets: vec!["mean_value".into()],
            id: Some("seq_id".into()),
            fold: Some("fold".into()),
            reverse: ReverseRule::IdEndsWith("_Reversed:".into()),
        }
    }

    /// A preset whose columns all appear in `header`, if any.
    pub fn detect(header: &[String]) -> Option<Self> {
        [Self::drosophila(), Self::human()].into_iter().find(|s| {
            std::iter::once(&s.sequence)
                .chain(&s.targets)
                .all(|c| header.contains(c))
        })
    }

    /// A table read by its column names alone: the sequence in a column called `sequence`
    /// or `seq` (any case), the id in one called `id`, `name` or `seq_id` when there is one.
    /// This is how prixfixe's own tables (`predict`'s output, `design`'s) read back, and most
    /// tables people write. No labels.
    pub fn by_names(header: &[String]) -> Option<Self> {
        let find = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| header.iter().find(|h| h.eq_ignore_ascii_case(n)).cloned())
        };
        Some(TableSpec {
            sequence: find(&["sequence", "seq"])?,
            targets: Vec::new(),
            id: find(&["id", "name", "seq_id"]),
            fold: None,
            reverse: ReverseRule::None,
        })
    }
}

/// Split the header line of a table: the delimiter (tab if the line has one, else comma) and
/// the column names.
pub(crate) fn sniff_header(path: &Path) -> Result<(u8, Vec<String>)> {
    let peeked = crate::data::io::peek(path)?;
    split_header(path, peeked.first.as_deref())
}

/// The delimiter and column names of a header line.
pub(crate) fn split_header(path: &Path, first: Option<&[u8]>) -> Result<(u8, Vec<String>)> {
    let Some(first) = first else {
        return Err(empty_file(path));
    };
    let first = String::from_utf8_lossy(first);
    let delim = if first.contains('\t') { b'\t' } else { b',' };
    let names = first
        .split(delim as char)
        .map(|s| s.trim().to_string())
        .collect();
    Ok((delim, names))
}

/// Open a table as a `csv` reader with the given delimiter; rows may vary in length so that
/// a wrong count becomes our error with its line, not the crate's.
pub(crate) fn csv_reader(
    path: &Path,
    delim: u8,
) -> Result<csv::Reader<Box<dyn std::io::BufRead + Send>>> {
    Ok(csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(true)
        .flexible(true)
        .from_reader(open_text(path)?))
}

/// The index of each named column, or a clear error listing the header.
pub(crate) fn column_index(path: &Path, header: &[String], name: &str) -> Result<usize> {
    header.iter().position(|h| h == name).ok_or_else(|| {
        Error::data(
            path,
            1,
            Problem::MissingColumn {
                column: name.to_string(),
                available: header.to_vec(),
            },
        )
    })
}

/// A record must have as many fields as the header; otherwise the error names the line.
pub(crate) fn check_width(
    path: &Path,
    rec: &csv::ByteRecord,
    header: &[String],
    delim: u8,
) -> Result<()> {
    if rec.len() == header.len() {
        return Ok(());
    }
    let sep = if delim == b'\t' { "tab" } else { "comma" };
    Err(Error::data(
        path,
        record_line(rec),
        Problem::ColumnCount {
            expected: format!("{} {sep}-separated fields, as in the header", header.len()),
            found: rec.len(),
        },
    ))
}

/// The 1-based line a record starts on.
pub(crate) fn record_line(rec: &csv::ByteRecord) -> usize {
    rec.position().map_or(0, |p| p.line() as usize)
}

/// Convert a csv error into ours, keeping the line when it has one.
pub(crate) fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line() as usize);
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        other => Error::data(path, line, Problem::Other(format!("{other:?}"))),
    }
}

/// Read a table as the spec says.
pub fn read_table(path: &Path, spec: &TableSpec, opts: &ReadOptions) -> Result<SeqDataset> {
    let peeked = crate::data::io::peek(path)?;
    let records = TableRecords::new(path, peeked, spec, opts)?;
    super::collect(super::Records::Table(Box::new(records)))
}

/// The rows of a table, one at a time, each validated.
pub struct TableRecords<'p> {
    path: &'p Path,
    spec: TableSpec,
    opts: ReadOptions,
    delim: u8,
    header: Vec<String>,
    seq_col: usize,
    target_cols: Vec<usize>,
    id_col: Option<usize>,
    fold_col: Option<usize>,
    /// The columns kept in [`Record::other`] (none unless asked).
    other_cols: Vec<usize>,
    rdr: csv::Reader<Box<dyn std::io::BufRead + Send>>,
    rec: csv::ByteRecord,
    pub(super) stats: crate::data::ReadStats,
}

impl<'p> TableRecords<'p> {
    /// The file.
    pub fn path(&self) -> &'p Path {
        self.path
    }

    /// Rows of a peeked table input.
    pub fn new(
        path: &'p Path,
        peeked: crate::data::io::Peeked,
        spec: &TableSpec,
        opts: &ReadOptions,
    ) -> Result<Self> {
        let (delim, header) = split_header(path, peeked.first.as_deref())?;
        let seq_col = column_index(path, &header, &spec.sequence)?;
        let target_cols = spec
            .targets
            .iter()
            .map(|t| column_index(path, &header, t))
            .collect::<Result<Vec<_>>>()?;
        let id_col = spec
            .id
            .as_ref()
            .map(|c| column_index(path, &header, c))
            .transpose()?;
        let fold_col = spec
            .fold
            .as_ref()
            .map(|c| column_index(path, &header, c))
            .transpose()?;
        if spec.reverse != ReverseRule::None && id_col.is_none() {
            return Err(Error::Config(
                "an orientation rule on ids needs an id column".into(),
            ));
        }
        let rdr = csv::ReaderBuilder::new()
            .delimiter(delim)
            .has_headers(true)
            .flexible(true)
            .from_reader(peeked.reader);
        Ok(TableRecords {
            path,
            spec: spec.clone(),
            opts: opts.clone(),
            delim,
            header,
            seq_col,
            target_cols,
            id_col,
            fold_col,
            other_cols: Vec::new(),
            rdr,
            rec: csv::ByteRecord::new(),
            stats: Default::default(),
        })
    }

    /// From now on, keep every column but the sequence and the id in [`Record::other`];
    /// returns their names, in file order.
    pub fn keep_other_columns(&mut self) -> Vec<String> {
        self.other_cols = (0..self.header.len())
            .filter(|&c| c != self.seq_col && Some(c) != self.id_col)
            .collect();
        self.other_cols
            .iter()
            .map(|&c| self.header[c].clone())
            .collect()
    }

    /// Whether rows carry an id.
    pub fn has_ids(&self) -> bool {
        self.id_col.is_some()
    }

    /// Whether rows carry a fold.
    pub fn has_folds(&self) -> bool {
        self.fold_col.is_some()
    }

    /// The label columns.
    pub fn task_names(&self) -> &[String] {
        &self.spec.targets
    }

    /// The next row.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        let path = self.path;
        loop {
            let more = self
                .rdr
                .read_byte_record(&mut self.rec)
                .map_err(|e| csv_error(path, e))?;
            if !more {
                self.stats.lines = self.rdr.position().line() as usize;
                return Ok(None);
            }
            let rec = &self.rec;
            let line = record_line(rec);
            if rec.len() == 1 && rec[0].iter().all(u8::is_ascii_whitespace) {
                self.stats.blank_lines += 1;
                continue;
            }
            check_width(path, rec, &self.header, self.delim)?;
            let seq = super::checked_sequence(
                path,
                line,
                rec[self.seq_col].trim_ascii(),
                &self.opts,
                &mut self.stats,
            )?;
            let mut targets = Vec::with_capacity(self.target_cols.len());
            for (name, &c) in self.spec.targets.iter().zip(&self.target_cols) {
                targets.push(parse_label(path, line, name, &rec[c], "")?);
            }
            let (id, is_reverse) = match self.id_col {
                Some(c) => {
                    let id = String::from_utf8_lossy(&rec[c]).into_owned();
                    let rev = match &self.spec.reverse {
                        ReverseRule::None => false,
                        ReverseRule::IdContains(t) => id.contains(t.as_str()),
                        ReverseRule::IdEndsWith(t) => id.ends_with(t.as_str()),
                    };
                    (Some(id), rev)
                }
                None => (None, false),
            };
            let fold = match (self.fold_col, &self.spec.fold) {
                (Some(c), Some(name)) => Some(parse_fold(path, line, name, &rec[c])?),
                _ => None,
            };
            return Ok(Some(Record {
                line,
                seq,
                targets,
                id,
                is_reverse,
                is_singleton: false,
                fold,
                other: self
                    .other_cols
                    .iter()
                    .map(|&c| String::from_utf8_lossy(&rec[c]).into_owned())
                    .collect(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::file;
    use super::*;

    fn human(content: &str) -> Result<SeqDataset> {
        let (_d, p) = file("h.tsv", content);
        read_table(&p, &TableSpec::human(), &ReadOptions::default())
    }

    const H: &str = "seq_id\tseq\tmean_value\tfold\n";

    #[test]
    fn human_orientation_and_folds() {
        let ds = human(&format!(
            "{H}s1\tACGT\t-0.5\t0\ns1_Reversed:\tACGT\t0.25\t3\n"
        ))
        .unwrap();
        assert_eq!(ds.is_reverse, vec![false, true]);
        assert_eq!(ds.folds, Some(vec![0, 3]));
        assert_eq!(ds.targets, vec![-0.5, 0.25]);
        assert_eq!(ds.lines, vec![2, 3]);
    }

    #[test]
    fn missing_column_lists_the_header() {
        let (_d, p) = file("h.csv", "a,b\nACGT,1\n");
        let e = read_table(&p, &TableSpec::human(), &ReadOptions::default()).unwrap_err();
        assert!(e.to_string().contains("no column named \"seq\""), "{e}");
        assert!(e.to_string().contains("columns: a, b"), "{e}");
    }

    #[test]
    fn row_errors_name_the_line() {
        let e = human(&format!("{H}s1\tACGT\t1\t0\ns2\tACGT\t1\n")).unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert!(matches!(
            e.problem(),
            Some(Problem::ColumnCount { found: 3, .. })
        ));
        let e = human(&format!("{H}s1\tACGT\tx\t0\n")).unwrap_err();
        assert_eq!(e.line(), Some(2));
        let e = human(&format!("{H}s1\tACGT\t1\t0\ns2\tAC#T\t1\t0\n")).unwrap_err();
        assert_eq!(e.line(), Some(3));
        let e = human(&format!("{H}s1\tACGT\t1\t0\ns1\tACGT\t1\t0\n")).unwrap_err();
        assert!(matches!(
            e.problem(),
            Some(Problem::DuplicateId { first_line: 2, .. })
        ));
        let e = human(&format!("{H}s1\t\t1\t0\n")).unwrap_err();
        assert_eq!(e.problem(), Some(&Problem::EmptySequence));
        let e = human(&format!("{H}s1\tACGT\tinf\t0\n")).unwrap_err();
        assert!(matches!(e.problem(), Some(Problem::NonFinite { .. })));
    }

    #[test]
    fn header_only_is_empty() {
        assert_eq!(human(H).unwrap_err().problem(), Some(&Problem::EmptyFile));
        assert_eq!(human("").unwrap_err().problem(), Some(&Problem::EmptyFile));
    }
}
