//! Where training happens: the DREAM-optimised recipe (SPEC §4) for any Prix Fixe model.
//!
//! AdamW with a one-cycle schedule stepped per batch, reverse-complement doubling, validation
//! after each epoch (MSE, Pearson r, Spearman ρ), the best checkpoint kept, and a run directory
//! from which a killed run resumes to the same result as an uninterrupted one.
//!
//! A [`Trainer`] opens (or resumes) a run directory, runs one epoch at a time (train, validate,
//! checkpoint) and reports through a [`TrainObserver`]; it writes nothing to the terminal.

pub mod config;
pub mod optim;
pub mod plot;
pub mod run_dir;
pub mod schedule;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

pub use config::{DataSection, Recipe, TrainConfig, TrainOverrides, TrainerKind};
pub use optim::{AdamW, AdamWConfig, Clip};
pub use run_dir::{EpochRecord, RunDir, TrainerState};
pub use schedule::{Cosine, OneCycle, Schedule, Transformer};

use crate::PrixFixeNet;
use crate::blocks::FinalConfig;
use crate::data::formats::detect::{Format, detect_format, read_any};
use crate::data::{
    BatchStream, Encoder, Item, Mode, ReadOptions, SeqDataset, StreamSpec, Targets, epoch_items,
};
use crate::device::parse_device;
use crate::error::{Error, Result};
use crate::eval::{mse, pearson, spearman};
use crate::predict::{CONFIG_KEY, Model, VERSION_KEY};
use crate::weights::WeightMap;

/// How a run is driven (not part of its config).
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue the run in the output directory.
    pub resume: bool,
    /// Overwrite a run in the output directory.
    pub force: bool,
    /// The command line, for the manifest.
    pub command_line: String,
    /// Stop after this many epochs of this invocation (tests of resuming use it).
    pub stop_after: Option<usize>,
    /// Checked after every batch: once set, the run stops with [`Error::Stopped`], keeping
    /// its last committed epoch (the unfinished one is trained again on resume). The CLI sets
    /// it on SIGUSR1, the warning a Slurm job gets before its time limit.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Every epoch.
    pub history: Vec<EpochRecord>,
    /// The best epoch, 1-based.
    pub best_epoch: Option<usize>,
}

/// Training and validation sets, read and checked against the model.
pub struct RunData {
    /// Rows trained on.
    pub train: Arc<SeqDataset>,
    /// Rows validated on.
    pub valid: Arc<SeqDataset>,
    /// How the BHI and Unlock_DNA trainers standardise labels; `None` for Autosome.org's.
    pub label_scale: Option<LabelScale>,
}

/// Labels as a trainer standardises them: training targets `(label − centre) / train_sd`,
/// validation truth `(label − centre) / valid_sd`, or the raw label where `valid_sd` is
/// `None`. Recorded in the run's `manifest.json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LabelScale {
    /// BHI: 11, the centre bin; Unlock_DNA: the training labels' mean.
    pub centre: f64,
    /// BHI: the population SD of the training file's labels (a held-out part of it shares
    /// it); Unlock_DNA: of the training rows' labels.
    pub train_sd: f64,
    /// BHI: the validation file's own SD (SPEC_GRID §2); Unlock_DNA: `None`, validation
    /// compares raw labels (Q5).
    pub valid_sd: Option<f64>,
}

/// The bin the BHI data processor centres its targets on.
pub const BHI_CENTRE: f64 = 11.0;

/// The mean and population SD of a file's labels, for the standardised targets of the BHI
/// and Unlock_DNA trainers.
fn label_stats(ds: &SeqDataset) -> Result<(f64, f64)> {
    if ds.n_tasks() != 1 {
        return Err(Error::Config(format!(
            "{}: the BHI and Unlock_DNA trainers standardise one label column, and this file has {}",
            ds.path.display(),
            ds.n_tasks()
        )));
    }
    let y: Vec<f64> = (0..ds.len()).map(|i| ds.target(i)[0]).collect();
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
    if !(sd > 0.0 && sd.is_finite()) {
        return Err(Error::Config(format!(
            "{}: every label is the same, so the trainer cannot standardise them (σ = 0)",
            ds.path.display()
        )));
    }
    Ok((mean, sd))
}

