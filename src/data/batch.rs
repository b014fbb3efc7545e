//! Streaming batches: sequences stay compact in memory and are encoded per batch, rows in
//! parallel, on a producer thread that runs ahead of the consumer by a bounded number of
//! batches. Memory is the dataset's compact codes plus `prefetch + 1` encoded batches.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::dataset::SeqDataset;
use super::encode::{Encoder, MASK_TOKEN, N_TOKEN, RowFlags, TOKEN_CHANNELS};
use super::soft_label::{N_BINS, soft_label};
use crate::error::{Error, Result};

/// One row of an epoch: a dataset row, maybe reverse-complemented. Packed in a `u32`
/// (top bit = flip) so that an epoch of 13.5 M items takes 54 MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Item(u32);

const FLIP: u32 = 1 << 31;

impl Item {
    /// Row `row`, reverse-complemented when `flip`.
    pub fn new(row: usize, flip: bool) -> Self {
        debug_assert!(row < FLIP as usize);
        Item(row as u32 | if flip { FLIP } else { 0 })
    }
    /// The dataset row.
    pub fn row(self) -> usize {
        (self.0 & !FLIP) as usize
    }
    /// Whether the row is reverse-complemented.
    pub fn flip(self) -> bool {
        self.0 & FLIP != 0
    }
}

/// What the batch's `y` holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Targets {
    /// No labels (prediction).
    None,
    /// 18 soft-label probabilities per row, from the first label column (SPEC §2.5).
    SoftBins,
    /// The label columns as they are.
    Raw,
    /// The label columns as `(value − shift) / scale` (the BHI data processor's
    /// standardised bins, SPEC_GRID §2).
    Standardized {
        /// Subtracted first.
        shift: f64,
        /// Then divided by.
        scale: f64,
    },
    /// The Unlock_DNA final block's targets (SPEC_GRID §6): per row the first label, the
    /// row's tokens one-hot over A, C, G, T, N (`5·L`, class-major), and which positions the
    /// trainer masked (`L`: each non-N position with `probability`, drawn per row from the
    /// stream's mask seed); masked positions are shown to the model as the mask token.
    MaskedTokens {
        /// Masking probability.
        probability: f64,
        /// Seeds the draws (with the row's index); the trainer sets one per epoch.
        seed: u64,
        /// The label is `(value − shift) / scale` (the training file's mean and SD).
        shift: f64,
        /// See `shift`.
        scale: f64,
    },
}

impl Targets {
    /// Values per row, for `ds` encoded `length` positions long.
    fn width(self, ds: &SeqDataset, length: usize) -> usize {
        match self {
            Targets::None => 0,
            Targets::SoftBins => N_BINS,
            Targets::Raw | Targets::Standardized { .. } => ds.n_tasks(),
            // The label, the tokens one-hot (all channels but the mask's), the mask.
            Targets::MaskedTokens { .. } => 1 + TOKEN_CHANNELS * length,
        }
    }
}

/// How the channels of a row are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training and validation: the row's own singleton flag.
    Train,
    /// Prediction: `is_singleton` is always 0 (SPEC §2.4).
    Predict,
}

/// An encoded batch, layout `(size, channels, length)` for `x` and `(size, width)` for `y`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The input planes.
    pub x: Vec<f32>,
    /// The targets (empty for [`Targets::None`]).
    pub y: Vec<f32>,
    /// Which items, in order.
    pub items: Vec<Item>,
    /// Channels per row.
    pub channels: usize,
    /// Positions per row.
    pub length: usize,
}

impl Batch {
    /// Rows in the batch.
    pub fn size(&self) -> usize {
        self.items.len()
    }
}

/// The items of one epoch: every row, twice when `rc_double` (forward then reverse
/// complement), shuffled by `seed` and `epoch` when a seed is given.
pub fn epoch_items(n_rows: usize, rc_double: bool, shuffle: Option<u64>, epoch: u64) -> Vec<Item> {
    let mut items: Vec<Item> = (0..n_rows).map(|r| Item::new(r, false)).collect();
    if rc_double {
        items.extend((0..n_rows).map(|r| Item::new(r, true)));
    }
    if let Some(seed) = shuffle {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch);
        items.shuffle(&mut rng);
    }
    items
}

