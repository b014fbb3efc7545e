//! Parity with a PyTorch implementation of the spec (fixtures made by
//! `tools/reference_models.py`; CI needs no Python).
//!
//! - Full-size DREAM models: weights set by a formula both sides compute exactly, so no
//!   multi-megabyte weight files are committed; outputs must agree to 1e-4.
//! - Small variants: weights drawn by torch, saved as `.pth` and `.safetensors`, read by our
//!   readers, outputs compared the same way.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use prixfixe::blocks::core_layers::autosome::AutosomeCoreConfig;
use prixfixe::blocks::core_layers::bhi::BhiCoreConfig;
use prixfixe::blocks::core_layers::unlock_dna::UnlockDnaConfig;
use prixfixe::blocks::first_layers::autosome::AutosomeFirstConfig;
use prixfixe::blocks::first_layers::bhi::BhiFirstConfig;
use prixfixe::blocks::{CoreConfig, FirstConfig};
use prixfixe::data::alphabet;
use prixfixe::data::{Encoder, RowFlags};
use prixfixe::net::InputConfig;
use prixfixe::weights::WeightMap;
use prixfixe::{DataKind, NetConfig, PrixFixeNet};
use serde::Deserialize;

const TOL: f32 = 1e-4;

#[derive(Deserialize)]
struct Row {
    read: String,
    is_reverse: bool,
    is_singleton: bool,
}

#[derive(Deserialize)]
struct Fixture {
    model: String,
    data: String,
    n_params: usize,
    input_shape: [usize; 3],
    rows: Vec<Row>,
    input: Vec<f32>,
    output: Vec<f32>,
    output_shape: [usize; 2],
    expression: Vec<f32>,
    /// BatchNorm running statistics calibrated on real rows (full-size fixtures).
    #[serde(default)]
    buffers: std::collections::BTreeMap<String, Vec<f32>>,
}

