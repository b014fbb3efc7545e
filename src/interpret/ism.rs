//! In-silico mutagenesis (SPEC §6): the predicted effect of every single-nucleotide
//! substitution, `pred(mutant) − pred(original)`, each prediction the mean of forward and
//! reverse complement with singleton 0, as in `predict`.
//!
//! Identity edits are never predicted (the reference base scores 0 by definition); mutants of
//! several sequences share batches; memory holds one batch of inputs and the results of the
//! sequences in flight, so any number of sequences streams through.

use crate::data::SeqDataset;
use crate::data::alphabet::{LETTERS, N};
use crate::error::Result;
use crate::predict::{Predictor, predict_codes};

/// The ISM map of one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct IsmMap {
    /// The sequence (base codes, `A, G, C, T, N` = 0–4).
    pub seq: Vec<u8>,
    /// Prediction of the sequence itself, per task.
    pub reference: Vec<f32>,
    /// Effects `[position][base A,G,C,T][task]`, flattened; 0 at the reference base.
    pub effects: Vec<f32>,
    /// Tasks per prediction.
    pub tasks: usize,
}

impl IsmMap {
    /// The effect of base `b` (code) at `pos` on `task`.
    pub fn effect(&self, pos: usize, b: u8, task: usize) -> f32 {
        self.effects[(pos * 4 + usize::from(b)) * self.tasks + task]
    }

    /// Per-position score: the mean effect of the substitutions (three, or four at an `N`).
    pub fn position_mean(&self, pos: usize, task: usize) -> f32 {
        let r = self.seq[pos];
        let (sum, n) = (0..4u8)
            .filter(|&b| b != r)
            .fold((0.0, 0), |(s, n), b| (s + self.effect(pos, b, task), n + 1));
        sum / n as f32
    }
}

/// The mutants of `seq`, in order: position-major, bases `A, G, C, T` skipping the reference.
pub fn mutants(seq: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    seq.iter()
        .enumerate()
        .flat_map(|(p, &r)| (0..4u8).filter(move |&b| b != r).map(move |b| (p, b)))
}

/// ISM of a group of sequences; `batch` sequences (references or mutants) per predictor call.
pub fn ism(p: &(impl Predictor + ?Sized), seqs: &[Vec<u8>], batch: usize) -> Result<Vec<IsmMap>> {
    let tasks = p.tasks();
    // Every variant to predict: each reference, then its mutants.
    let mut variants: Vec<Vec<u8>> = Vec::new();
    for s in seqs {
        variants.push(s.clone());
        for (pos, b) in mutants(s) {
            let mut m = s.clone();
            m[pos] = b;
            variants.push(m);
        }
    }
    let refs: Vec<&[u8]> = variants.iter().map(Vec::as_slice).collect();
    let pred = predict_codes(p, &refs, batch)?;
    let mut at = 0;
    let mut out = Vec::with_capacity(seqs.len());
    for s in seqs {
        let reference = pred[at * tasks..(at + 1) * tasks].to_vec();
        at += 1;
        let mut effects = vec![0.0f32; s.len() * 4 * tasks];
        for (pos, b) in mutants(s) {
            for t in 0..tasks {
                effects[(pos * 4 + usize::from(b)) * tasks + t] =
                    pred[at * tasks + t] - reference[t];
            }
            at += 1;
        }
        out.push(IsmMap {
            seq: s.clone(),
            reference,
            effects,
            tasks,
        });
    }
    Ok(out)
}

/// The TSV header of [`write_tsv_rows`].
pub fn tsv_header(tasks: usize) -> String {
    let task = if tasks > 1 { "\ttask" } else { "" };
    format!("id{task}\tposition\tref\tA\tC\tG\tT\tmean\n")
}

/// One line per position (and task): `id [task] position(1-based) ref A C G T mean`, bases in
/// `A, C, G, T` order for reading.
pub fn write_tsv_rows(id: &str, map: &IsmMap, out: &mut String) {
    use std::fmt::Write as _;
    // codes: A=0 G=1 C=2 T=3
    const ACGT: [u8; 4] = [0, 2, 1, 3];
    for t in 0..map.tasks {
        for pos in 0..map.seq.len() {
            let _ = write!(out, "{id}");
            if map.tasks > 1 {
                let _ = write!(out, "\t{t}");
            }
            let _ = write!(
                out,
                "\t{}\t{}",
                pos + 1,
                LETTERS[usize::from(map.seq[pos].min(N))] as char
            );
            for b in ACGT {
                let _ = write!(out, "\t{}", map.effect(pos, b, t));
            }
            let _ = writeln!(out, "\t{}", map.position_mean(pos, t));
        }
    }
}

