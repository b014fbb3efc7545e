//! Sequence design (SPEC §6): the genetic algorithm, driven by any fitness function — the
//! simulator's proxy models or trained models.

pub mod ga;
pub mod run;

pub use ga::{GaConfig, GenerationStats, Individual, Seq, best_distinct, evolve};
pub use run::{Design, DesignSpec, Objective, design_fasta, design_table, run};