fn fixture(name: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// FNV-1a of the tensor name: the seed of its formula (as in the Python script).
fn fnv1a(name: &str) -> u32 {
    name.bytes().fold(0x811C_9DC5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

fn formula(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let seed = fnv1a(name) as u64;
    (0..n as u64)
        .map(|j| {
            let k = ((seed + j * 2_654_435_761) & 0xFFFF_FFFF) >> 8;
            let u = k as f32 / (1u32 << 24) as f32 - 0.5;
            if name.ends_with("running_var") {
                u + 1.0
            } else if shape.len() >= 2 {
                let fan_in = n / shape[0];
                u * (2.0 * (3.0 / fan_in as f64).sqrt()) as f32
            } else if name.ends_with("weight") {
                u * 0.5 + 1.0
            } else {
                u * 0.2
            }
        })
        .collect()
}

/// Formula weights, with the fixture's calibrated BatchNorm statistics.
fn set_formula_weights(net: &mut PrixFixeNet, f: &Fixture, device: &Device) {
    let mut map = WeightMap::from_model(net, "");
    for (name, t) in map.tensors.iter_mut() {
        t.data = match f.buffers.get(name) {
            Some(values) => values.clone(),
            None => formula(name, &t.shape),
        };
    }
    map.apply_to(net, "", device).unwrap();
}

fn data_kind(f: &Fixture) -> DataKind {
    DataKind::parse(&f.data).unwrap()
}

/// Our encoder must give the same input planes the Python script built from the same rows.
fn check_encoding(f: &Fixture, input: &InputConfig) {
    let enc: Encoder = input.encoder().unwrap();
    let row_len = enc.row_len();
    for (i, row) in f.rows.iter().enumerate() {
        let codes = alphabet::encode(row.read.as_bytes()).unwrap();
        // Yeast rows marked reverse were reverse-complemented by the script; the others are
        // given in their orientation and only flagged.
        let flip = row.is_reverse && f.data == "yeast";
        let flags = RowFlags {
            is_reverse: row.is_reverse,
            is_singleton: row.is_singleton,
        };
        let mut out = vec![0f32; row_len];
        enc.encode_row(&codes, flip, flags, &mut Vec::new(), &mut out)
            .unwrap();
        assert_eq!(
            out,
            f.input[i * row_len..(i + 1) * row_len],
            "row {i} of {}",
            f.model
        );
    }
}

/// `max |a[i] − b[i]|`.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

fn assert_close(what: &str, ours: &[f32], theirs: &[f32], rows: usize) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    // Outputs that did not depend on the input would make this test weak: require variation
    // across rows well above the tolerance.
    assert!(
        spread_across_rows(theirs, rows) > 10.0 * TOL,
        "{what}: fixture outputs barely vary"
    );
    let worst = max_abs_diff(ours, theirs);
    assert!(
        worst < TOL,
        "{what}: max |diff| = {worst:e} (tolerance {TOL:e})"
    );
    eprintln!("{what}: max |diff| = {worst:e}");
}

/// Largest difference between the first row's values and any other row's: 0 when the
/// output ignores the input. Rows are compared value by value at the same offset.
fn spread_across_rows(values: &[f32], rows: usize) -> f32 {
    let per_row = values.len() / rows;
    values
        .chunks(per_row)
        .skip(1)
        .flat_map(|row| {
            row.iter()
                .zip(&values[..per_row])
                .map(|(a, b)| (a - b).abs())
        })
        .fold(0f32, f32::max)
}

fn run(net: &PrixFixeNet, f: &Fixture, device: &Device) -> (Vec<f32>, Vec<f32>) {
    let x = Tensor::<3>::from_data(TensorData::new(f.input.clone(), f.input_shape), device);
    let out = net.forward(x).out;
    assert_eq!(out.dims(), f.output_shape);
    let expr = net.final_block().decode(out.clone());
    let v = prixfixe::weights::tensor_values::<2>;
    (v(out), v(expr))
}

fn check_full(name: &str) {
    let f = fixture(name);
    let device = Device::flex();
    let config = NetConfig::preset(&f.model, data_kind(&f)).unwrap();
    check_encoding(&f, &config.input);
    let mut net = config.init(&device).unwrap();
    assert_eq!(net.param_counts().total(), f.n_params);
    set_formula_weights(&mut net, &f, &device);
    let (out, expr) = run(&net, &f, &device);
    assert_close(&format!("{name} outputs"), &out, &f.output, f.rows.len());
    assert_close(
        &format!("{name} expression"),
        &expr,
        &f.expression,
        f.rows.len(),
    );
    // Prediction through `Model` runs on the CPU inference engine: the same values.
    use prixfixe::predict::{Model, Predictor};
    let model = Model::new(config, net, device).unwrap();
    assert!(model.uses_engine(), "{name}");
    let p = model.predict_encoded(f.input.clone(), f.rows.len());
    assert_close(
        &format!("{name} expression, CPU engine"),
        &p,
        &f.expression,
        f.rows.len(),
    );
}

#[test]
fn dream_cnn_yeast_matches_pytorch() {
    check_full("parity_dream-cnn_yeast.json");
}

#[test]
fn dream_rnn_yeast_matches_pytorch() {
    check_full("parity_dream-rnn_yeast.json");
}

#[test]
fn dream_attn_yeast_matches_pytorch() {
    check_full("parity_dream-attn_yeast.json");
}

#[test]
fn dream_cnn_drosophila_regression_matches_pytorch() {
    check_full("parity_dream-cnn_drosophila.json");
}

#[test]
fn dream_attn_human_regression_matches_pytorch() {
    check_full("parity_dream-attn_human.json");
}

/// The small variants of `tools/reference_models.py` (`tiny=True`).
fn tiny_config(model: &str) -> NetConfig {
    let mut c = NetConfig::preset(model, DataKind::Yeast).unwrap();
    match model {
        "dream-cnn" => {
            c.first = FirstConfig::Bhi(BhiFirstConfig {
                out_channels: 16,
                ..Default::default()
            });
            c.core = CoreConfig::Autosome(AutosomeCoreConfig {
                widths: vec![8, 8, 4],
                ..Default::default()
            });
        }
        "dream-rnn" => {
            c.first = FirstConfig::Bhi(BhiFirstConfig {
                out_channels: 16,
                ..Default::default()
            });
            c.core = CoreConfig::Bhi(BhiCoreConfig {
                hidden: 8,
                out_channels: 16,
                ..Default::default()
            });
        }
        "dream-attn" => {
            c.first = FirstConfig::Autosome(AutosomeFirstConfig {
                out_channels: 16,
                kernel: 7,
            });
            c.core = CoreConfig::UnlockDna(UnlockDnaConfig {
                d: 16,
                layers: 2,
                ff: 32,
                ..Default::default()
            });
        }
        _ => unreachable!(),
    }
    c
}

fn check_tiny(model: &str, ext: &str) {
    let f = fixture(&format!("tiny_{model}.json"));
    let device = Device::flex();
    let mut net = tiny_config(model).init(&device).unwrap();
    assert_eq!(net.param_counts().total(), f.n_params);
    let map = WeightMap::read(&fixture_path(&format!("tiny_{model}.{ext}"))).unwrap();
    map.apply_to(&mut net, "", &device).unwrap();
    let (out, expr) = run(&net, &f, &device);
    assert_close(
        &format!("tiny {model} ({ext}) logits"),
        &out,
        &f.output,
        f.rows.len(),
    );
    assert_close(
        &format!("tiny {model} ({ext}) expression"),
        &expr,
        &f.expression,
        f.rows.len(),
    );
}

#[test]
fn pytorch_pth_files_load() {
    for model in ["dream-cnn", "dream-rnn", "dream-attn"] {
        check_tiny(model, "pth");
    }
}

#[test]
fn safetensors_files_load() {
    for model in ["dream-cnn", "dream-rnn", "dream-attn"] {
        check_tiny(model, "safetensors");
    }
}

#[test]
fn our_safetensors_round_trip() {
    let device = Device::flex();
    let config = tiny_config("dream-attn");
    let mut a = config.init(&device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let mut map = WeightMap::from_model(&mut a, "");
    map.metadata.insert("config".into(), config.to_toml());
    map.write_safetensors(&path).unwrap();
    let back = WeightMap::read(&path).unwrap();
    assert_eq!(back.metadata["config"], config.to_toml());
    let mut b = config.init(&device).unwrap();
    back.apply_to(&mut b, "", &device).unwrap();
    assert_eq!(WeightMap::from_model(&mut b, "").tensors, map.tensors);
}

#[test]
fn weights_of_another_model_are_refused_with_names() {
    let device = Device::flex();
    let map = WeightMap::read(&fixture_path("tiny_dream-cnn.safetensors")).unwrap();
    let mut net = tiny_config("dream-rnn").init(&device).unwrap();
    let e = map.apply_to(&mut net, "", &device).unwrap_err().to_string();
    assert!(e.contains("missing tensor core.lstm.weight_ih_l0"), "{e}");
    assert!(e.contains("does not have"), "{e}");
    let mut wide = NetConfig::preset("dream-cnn", DataKind::Yeast)
        .unwrap()
        .init(&device)
        .unwrap();
    let e = map
        .apply_to(&mut wide, "", &device)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "first.conv_list.0.conv.weight has shape [8, 6, 9], this model needs [160, 6, 9]"
        ),
        "{e}"
    );
}

#[test]
fn not_a_weight_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.pth");
    std::fs::write(&path, b"hello, not weights").unwrap();
    let e = WeightMap::read(&path).unwrap_err().to_string();
    assert!(
        e.contains("w.pth")
            && e.contains("neither a safetensors file")
            && e.contains("nor a PyTorch checkpoint"),
        "{e}"
    );
}

