//! The integration tests, linked into one test binary (`cargo test --test suite`): one link of
//! the crate and its dependencies instead of one per file, which keeps a fresh build's time
//! and disk in bounds. Each file is a module; run one with a filter, e.g.
//! `cargo test --test suite parity::`.

mod common;

mod atac;
mod bad_input;
mod checkpoints;
mod cli;
mod crash;
mod cv;
mod fuzz_readers;
mod grid;
mod interpret;
mod parity;
mod readers_real_data;
mod score;
mod simulate;
mod train;
