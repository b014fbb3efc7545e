//! `train --task atac` (SPEC_BENCHMARKS §5.4–5.7, §5.10): the Tn5 bias model on low-count
//! non-peaks, its counts adjustment, then an accessibility model trained through the frozen
//! bias model, then the test chromosomes scored and written as tracks.
//!
//! The output directory:
//!
//! - `regions.bin`, `regions.json`: the cut regions (reused by a later run on the same files);
//! - `task.json`: the inputs, models and recipe;
//! - `bias/`: the bias model's run (`best.safetensors`, logs, checkpoints), unless a trained
//!   one was given;
//! - `<model>/`: the accessibility model's run; `bias.safetensors` (the adjusted frozen bias
//!   model it was trained with), `plan.json` (regions, thresholds, counts weight, δ), and after
//!   training `test_predictions.tsv`, `metrics.json` and `predicted.bw`.
//!
//! Each run commits an epoch at a time like every prixfixe run: killed, `--resume` continues
//! from the last committed epoch.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::inputs::{Split, write_bigwig};
use super::metrics::{GroupMetrics, profile_jsd};
use super::model::{self, INPUT_LENGTH, PROFILE_LENGTH};
use super::regions::{self, Item, Kind, Plan, Regions, Sources};
use crate::blocks::final_layers::profile::profile_loss_parts;
use crate::error::{Error, Result};
use crate::net::{NetConfig, PrixFixeNet};
use crate::predict::{CONFIG_KEY, VERSION_KEY};
use crate::train::TrainObserver;
use crate::train::optim::{AdamW, AdamWConfig};
use crate::train::run_dir::{EpochRecord, RunDir, TrainerState};
use crate::train::schedule::{Schedule, WarmupCosine};
use crate::weights::WeightMap;

/// How a model of the task is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtacRecipe {
    /// Most epochs.
    pub epochs: usize,
    /// Examples per batch.
    pub batch_size: usize,
    /// The learning rate (the peak of the warm-up/cosine schedule).
    pub lr: f64,
    /// Linear warm-up over 30% of the steps, then cosine (DREAM); a constant rate otherwise
    /// (ChromBPNet).
    pub warmup_cosine: bool,
    /// Stop after this many epochs without a lower validation loss.
    pub patience: Option<usize>,
    /// Batches per epoch at most (all where `None`).
    pub batch_per_epoch: Option<usize>,
    /// Seed of the weights, the sampling and the dropout.
    pub seed: u64,
}

impl AtacRecipe {
    /// ChromBPNet's (and the bias model's): Adam at a constant 0.001, batch 64, up to 50
    /// epochs, patience 5, seed 1234 (§5.7).
    pub fn chrombpnet() -> Self {
        AtacRecipe {
            epochs: 50,
            batch_size: 64,
            lr: 1e-3,
            warmup_cosine: false,
            patience: Some(5),
            batch_per_epoch: None,
            seed: 1234,
        }
    }

    /// The DREAM models': Adam, warm-up to 5e-4 then cosine, batch 64, up to 80 epochs,
    /// patience 20 (§5.10).
    pub fn dream() -> Self {
        AtacRecipe {
            epochs: 80,
            lr: 5e-4,
            warmup_cosine: true,
            patience: Some(20),
            ..Self::chrombpnet()
        }
    }

    /// The recipe of an accessibility model by name.
    pub fn for_model(name: &str) -> Self {
        if name == "chrombpnet" {
            Self::chrombpnet()
        } else {
            Self::dream()
        }
    }
}

/// The whole task: inputs, models and recipes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtacTask {
    /// The input files.
    pub sources: Sources,
    /// The accessibility model's name (its directory).
    pub name: String,
    /// The accessibility model (its counts weight is set from the data).
    pub model: NetConfig,
    /// Its recipe.
    pub recipe: AtacRecipe,
    /// A trained bias model (a prixfixe checkpoint) to use instead of training one.
    pub bias_model: Option<PathBuf>,
    /// The bias model to train.
    pub bias: NetConfig,
    /// Its recipe.
    pub bias_recipe: AtacRecipe,
    /// Bias-model non-peaks: totals below this × the 1% quantile of the peaks' (0.5 for ATAC).
    pub bias_fraction: f64,
}