#[test]
fn predict_averages_forward_and_reverse_complement_with_singleton_zero() {
    use prixfixe::data::SeqDataset;
    use prixfixe::predict::{Model, Predictor};
    let device = Device::flex();
    let model = Model::from_weights(
        tiny_config("dream-attn"),
        &fixture_path("tiny_dream-attn.safetensors"),
        &device,
    )
    .unwrap();
    let f = fixture("tiny_dream-attn.json");
    let mut ds = SeqDataset::default();
    for row in f.rows.iter().take(3) {
        ds.seqs.push_letters(row.read.as_bytes()).unwrap();
        ds.is_reverse.push(false);
        // A singleton flag in the data must not reach the model at prediction.
        ds.is_singleton.push(true);
        ds.lines.push(1);
    }
    let preds = model
        .predict(std::sync::Arc::new(ds.clone()), 2, |_| {})
        .unwrap();
    let enc = model.encoder();
    for (i, &pred) in preds.iter().enumerate() {
        let mut both = vec![0f32; 2 * enc.row_len()];
        let (fwd, rev) = both.split_at_mut(enc.row_len());
        let codes = ds.seqs.get(i);
        let flags = |r| RowFlags {
            is_reverse: r,
            is_singleton: false,
        };
        enc.encode_row(codes, false, flags(false), &mut Vec::new(), fwd)
            .unwrap();
        enc.encode_row(codes, true, flags(true), &mut Vec::new(), rev)
            .unwrap();
        let p = model.predict_encoded(both, 2);
        let want = (p[0] + p[1]) / 2.0;
        assert!((pred - want).abs() < 1e-5, "row {i}: {pred} vs {want}");
        assert!(
            (p[0] - p[1]).abs() > 1e-6,
            "forward and reverse should differ"
        );
    }
}