/// Encode the given items of `ds` into one batch, rows in parallel.
pub fn encode_batch(
    ds: &SeqDataset,
    encoder: &Encoder,
    items: &[Item],
    targets: Targets,
    mode: Mode,
) -> Result<Batch> {
    let row_len = encoder.row_len();
    let len = encoder.length();
    let width = targets.width(ds, len);
    if matches!(targets, Targets::MaskedTokens { .. }) && !encoder.channels().tokens {
        return Err(Error::Config(
            "the Unlock_DNA final block's masked-nucleotide loss needs the Unlock_DNA data \
             processor's tokens as input"
                .into(),
        ));
    }
    let mut x = vec![0f32; items.len() * row_len];
    let mut y = vec![0f32; items.len() * width];
    x.par_chunks_mut(row_len)
        .zip(items.par_iter())
        .try_for_each_init(Vec::new, |scratch, (out, item)| {
            let r = item.row();
            let flags = RowFlags {
                // The data's own orientation, turned once more by augmentation.
                is_reverse: ds.is_reverse[r] ^ item.flip(),
                is_singleton: mode == Mode::Train && ds.is_singleton[r],
            };
            encoder
                .encode_row(ds.seqs.get(r), item.flip(), flags, scratch, out)
                .map_err(|problem| Error::data(&ds.path, ds.lines[r] as usize, problem))
        })?;
    if width > 0 {
        for ((out, item), xrow) in y.chunks_mut(width).zip(items).zip(x.chunks_mut(row_len)) {
            let t = ds.target(item.row());
            match targets {
                Targets::SoftBins => out.copy_from_slice(&soft_label(t[0])),
                Targets::Raw => out.iter_mut().zip(t).for_each(|(o, &v)| *o = v as f32),
                Targets::Standardized { shift, scale } => out
                    .iter_mut()
                    .zip(t)
                    .for_each(|(o, &v)| *o = ((v - shift) / scale) as f32),
                Targets::MaskedTokens {
                    probability,
                    seed,
                    shift,
                    scale,
                } => {
                    out[0] = ((t[0] - shift) / scale) as f32;
                    let (onehot, mask) = out[1..].split_at_mut(MASK_TOKEN * len);
                    let mut rng = ChaCha8Rng::seed_from_u64(
                        seed ^ (item.row() as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    );
                    for j in 0..len {
                        let token = (0..MASK_TOKEN)
                            .find(|&c| xrow[c * len + j] == 1.0)
                            .expect("a token per position");
                        onehot[token * len + j] = 1.0;
                        if token != N_TOKEN && rng.random::<f64>() < probability {
                            xrow[token * len + j] = 0.0;
                            xrow[MASK_TOKEN * len + j] = 1.0;
                            mask[j] = 1.0;
                        }
                    }
                }
                Targets::None => {}
            }
        }
    }
    Ok(Batch {
        x,
        y,
        items: items.to_vec(),
        channels: encoder.channels().count(),
        length: encoder.length(),
    })
}

/// How a stream cuts and fills its batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamSpec {
    /// Items per batch.
    pub batch_size: usize,
    /// Drop a last, smaller batch.
    pub drop_last: bool,
    /// What `y` holds.
    pub targets: Targets,
    /// How the flag channels are filled.
    pub mode: Mode,
    /// Batches encoded ahead of use.
    pub prefetch: usize,
}

impl StreamSpec {
    /// Batches of `batch_size`, the last one possibly smaller, two encoded ahead.
    pub fn new(batch_size: usize, targets: Targets, mode: Mode) -> Self {
        StreamSpec {
            batch_size,
            drop_last: false,
            targets,
            mode,
            prefetch: 2,
        }
    }
}

/// Batches of a list of items, encoded on a producer thread ahead of use.
pub struct BatchStream {
    rx: Receiver<Result<Batch>>,
    handle: Option<JoinHandle<()>>,
    remaining: usize,
}

impl BatchStream {
    /// Start encoding `items` in batches as `spec` says.
    pub fn spawn(
        ds: Arc<SeqDataset>,
        encoder: Encoder,
        items: Vec<Item>,
        spec: StreamSpec,
    ) -> Self {
        let StreamSpec {
            batch_size,
            drop_last,
            targets,
            mode,
            prefetch,
        } = spec;
        let batch_size = batch_size.max(1);
        let n_batches = if drop_last {
            items.len() / batch_size
        } else {
            items.len().div_ceil(batch_size)
        };
        let (tx, rx) = sync_channel(prefetch.max(1));
        let handle = std::thread::spawn(move || {
            for chunk in items.chunks(batch_size).take(n_batches) {
                let batch = encode_batch(&ds, &encoder, chunk, targets, mode);
                let failed = batch.is_err();
                // The consumer hung up: stop encoding.
                if tx.send(batch).is_err() || failed {
                    return;
                }
            }
        });
        BatchStream {
            rx,
            handle: Some(handle),
            remaining: n_batches,
        }
    }

