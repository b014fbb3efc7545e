//! Hot kernels, so regressions show: `cargo bench --bench kernels`.
//!
//! - the CPU engine's convolutions (a 256 → 256, k = 9 convolution; the Autosome grouped k = 7
//!   convolution), its `exp`-based activation, and whole-model inference (DREAM-CNN and
//!   DREAM-RNN, batch 64 × 150);
//! - the same convolution in burn (forward);
//! - training kernels (forward + backward inside burn's autodiff graph, the path training uses
//!   on the CPU): a 256 → 256, k = 9 convolution and a BiLSTM 256 → 2 × 320, batch 64 × 150 —
//!   the two shapes issue 7 measured burn's own operations on — each with our kernels and with
//!   burn's operations; and a whole training step (forward + backward + AdamW) of DREAM-CNN and
//!   DREAM-RNN at batch 32.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use divan::Bencher;
use prixfixe::engine::Engine;
use prixfixe::kernels::{Conv, silu};
use prixfixe::nn::{BiLstm, ConvInit, conv1d};
use prixfixe::train::{AdamW, AdamWConfig};
use prixfixe::{DataKind, NetConfig};

fn main() {
    divan::main();
}

const LEN: usize = 150;

fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

fn conv(cin: usize, cout: usize, k: usize, groups: usize) -> Conv {
    Conv::new(
        values(cout * cin / groups * k),
        vec![0.1; cout],
        cin,
        cout,
        k,
        groups,
    )
}

#[divan::bench]
fn engine_conv_256_256_k9(b: Bencher) {
    let c = conv(256, 256, 9, 1);
    let x = values(256 * LEN);
    let mut out = vec![0.0; 256 * LEN];
    b.bench_local(|| c.apply(divan::black_box(&x), LEN, &mut out));
}

#[divan::bench]
fn engine_grouped_conv_512_k7(b: Bencher) {
    let c = conv(512, 512, 7, 256);
    let x = values(512 * LEN);
    let mut out = vec![0.0; 512 * LEN];
    b.bench_local(|| c.apply(divan::black_box(&x), LEN, &mut out));
}

#[divan::bench]
fn engine_silu_512x150(b: Bencher) {
    let x = values(512 * LEN);
    b.bench_local(|| {
        let mut y = x.clone();
        silu(divan::black_box(&mut y));
        y
    });
}

#[divan::bench]
fn burn_conv_256_256_k9_batch1(b: Bencher) {
    let device = Device::flex();
    let c = burn::nn::conv::Conv1dConfig::new(256, 256, 9)
        .with_padding(burn::nn::PaddingConfig1d::Same)
        .init(&device);
    let x = Tensor::<3>::random([1, 256, LEN], Distribution::Default, &device);
    b.bench_local(|| c.forward(x.clone()).into_data());
}

fn engine(model: &str) -> (Engine, usize) {
    let device = Device::flex();
    let config = NetConfig::preset(model, DataKind::Yeast).unwrap();
    let net = config.init(&device).unwrap();
    let fast = Engine::new(&config, &net).expect("every DREAM block has an engine twin");
    (fast, config.input.channels.count() * LEN)
}

#[divan::bench(args = ["dream-cnn", "dream-rnn", "dream-attn"], sample_count = 5, sample_size = 1)]
fn engine_inference_batch64(b: Bencher, model: &str) {
    let (fast, row) = engine(model);
    let x = values(64 * row);
    b.bench_local(|| fast.predict(divan::black_box(&x), 64));
}

/// Forward + backward of `f` at a `[64, cin, 150]` input on the CPU training backend.
fn train_kernel(b: Bencher, cin: usize, f: impl Fn(Tensor<3>) -> Tensor<3>) {
    let device = Device::flex().autodiff();
    let x = Tensor::<3>::random([64, cin, LEN], Distribution::Default, &device).require_grad();
    b.bench_local(|| {
        let y = f(x.clone());
        let grads = y.sum().backward();
        x.grad(&grads)
    });
}

#[divan::bench(args = ["ours", "burn"], sample_count = 5, sample_size = 1)]
fn train_conv_256_256_k9_batch64(b: Bencher, kernels: &str) {
    let device = Device::flex().autodiff();
    let c = conv1d(256, 256, 9, 1, true, ConvInit::Default, &device);
    match kernels {
        "ours" => train_kernel(b, 256, |x| c.forward(x)),
        _ => train_kernel(b, 256, |x| c.forward_ops(x)),
    }
}

#[divan::bench(args = ["ours", "burn"], sample_count = 3, sample_size = 1)]
fn train_bilstm_256_320_batch64(b: Bencher, kernels: &str) {
    let device = Device::flex().autodiff();
    let lstm = BiLstm::new(256, 320, &device);
    // The layer works on [batch, length, channels].
    match kernels {
        "ours" => train_kernel(b, 256, |x| lstm.forward(x.swap_dims(1, 2))),
        _ => train_kernel(b, 256, |x| lstm.forward_ops(x.swap_dims(1, 2))),
    }
}

#[divan::bench(args = ["dream-cnn", "dream-rnn"], sample_count = 3, sample_size = 1)]
fn train_step_batch32(b: Bencher, model: &str) {
    let device = Device::flex().autodiff();
    let config = NetConfig::preset(model, DataKind::Yeast).unwrap();
    let mut net = Some(config.init(&device).unwrap());
    let mut optim = AdamW::new(AdamWConfig::default());
    let x = Tensor::<3>::random([32, 6, LEN], Distribution::Default, &device);
    let y = Tensor::<2>::random([32, 18], Distribution::Default, &device);
    b.bench_local(|| {
        let n = net.take().unwrap();
        let out = n.forward(x.clone());
        let loss = n.final_block().loss(out.out, y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &n);
        net = Some(optim.step(1e-4, 0.9, n, grads));
    });
    let _ = net.map(|n| n.valid());
}