/// Gradients of `sum(output · probe)` in training mode (BatchNorm on batch statistics, dropout
/// off), from `tools/grad_fixtures.py`.
#[derive(Deserialize)]
struct GradFixture {
    input_shape: [usize; 3],
    input: Vec<f32>,
    output_shape: [usize; 2],
    output: Vec<f32>,
    grads: std::collections::BTreeMap<String, Vec<f32>>,
}

/// Collects every parameter's gradient under its reference name, in PyTorch's layout.
struct GradCollector<'a> {
    grads: &'a burn::tensor::Gradients,
    out: std::collections::BTreeMap<String, Vec<f32>>,
}

impl prixfixe::nn::WeightVisitor for GradCollector<'_> {
    fn param<const D: usize>(&mut self, name: &str, p: &mut burn::module::Param<Tensor<D>>) {
        if let Some(g) = p.val().grad(self.grads) {
            self.out
                .insert(name.into(), g.into_data().try_into_vec().unwrap());
        }
    }
    fn linear_weight(&mut self, name: &str, p: &mut burn::module::Param<Tensor<2>>) {
        if let Some(g) = p.val().grad(self.grads) {
            let g = g.transpose(); // burn keeps [in, out]
            self.out
                .insert(name.into(), g.into_data().try_into_vec().unwrap());
        }
    }
    fn running(&mut self, _: &str, _: &mut burn::module::RunningState<Tensor<1>>) {}
}

/// Training runs on our own forward/backward kernels on the CPU (src/ops/): every
/// parameter's gradient must match PyTorch's.
#[test]
fn training_gradients_match_pytorch() {
    use prixfixe::nn::NamedWeights;
    let device = Device::flex().autodiff();
    for model in ["dream-cnn", "dream-rnn", "dream-attn"] {
        let f: GradFixture = serde_json::from_str(
            &std::fs::read_to_string(fixture_path(&format!("grad_{model}.json"))).unwrap(),
        )
        .unwrap();
        let mut config = tiny_config(model);
        if let FirstConfig::Bhi(c) = &mut config.first {
            c.dropout = 0.0;
        }
        match &mut config.core {
            CoreConfig::Bhi(c) => (c.dropout, c.final_dropout) = (0.0, 0.0),
            CoreConfig::UnlockDna(c) => c.dropout = 0.0,
            _ => {}
        }
        let mut net: PrixFixeNet = config.init(&device).unwrap();
        let map = WeightMap::read(&fixture_path(&format!("tiny_{model}.safetensors"))).unwrap();
        map.apply_to(&mut net, "", &device).unwrap();
        let x = Tensor::<3>::from_data(TensorData::new(f.input.clone(), f.input_shape), &device);
        let out = net.forward(x).out;
        let n = f.output.len();
        let probe: Vec<f32> = (0..n).map(|i| (0.7 * i as f32 + 0.3).sin()).collect();
        let probe = Tensor::<2>::from_data(TensorData::new(probe, f.output_shape), &device);
        let got: Vec<f32> = out.clone().into_data().try_into_vec().unwrap();
        let worst = got
            .iter()
            .zip(&f.output)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            worst < TOL,
            "{model}: training-mode output differs by {worst}"
        );
        let grads = (out * probe).sum().backward();
        let mut collect = GradCollector {
            grads: &grads,
            out: Default::default(),
        };
        net.visit_weights("", &mut collect);
        assert_eq!(
            collect.out.keys().collect::<Vec<_>>(),
            f.grads.keys().collect::<Vec<_>>(),
            "{model}: parameters with gradients"
        );
        for (name, want) in &f.grads {
            let got = &collect.out[name];
            assert_eq!(got.len(), want.len(), "{model} {name}");
            let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
            let worst = max_abs_diff(got, want);
            assert!(
                worst <= 1e-4 * scale,
                "{model} {name}: max |ours − PyTorch| {worst} (largest gradient {scale})"
            );
        }
    }
}