impl AtacTask {
    /// The part models in one directory share (inputs, bias model) and this model's own part,
    /// as JSON.
    pub fn parts(&self) -> (serde_json::Value, serde_json::Value) {
        let mut shared = serde_json::to_value(self).expect("json");
        let map = shared.as_object_mut().expect("an object");
        let mut own = serde_json::Map::new();
        for key in ["name", "model", "recipe"] {
            if let Some(v) = map.remove(key) {
                own.insert(key.into(), v);
            }
        }
        (shared, serde_json::Value::Object(own))
    }

    /// ChromBPNet's defaults for `name` on `sources`.
    pub fn new(sources: Sources, name: &str) -> Result<Self> {
        Ok(AtacTask {
            sources,
            name: name.to_string(),
            model: model::preset(name, 1.0)?,
            recipe: AtacRecipe::for_model(name),
            bias_model: None,
            bias: model::bias_preset(1.0),
            bias_recipe: AtacRecipe::chrombpnet(),
            bias_fraction: 0.5,
        })
    }
}

/// Recipe values given on the command line; `None` keeps the recipe's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AtacOverrides {
    /// Most epochs of the accessibility model.
    pub epochs: Option<usize>,
    /// Most epochs of the bias model.
    pub bias_epochs: Option<usize>,
    /// Examples per batch (both models).
    pub batch_size: Option<usize>,
    /// Batches per epoch at most (both models).
    pub batch_per_epoch: Option<usize>,
    /// Early-stopping patience (both models).
    pub patience: Option<usize>,
    /// Seed (both models).
    pub seed: Option<u64>,
    /// The accessibility model's (peak) learning rate.
    pub lr: Option<f64>,
}

