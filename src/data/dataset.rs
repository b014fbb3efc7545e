//! Sequences held compactly in memory, with their labels and per-row flags.

use std::path::PathBuf;

use super::alphabet;

/// Many sequences as one byte per base (codes in A, G, C, T, N order) in one buffer.
///
/// 6.7 M yeast reads of ~110 nt take ~0.75 GB here; one-hot encoding happens per batch.
#[derive(Debug, Default, Clone)]
pub struct SeqStore {
    codes: Vec<u8>,
    ends: Vec<usize>,
}

impl SeqStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validate and append one sequence of letters. On a bad character nothing is appended and
    /// the character's 0-based position is returned.
    pub fn push_letters(&mut self, letters: &[u8]) -> Result<(), (usize, char)> {
        let before = self.codes.len();
        if let Err(e) = alphabet::encode_into(letters, &mut self.codes) {
            self.codes.truncate(before);
            return Err(e);
        }
        self.ends.push(self.codes.len());
        Ok(())
    }

    /// Append one sequence already in codes.
    pub fn push_codes(&mut self, codes: &[u8]) {
        self.codes.extend_from_slice(codes);
        self.ends.push(self.codes.len());
    }

    /// The codes of sequence `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.codes[start..self.ends[i]]
    }

    /// Number of sequences.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Length of sequence `i`.
    pub fn seq_len(&self, i: usize) -> usize {
        self.get(i).len()
    }

    /// Iterate over all sequences.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Heap memory held, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.codes.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
    }

    /// Release spare capacity once loading is done.
    pub fn shrink_to_fit(&mut self) {
        self.codes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// What a reader passed over without losing data, reported to the user.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReadStats {
    /// Lines read, including the header and blank lines.
    pub lines: usize,
    /// Blank lines (no data; skipped).
    pub blank_lines: usize,
    /// Yeast reads without their adapters, which the plasmid's were added to.
    pub adapters_added: usize,
    /// Sequences longer than the model input, cropped as asked.
    pub cropped: usize,
}

/// A labelled (or unlabelled) set of sequences read from one file.
#[derive(Debug, Default, Clone)]
pub struct SeqDataset {
    /// The file it came from.
    pub path: PathBuf,
    /// The sequences.
    pub seqs: SeqStore,
    /// Names of the label columns (empty when unlabelled).
    pub task_names: Vec<String>,
    /// Labels, row-major `rows × task_names.len()`.
    pub targets: Vec<f64>,
    /// Per row: the sequence is the reverse orientation (`is_reverse` channel).
    pub is_reverse: Vec<bool>,
    /// Per row: the label is a singleton (an integer yeast value).
    pub is_singleton: Vec<bool>,
    /// Per row: the fold id, when the file has one.
    pub folds: Option<Vec<u16>>,
    /// Per row: the id, when the file has one (FASTA, tables with an id column).
    pub ids: Option<Vec<String>>,
    /// Per row: the 1-based line it started on.
    pub lines: Vec<u32>,
    /// What the reader skipped.
    pub stats: ReadStats,
}

impl SeqDataset {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// Number of label columns.
    pub fn n_tasks(&self) -> usize {
        self.task_names.len()
    }

    /// The labels of row `i`.
    pub fn target(&self, i: usize) -> &[f64] {
        let t = self.n_tasks();
        &self.targets[i * t..(i + 1) * t]
    }

    /// Keep only the given rows, in the given order (for splits).
    pub fn select(&self, rows: &[usize]) -> SeqDataset {
        let t = self.n_tasks();
        let mut seqs = SeqStore::new();
        let mut targets = Vec::with_capacity(rows.len() * t);
        for &r in rows {
            seqs.push_codes(self.seqs.get(r));
            targets.extend_from_slice(self.target(r));
        }
        let pick = |v: &Vec<bool>| rows.iter().map(|&r| v[r]).collect();
        SeqDataset {
            path: self.path.clone(),
            seqs,
            task_names: self.task_names.clone(),
            targets,
            is_reverse: pick(&self.is_reverse),
            is_singleton: pick(&self.is_singleton),
            folds: self
                .folds
                .as_ref()
                .map(|f| rows.iter().map(|&r| f[r]).collect()),
            ids: self
                .ids
                .as_ref()
                .map(|ids| rows.iter().map(|&r| ids[r].clone()).collect()),
            lines: rows.iter().map(|&r| self.lines[r]).collect(),
            stats: self.stats.clone(),
        }
    }

    /// Heap memory held, in bytes (approximate for ids).
    pub fn heap_bytes(&self) -> usize {
        self.seqs.heap_bytes()
            + self.targets.capacity() * 8
            + self.is_reverse.capacity()
            + self.is_singleton.capacity()
            + self.lines.capacity() * 4
            + self.folds.as_ref().map_or(0, |f| f.capacity() * 2)
            + self
                .ids
                .as_ref()
                .map_or(0, |ids| ids.iter().map(|s| s.capacity() + 24).sum())
    }

    pub(crate) fn finish(&mut self) {
        self.seqs.shrink_to_fit();
        self.targets.shrink_to_fit();
        self.is_reverse.shrink_to_fit();
        self.is_singleton.shrink_to_fit();
        self.lines.shrink_to_fit();
    }
}
