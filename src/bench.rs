//! Speed and memory of a model, measured as the paper does (SPEC §7): parameter count,
//! training time per batch (forward + backward + AdamW step) as median and spread over
//! repetitions, and inference throughput (no gradients) with the batch doubled from 32 until a
//! limit, reporting the best rate. Peak memory is the process's high-water mark.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::Serialize;

use crate::error::Result;
use crate::net::NetConfig;
use crate::predict::{Model, Predictor};
use crate::train::{AdamW, AdamWConfig};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// Batch sizes for the training step.
    pub train_batches: Vec<usize>,
    /// Timed repetitions per training batch size (after one warm-up).
    pub reps: usize,
    /// Largest inference batch tried.
    pub max_infer_batch: usize,
    /// Stop doubling once one inference pass takes longer than this (seconds).
    pub max_infer_seconds: f64,
}

impl Default for BenchSpec {
    fn default() -> Self {
        BenchSpec {
            train_batches: vec![32, 64],
            reps: 5,
            max_infer_batch: 1024,
            max_infer_seconds: 20.0,
        }
    }
}

/// Training step timings at one batch size, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct TrainTiming {
    /// Batch size.
    pub batch: usize,
    /// Median over the repetitions.
    pub median_ms: f64,
    /// Fastest.
    pub min_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// Inference throughput at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct InferTiming {
    /// Batch size.
    pub batch: usize,
    /// Sequences per second.
    pub seqs_per_sec: f64,
}

/// A model's benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Trained parameters.
    pub params: usize,
    /// Input shape `(channels, length)`.
    pub input: (usize, usize),
    /// Per training batch size.
    pub train: Vec<TrainTiming>,
    /// Per inference batch size tried.
    pub inference: Vec<InferTiming>,
    /// The best inference rate.
    pub best_seqs_per_sec: f64,
    /// What ran inference: the prixfixe CPU engine or the burn network.
    pub engine: String,
    /// What ran training: our CPU kernels inside burn's autodiff graph, or burn's operations.
    pub training: String,
    /// The CPU's FP32 multiply-add peak on the benchmark's threads (GFLOP/s), when the device
    /// is the CPU: the ceiling for any implementation on this machine.
    pub cpu_peak_gflops: Option<f64>,
    /// Peak resident memory of the process, in MiB (Linux), if known.
    pub peak_rss_mib: Option<f64>,
    /// The same high-water mark read after the training steps, before inference.
    pub train_peak_rss_mib: Option<f64>,
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

use crate::eval::metrics::median;

/// Measure `config` on `device` (inputs are random one-hot-sized values; speed does not depend
/// on them).
pub fn bench(
    config: &NetConfig,
    device: &Device,
    spec: &BenchSpec,
    say: impl FnMut(&str),
) -> Result<BenchReport> {
    bench_with(config, None, device, spec, say)
}

/// [`bench()`] for a profile model over a frozen bias model (`bias`, ChromBPNet's Tn5 model), as
/// the ATAC task trains it: each training step and inference pass includes the bias model's
/// forward pass (no gradients) and the combination of the two outputs.
pub fn bench_with_bias(
    config: &NetConfig,
    bias: &NetConfig,
    device: &Device,
    spec: &BenchSpec,
    say: impl FnMut(&str),
) -> Result<BenchReport> {
    bench_with(config, Some(bias), device, spec, say)
}