/// One block alone at a small size, from `tools/block_fixtures.py`: output, input gradient and
/// every parameter's gradient of `sum(output · probe)`, and a final block's loss.
#[derive(Deserialize)]
struct BlockFixture {
    slot: String,
    config: serde_json::Value,
    input_shape: [usize; 3],
    input: Vec<f32>,
    output: Vec<f32>,
    input_grad: Vec<f32>,
    weights: std::collections::BTreeMap<String, FixtureTensor>,
    grads: std::collections::BTreeMap<String, Vec<f32>>,
    n_params: usize,
    #[serde(default)]
    target: Vec<f32>,
    /// The target's shape, where it is not the output's.
    #[serde(default)]
    target_shape: Option<Vec<usize>>,
    #[serde(default)]
    loss: Option<f32>,
    /// The loss's gradient with respect to the input.
    #[serde(default)]
    loss_input_grad: Vec<f32>,
}

#[derive(Deserialize)]
struct FixtureTensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// `|ours − PyTorch| ≤ 1e-5 · max(1, |largest value|)`, element by element.
fn assert_close_scaled(what: &str, ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let scale = theirs.iter().fold(1f32, |m, v| m.max(v.abs()));
    let worst = max_abs_diff(ours, theirs);
    assert!(
        worst <= 1e-5 * scale,
        "{what}: max |ours − PyTorch| {worst} (largest value {scale})"
    );
}

