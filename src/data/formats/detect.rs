//! Which reader a file needs: recognising its format from its name and first bytes, opening
//! it as records of that format, and summarising what it holds — the first check a user runs
//! on their data (`prixfixe inspect-data`).

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::{
    DreamFile, DreamRecords, FastaRecords, ReadOptions, Records, Subset, SubsetRows, TableRecords,
    TableSpec, read_dream, read_fasta, read_subset, read_table,
};
use crate::data::dataset::SeqDataset;
use crate::data::pad::{YEAST_ADAPTER_LEN, YEAST_INPUT_LEN};
use crate::error::{Error, Result};

/// The file formats prixfixe reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// DREAM training file (`sequence<TAB>expression[<TAB>fold]`).
    Dream,
    /// DREAM test file (`sequence[<TAB>measured]`).
    DreamTest,
    /// FASTA.
    Fasta,
    /// A table with a header and named columns.
    Table(TableSpec),
    /// A DREAM test-subset CSV.
    Subset,
}

impl Format {
    /// The format's name as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Dream => "dream",
            Format::DreamTest => "dream-test",
            Format::Fasta => "fasta",
            Format::Table(_) => "table",
            Format::Subset => "subset",
        }
    }
}

/// Guess a file's format from its name and first line.
pub fn detect_format(path: &Path) -> Result<Format> {
    let peeked = crate::data::io::peek(path)?;
    detect(path, peeked.first.as_deref())
}

/// The format of a file called `path` whose first non-blank line is `first`.
pub fn detect(path: &Path, first: Option<&[u8]>) -> Result<Format> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let name = name.trim_end_matches(".gz");
    if [".fa", ".fasta", ".fna", ".fas"]
        .iter()
        .any(|e| name.ends_with(e))
    {
        return Ok(Format::Fasta);
    }
    let Some(first) = first else {
        return Err(Error::data(path, 0, crate::error::Problem::EmptyFile));
    };
    if first.starts_with(b">") {
        return Ok(Format::Fasta);
    }
    let binary = first
        .iter()
        .filter(|&&b| b < 0x09 || (0x0e..0x20).contains(&b))
        .count();
    if binary > 0 {
        return Err(Error::data(
            path,
            1,
            crate::error::Problem::Other(
                "this is not a text file (binary data on its first line); prixfixe reads DREAM, \
                 FASTA and table files, plain or gzip-compressed"
                    .into(),
            ),
        ));
    }
    let fields: Vec<&[u8]> = first.split(|&b| b == b'\t').collect();
    if (1..=3).contains(&fields.len())
        && !fields[0].is_empty()
        && crate::data::alphabet::encode(fields[0]).is_ok()
    {
        // One column: a plain list of sequences (the DREAM test layout without values).
        return Ok(if fields.len() == 1 {
            Format::DreamTest
        } else {
            Format::Dream
        });
    }
    let (_, header) = super::table::split_header(path, Some(first))?;
    if header.iter().any(|h| h == "pos" || h == "alt_pos") {
        return Ok(Format::Subset);
    }
    if let Some(spec) = TableSpec::detect(&header).or_else(|| TableSpec::by_names(&header)) {
        return Ok(Format::Table(spec));
    }
    if (2..=3).contains(&fields.len()) {
        // A DREAM file with a header line: its reader says so, with the way out.
        return Ok(Format::Dream);
    }
    Err(Error::Config(format!(
        "cannot tell the format of {} (header: {}); name it with --format and, for tables, \
         the columns with --seq-col/--target-col",
        path.display(),
        header.join(", ")
    )))
}

/// Open `path` once (a pipe or `-` works too), tell its format from its first line unless
/// `format` is given, and return its rows as a stream.
pub fn open_records<'p>(
    path: &'p Path,
    format: Option<Format>,
    opts: &ReadOptions,
) -> Result<(Format, Records<'p>)> {
    open_as(path, format, opts, |f| f)
}

/// [`open_records`], with a detected format passed through `relabel` first.
fn open_as<'p>(
    path: &'p Path,
    format: Option<Format>,
    opts: &ReadOptions,
    relabel: fn(Format) -> Format,
) -> Result<(Format, Records<'p>)> {
    let peeked = crate::data::io::peek(path)?;
    let format = match format {
        Some(f) => f,
        None => relabel(detect(path, peeked.first.as_deref())?),
    };
    let records = records_of(path, peeked, &format, opts)?;
    Ok((format, records))
}