fn bench_with(
    config: &NetConfig,
    bias: Option<&NetConfig>,
    device: &Device,
    spec: &BenchSpec,
    mut say: impl FnMut(&str),
) -> Result<BenchReport> {
    let shapes = config.check()?;
    let bias = match bias {
        Some(b) => {
            let s = b.check()?;
            if (s.input_channels, s.length) != (shapes.input_channels, shapes.length)
                || b.final_block.target_width() != config.final_block.target_width()
            {
                return Err(crate::Error::Config(
                    "the bias model's input or output differs from the model's".into(),
                ));
            }
            Some(b.init(device)?)
        }
        None => None,
    };
    let forward = |net: &crate::net::PrixFixeNet, x: Tensor<3>| {
        crate::atac::model::combined_forward(net, bias.as_ref(), x, device)
    };
    let (c, l) = (shapes.input_channels, shapes.length);
    let ad = device.clone().autodiff();
    let on_cpu = *device == Device::flex();
    let training = if on_cpu && crate::kernels::enabled() {
        "prixfixe CPU kernels"
    } else {
        "burn"
    };
    say(&format!("training: {training}"));
    let cpu_peak_gflops = on_cpu.then(|| crate::kernels::fma_peak_gflops(0.3));
    if let Some(p) = cpu_peak_gflops {
        say(&format!("CPU FP32 multiply-add peak: {p:.1} GFLOP/s"));
    }
    let mut net = config.init(&ad)?;
    let params = net.param_counts().total();
    let width = config.final_block.target_width();
    let mut optim = AdamW::new(AdamWConfig::default());
    let mut train = Vec::new();
    for &b in &spec.train_batches {
        let x = Tensor::<3>::random([b, c, l], Distribution::Default, &ad);
        // Whole numbers 0..=2: read counts for a profile head, as good as any for the others.
        let y = Tensor::<2>::random([b, width], Distribution::Uniform(0.0, 3.0), &ad).floor();
        let mut times = Vec::new();
        for rep in 0..=spec.reps {
            let t = Instant::now();
            let out = forward(&net, x.clone());
            let loss = net.final_block().loss(out, y.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(1e-4, 0.9, net, grads);
            // Wait for the device before stopping the clock (GPU backends run asynchronously).
            ad.sync()
                .map_err(|e| crate::Error::Other(format!("device: {e:?}")))?;
            if rep > 0 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let (min, max) = times
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        let med = median(&mut times);
        say(&format!(
            "train step, batch {b:>5}: median {med:>9.1} ms (min {min:.1}, max {max:.1})"
        ));
        train.push(TrainTiming {
            batch: b,
            median_ms: med,
            min_ms: min,
            max_ms: max,
        });
    }
    let train_peak_rss_mib = peak_rss_mib();
    if let Some(m) = train_peak_rss_mib {
        say(&format!("peak memory after training: {m:.0} MiB"));
    }
    // Inference as prediction runs it: through `Model`, so the CPU engine is used where it
    // covers the blocks (`PRIXFIXE_ENGINE=burn` measures the burn network instead).
    // With a bias model, the two models' combined output from the burn networks (the
    // prediction path has no profile models).
    let valid = net.valid();
    let model = match bias {
        Some(_) => None,
        None => Some(Model::new(config.clone(), valid.clone(), device.clone())?),
    };
    let engine = if model.as_ref().is_some_and(|m| m.uses_engine()) {
        "prixfixe CPU engine"
    } else {
        "burn"
    };
    say(&format!("inference engine: {engine}"));
    let infer = |x: Vec<f32>, b: usize| -> Result<()> {
        match &model {
            Some(m) => {
                std::hint::black_box(m.predict_encoded(x, b));
                Ok(())
            }
            None => {
                let x = Tensor::<3>::from_data(TensorData::new(x, [b, c, l]), device);
                let out = forward(&valid, x).into_data();
                std::hint::black_box(out);
                Ok(())
            }
        }
    };
    let mut inference = Vec::new();
    let mut b = 32;
    while b <= spec.max_infer_batch {
        // Random one-hot-sized inputs (speed does not depend on the values).
        let x: Vec<f32> = (0..b * c * l)
            .map(|i| ((i as u64).wrapping_mul(2_654_435_761) % 1000) as f32 / 1000.0)
            .collect();
        // One warm-up pass, then one timed pass; results come back to the host either way.
        infer(x.clone(), b)?;
        let t = Instant::now();
        infer(x, b)?;
        let secs = t.elapsed().as_secs_f64();
        let rate = b as f64 / secs;
        say(&format!("inference, batch {b:>5}: {rate:>9.1} seq/s"));
        inference.push(InferTiming {
            batch: b,
            seqs_per_sec: rate,
        });
        if secs > spec.max_infer_seconds {
            break;
        }
        b *= 2;
    }
    let best = inference.iter().map(|i| i.seqs_per_sec).fold(0.0, f64::max);
    Ok(BenchReport {
        params,
        input: (c, l),
        train,
        inference,
        best_seqs_per_sec: best,
        engine: engine.into(),
        training: training.into(),
        cpu_peak_gflops,
        peak_rss_mib: peak_rss_mib(),
        train_peak_rss_mib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataKind;
    use crate::blocks::core_layers::autosome::AutosomeCoreConfig;
    use crate::blocks::first_layers::bhi::BhiFirstConfig;
    use crate::blocks::{CoreConfig, FirstConfig};

    #[test]
    fn reports_every_figure_for_a_small_model() {
        let mut config = NetConfig::preset("dream-cnn", DataKind::Yeast).unwrap();
        config.first = FirstConfig::Bhi(BhiFirstConfig {
            out_channels: 8,
            ..Default::default()
        });
        config.core = CoreConfig::Autosome(AutosomeCoreConfig {
            widths: vec![8],
            ..Default::default()
        });
        let spec = BenchSpec {
            train_batches: vec![4, 8],
            reps: 2,
            max_infer_batch: 64,
            max_infer_seconds: 10.0,
        };
        let mut lines = 0;
        let r = bench(&config, &Device::flex(), &spec, |_| lines += 1).unwrap();
        assert_eq!(r.train.len(), 2);
        assert!(
            r.train
                .iter()
                .all(|t| t.min_ms > 0.0 && t.min_ms <= t.median_ms && t.median_ms <= t.max_ms)
        );
        assert_eq!(
            r.inference.iter().map(|i| i.batch).collect::<Vec<_>>(),
            vec![32, 64]
        );
        assert!(r.best_seqs_per_sec > 0.0);
        // the training-kernels and CPU-peak lines, two training lines, the memory line, the
        // engine line, two inference lines
        assert_eq!(lines, 8);
        assert_eq!(r.engine, "prixfixe CPU engine");
        assert_eq!(r.training, "prixfixe CPU kernels");
        assert!(r.cpu_peak_gflops.is_some_and(|p| p > 0.0));
        assert_eq!(r.input, (6, 150));
    }
}