/// The blocks added for the Prix Fixe grid, each alone against PyTorch.
#[test]
fn grid_blocks_match_pytorch() {
    use prixfixe::blocks::FinalConfig;
    use prixfixe::nn::NamedWeights;
    let device = Device::flex().autodiff();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("block_")
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 3, "block fixtures: {cases:?}");
    for path in cases {
        let case = path.file_stem().unwrap().to_str().unwrap().to_string();
        let f: BlockFixture =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let map = WeightMap {
            tensors: f
                .weights
                .iter()
                .map(|(k, t)| {
                    let (shape, data) = (t.shape.clone(), t.data.clone());
                    (k.clone(), prixfixe::weights::WeightTensor { shape, data })
                })
                .collect(),
            metadata: Default::default(),
        };
        let [_, cin, len] = f.input_shape;
        let x = Tensor::<3>::from_data(TensorData::new(f.input.clone(), f.input_shape), &device)
            .require_grad();
        // In f64, as Python computes it: in f32, 0.7 · i loses digits past a few hundred.
        let probe = |n: usize| {
            (0..n)
                .map(|i| (0.7 * i as f64 + 0.3).sin() as f32)
                .collect::<Vec<_>>()
        };
        let collect = |block: &mut dyn FnMut(&mut GradCollector), grads| {
            let mut c = GradCollector {
                grads,
                out: Default::default(),
            };
            block(&mut c);
            c.out
        };
        let (out, ours, grads, counted) = match f.slot.as_str() {
            "first" => {
                let config: FirstConfig = serde_json::from_value(f.config.clone()).unwrap();
                let mut block = config.init(cin, len, &device);
                map.apply_to(&mut block, "first", &device).unwrap();
                let out = block.forward(x.clone()).x;
                let dims = out.dims();
                let p = Tensor::<3>::from_data(
                    TensorData::new(probe(out.shape().num_elements()), dims),
                    &device,
                );
                let grads = (out.clone() * p).sum().backward();
                let ours = collect(&mut |c| block.visit_weights("first", c), &grads);
                (
                    vals(out),
                    ours,
                    grads,
                    prixfixe::weights::count_params(&mut block),
                )
            }
            "final" => {
                let config: FinalConfig = serde_json::from_value(f.config.clone()).unwrap();
                let mut block = config.init(cin, len, &device);
                map.apply_to(&mut block, "final", &device).unwrap();
                let out = block.forward(x.clone());
                let dims = out.dims();
                if let Some(want) = f.loss {
                    // A 1-D target is one value per row, the output's shape.
                    let shape = match f.target_shape.as_deref() {
                        Some(&[rows, width]) => [rows, width],
                        _ => dims,
                    };
                    let y =
                        Tensor::<2>::from_data(TensorData::new(f.target.clone(), shape), &device);
                    let loss: f32 = block.loss(out.clone(), y.clone()).into_scalar();
                    assert!(
                        (loss - want).abs() <= 1e-5 * want.abs().max(1.0),
                        "{case}: loss {loss} vs {want}"
                    );
                    if !f.loss_input_grad.is_empty() {
                        let x2 = Tensor::<3>::from_data(
                            TensorData::new(f.input.clone(), f.input_shape),
                            &device,
                        )
                        .require_grad();
                        let g = block.loss(block.forward(x2.clone()), y).backward();
                        let dx: Vec<f32> = x2.grad(&g).unwrap().into_data().try_into_vec().unwrap();
                        assert_close_scaled(
                            &format!("{case}: loss input gradient"),
                            &dx,
                            &f.loss_input_grad,
                        );
                    }
                }
                let p = Tensor::<2>::from_data(
                    TensorData::new(probe(out.shape().num_elements()), dims),
                    &device,
                );
                let grads = (out.clone() * p).sum().backward();
                let ours = collect(&mut |c| block.visit_weights("final", c), &grads);
                (
                    vals(out),
                    ours,
                    grads,
                    prixfixe::weights::count_params(&mut block),
                )
            }
            other => panic!("{case}: unknown slot {other}"),
        };
        assert_eq!(counted, f.n_params, "{case}: parameter count");
        assert_close_scaled(&format!("{case}: output"), &out, &f.output);
        let dx: Vec<f32> = x.grad(&grads).unwrap().into_data().try_into_vec().unwrap();
        assert_close_scaled(&format!("{case}: input gradient"), &dx, &f.input_grad);
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            f.grads.keys().collect::<Vec<_>>(),
            "{case}: parameters with gradients"
        );
        for (name, want) in &f.grads {
            assert_close_scaled(&format!("{case}: {name} gradient"), &ours[name], want);
        }
    }
}

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec().unwrap()
}

/// A Keras baseline at a small width, from `tools/baseline_fixtures.py`.
#[derive(Deserialize)]
struct BaselineFixture {
    model: String,
    config: serde_json::Value,
    seqs: Vec<String>,
    input_shape: [usize; 3],
    input: Vec<f32>,
    weights: std::collections::BTreeMap<String, FixtureTensor>,
    output_shape: [usize; 2],
    output: Vec<f32>,
    input_grad: Vec<f32>,
    grads: std::collections::BTreeMap<String, Vec<f32>>,
    target: Vec<f32>,
    loss: f32,
    running_after_step: std::collections::BTreeMap<String, Vec<f32>>,
    eval_output: Vec<f32>,
    n_params: usize,
}

