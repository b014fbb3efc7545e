//! Where a score is computed: correlation metrics (used by validation during training and by
//! the DREAM score alike — one implementation).

pub mod metrics;

pub use metrics::{mse, pearson, rank_average, spearman};
