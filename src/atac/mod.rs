//! Chromatin accessibility (SPEC_BENCHMARKS §5): ChromBPNet's ATAC-seq task from a genome,
//! peaks and a Tn5-insertion bigWig — inputs, regions, the frozen-bias models, training,
//! metrics and predicted tracks.

pub mod benchmark;
pub mod inputs;
pub mod metrics;
pub mod model;
pub mod predict;
pub mod regions;
pub mod sim;
pub mod train;