fn records_of<'p>(
    path: &'p Path,
    peeked: crate::data::io::Peeked,
    format: &Format,
    opts: &ReadOptions,
) -> Result<Records<'p>> {
    Ok(match format {
        Format::Dream => Records::Dream(DreamRecords::new(
            path,
            peeked.reader,
            DreamFile::Train,
            opts,
        )),
        Format::DreamTest => Records::Dream(DreamRecords::new(
            path,
            peeked.reader,
            DreamFile::Test,
            opts,
        )),
        Format::Fasta => Records::Fasta(FastaRecords::new(path, peeked.reader, opts)),
        Format::Table(spec) => {
            Records::Table(Box::new(TableRecords::new(path, peeked, spec, opts)?))
        }
        Format::Subset => {
            return Err(Error::Config(format!(
                "{} is a test-subset file: it names test rows, it does not hold a data set",
                path.display()
            )));
        }
    })
}

/// Read any sequence file in the given format.
pub fn read_any(path: &Path, format: &Format, opts: &ReadOptions) -> Result<SeqDataset> {
    match format {
        Format::Dream => read_dream(path, DreamFile::Train, opts),
        Format::DreamTest => read_dream(path, DreamFile::Test, opts),
        Format::Fasta => read_fasta(path, opts),
        Format::Table(spec) => read_table(path, spec, opts),
        Format::Subset => Err(Error::Config(format!(
            "{} is a test-subset file: it names test rows, it does not hold a data set",
            path.display()
        ))),
    }
}

/// Summary statistics of one label column.
#[derive(Debug, Clone, Serialize)]
pub struct LabelSummary {
    /// Column name.
    pub name: String,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// What `inspect-data` reports about a sequence file.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The file.
    pub path: String,
    /// The format it was read as.
    pub format: String,
    /// Records.
    pub rows: usize,
    /// Lines read, and blank lines skipped.
    pub lines: usize,
    /// Blank lines skipped.
    pub blank_lines: usize,
    /// Shortest and longest sequence.
    pub min_len: usize,
    /// Longest sequence.
    pub max_len: usize,
    /// Count per length, ascending.
    pub length_counts: Vec<(usize, usize)>,
    /// Sequences holding at least one `N`/IUPAC code.
    pub with_ambiguous: usize,
    /// Rows flagged reverse orientation.
    pub reverse: usize,
    /// Rows whose label is a singleton (DREAM training files).
    pub singletons: Option<usize>,
    /// Per label column.
    pub labels: Vec<LabelSummary>,
    /// Rows per fold, when the file has folds.
    pub folds: Option<Vec<(u16, usize)>>,
    /// DREAM files: reads that do not start with the 17-nt left adapter.
    pub without_adapter: Option<usize>,
    /// DREAM files: reads longer than 167 nt, whose 5' end the 150-nt padding drops.
    pub trimmed_by_padding: Option<usize>,
}