/// Read the data of a run and check it fits the model.
pub fn load_data(config: &TrainConfig) -> Result<RunData> {
    let d = &config.data;
    let opts = ReadOptions {
        padding: Some(config.model.input.padding.clone()),
    };
    let read = |path: &Path| -> Result<SeqDataset> {
        let format = match &d.table {
            Some(spec) => Format::Table(spec.clone()),
            None => detect_format(path)?,
        };
        if let Format::Table(spec) = &format
            && spec.targets.is_empty()
        {
            let (_, header) = crate::data::formats::table::sniff_header(path)?;
            return Err(Error::data(
                path,
                1,
                crate::Problem::Other(format!(
                    "this file has a header line ({}), so it reads as a table, and a table to \
                     train on names its label columns: add `[data.table]` with `sequence = \
                     \"{}\"` and `targets = [\"…\"]` to the config; or delete the header line to \
                     read it as a DREAM file (`sequence<TAB>expression`, no header)",
                    header.join(", "),
                    spec.sequence
                )),
            ));
        }
        let ds = read_any(path, &format, &opts)?;
        check_fits(&ds, &config.model.final_block)?;
        Ok(ds)
    };
    let bhi = config.recipe.trainer == TrainerKind::Bhi;
    let train = without_test_rows(read(&d.train)?, d)?;
    // BHI's σ is the whole file's, before any split.
    let file_sd = if bhi {
        Some(label_stats(&train)?.1)
    } else {
        None
    };
    let (train, valid, valid_sd) = match &d.valid {
        Some(v) => {
            let valid = read(v)?;
            let sd = if bhi {
                Some(label_stats(&valid)?.1)
            } else {
                None
            };
            (train, valid, sd)
        }
        None => {
            let (t, v) = split(train, d, config.recipe.seed)?;
            (t, v, file_sd)
        }
    };
    let label_scale = match config.recipe.trainer {
        TrainerKind::Autosome | TrainerKind::Keras => None,
        TrainerKind::Bhi => file_sd.map(|train_sd| LabelScale {
            centre: BHI_CENTRE,
            train_sd,
            valid_sd,
        }),
        TrainerKind::UnlockDna => {
            let (centre, train_sd) = label_stats(&train)?;
            Some(LabelScale {
                centre,
                train_sd,
                valid_sd: None,
            })
        }
    };
    Ok(RunData {
        train: Arc::new(train),
        valid: Arc::new(valid),
        label_scale,
    })
}

fn check_fits(ds: &SeqDataset, final_block: &FinalConfig) -> Result<()> {
    if ds.n_tasks() != final_block.tasks() {
        return Err(Error::Config(format!(
            "{}: the model needs {} but the file has {} ({})",
            ds.path.display(),
            final_block.labels_wanted(),
            ds.n_tasks(),
            if ds.task_names.is_empty() {
                "none".into()
            } else {
                ds.task_names.join(", ")
            }
        )));
    }
    for i in 0..ds.len() {
        if let Err(problem) = final_block.check_labels(ds.target(i)) {
            let line = ds.lines[i] as usize;
            return Err(Error::data(&ds.path, line, crate::Problem::Other(problem)));
        }
    }
    Ok(())
}

/// The training file's rows with the fold file's folds (where the run names one), less the
/// rows of the test folds.
fn without_test_rows(mut ds: SeqDataset, d: &DataSection) -> Result<SeqDataset> {
    if let Some(path) = &d.folds {
        ds.folds = Some(crate::data::folds::read(path, ds.len())?);
    }
    if d.test_folds.is_empty() {
        return Ok(ds);
    }
    let Some(folds) = &ds.folds else {
        return Err(Error::Config(format!(
            "test_folds were given but {} has no fold column (and the run names no fold file)",
            ds.path.display()
        )));
    };
    let keep: Vec<usize> = (0..ds.len())
        .filter(|&i| !d.test_folds.contains(&folds[i]))
        .collect();
    if keep.is_empty() {
        return Err(Error::Config(format!(
            "{}: every row is in a test fold {:?}; nothing is left to train on",
            ds.path.display(),
            d.test_folds
        )));
    }
    Ok(ds.select(&keep))
}

