//! Where a score is computed: correlation metrics (used by validation during training and by
//! the DREAM score alike — one implementation), the challenge's weighted score, bootstrap
//! ranks, and prediction files.

pub mod bootstrap;
pub mod metrics;
pub mod plot;
pub mod predictions;
pub mod report;
pub mod score;

pub use bootstrap::{Bootstrap, RankDistribution, bootstrap_ranks};
pub use metrics::{mse, pearson, rank_average, spearman};
pub use predictions::{read_predictions, read_predictions_for};
pub use score::{DreamScore, SUBSETS, ScoredSubset, SubsetScore, dream_score, prepare};