impl AtacTask {
    /// Set the given recipe values; zero batches or epochs are refused.
    pub fn apply(&mut self, o: &AtacOverrides) -> Result<()> {
        for r in [&mut self.recipe, &mut self.bias_recipe] {
            r.batch_size = o.batch_size.unwrap_or(r.batch_size);
            r.batch_per_epoch = o.batch_per_epoch.or(r.batch_per_epoch);
            r.seed = o.seed.unwrap_or(r.seed);
            r.patience = o.patience.or(r.patience);
        }
        self.recipe.epochs = o.epochs.unwrap_or(self.recipe.epochs);
        self.bias_recipe.epochs = o.bias_epochs.unwrap_or(self.bias_recipe.epochs);
        self.recipe.lr = o.lr.unwrap_or(self.recipe.lr);
        if self.recipe.batch_size == 0 || self.recipe.epochs == 0 || self.bias_recipe.epochs == 0 {
            return Err(Error::Config(
                "--batch-size, --epochs and --bias-epochs must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// What the accessibility model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// Training peaks.
    pub train_peaks: usize,
    /// Training non-peak pool (capped at the peaks).
    pub train_nonpeaks: usize,
    /// Non-peaks drawn per epoch.
    pub nonpeaks_per_epoch: Option<usize>,
    /// Validation regions.
    pub valid: usize,
    /// Outlier thresholds on total counts.
    pub thresholds: (f64, f64),
    /// The counts loss weight.
    pub counts_weight: f64,
    /// The bias model's counts adjustment δ.
    pub bias_shift: Option<f64>,
    /// Regions left out: windows off their chromosome, chromosomes in no fold.
    pub dropped: regions::Dropped,
}

/// The end of a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AtacSummary {
    /// Test metrics per group (`peaks`, `nonpeaks`, `all`).
    pub test: Vec<(String, GroupMetrics)>,
    /// On a simulated genome: the truth's figures on the same regions (the ceiling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<Vec<(String, GroupMetrics)>>,
    /// The accessibility model's best epoch.
    pub best_epoch: Option<usize>,
    /// The bias model's best epoch (when it was trained here).
    pub bias_best_epoch: Option<usize>,
    /// The plan.
    pub plan: PlanSummary,
}

/// Train and score the task in `out`.
pub fn train_atac(
    task: &AtacTask,
    out: &Path,
    resume: bool,
    force: bool,
    observer: &mut dyn TrainObserver,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Result<AtacSummary> {
    // The directory's shared part (inputs and bias model) in `task.json`; each accessibility
    // model's own part in `<model>/model.json`. Several models trained in one directory share
    // its regions and its bias model, as ChromBPNet's models share one bias model per fold.
    let (shared, own) = task.parts();
    let run = out.join(&task.name);
    for (file, part, what) in [
        (out.join("task.json"), &shared, "its inputs or bias model"),
        (
            run.join("model.json"),
            &own,
            "this model's config or recipe",
        ),
    ] {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let stored: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::Other(format!("{}: {e}", file.display())))?;
            if !force && stored != *part {
                return Err(Error::Config(format!(
                    "{}: the task stored there differs in {what}; use another directory or \
                     --force",
                    file.display()
                )));
            }
        }
    }
    std::fs::create_dir_all(&run).map_err(|e| Error::io(&run, e))?;
    let regions = Regions::open_or_extract(&task.sources, out)?;
    crate::output::write_atomic(
        &out.join("task.json"),
        serde_json::to_string_pretty(&shared)
            .expect("json")
            .as_bytes(),
    )?;
    crate::output::write_atomic(
        &run.join("model.json"),
        serde_json::to_string_pretty(&own).expect("json").as_bytes(),
    )?;
    let device = Device::flex();

    // The bias model: given, or trained on low-count non-peaks.
    let (mut bias_net, bias_config, bias_best_epoch) = match &task.bias_model {
        Some(path) => {
            let m = crate::predict::Model::from_checkpoint(path, &device)?;
            if model::counts_weight(&m.config).is_none() {
                return Err(Error::Config(format!(
                    "{}: not a profile model (its head is not ChromBPNet's)",
                    path.display()
                )));
            }
            let config = m.config.clone();
            (m.into_net(), config, None)
        }
        None => {
            let plan = regions::bias_plan(&regions, task.bias_fraction);
            if plan.train_nonpeaks.is_empty() || plan.valid.is_empty() {
                return Err(Error::Config(format!(
                    "no non-peaks to train the bias model on: it takes training and validation \
                     non-peaks with fewer insertions than {} × the peaks' 1% quantile ({} and {} \
                     found)",
                    task.bias_fraction,
                    plan.train_nonpeaks.len(),
                    plan.valid.len()
                )));
            }
            let config = model::with_counts_weight(task.bias.clone(), plan.counts_weight);
            let phase = Phase {
                config: &config,
                recipe: &task.bias_recipe,
                plan: &plan,
                jitter: false,
                bias: None,
            };
            // The shared bias model: continued or reused when its directory holds it (a
            // changed bias config is refused there), trained otherwise.
            let dir = out.join("bias");
            let held = holds_run(&dir);
            let (net, best) = train_phase(
                &phase,
                &regions,
                &dir,
                resume || held,
                force && !held,
                observer,
                stop,
            )?;
            (net, config, best)
        }
    };

    // The accessibility model through the frozen, adjusted bias model.
    let plan = regions::accessibility_plan(&regions, task.recipe.seed);
    if plan.train_peaks.is_empty() || plan.valid.is_empty() {
        return Err(Error::Config(format!(
            "the folds leave {} training peaks and {} validation regions; both are needed",
            plan.train_peaks.len(),
            plan.valid.len()
        )));
    }
    let shift = {
        let nonpeaks: Vec<usize> = plan
            .train_nonpeaks
            .iter()
            .chain(
                plan.valid
                    .iter()
                    .filter(|&&i| regions.index[i].kind == Kind::Nonpeak),
            )
            .copied()
            .collect();
        let pred =
            predict_log_counts(&bias_net, None, &regions, &nonpeaks, task.recipe.batch_size)?;
        let delta = nonpeaks
            .iter()
            .zip(&pred)
            .map(|(&i, p)| (1.0 + regions.index[i].total).ln() - p)
            .sum::<f64>()
            / nonpeaks.len().max(1) as f64;
        model::shift_log_counts(&mut bias_net, delta, &device)?;
        delta
    };
    let mut map = WeightMap::from_model(&mut bias_net, "");
    map.metadata
        .insert(CONFIG_KEY.into(), bias_config.to_toml());
    map.metadata
        .insert(VERSION_KEY.into(), env!("CARGO_PKG_VERSION").into());
    map.metadata
        .insert("counts_shift".into(), shift.to_string());
    map.write_safetensors(&run.join("bias.safetensors"))?;
    let summary = PlanSummary {
        train_peaks: plan.train_peaks.len(),
        train_nonpeaks: plan.train_nonpeaks.len(),
        nonpeaks_per_epoch: plan.nonpeaks_per_epoch,
        valid: plan.valid.len(),
        thresholds: plan.thresholds,
        counts_weight: plan.counts_weight,
        bias_shift: Some(shift),
        dropped: regions.dropped.clone(),
    };
    crate::output::write_atomic(
        &run.join("plan.json"),
        serde_json::to_string_pretty(&summary)
            .expect("json")
            .as_bytes(),
    )?;
    let config = model::with_counts_weight(task.model.clone(), plan.counts_weight);
    let phase = Phase {
        config: &config,
        recipe: &task.recipe,
        plan: &plan,
        jitter: true,
        bias: Some(&bias_net),
    };
    let (main, best_epoch) = train_phase(&phase, &regions, &run, resume, force, observer, stop)?;

    // Every test-chromosome region, unfiltered, no jitter or turning (§5.7).
    let test: Vec<usize> = (0..regions.index.len())
        .filter(|&i| regions.index[i].split == Split::Test)
        .collect();
    let groups = if test.is_empty() {
        Vec::new()
    } else {
        score_and_write(
            &main,
            &bias_net,
            &regions,
            &test,
            task.recipe.batch_size,
            &run,
        )?
    };
    // On a simulated genome, the truth's own figures on the same regions: the ceiling.
    let truth = match super::sim::report_beside(&task.sources.genome) {
        Some(report) if !test.is_empty() => {
            Some(super::sim::truth_groups(&report, &regions, &test)?)
        }
        _ => None,
    };
    let result = AtacSummary {
        test: groups,
        truth,
        best_epoch,
        bias_best_epoch,
        plan: summary,
    };
    crate::output::write_atomic(
        &run.join("metrics.json"),
        serde_json::to_string_pretty(&result)
            .expect("json")
            .as_bytes(),
    )?;
    Ok(result)
}

/// One model's training: its config, recipe, regions and (for an accessibility model) the
/// frozen bias model.
struct Phase<'a> {
    config: &'a NetConfig,
    recipe: &'a AtacRecipe,
    plan: &'a Plan,
    jitter: bool,
    bias: Option<&'a PrixFixeNet>,
}

/// Whether `dir` holds a run, committed or begun.
pub fn holds_run(dir: &Path) -> bool {
    dir.join("state.json").exists() || dir.join("config.toml").exists()
}

/// Whether a run's committed state ends it: all epochs, or `patience` without a better one.
fn phase_done(recipe: &AtacRecipe, state: &TrainerState) -> bool {
    let stale = match (recipe.patience, state.best) {
        (Some(p), Some((_, best))) => state.epochs_done >= best + p,
        _ => false,
    };
    state.epochs_done >= recipe.epochs || stale
}

/// Train one model in `dir`, resuming its committed epochs, and return its best weights
/// (on the inference device) and best epoch.
fn train_phase(
    phase: &Phase,
    regions: &Regions,
    dir: &Path,
    resume: bool,
    force: bool,
    observer: &mut dyn TrainObserver,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Result<(PrixFixeNet, Option<usize>)> {
    let device = Device::flex();
    let ad = device.clone().autodiff();
    let recipe = phase.recipe;
    // A run killed before its first commit has its config and no state: resumed, it starts.
    let (run, state) = RunDir::open(dir, resume && holds_run(dir), force)?;
    let config_path = run.file("config.toml");
    match &state {
        Some(_) => {
            let stored =
                std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
            if NetConfig::from_toml(&stored)? != *phase.config {
                return Err(Error::Config(format!(
                    "{}: the stored model differs from this one (another counts weight or \
                     model); start again with --force",
                    config_path.display()
                )));
            }
        }
        None => run.write_atomic("config.toml", phase.config.to_toml().as_bytes())?,
    }
    run.restore_logs(state.as_ref())?;
    let adam = AdamWConfig {
        weight_decay: 0.0,
        beta2: 0.999,
        eps: 1e-7,
    };
    let mut net = phase.config.init_seeded(&ad, recipe.seed)?;
    let mut optim = AdamW::new(adam);
    let mut state = match state {
        Some(s) => {
            let (last, moments) = run.restore(&s)?;
            last.apply_to(&mut net, "", &ad)?;
            optim = AdamW::load_weight_map(adam, &moments, &mut net, &ad);
            s
        }
        None => TrainerState::fresh(),
    };
    let per_epoch = {
        let n = regions::epoch_items(phase.plan, recipe.seed, 0, phase.jitter).len();
        let b = n.div_ceil(recipe.batch_size);
        recipe.batch_per_epoch.map_or(b, |m| b.min(m))
    };
    let schedule = if recipe.warmup_cosine {
        Schedule::WarmupCosine(WarmupCosine {
            max_lr: recipe.lr,
            total_steps: per_epoch * recipe.epochs,
        })
    } else {
        Schedule::Constant(recipe.lr)
    };
    let weight = model::counts_weight(phase.config).unwrap_or(1.0);
    while !phase_done(recipe, &state) {
        let epoch = state.epochs_done;
        let dropout_seed = recipe
            .seed
            .wrapping_mul(0x9E37_79B9)
            .wrapping_add(epoch as u64 + 1);
        ad.seed(dropout_seed);
        let mut items = regions::epoch_items(phase.plan, recipe.seed, epoch, phase.jitter);
        items.truncate(per_epoch * recipe.batch_size);
        observer.epoch_started(epoch + 1, recipe.epochs, per_epoch);
        let started = Instant::now();
        let (mut loss_sum, mut seen, mut lr) = (0.0, 0usize, 0.0);
        let mut log = String::new();
        for (i, chunk) in items.chunks(recipe.batch_size).enumerate() {
            let batch = regions::batch(regions, chunk)?;
            let (x, counts) = tensors(&batch, &ad);
            lr = schedule.at(state.step).0;
            let seed = dropout_seed ^ state.step as u64;
            let out = crate::ops::with_dropout_stream(seed, || {
                model::combined_forward(&net, phase.bias, x, &device)
            });
            let (nll, mse) = profile_loss_parts(out, counts);
            let loss = nll + mse.mul_scalar(weight);
            let value = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                return Err(Error::Diverged {
                    epoch: epoch + 1,
                    batch: i + 1,
                    value,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(lr, 0.9, net, grads);
            loss_sum += value * batch.n as f64;
            seen += batch.n;
            log.push_str(&format!(
                "{},{},{},{value:.6},{lr:.6e},0.9\n",
                state.step,
                epoch + 1,
                i + 1
            ));
            state.step += 1;
            observer.batch_done(
                loss_sum / seen as f64,
                seen as f64 / started.elapsed().as_secs_f64().max(1e-9),
            );
            if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                return Err(Error::Stopped {
                    epochs_done: state.epochs_done,
                });
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let valid_net = net.valid();
        let v = validate(
            &valid_net,
            phase.bias,
            regions,
            &phase.plan.valid,
            recipe.batch_size,
            weight,
        )?;
        let score = if v.loss.is_finite() {
            -v.loss
        } else {
            f64::MIN
        };
        let is_best = state.best.is_none_or(|(b, _)| score > b);
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            val_mse: v.counts.counts_mse,
            val_pearson: v.counts.counts_pearson,
            val_spearman: v.counts.counts_spearman,
            lr,
            seconds,
            seqs_per_sec: seen as f64 / seconds.max(1e-9),
            best: is_best,
            val_loss: Some(v.loss),
            val_jsd: Some(v.counts.profile_median_jsd).filter(|j| j.is_finite()),
        };
        let mut inner = valid_net;
        let mut weights = WeightMap::from_model(&mut inner, "");
        weights
            .metadata
            .insert(CONFIG_KEY.into(), phase.config.to_toml());
        weights
            .metadata
            .insert(VERSION_KEY.into(), env!("CARGO_PKG_VERSION").into());
        weights
            .metadata
            .insert("epoch".into(), (epoch + 1).to_string());
        let moments = optim.to_weight_map(&mut net);
        state.batches_bytes = run.append("batches.csv", &log)?;
        state.epochs_bytes = run.append(
            "epochs.jsonl",
            &format!("{}\n", serde_json::to_string(&record).expect("json")),
        )?;
        if is_best {
            state.best = Some((score, epoch + 1));
        }
        state.history.push(record.clone());
        state.epochs_done += 1;
        run.commit(&state, &weights, &moments)?;
        crate::train::plot::plot_curves(&state.history, &run.file("curves.svg"))?;
        observer.epoch_done(&record, recipe.epochs);
    }
    let best = crate::predict::Model::from_checkpoint(&run.file("best.safetensors"), &device)?;
    Ok((best.into_net(), state.best.map(|b| b.1)))
}

/// The batch's tensors on `device`: one-hot `(n, 4, L)` and counts `(n, P)`.
fn tensors(b: &regions::Batch, device: &Device) -> (Tensor<3>, Tensor<2>) {
    let x = Tensor::<3>::from_data(TensorData::new(b.x.clone(), [b.n, 4, INPUT_LENGTH]), device);
    let c = Tensor::<2>::from_data(
        TensorData::new(b.counts.clone(), [b.n, PROFILE_LENGTH]),
        device,
    );
    (x, c)
}

/// The validation figures of a model on `items`.
struct Validation {
    loss: f64,
    counts: GroupMetrics,
}

fn validate(
    net: &PrixFixeNet,
    bias: Option<&PrixFixeNet>,
    regions: &Regions,
    valid: &[usize],
    batch_size: usize,
    weight: f64,
) -> Result<Validation> {
    let mut loss = 0.0;
    let (mut t, mut p, mut j, mut nj) = (vec![], vec![], vec![], vec![]);
    forward_batches(net, bias, regions, valid, batch_size, |_, b, out| {
        let counts = Tensor::<2>::from_data(
            TensorData::new(b.counts.clone(), [b.n, PROFILE_LENGTH]),
            &Device::flex(),
        );
        let (nll, mse) = profile_loss_parts(out.clone(), counts);
        let l = nll.into_scalar::<f32>() as f64 + weight * mse.into_scalar::<f32>() as f64;
        loss += l * b.n as f64;
        for (k, row) in host(out).chunks(PROFILE_LENGTH + 1).enumerate() {
            let c = &b.counts[k * PROFILE_LENGTH..(k + 1) * PROFILE_LENGTH];
            let (jsd, norm) = profile_jsd(c, &row[..PROFILE_LENGTH]);
            t.push((1.0 + c.iter().map(|&v| v as f64).sum::<f64>()).ln());
            p.push(row[PROFILE_LENGTH] as f64);
            j.push(jsd);
            nj.push(norm);
        }
        Ok(())
    })?;
    Ok(Validation {
        loss: loss / valid.len().max(1) as f64,
        counts: GroupMetrics::of(&t, &p, &j, &nj),
    })
}

/// The model (combined with `bias` if given) on `regions[idx]`, a batch at a time, centred,
/// forward strand: `f(region indices, batch, output (n, P + 1))` per batch.
fn forward_batches(
    net: &PrixFixeNet,
    bias: Option<&PrixFixeNet>,
    regions: &Regions,
    idx: &[usize],
    batch_size: usize,
    mut f: impl FnMut(&[usize], &regions::Batch, Tensor<2>) -> Result<()>,
) -> Result<()> {
    let device = Device::flex();
    for chunk in idx.chunks(batch_size) {
        let items: Vec<Item> = chunk.iter().map(|&i| Item::plain(i)).collect();
        let b = regions::batch(regions, &items)?;
        let (x, _) = tensors(&b, &device);
        f(chunk, &b, model::combined_forward(net, bias, x, &device))?;
    }
    Ok(())
}

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32")
}

/// The log counts a model (combined with `bias` if given) predicts for `regions[idx]`.
fn predict_log_counts(
    net: &PrixFixeNet,
    bias: Option<&PrixFixeNet>,
    regions: &Regions,
    idx: &[usize],
    batch_size: usize,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(idx.len());
    forward_batches(net, bias, regions, idx, batch_size, |_, _, o| {
        out.extend(
            host(o)
                .chunks(PROFILE_LENGTH + 1)
                .map(|r| r[PROFILE_LENGTH] as f64),
        );
        Ok(())
    })?;
    Ok(out)
}

/// Score the combined model on `test` regions; write `test_predictions.tsv` and the
/// predicted insertions over each region's central 1,000 nt as `predicted.bw`
/// (`softmax(logits) × exp(log counts)`, as ChromBPNet's tracks; where windows overlap, the
/// earlier region's values stand).
fn score_and_write(
    main: &PrixFixeNet,
    bias: &PrixFixeNet,
    regions: &Regions,
    test: &[usize],
    batch_size: usize,
    dir: &Path,
) -> Result<Vec<(String, GroupMetrics)>> {
    let mut tsv = crate::output::AtomicFile::create(&dir.join("test_predictions.tsv"))?;
    tsv.put(b"chrom\tcentre\tkind\tline\tlog_counts\tpredicted_log_counts\tjsd\tnorm_jsd\n")?;
    let mut rows: Vec<Scored> = Vec::new();
    let mut track: Vec<(String, u32, u32, f32)> = Vec::new();
    forward_batches(
        main,
        Some(bias),
        regions,
        test,
        batch_size,
        |chunk, b, out| {
            for (k, row) in host(out).chunks(PROFILE_LENGTH + 1).enumerate() {
                let r = &regions.index[chunk[k]];
                let c = &b.counts[k * PROFILE_LENGTH..(k + 1) * PROFILE_LENGTH];
                let (jsd, norm) = profile_jsd(c, &row[..PROFILE_LENGTH]);
                let truth = (1.0 + c.iter().map(|&v| v as f64).sum::<f64>()).ln();
                let pred = row[PROFILE_LENGTH] as f64;
                tsv.put(
                    format!(
                        "{}\t{}\t{}\t{}\t{truth:.6}\t{pred:.6}\t{jsd:.6}\t{norm:.6}\n",
                        r.chrom,
                        r.centre,
                        match r.kind {
                            Kind::Peak => "peak",
                            Kind::Nonpeak => "nonpeak",
                        },
                        r.line
                    )
                    .as_bytes(),
                )?;
                rows.push((r.kind, truth, pred, jsd, norm));
                let probs = super::metrics::softmax(&row[..PROFILE_LENGTH]);
                let total = pred.exp();
                let start = r.centre - (PROFILE_LENGTH / 2) as u64;
                for (j, q) in probs.iter().enumerate() {
                    let pos = (start + j as u64) as u32;
                    track.push((r.chrom.clone(), pos, pos + 1, (q * total) as f32));
                }
            }
            Ok(())
        },
    )?;
    tsv.commit()?;
    let groups = group_metrics(&rows);
    // Sorted by chromosome (genome order) and position; overlapping windows keep the first.
    let genome = crate::data::genome::Genome::open(&regions_genome(regions))?;
    let order: std::collections::HashMap<&str, usize> = genome
        .names()
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    track.sort_by_key(|(c, s, _, _)| (order.get(c.as_str()).copied().unwrap_or(usize::MAX), *s));
    track.dedup_by(|b, a| a.0 == b.0 && a.1 == b.1);
    write_bigwig(
        &dir.join("predicted.bw"),
        &genome.sizes(),
        track.into_iter(),
    )?;
    Ok(groups)
}

/// A scored test region: kind, measured and predicted log counts, JSD, normalised JSD.
pub(crate) type Scored = (Kind, f64, f64, f64, f64);

/// The figures of scored regions per group: peaks, non-peaks and all.
pub(crate) fn group_metrics(rows: &[Scored]) -> Vec<(String, GroupMetrics)> {
    let group = |keep: &dyn Fn(Kind) -> bool| {
        let sel: Vec<&Scored> = rows.iter().filter(|r| keep(r.0)).collect();
        let col = |f: fn(&Scored) -> f64| -> Vec<f64> { sel.iter().map(|r| f(r)).collect() };
        GroupMetrics::of(&col(|r| r.1), &col(|r| r.2), &col(|r| r.3), &col(|r| r.4))
    };
    vec![
        ("peaks".to_string(), group(&|k| k == Kind::Peak)),
        ("nonpeaks".to_string(), group(&|k| k == Kind::Nonpeak)),
        ("all".to_string(), group(&|_| true)),
    ]
}

fn regions_genome(r: &Regions) -> PathBuf {
    r.sources().genome.clone()
}