/// Hold out a fold, or a seeded random fraction of the rows.
fn split(ds: SeqDataset, d: &DataSection, seed: u64) -> Result<(SeqDataset, SeqDataset)> {
    let (train_rows, valid_rows): (Vec<usize>, Vec<usize>) = match (d.valid_fold, &ds.folds) {
        (Some(k), Some(folds)) => (0..ds.len()).partition(|&i| folds[i] != k),
        (Some(_), None) => {
            return Err(Error::Config(format!(
                "valid_fold was given but {} has no fold column",
                ds.path.display()
            )));
        }
        (None, _) => {
            if !(d.valid_fraction > 0.0 && d.valid_fraction < 1.0) {
                return Err(Error::Config(format!(
                    "valid_fraction {} must be between 0 and 1 (or give a validation file)",
                    d.valid_fraction
                )));
            }
            let mut rows: Vec<usize> = (0..ds.len()).collect();
            rows.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_5EED));
            let n_valid = ((ds.len() as f64 * d.valid_fraction).round() as usize).max(1);
            let mut valid = rows.split_off(ds.len() - n_valid);
            rows.sort_unstable();
            valid.sort_unstable();
            (rows, valid)
        }
    };
    if train_rows.is_empty() || valid_rows.is_empty() {
        return Err(Error::Config(format!(
            "{}: {} training and {} validation rows after the split; both need rows",
            ds.path.display(),
            train_rows.len(),
            valid_rows.len()
        )));
    }
    Ok((ds.select(&train_rows), ds.select(&valid_rows)))
}

/// The items of epoch `epoch` (0-based). With `batch_per_epoch`, epochs are windows of one
/// shuffled stream that runs on across passes over the data.
fn items_for_epoch(n: usize, recipe: &Recipe, epoch: usize) -> Vec<Item> {
    let Some(k) = recipe.batch_per_epoch else {
        return epoch_items(n, recipe.rc_double, Some(recipe.seed), epoch as u64);
    };
    let per_pass = n * if recipe.rc_double { 2 } else { 1 };
    let want = k * recipe.batch_size;
    let start = epoch * want;
    let mut out = Vec::with_capacity(want);
    let mut pos = start;
    while out.len() < want {
        let pass = pos / per_pass;
        let items = epoch_items(n, recipe.rc_double, Some(recipe.seed), pass as u64);
        let from = pos % per_pass;
        let take = (want - out.len()).min(per_pass - from);
        out.extend_from_slice(&items[from..from + take]);
        pos += take;
    }
    out
}

fn batches_per_epoch(n: usize, recipe: &Recipe) -> usize {
    recipe.batch_per_epoch.unwrap_or_else(|| {
        let items = n * if recipe.rc_double { 2 } else { 1 };
        items.div_ceil(recipe.batch_size)
    })
}

/// Validation figures: MSE, Pearson and Spearman per task, averaged over tasks; each
/// orientation is its own row with its real singleton flag, as in the reference. With
/// `standardize = (centre, sd)`, the truth is the standardised label, `(label − centre) / sd`.
pub fn validate(
    model: &Model,
    ds: Arc<SeqDataset>,
    recipe: &Recipe,
    standardize: Option<(f64, f64)>,
) -> Result<(f64, Option<f64>, Option<f64>)> {
    let (items, preds) = model.predict_items(ds.clone(), recipe.rc_double, recipe.batch_size)?;
    let tasks = model.config.final_block.tasks();
    let (mut m, mut p, mut s) = (0.0, Some(0.0), Some(0.0));
    for t in 0..tasks {
        let pred: Vec<f64> = (0..items.len())
            .map(|i| preds[i * tasks + t] as f64)
            .collect();
        let truth: Vec<f64> = items
            .iter()
            .map(|it| {
                let v = ds.target(it.row())[t];
                standardize.map_or(v, |(centre, sd)| (v - centre) / sd)
            })
            .collect();
        m += mse(&pred, &truth) / tasks as f64;
        p = p
            .zip(pearson(&pred, &truth))
            .map(|(a, b)| a + b / tasks as f64);
        s = s
            .zip(spearman(&pred, &truth))
            .map(|(a, b)| a + b / tasks as f64);
    }
    Ok((m, p, s))
}