    /// Batches not yet taken.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

impl Iterator for BatchStream {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.recv() {
            Ok(b) => {
                self.remaining = self.remaining.saturating_sub(1);
                Some(b)
            }
            Err(_) => {
                if let Some(h) = self.handle.take()
                    && h.join().is_err()
                {
                    return Some(Err(Error::Other(
                        "the batch encoder thread panicked".into(),
                    )));
                }
                None
            }
        }
    }
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        // Hang up first, so a producer blocked on a full channel stops, then wait for it.
        drop(std::mem::replace(&mut self.rx, sync_channel(1).1));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::encode::Channels;
    use crate::data::pad::Padding;

    fn dataset(n: usize) -> SeqDataset {
        let mut ds = SeqDataset {
            task_names: vec!["expression".into()],
            ..Default::default()
        };
        for i in 0..n {
            ds.seqs.push_letters(b"ACGTACGTAA").unwrap();
            ds.targets.push(i as f64);
            ds.is_reverse.push(false);
            ds.is_singleton.push(i % 2 == 0);
            ds.lines.push(i as u32 + 1);
        }
        ds
    }

    fn encoder() -> Encoder {
        Encoder::new(&Padding::exact(10), Channels::YEAST).unwrap()
    }

    /// The Unlock_DNA targets: the z-scored label, the tokens one-hot, and a seeded mask of
    /// about a fifth of the non-N positions, which the input shows as the mask token.
    #[test]
    fn masked_tokens_hide_a_fifth_of_the_bases_and_keep_the_originals() {
        let mut ds = SeqDataset {
            task_names: vec!["expression".into()],
            ..Default::default()
        };
        let read = "TGCATTTTTTTCACATCCTTCAACCAAAATATAATATTCAATATCTTGTAGGGACGATCAATATAAGTCGCCCGGACCATATAAGGCTAAGGTGTGGGGTTACGGCTGTT";
        for i in 0..64 {
            ds.seqs.push_letters(read.as_bytes()).unwrap();
            ds.targets.push(10.0 + i as f64 / 8.0);
            ds.is_reverse.push(false);
            ds.is_singleton.push(false);
            ds.lines.push(i + 1);
        }
        let enc = Encoder::new(&Padding::unlock_dna(), Channels::TOKENS).unwrap();
        let plain = encode_batch(
            &ds,
            &enc,
            &epoch_items(64, false, None, 0),
            Targets::None,
            Mode::Train,
        )
        .unwrap();
        let t = Targets::MaskedTokens {
            probability: 0.2,
            seed: 9,
            shift: 11.0,
            scale: 2.0,
        };
        let items = epoch_items(64, false, None, 0);
        let b = encode_batch(&ds, &enc, &items, t, Mode::Train).unwrap();
        assert_eq!(b.x.len(), 64 * 6 * 200);
        assert_eq!(b.y.len(), 64 * (1 + 6 * 200));
        assert_eq!(b, encode_batch(&ds, &enc, &items, t, Mode::Train).unwrap());
        let (mut masked, mut bases) = (0, 0);
        for (r, (y, (x, x0))) in
            b.y.chunks(1 + 6 * 200)
                .zip(b.x.chunks(1200).zip(plain.x.chunks(1200)))
                .enumerate()
        {
            assert_eq!(y[0], ((10.0 + r as f64 / 8.0 - 11.0) / 2.0) as f32);
            let (onehot, mask) = y[1..].split_at(1000);
            for j in 0..200 {
                // The one-hot target is the unmasked input's token.
                for c in 0..5 {
                    assert_eq!(onehot[c * 200 + j], x0[c * 200 + j], "row {r} pos {j}");
                }
                let is_n = x0[4 * 200 + j] == 1.0;
                if mask[j] == 1.0 {
                    assert!(!is_n);
                    assert_eq!(x[5 * 200 + j], 1.0);
                    assert!((0..5).all(|c| x[c * 200 + j] == 0.0));
                    masked += 1;
                } else {
                    assert!((0..6).all(|c| x[c * 200 + j] == x0[c * 200 + j]));
                }
                bases += !is_n as usize;
            }
        }
        let fraction = masked as f64 / bases as f64;
        assert!((fraction - 0.2).abs() < 0.02, "{fraction}");
        // Another seed, another mask.
        let other = Targets::MaskedTokens {
            probability: 0.2,
            seed: 10,
            shift: 11.0,
            scale: 2.0,
        };
        let t2 = encode_batch(&ds, &enc, &items, other, Mode::Train).unwrap();
        assert_ne!(t2.y, b.y);
    }

