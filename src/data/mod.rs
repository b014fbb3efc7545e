//! Where data enters: the alphabet, readers per format, padding, encoding, soft labels and
//! streaming batches. Each fact of SPEC §2 is written once here and used everywhere.

pub mod alphabet;
pub mod batch;
pub mod dataset;
pub mod encode;
pub mod folds;
pub mod formats;
pub mod genome;
pub mod io;
pub mod pad;
pub mod soft_label;

pub use batch::{Batch, BatchStream, Item, Mode, StreamSpec, Targets, encode_batch, epoch_items};
pub use dataset::{ReadStats, SeqDataset, SeqStore};
pub use encode::{BaseOrder, Channels, Encoder, NCode, RowFlags, Strands, is_singleton};
pub use formats::{
    DreamFile, ReadOptions, ReverseRule, Subset, SubsetRows, TableSpec, read_dream, read_fasta,
    read_subset, read_table,
};
pub use pad::{Align, Padder, Padding, Trim};
pub use soft_label::{N_BINS, soft_label};

/// 6,370 real yeast training rows (`sequence<TAB>expression`) from the reference release (MIT
/// licence), built into the binary: the demo's fallback data and the simulator's yardstick.
pub const YEAST_SAMPLE: &str = include_str!("../../tests/data/yeast_demo_train.txt");