#[derive(Serialize)]
struct Manifest<'a> {
    prixfixe_version: &'a str,
    burn_version: &'a str,
    command_line: &'a str,
    seed: u64,
    device: &'a str,
    started_unix: u64,
    train_rows: usize,
    valid_rows: usize,
    data_files: Vec<(String, String)>,
    /// Under the BHI and Unlock_DNA trainers: how labels are standardised.
    #[serde(skip_serializing_if = "Option::is_none")]
    standardized_labels: Option<LabelScale>,
}

fn checkpoint(net: &mut PrixFixeNet, config: &TrainConfig, epoch: usize) -> WeightMap {
    let mut map = WeightMap::from_model(net, "");
    map.metadata
        .insert(CONFIG_KEY.into(), config.model.to_toml());
    map.metadata
        .insert(VERSION_KEY.into(), env!("CARGO_PKG_VERSION").into());
    map.metadata.insert("epoch".into(), epoch.to_string());
    map
}

/// What a run reports while it goes: an epoch starts, a batch is done, an epoch is done. The
/// CLI draws progress bars from it; the library prints nothing.
pub trait TrainObserver {
    /// Epoch `epoch` (1-based) of `epochs` starts, with `batches` batches.
    fn epoch_started(&mut self, _epoch: usize, _epochs: usize, _batches: usize) {}
    /// A batch is done: the epoch's mean loss so far and its training rate.
    fn batch_done(&mut self, _mean_loss: f64, _seqs_per_sec: f64) {}
    /// An epoch is trained, validated and committed.
    fn epoch_done(&mut self, _record: &EpochRecord, _epochs: usize) {}
}

/// An observer that ignores everything.
pub struct Silent;

impl TrainObserver for Silent {}

/// Train (or resume, with `opts.resume`) to the end of the recipe, reporting to nobody.
pub fn train(config: &TrainConfig, out_dir: &Path, opts: &TrainOptions) -> Result<TrainSummary> {
    train_with(config, out_dir, opts, &mut Silent)
}

