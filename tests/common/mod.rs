//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The first `rows` rows of the real yeast sample (`tests/data/yeast_demo_train.txt`), in
/// `dir/train.txt`.
pub fn yeast_rows(dir: &Path, rows: usize) -> PathBuf {
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/yeast_demo_train.txt");
    let text = std::fs::read_to_string(sample).unwrap();
    let path = dir.join("train.txt");
    let head: Vec<&str> = text.lines().take(rows).collect();
    std::fs::write(&path, head.join("\n") + "\n").unwrap();
    path
}

/// Run the `prixfixe` binary: (success, stdout, stderr).
pub fn prixfixe(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prixfixe"))
        .args(args)
        .output()
        .expect("run prixfixe");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The config of `tests/fixtures/tiny_dream-rnn.pth`: a DREAM-RNN-shaped model shrunk to a
/// few thousand parameters (weights saved by PyTorch).
pub const TINY_RNN: &str = r#"[input]
padding = { kind = "plasmid", length = 150 }
channels = { is_reverse = true, is_singleton = true }
[first]
block = "bhi"
out_channels = 16
[core]
block = "bhi"
hidden = 8
out_channels = 16
[final]
block = "soft-class"
"#;

/// The model of `tests/fixtures/tiny_dream-cnn.*`: DREAM-CNN shrunk to a few thousand
/// parameters.
pub const TINY_CNN: &str = include_str!("../fixtures/tiny_dream-cnn.toml");

/// A run config training a tiny yeast model on `train` for `epochs` epochs.
pub fn tiny_train_toml(train: &std::path::Path, epochs: usize) -> String {
    format!(
        r#"[model.input]
padding = {{ kind = "plasmid", length = 150 }}
channels = {{ is_reverse = true, is_singleton = true }}
[model.first]
block = "bhi"
out_channels = 16
[model.core]
block = "autosome"
widths = [8, 8]
[model.final]
block = "soft-class"
[data]
train = "{}"
valid_fraction = 0.2
[recipe]
epochs = {epochs}
batch_size = 32
"#,
        train.display()
    )
}