    #[test]
    fn rc_doubling_shows_every_row_twice_per_epoch() {
        let items = epoch_items(100, true, Some(7), 0);
        assert_eq!(items.len(), 200);
        let mut seen: Vec<(usize, bool)> = items.iter().map(|i| (i.row(), i.flip())).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 200);
    }

    #[test]
    fn shuffle_is_seeded_and_differs_by_epoch() {
        assert_eq!(
            epoch_items(50, false, Some(1), 0),
            epoch_items(50, false, Some(1), 0)
        );
        assert_ne!(
            epoch_items(50, false, Some(1), 0),
            epoch_items(50, false, Some(1), 1)
        );
        assert_ne!(
            epoch_items(50, false, Some(1), 0),
            epoch_items(50, false, Some(2), 0)
        );
        let plain = epoch_items(5, false, None, 0);
        assert_eq!(
            plain.iter().map(|i| i.row()).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn stream_covers_all_items_with_flags_and_soft_labels() {
        let ds = Arc::new(dataset(10));
        let items = epoch_items(10, true, Some(3), 0);
        let spec = StreamSpec::new(4, Targets::SoftBins, Mode::Train);
        let stream = BatchStream::spawn(ds.clone(), encoder(), items.clone(), spec);
        assert_eq!(stream.remaining(), 5);
        let batches: Vec<Batch> = stream.map(|b| b.unwrap()).collect();
        assert_eq!(
            batches.iter().map(Batch::size).collect::<Vec<_>>(),
            vec![4, 4, 4, 4, 4]
        );
        let all: Vec<Item> = batches.iter().flat_map(|b| b.items.clone()).collect();
        assert_eq!(all, items);
        let l = 10;
        for b in &batches {
            assert_eq!(b.x.len(), b.size() * 6 * l);
            for (k, item) in b.items.iter().enumerate() {
                let row = &b.x[k * 6 * l..(k + 1) * 6 * l];
                assert_eq!(row[4 * l], item.flip() as u8 as f32, "is_reverse");
                assert_eq!(
                    row[5 * l],
                    (item.row() % 2 == 0) as u8 as f32,
                    "is_singleton"
                );
                let y = &b.y[k * N_BINS..(k + 1) * N_BINS];
                assert_eq!(y, &soft_label(item.row() as f64));
            }
        }
    }

    #[test]
    fn predict_mode_zeroes_singleton_and_drop_last_drops() {
        let ds = Arc::new(dataset(10));
        let items = epoch_items(10, false, None, 0);
        let spec = StreamSpec {
            drop_last: true,
            prefetch: 1,
            ..StreamSpec::new(4, Targets::None, Mode::Predict)
        };
        let batches: Vec<Batch> = BatchStream::spawn(ds, encoder(), items, spec)
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(batches.len(), 2);
        assert!(batches[0].y.is_empty());
        assert!(
            batches
                .iter()
                .all(|b| b.x.chunks(10).skip(5).step_by(6).all(|p| p == [0.0; 10]))
        );
    }

    #[test]
    fn encoding_errors_name_the_line() {
        let mut ds = dataset(3);
        ds.path = "train.txt".into();
        ds.seqs.push_letters(b"ACGTACGTAAC").unwrap(); // 11 nt, model takes 10
        ds.targets.push(1.0);
        ds.is_reverse.push(false);
        ds.is_singleton.push(false);
        ds.lines.push(9);
        let items = epoch_items(4, false, None, 0);
        let e = encode_batch(&ds, &encoder(), &items, Targets::Raw, Mode::Train).unwrap_err();
        assert_eq!(e.line(), Some(9));
    }

    #[test]
    fn dropping_a_stream_early_does_not_hang() {
        let ds = Arc::new(dataset(1000));
        let items = epoch_items(1000, true, Some(1), 0);
        let spec = StreamSpec::new(8, Targets::Raw, Mode::Train);
        let mut s = BatchStream::spawn(ds, encoder(), items, spec);
        assert!(s.next().is_some());
        drop(s);
    }
}