/// Train as the config says, writing the run into `out_dir`, to the end of the recipe or for
/// `opts.stop_after` epochs, reporting to `observer`.
///
/// A fresh run checks its config and reads its data before it creates anything, and a run
/// that fails before its first epoch is committed leaves nothing behind. With
/// `opts.resume`, `config` must be the one the run was started with (the stored one is used;
/// any difference is refused, naming the keys).
pub fn train_with(
    config: &TrainConfig,
    out_dir: &Path,
    opts: &TrainOptions,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary> {
    let mut trainer = Trainer::open(config, out_dir, opts)?;
    trainer.stop = opts.stop.clone();
    let mut epochs_run = 0;
    while !trainer.finished() && opts.stop_after.is_none_or(|k| epochs_run < k) {
        if let Err(e) = trainer.run_epoch(observer) {
            trainer.abandon_if_uncommitted();
            return Err(e);
        }
        epochs_run += 1;
    }
    Ok(trainer.summary())
}

/// A run in progress: its directory, data, network, optimiser and committed state.
pub struct Trainer {
    config: TrainConfig,
    run: RunDir,
    data: RunData,
    state: TrainerState,
    /// Taken while an epoch trains (the optimiser step consumes it).
    net: Option<PrixFixeNet>,
    optim: AdamW,
    device: Device,
    schedule: Schedule,
    encoder: Encoder,
    /// When set, [`Trainer::run_epoch`] stops after the batch it is on.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Trainer {
    /// Start a run in `out_dir` (refusing one there unless `opts.force`), or, with
    /// `opts.resume`, continue the one there from its last committed epoch: its stored config
    /// must equal `config` (the differences are listed otherwise).
    pub fn open(config: &TrainConfig, out_dir: &Path, opts: &TrainOptions) -> Result<Self> {
        config.recipe.check()?;
        config.model.check()?;
        check_trainer_fits(config)?;
        if opts.resume {
            let (run, state) = RunDir::open(out_dir, true, false)?;
            let path = run.file("config.toml");
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let stored = TrainConfig::from_toml(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            config_differences(&stored, config).map_err(|d| {
                Error::Config(format!(
                    "--resume continues the run with the config stored in {}, and this one \
                     differs: {d}; a changed recipe would not reproduce the uninterrupted run \
                     (start a new run in another directory, or use --force to overwrite this one)",
                    path.display()
                ))
            })?;
            let data = load_data(&stored)?;
            return Self::start(stored, run, state, data);
        }
        let data = load_data(config)?;
        let (run, _) = RunDir::open(out_dir, false, opts.force)?;
        let started = (|| {
            run.write_atomic("config.toml", config.to_toml().as_bytes())?;
            write_manifest(&run, config, &data, opts)?;
            run.restore_logs(None)
        })();
        if let Err(e) = started {
            run.abandon();
            return Err(e);
        }
        Self::start(config.clone(), run, None, data)
    }

    /// The network and optimiser, fresh or from the last committed checkpoint.
    fn start(
        config: TrainConfig,
        run: RunDir,
        state: Option<TrainerState>,
        data: RunData,
    ) -> Result<Self> {
        let fresh = state.is_none();
        let parts = (|| {
            let recipe = &config.recipe;
            let device = parse_device(&recipe.device)?;
            let ad = device.clone().autodiff();
            run.restore_logs(state.as_ref())?;
            let mut net = config.model.init_seeded(&ad, recipe.seed)?;
            let adam = match recipe.trainer {
                // Adam as the Unlock_DNA team set it (SPEC_GRID §6).
                TrainerKind::UnlockDna => AdamWConfig {
                    weight_decay: 0.0,
                    beta2: 0.98,
                    eps: 1e-9,
                },
                // Keras' Adam defaults (SPEC_BENCHMARKS §3.2).
                TrainerKind::Keras => AdamWConfig {
                    weight_decay: 0.0,
                    beta2: 0.999,
                    eps: 1e-7,
                },
                _ => recipe.optimizer,
            };
            let mut optim = AdamW::new(adam);
            let state = match state {
                Some(s) => {
                    let (last, moments) = run.restore(&s)?;
                    last.apply_to(&mut net, "", &ad)?;
                    optim = AdamW::load_weight_map(adam, &moments, &mut net, &ad);
                    s
                }
                None => TrainerState::fresh(),
            };
            let n_batches = batches_per_epoch(data.train.len(), recipe);
            let max_lr = recipe.max_lr_for(&config.model);
            let schedule = match recipe.trainer {
                TrainerKind::Autosome => {
                    Schedule::OneCycle(OneCycle::new(max_lr, n_batches * recipe.epochs))
                }
                // T_max counts training rows, not batches (SPEC_GRID Q9).
                TrainerKind::Bhi => Schedule::Cosine(Cosine {
                    max_lr,
                    t_max: data.train.len() * recipe.epochs,
                    beta1: 0.9,
                }),
                TrainerKind::UnlockDna => Schedule::Transformer(Transformer {
                    d: config.model.first.out_channels(),
                    warmup: recipe.warmup,
                }),
                TrainerKind::Keras => Schedule::Constant(max_lr),
            };
            let encoder = config.model.input.encoder()?;
            Ok((state, net, optim, device, schedule, encoder))
        })();
        let (state, net, optim, device, schedule, encoder) = match parts {
            Ok(p) => p,
            Err(e) => {
                // A fresh run that cannot start leaves no directory behind.
                if fresh {
                    run.abandon();
                }
                return Err(e);
            }
        };
        Ok(Self {
            config,
            run,
            data,
            state,
            net: Some(net),
            optim,
            device,
            schedule,
            encoder,
            stop: None,
        })
    }

    /// The run's config (the stored one when resumed).
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Epochs committed so far.
    pub fn epochs_done(&self) -> usize {
        self.state.epochs_done
    }

    /// Whether every epoch of the recipe is done, or early stopping has ended the run: the
    /// last `patience` epochs brought no better score than the best.
    pub fn finished(&self) -> bool {
        run_finished(&self.config.recipe, &self.state)
    }

    /// Every epoch so far and the best one.
    pub fn summary(self) -> TrainSummary {
        TrainSummary {
            best_epoch: self.state.best.map(|b| b.1),
            history: self.state.history,
        }
    }

    /// Remove the run directory if no epoch was ever committed to it.
    fn abandon_if_uncommitted(self) {
        if !self.run.file("state.json").exists() {
            self.run.abandon();
        }
    }

    /// Train one epoch, validate, and commit its checkpoint, logs and state.
    pub fn run_epoch(&mut self, observer: &mut dyn TrainObserver) -> Result<EpochRecord> {
        let (run, config, encoder) = (&self.run, &self.config, &self.encoder);
        let recipe = &config.recipe;
        let ad = self.device.clone().autodiff();
        let (channels, length) = (encoder.channels().count(), encoder.length());
        let state = &mut self.state;
        let epoch = state.epochs_done;
        // Dropout draws depend only on (seed, epoch), not on what other threads draw: a
        // resumed run repeats them exactly.
        let dropout_seed = recipe
            .seed
            .wrapping_mul(0x9E37_79B9)
            .wrapping_add(epoch as u64 + 1);
        ad.seed(dropout_seed);
        let items = items_for_epoch(self.data.train.len(), recipe, epoch);
        let scale = self.data.label_scale;
        let targets = match (config.model.final_block.targets(), scale) {
            (Targets::Raw, Some(s)) => Targets::Standardized {
                shift: s.centre,
                scale: s.train_sd,
            },
            (Targets::MaskedTokens { probability, .. }, s) => Targets::MaskedTokens {
                probability,
                seed: dropout_seed,
                shift: s.map_or(0.0, |s| s.centre),
                scale: s.map_or(1.0, |s| s.train_sd),
            },
            (t, _) => t,
        };
        let clip = (recipe.trainer == TrainerKind::UnlockDna).then_some(Clip {
            norm: 1.0,
            value: 0.5,
        });
        let bhi = recipe.trainer == TrainerKind::Bhi;
        let spec = StreamSpec::new(recipe.batch_size, targets, Mode::Train);
        let stream = BatchStream::spawn(self.data.train.clone(), encoder.clone(), items, spec);
        observer.epoch_started(epoch + 1, recipe.epochs, stream.remaining());
        let mut net = self
            .net
            .take()
            .ok_or_else(|| Error::Other("an earlier epoch failed; reopen the run".into()))?;
        let started = Instant::now();
        let (mut loss_sum, mut seen, mut lr) = (0.0, 0usize, 0.0);
        let mut log = String::new();
        for (i, batch) in stream.enumerate() {
            let batch = batch?;
            let b = batch.size();
            let (step_lr, beta1) = self.schedule.at(state.step);
            lr = step_lr;
            let x = Tensor::<3>::from_data(TensorData::new(batch.x, [b, channels, length]), &ad);
            let width = batch.y.len() / b;
            let y = Tensor::<2>::from_data(TensorData::new(batch.y, [b, width]), &ad);
            let seed = dropout_seed ^ state.step as u64;
            // The BHI trainer's reverse complement: channels and positions flipped, an exact
            // reverse complement of the four base channels, in a pass of its own.
            let x_rc = bhi.then(|| x.clone().flip([1, 2]));
            let pass = |x: Tensor<3>, y: Tensor<2>, seed: u64| {
                let out = crate::ops::with_dropout_stream(seed, || net.forward(x));
                let loss = net.final_block().loss(out.out, y);
                match out.aux_loss {
                    Some(aux) => loss + aux,
                    None => loss,
                }
            };
            let mut loss = pass(x, y.clone(), seed);
            if let Some(x_rc) = x_rc {
                loss = (loss + pass(x_rc, y, !seed)) / 2.0;
            }
            let value = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                return Err(Error::Diverged {
                    epoch: epoch + 1,
                    batch: i + 1,
                    value,
                });
            }
            let mut grads = GradientsParams::from_grads(loss.backward(), &net);
            if let Some(clip) = clip {
                grads = clip.apply(&net, grads).0;
            }
            net = self.optim.step(lr, beta1, net, grads);
            loss_sum += value * b as f64;
            seen += b;
            log.push_str(&format!(
                "{},{},{},{value:.6},{lr:.6e},{beta1:.6}\n",
                state.step,
                epoch + 1,
                i + 1
            ));
            state.step += 1;
            let rate = seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
            observer.batch_done(loss_sum / seen as f64, rate);
            if self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
            {
                // The optimiser has stepped: this epoch cannot be committed; the next run
                // resumes from the last committed one.
                return Err(Error::Stopped {
                    epochs_done: state.epochs_done,
                });
            }
        }
        let seconds = started.elapsed().as_secs_f64();

        let model = Model::new(config.model.clone(), net.valid(), self.device.clone())?;
        // Standardised truth where the training targets were standardised labels.
        let standardize = match targets {
            Targets::Standardized { .. } => scale.and_then(|s| s.valid_sd.map(|sd| (s.centre, sd))),
            _ => None,
        };
        let (val_mse, val_pearson, val_spearman) =
            validate(&model, self.data.valid.clone(), recipe, standardize)?;
        let score = match recipe.trainer {
            TrainerKind::Autosome => config.model.final_block.score(val_mse, val_pearson),
            // The BHI and Unlock_DNA trainers keep the epoch of highest Pearson r.
            TrainerKind::Bhi | TrainerKind::UnlockDna => val_pearson.unwrap_or(-2.0),
            // Keras keeps the lowest validation loss (the per-task MSEs' sum; their mean
            // orders epochs the same way).
            TrainerKind::Keras if val_mse.is_finite() => -val_mse,
            TrainerKind::Keras => f64::MIN,
        };
        let is_best = state.best.is_none_or(|(b, _)| score > b);
        let mut inner = model.into_net();
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            val_mse,
            val_pearson,
            val_spearman,
            lr,
            seconds,
            seqs_per_sec: seen as f64 / seconds.max(1e-9),
            best: is_best,
            val_loss: None,
            val_jsd: None,
        };
        let weights = checkpoint(&mut inner, config, epoch + 1);
        let moments = self.optim.to_weight_map(&mut net);
        self.net = Some(net);
        state.batches_bytes = run.append("batches.csv", &log)?;
        crate::train::run_dir::crash_point("batches-logged");
        state.epochs_bytes = run.append(
            "epochs.jsonl",
            &format!("{}\n", serde_json::to_string(&record).expect("json")),
        )?;
        crate::train::run_dir::crash_point("epoch-logged");
        if is_best {
            state.best = Some((score, epoch + 1));
        }
        state.history.push(record.clone());
        state.epochs_done += 1;
        run.commit(state, &weights, &moments)?;
        plot::plot_curves(&state.history, &run.file("curves.svg"))?;
        observer.epoch_done(&record, recipe.epochs);
        Ok(record)
    }
}