/// ISM of every sequence of `ds`, streamed: groups of sequences that fill a batch of mutants
/// (`3L + 1` predictions per sequence), each map handed to `sink` with its index as soon as its
/// group is predicted, then `progress` told how many sequences are done. Memory holds one group.
pub fn run(
    p: &(impl Predictor + ?Sized),
    ds: &SeqDataset,
    batch: usize,
    sink: &mut dyn FnMut(usize, &IsmMap) -> Result<()>,
    progress: &mut dyn FnMut(usize),
) -> Result<()> {
    let longest = (0..ds.len()).map(|i| ds.seqs.seq_len(i)).max().unwrap_or(0);
    let per_group = (batch / (3 * longest + 1)).max(1);
    let mut start = 0;
    while start < ds.len() {
        let end = (start + per_group).min(ds.len());
        let seqs: Vec<Vec<u8>> = (start..end).map(|i| ds.seqs.get(i).to_vec()).collect();
        for (k, m) in ism(p, &seqs, batch)?.iter().enumerate() {
            sink(start + k, m)?;
        }
        progress(end);
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Encoder;

    /// A predictor whose output is a known function of the input: the weighted count of `A`
    /// (channel 0) along the input, reverse channel ignored.
    struct Linear(Encoder);

    impl Predictor for Linear {
        fn encoder(&self) -> &Encoder {
            &self.0
        }
        fn tasks(&self) -> usize {
            1
        }
        fn predict_encoded(&self, x: Vec<f32>, rows: usize) -> Vec<f32> {
            let len = self.0.length();
            x.chunks(self.0.row_len())
                .take(rows)
                .map(|r| (0..len).map(|j| r[j] * (j as f32 + 1.0)).sum())
                .collect()
        }
    }

    #[test]
    fn effects_of_a_known_model() {
        let p = Linear(Encoder::yeast());
        let seq = crate::data::alphabet::encode(b"TGCATTTTTTTCACATCAGTCAGGTTACGGCTGTT").unwrap();
        let maps = ism(&p, std::slice::from_ref(&seq), 7).unwrap();
        let m = &maps[0];
        assert_eq!(m.effects.len(), seq.len() * 4);
        for (pos, &b) in seq.iter().enumerate() {
            assert_eq!(m.effect(pos, b, 0), 0.0);
        }
        // The read's 17-nt 5′ adapter is replaced by the plasmid's own copy in padding (SPEC
        // §2.2): substitutions there change nothing.
        assert!((0..17).all(|p| (0..4).all(|b| m.effect(p, b, 0) == 0.0)));
        // Changing G→A inside the random region adds an A forward (its weight, halved by the
        // strand average); G→T adds an A on the reverse strand; G→C changes no A.
        let pos = 18; // 'G'
        assert_eq!(seq[pos], 1);
        let gain = m.effect(pos, 0, 0);
        assert!(gain > 0.0);
        assert!(
            m.effect(pos, 3, 0) > 0.0,
            "G→T adds an A on the reverse strand"
        );
        assert!(
            m.effect(pos, 2, 0).abs() < 1e-4,
            "G→C changes no A on either strand"
        );
        let mean = m.position_mean(pos, 0);
        assert!(
            (mean - (m.effect(pos, 0, 0) + m.effect(pos, 2, 0) + m.effect(pos, 3, 0)) / 3.0).abs()
                < 1e-6
        );
        let mut s = String::new();
        write_tsv_rows("x", m, &mut s);
        assert_eq!(s.lines().count(), seq.len());
        assert!(s.starts_with("x\t1\tT\t"));
    }

    #[test]
    fn every_base_of_an_insert_without_adapters_is_scored() {
        // The reference would cut the first 17 nt of this 40-nt insert and score them 0.
        let p = Linear(Encoder::yeast());
        let seq =
            crate::data::alphabet::encode(b"GGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG").unwrap();
        let m = &ism(&p, std::slice::from_ref(&seq), 64).unwrap()[0];
        for pos in 0..seq.len() {
            assert!(m.effect(pos, 0, 0) > 0.0, "G→A at {pos} adds an A");
        }
    }
}
