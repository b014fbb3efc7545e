//! A run's output directory: the resolved config, the manifest, the logs, the checkpoints and
//! the trainer state that makes a run resumable.
//!
//! Files: `config.toml`, `manifest.json`, `batches.csv`, `epochs.jsonl`, `best.safetensors`,
//! `last.safetensors`, `last_optimizer.safetensors`, `state.json`, `curves.svg`.
//! `state.json` is written last after each epoch and is the commit point: a run killed at any
//! moment resumes from the last epoch whose state was written.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Validation MSE of the decoded predictions (mean over tasks).
    pub val_mse: f64,
    /// Validation Pearson r (mean over tasks); `None` when undefined.
    pub val_pearson: Option<f64>,
    /// Validation Spearman ρ (mean over tasks); `None` when undefined.
    pub val_spearman: Option<f64>,
    /// Learning rate at the epoch's last batch.
    pub lr: f64,
    /// Wall-clock seconds of training (without validation).
    pub seconds: f64,
    /// Training sequences per second.
    pub seqs_per_sec: f64,
    /// Whether this epoch's weights became `best.safetensors`.
    pub best: bool,
}

/// What a resumed run needs besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// The best validation score so far (higher is better) and its epoch.
    pub best: Option<(f64, usize)>,
    /// Every completed epoch.
    pub history: Vec<EpochRecord>,
}

/// The run directory.
pub struct RunDir {
    /// Its path.
    pub path: PathBuf,
}

const RUN_FILES: [&str; 9] = [
    "config.toml",
    "manifest.json",
    "batches.csv",
    "epochs.jsonl",
    "best.safetensors",
    "last.safetensors",
    "last_optimizer.safetensors",
    "state.json",
    "curves.svg",
];

impl RunDir {
    /// Open `path` for a run. A directory that already holds a run is refused unless the run
    /// is resumed (`resume`) or overwritten (`force`).
    pub fn open(path: &Path, resume: bool, force: bool) -> Result<(Self, Option<TrainerState>)> {
        let dir = RunDir {
            path: path.to_path_buf(),
        };
        let has_run = dir.file("config.toml").exists() || dir.file("state.json").exists();
        if resume {
            if !has_run {
                return Err(Error::Config(format!(
                    "{}: nothing to resume (no run there); drop --resume to start one",
                    path.display()
                )));
            }
            let state = match fs::read_to_string(dir.file("state.json")) {
                Ok(text) => Some(serde_json::from_str(&text).map_err(|e| {
                    Error::Other(format!("{}: {e}", dir.file("state.json").display()))
                })?),
                // Killed before the first epoch ended: start over in the same directory.
                Err(_) => None,
            };
            return Ok((dir, state));
        }
        if has_run {
            if !force {
                return Err(Error::Config(format!(
                    "{} already holds a run; use --resume to continue it or --force to overwrite it",
                    path.display()
                )));
            }
            for f in RUN_FILES {
                let p = dir.file(f);
                if p.exists() {
                    fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                }
            }
        }
        fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        Ok((dir, None))
    }

    /// A file in the run directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Write a file atomically (temporary file, then rename).
    pub fn write_atomic(&self, name: &str, content: &[u8]) -> Result<()> {
        let path = self.file(name);
        let tmp = self.file(&format!(".{name}.partial"));
        fs::write(&tmp, content).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    /// Append lines to a log file.
    pub fn append(&self, name: &str, text: &str) -> Result<()> {
        let path = self.file(name);
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(&path, e))
    }

    /// Keep only the lines of a log that `keep` accepts (after a resume, drop what the
    /// interrupted epoch wrote).
    pub fn truncate_log(&self, name: &str, keep: impl Fn(&str) -> bool) -> Result<()> {
        let path = self.file(name);
        let Ok(f) = fs::File::open(&path) else {
            return Ok(());
        };
        let mut kept = String::new();
        for line in BufReader::new(f).lines() {
            let line = line.map_err(|e| Error::io(&path, e))?;
            if keep(&line) {
                kept.push_str(&line);
                kept.push('\n');
            }
        }
        self.write_atomic(name, kept.as_bytes())
    }

    /// Save the trainer state (the commit point of an epoch).
    pub fn save_state(&self, state: &TrainerState) -> Result<()> {
        let text = serde_json::to_string_pretty(state).expect("state serialises");
        self.write_atomic("state.json", text.as_bytes())
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