/// Whether a run of `recipe` whose committed state is `state` is over: every epoch done, or
/// the last `patience` epochs without a better score than the best (early stopping).
pub fn run_finished(recipe: &Recipe, state: &TrainerState) -> bool {
    let stale = match (recipe.patience, state.best) {
        (Some(p), Some((_, best))) => state.epochs_done >= best + p,
        _ => false,
    };
    state.epochs_done >= recipe.epochs || stale
}

/// Why the Unlock_DNA trainer runs no other final block (SPEC_GRID §9.3).
pub const UNLOCK_TRAINER_NEEDS_ITS_FINAL: &str =
    "the Unlock_DNA trainer needs the Unlock_DNA final block (it reads its nucleotide logits)";
/// Why the Unlock_DNA final block runs under no other trainer (SPEC_GRID §9.3).
pub const UNLOCK_FINAL_NEEDS_ITS_TRAINER: &str = "the Unlock_DNA final block needs the Unlock_DNA trainer (the others validate on one prediction tensor)";

/// A trainer and a model that need each other (SPEC_GRID §9.1): the Unlock_DNA trainer
/// reads the Unlock_DNA final block's nucleotide logits and the Unlock_DNA data processor's
/// tokens; the other trainers validate on one prediction tensor.
fn check_trainer_fits(config: &TrainConfig) -> Result<()> {
    let unlock_trainer = config.recipe.trainer == TrainerKind::UnlockDna;
    let unlock_final = matches!(config.model.final_block, FinalConfig::UnlockDna(_));
    let tokens = config.model.input.channels.tokens;
    let why = match (unlock_trainer, unlock_final, tokens) {
        (true, false, _) => Some(UNLOCK_TRAINER_NEEDS_ITS_FINAL),
        (false, true, _) => Some(UNLOCK_FINAL_NEEDS_ITS_TRAINER),
        (true, true, false) => Some(
            "the Unlock_DNA trainer needs the Unlock_DNA data processor's input (channels = { tokens = true, … }, padding = { kind = \"unlock-dna\" })",
        ),
        _ => None,
    };
    match why {
        Some(why) => Err(Error::Config(format!(
            "incompatible model and trainer: {why}"
        ))),
        None => Ok(()),
    }
}