/// Summarise a data set.
pub fn summarize(ds: &SeqDataset, format: &Format) -> Summary {
    let mut counts = std::collections::BTreeMap::<usize, usize>::new();
    let mut with_ambiguous = 0;
    for s in ds.seqs.iter() {
        *counts.entry(s.len()).or_default() += 1;
        with_ambiguous += s.contains(&crate::data::alphabet::N) as usize;
    }
    let labels = ds
        .task_names
        .iter()
        .enumerate()
        .map(|(t, name)| {
            let vals = (0..ds.len()).map(|i| ds.target(i)[t]);
            let (mut min, mut max, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
            for v in vals {
                min = min.min(v);
                max = max.max(v);
                sum += v;
            }
            LabelSummary {
                name: name.clone(),
                min,
                max,
                mean: sum / ds.len() as f64,
            }
        })
        .collect();
    let folds = ds.folds.as_ref().map(|f| {
        let mut c = std::collections::BTreeMap::<u16, usize>::new();
        f.iter().for_each(|&k| *c.entry(k).or_default() += 1);
        c.into_iter().collect()
    });
    let is_dream = matches!(format, Format::Dream | Format::DreamTest);
    let adapter = crate::data::alphabet::encode(b"TGCATTTTTTTCACATC").expect("ACGT");
    Summary {
        path: ds.path.display().to_string(),
        format: format.name().to_string(),
        rows: ds.len(),
        lines: ds.stats.lines,
        blank_lines: ds.stats.blank_lines,
        min_len: counts.keys().next().copied().unwrap_or(0),
        max_len: counts.keys().last().copied().unwrap_or(0),
        length_counts: counts.into_iter().collect(),
        with_ambiguous,
        reverse: ds.is_reverse.iter().filter(|&&r| r).count(),
        singletons: (*format == Format::Dream)
            .then(|| ds.is_singleton.iter().filter(|&&s| s).count()),
        labels,
        folds,
        without_adapter: is_dream
            .then(|| ds.seqs.iter().filter(|s| !s.starts_with(&adapter)).count()),
        trimmed_by_padding: is_dream.then(|| {
            ds.seqs
                .iter()
                .filter(|s| s.len() > YEAST_ADAPTER_LEN + YEAST_INPUT_LEN)
                .count()
        }),
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({}): valid", self.path, self.format)?;
        writeln!(f, "  rows            {}", self.rows)?;
        if self.blank_lines > 0 {
            writeln!(f, "  blank lines     {} (skipped)", self.blank_lines)?;
        }
        writeln!(f, "  length          {}–{} nt", self.min_len, self.max_len)?;
        // Histogram of lengths: the ten most common, then the rest in one line.
        let mut by_count = self.length_counts.clone();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let widest = by_count.first().map_or(1, |x| x.1).max(1);
        for &(len, n) in by_count.iter().take(10) {
            let bar = "#".repeat((n * 40).div_ceil(widest));
            writeln!(
                f,
                "    {len:>6} nt {n:>10} {:>6.2}% {bar}",
                100.0 * n as f64 / self.rows as f64
            )?;
        }
        if by_count.len() > 10 {
            let rest: usize = by_count[10..].iter().map(|x| x.1).sum();
            writeln!(
                f,
                "    {:>6} other lengths: {rest} rows",
                by_count.len() - 10
            )?;
        }
        if self.with_ambiguous > 0 {
            writeln!(f, "  with N/IUPAC    {}", self.with_ambiguous)?;
        }
        if self.reverse > 0 {
            writeln!(f, "  reverse rows    {}", self.reverse)?;
        }
        if let Some(s) = self.singletons {
            writeln!(
                f,
                "  singletons      {s} ({:.1}%; integer values, seen in one cell)",
                100.0 * s as f64 / self.rows as f64
            )?;
        }
        for l in &self.labels {
            writeln!(
                f,
                "  {:<15} min {:.4}  max {:.4}  mean {:.4}",
                l.name, l.min, l.max, l.mean
            )?;
        }
        if let Some(folds) = &self.folds {
            let parts: Vec<String> = folds.iter().map(|(k, n)| format!("{k}:{n}")).collect();
            writeln!(f, "  folds           {}", parts.join(" "))?;
        }
        if let Some(n) = self.without_adapter.filter(|&n| n > 0) {
            writeln!(
                f,
                "  note: {n} reads do not start with the adapter TGCATTTTTTTCACATC; \
                 padding drops their first 17 nt all the same"
            )?;
        }
        if let Some(n) = self.trimmed_by_padding.filter(|&n| n > 0) {
            writeln!(
                f,
                "  note: {n} reads are longer than 167 nt; 150-nt padding drops their 5' end"
            )?;
        }
        Ok(())
    }
}

/// What `inspect-data` reports about a subset file.
pub fn describe_subset(s: &Subset) -> String {
    let kind = match &s.rows {
        SubsetRows::Single(_) => "single-sequence subset",
        SubsetRows::Pair(_) => "pair subset (scored on alt − ref)",
    };
    format!(
        "{} (subset): valid\n  name            {}\n  kind            {kind}\n  unique entries  {}\n  repeated rows   {} (scored once)\n",
        s.path.display(),
        s.name,
        s.len(),
        s.repeats
    )
}

/// Read and describe any file: the library side of `prixfixe inspect-data`. With `opts`
/// carrying a model's padding, every sequence is also checked against the model's input.
pub fn inspect_file(path: &Path, format: Option<Format>, opts: &ReadOptions) -> Result<String> {
    let format = match format {
        Some(f) => f,
        None => detect_format(path)?,
    };
    if format == Format::Subset {
        return Ok(describe_subset(&read_subset(path)?));
    }
    let ds = read_any(path, &format, opts)?;
    Ok(summarize(&ds, &format).to_string())
}

/// Read sequences to predict from, whatever their format: labels are not needed, so a DREAM
/// file is read as a test file (values optional, on any scale).
pub fn read_sequences(path: &Path, opts: &ReadOptions) -> Result<SeqDataset> {
    read_any_sequences(path, None, opts)
}

/// [`read_sequences`] in a given format (`None`: told from the file).
pub fn read_any_sequences(
    path: &Path,
    format: Option<Format>,
    opts: &ReadOptions,
) -> Result<SeqDataset> {
    let (_, records) = open_sequences(path, format, opts)?;
    super::collect(records)
}

/// The rows of a file to predict from, as a stream (see [`read_sequences`]).
pub fn open_sequences<'p>(
    path: &'p Path,
    format: Option<Format>,
    opts: &ReadOptions,
) -> Result<(Format, Records<'p>)> {
    open_as(path, format, opts, |f| match f {
        Format::Dream => Format::DreamTest,
        f => f,
    })
}