/// DeepSTARR and MPRAnn with Keras semantics against PyTorch ports of the spec: the encoding
/// (A, C, G, T, `N` as zeros), training-mode outputs, input and parameter gradients, the
/// loss, BatchNorm's running statistics after one step (momentum 0.01, eps 1e-3) and the
/// evaluation-mode outputs.
#[test]
fn baselines_match_pytorch() {
    use burn::module::Module;
    use prixfixe::nn::NamedWeights;
    let device = Device::flex().autodiff();
    for (name, data) in [
        ("deepstarr", DataKind::Drosophila),
        ("mprann", DataKind::Human),
    ] {
        let f: BaselineFixture = serde_json::from_str(
            &std::fs::read_to_string(fixture_path(&format!("baseline_{name}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(f.model, name);
        let mut config = NetConfig::preset(name, data).unwrap();
        config.first = serde_json::from_value(f.config["first"].clone()).unwrap();
        config.core = serde_json::from_value(f.config["core"].clone()).unwrap();
        config.final_block = serde_json::from_value(f.config["final"].clone()).unwrap();

        // The encoding: the fixture's rows are our encoder's.
        let enc = config.input.encoder().unwrap();
        let mut encoded = vec![0.0; f.input.len()];
        for (s, out) in f.seqs.iter().zip(encoded.chunks_mut(enc.row_len())) {
            let codes = alphabet::encode(s.as_bytes()).unwrap();
            enc.encode_row(&codes, false, RowFlags::default(), &mut Vec::new(), out)
                .unwrap();
        }
        assert_eq!(encoded, f.input, "{name}: encoding");

        let mut net: PrixFixeNet = config.init(&device).unwrap();
        assert_eq!(net.param_counts().total(), f.n_params, "{name}: parameters");
        let map = WeightMap {
            tensors: f
                .weights
                .iter()
                .map(|(k, t)| {
                    let (shape, data) = (t.shape.clone(), t.data.clone());
                    (k.clone(), prixfixe::weights::WeightTensor { shape, data })
                })
                .collect(),
            metadata: Default::default(),
        };
        map.apply_to(&mut net, "", &device).unwrap();
        let x = Tensor::<3>::from_data(TensorData::new(f.input.clone(), f.input_shape), &device)
            .require_grad();
        let out = net.forward(x.clone()).out;
        assert_close_scaled(&format!("{name} output"), &vals(out.clone()), &f.output);
        let target =
            Tensor::<2>::from_data(TensorData::new(f.target.clone(), f.output_shape), &device);
        let loss = net.final_block().loss(out.clone(), target);
        let loss: f32 = loss.into_scalar();
        assert!(
            (loss - f.loss).abs() <= 1e-5 * f.loss.abs().max(1.0),
            "{name}: loss {loss} vs {}",
            f.loss
        );
        let probe: Vec<f32> = (0..f.output.len())
            .map(|i| (0.7 * i as f64 + 0.3).sin() as f32)
            .collect();
        let probe = Tensor::<2>::from_data(TensorData::new(probe, f.output_shape), &device);
        let grads = (out * probe).sum().backward();
        let input_grad: Vec<f32> = x.grad(&grads).unwrap().into_data().try_into_vec().unwrap();
        assert_close_scaled(
            &format!("{name} input gradient"),
            &input_grad,
            &f.input_grad,
        );
        let mut collect = GradCollector {
            grads: &grads,
            out: Default::default(),
        };
        net.visit_weights("", &mut collect);
        assert_eq!(
            collect.out.keys().collect::<Vec<_>>(),
            f.grads.keys().collect::<Vec<_>>(),
            "{name}: parameters with gradients"
        );
        for (k, want) in &f.grads {
            assert_close_scaled(&format!("{name} gradient of {k}"), &collect.out[k], want);
        }
        // Running statistics after the one training step.
        let after = WeightMap::from_model(&mut net, "");
        for (k, want) in &f.running_after_step {
            assert_close_scaled(&format!("{name} {k}"), &after.tensors[k].data, want);
        }
        // Evaluation mode: the running statistics, no dropout.
        let eval = net.valid();
        let x = Tensor::<3>::from_data(
            TensorData::new(f.input.clone(), f.input_shape),
            &Device::flex(),
        );
        let got = vals(eval.forward(x).out);
        assert_close_scaled(&format!("{name} evaluation output"), &got, &f.eval_output);
    }
}

#[derive(Deserialize)]
struct AtacFixture {
    length: usize,
    profile_length: usize,
    counts_weight: f64,
    main: AtacWidths,
    bias: AtacWidths,
    seqs: Vec<String>,
    input: Vec<f32>,
    counts: Vec<f32>,
    main_weights: std::collections::BTreeMap<String, FixtureTensor>,
    bias_weights: std::collections::BTreeMap<String, FixtureTensor>,
    output: Vec<f32>,
    nll: f32,
    mse: f32,
    loss: f32,
    input_grad: Vec<f32>,
    grads: std::collections::BTreeMap<String, Vec<f32>>,
}

#[derive(Deserialize)]
struct AtacWidths {
    filters: usize,
    layers: usize,
}

fn weight_map(w: &std::collections::BTreeMap<String, FixtureTensor>) -> WeightMap {
    WeightMap {
        tensors: w
            .iter()
            .map(|(k, t)| {
                let (shape, data) = (t.shape.clone(), t.data.clone());
                (k.clone(), prixfixe::weights::WeightTensor { shape, data })
            })
            .collect(),
        metadata: Default::default(),
    }
}

/// ChromBPNet's tower, profile head, frozen-bias combination and loss against an independent
/// PyTorch port (`tools/atac_fixtures.py`, with torch's own Multinomial): the encoding, the
/// combined output, the NLL and log-count MSE, and the gradients of the total loss with
/// respect to the input and every accessibility parameter.
#[test]
fn atac_models_match_pytorch() {
    use prixfixe::atac::model::{self, combined_forward};
    use prixfixe::blocks::final_layers::profile::{ProfileConfig, profile_loss_parts};
    use prixfixe::blocks::first_layers::bpnet::BpnetFirstConfig;
    use prixfixe::blocks::{FinalConfig, core_layers::bpnet::BpnetCoreConfig};
    use prixfixe::nn::NamedWeights;
    let f: AtacFixture =
        serde_json::from_str(&std::fs::read_to_string(fixture_path("atac_bpnet.json")).unwrap())
            .unwrap();
    let config = |w: &AtacWidths| NetConfig {
        tasks: Vec::new(),
        input: InputConfig {
            padding: prixfixe::data::Padding::exact(f.length),
            ..model::input()
        },
        first: FirstConfig::Bpnet(BpnetFirstConfig {
            filters: w.filters,
            ..Default::default()
        }),
        core: CoreConfig::Bpnet(BpnetCoreConfig {
            layers: w.layers,
            ..Default::default()
        }),
        final_block: FinalConfig::Profile(ProfileConfig {
            profile_length: f.profile_length,
            counts_weight: f.counts_weight,
            ..Default::default()
        }),
    };
    // The encoding: A, C, G, T, N as zeros.
    let mut encoded = vec![0f32; f.input.len()];
    for (s, plane) in f.seqs.iter().zip(encoded.chunks_mut(4 * f.length)) {
        let codes = alphabet::encode(s.as_bytes()).unwrap();
        prixfixe::atac::regions::encode_window(&codes, false, plane);
    }
    assert_eq!(encoded, f.input, "encoding");

    let plain = Device::flex();
    let ad = plain.clone().autodiff();
    let mut main = config(&f.main).init(&ad).unwrap();
    weight_map(&f.main_weights)
        .apply_to(&mut main, "", &ad)
        .unwrap();
    let mut bias = config(&f.bias).init(&plain).unwrap();
    weight_map(&f.bias_weights)
        .apply_to(&mut bias, "", &plain)
        .unwrap();
    let b = f.seqs.len();
    let x = Tensor::<3>::from_data(TensorData::new(f.input.clone(), [b, 4, f.length]), &ad)
        .require_grad();
    let out = combined_forward(&main, Some(&bias), x.clone(), &plain);
    assert_close_scaled("combined output", &vals(out.clone()), &f.output);
    let counts = Tensor::<2>::from_data(
        TensorData::new(f.counts.clone(), [b, f.profile_length]),
        &ad,
    );
    let (nll, mse) = profile_loss_parts(out, counts);
    let loss = nll.clone() + mse.clone().mul_scalar(f.counts_weight);
    for (what, ours, theirs) in [
        ("nll", vals(nll)[0], f.nll),
        ("mse", vals(mse)[0], f.mse),
        ("loss", vals(loss.clone())[0], f.loss),
    ] {
        assert!(
            (ours - theirs).abs() <= 1e-5 * theirs.abs().max(1.0),
            "{what}: {ours} vs {theirs}"
        );
    }
    let grads = loss.backward();
    let input_grad = vals(x.grad(&grads).unwrap());
    assert_close_scaled("input gradient", &input_grad, &f.input_grad);
    let mut collect = GradCollector {
        grads: &grads,
        out: Default::default(),
    };
    main.visit_weights("", &mut collect);
    assert_eq!(
        collect.out.keys().collect::<Vec<_>>(),
        f.grads.keys().collect::<Vec<_>>(),
        "parameters with gradients"
    );
    for (k, want) in &f.grads {
        assert_close_scaled(&format!("gradient of {k}"), &collect.out[k], want);
    }
}