/// The keys in which two configs differ, as `key: stored A, given B`.
fn config_differences(
    stored: &TrainConfig,
    given: &TrainConfig,
) -> std::result::Result<(), String> {
    if stored == given {
        return Ok(());
    }
    fn flatten(
        prefix: &str,
        v: &toml::Value,
        out: &mut std::collections::BTreeMap<String, String>,
    ) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let table = |c: &TrainConfig| {
        let mut out = std::collections::BTreeMap::new();
        let v: toml::Value = toml::from_str(&c.to_toml()).expect("our own TOML parses");
        flatten("", &v, &mut out);
        out
    };
    let (a, b) = (table(stored), table(given));
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let none = "(unset)".to_string();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: stored {}, given {}",
                a.get(k).unwrap_or(&none),
                b.get(k).unwrap_or(&none)
            )
        })
        .collect();
    Err(if diffs.is_empty() {
        "the configs differ".into()
    } else {
        diffs.join("; ")
    })
}

fn write_manifest(
    run: &RunDir,
    config: &TrainConfig,
    data: &RunData,
    opts: &TrainOptions,
) -> Result<()> {
    let mut files = vec![config.data.train.clone()];
    files.extend(config.data.valid.clone());
    let data_files = files
        .iter()
        .map(|f| Ok((f.display().to_string(), run_dir::sha256_file(f)?)))
        .collect::<Result<Vec<_>>>()?;
    let manifest = Manifest {
        prixfixe_version: env!("CARGO_PKG_VERSION"),
        burn_version: "0.22.1",
        command_line: &opts.command_line,
        seed: config.recipe.seed,
        device: &config.recipe.device,
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        train_rows: data.train.len(),
        valid_rows: data.valid.len(),
        data_files,
        standardized_labels: data.label_scale,
    };
    run.write_atomic(
        "manifest.json",
        serde_json::to_string_pretty(&manifest)
            .expect("json")
            .as_bytes(),
    )
}

/// The device a run's config names, for callers that predict after training.
pub fn run_device(config: &TrainConfig) -> Result<Device> {
    parse_device(&config.recipe.device)
}
