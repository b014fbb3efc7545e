//! Where data enters: the alphabet, readers per format, padding, encoding, soft labels and
//! streaming batches. Each fact of SPEC §2 is written once here and used everywhere.

pub mod alphabet;
pub mod batch;
pub mod dataset;
pub mod encode;
pub mod formats;
pub mod inspect;
pub mod io;
pub mod pad;
pub mod soft_label;

pub use batch::{encode_batch, epoch_items, Batch, BatchStream, Item, Mode, Targets};
pub use dataset::{ReadStats, SeqDataset, SeqStore};
pub use encode::{is_singleton, Channels, Encoder, RowFlags};
pub use formats::{
    read_dream, read_fasta, read_subset, read_table, DreamFile, ReadOptions, ReverseRule, Subset,
    SubsetRows, TableSpec,
};
pub use pad::{Align, Padder, Padding, Trim};
pub use soft_label::{expectation, soft_label, N_BINS};
