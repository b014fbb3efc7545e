//! `prixfixe._prixfixe`: the Rust engine behind the Python package. A thin layer: sequences in
//! as strings, results out as little-endian `f32` bytes that the Python side views as NumPy
//! arrays; every call releases the GIL while the engine runs.

use std::path::PathBuf;

use prixfixe::data::alphabet;
use prixfixe::interpret::{AttributeOptions, Method};
use prixfixe::predict::{Model as RustModel, Predictor, predict_codes};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

fn runtime(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

fn bytes<'py>(py: Python<'py>, v: &[f32]) -> Bound<'py, PyBytes> {
    let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    PyBytes::new(py, &raw)
}

/// An engine error: a config problem as `ValueError`, anything else as `RuntimeError`.
fn engine(e: prixfixe::Error) -> PyErr {
    match e {
        prixfixe::Error::Config(m) => PyValueError::new_err(m),
        e => runtime(e),
    }
}

/// Sequences (A, C, G, T, N; any case) as base codes; an error names the sequence and column.
fn codes(seqs: &[String]) -> PyResult<Vec<Vec<u8>>> {
    seqs.iter()
        .enumerate()
        .map(|(i, s)| {
            alphabet::encode(s.as_bytes()).map_err(|(at, c)| {
                PyValueError::new_err(format!(
                    "sequence {} has {c:?} at position {}: only A, C, G, T and N are read",
                    i + 1,
                    at + 1
                ))
            })
        })
        .collect()
}

/// A model config with its defaults filled in, and the channels and length at each block
/// boundary, as JSON: what the PyTorch twin (`prixfixe.torch`) is built from.
fn config_json(config: &prixfixe::NetConfig, parameters: usize) -> PyResult<String> {
    let s = config
        .check()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let value = serde_json::json!({
        "config": config,
        "columns": config.columns(),
        "parameters": parameters,
        "shapes": {
            "input_channels": s.input_channels,
            "length": s.length,
            "first_channels": s.first_channels,
            "first_length": s.first_length,
            "core_channels": s.core_channels,
            "core_length": s.core_length,
        },
    });
    Ok(value.to_string())
}

/// `config_json` of a model config given as TOML, with its parameter count.
#[pyfunction]
fn model_config(toml: &str) -> PyResult<String> {
    let config =
        prixfixe::NetConfig::from_toml(toml).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let device = prixfixe::device::parse_device("cpu").map_err(runtime)?;
    let mut net = config.init(&device).map_err(runtime)?;
    config_json(&config, net.param_counts().total())
}

/// A trained model on the CPU engine.
#[pyclass(module = "prixfixe._prixfixe", frozen)]
struct Model {
    inner: RustModel,
    /// An ATAC profile model: `ism` and `attribute` explain its log counts on its own (the
    /// bias-free accessibility model); `predict` is refused, since its predictions combine it
    /// with the bias model it was trained with.
    profile: bool,
}

#[pymethods]
impl Model {
    /// Load a run directory of `prixfixe train` (its `checkpoint`.safetensors) or a prixfixe
    /// checkpoint file; or, with `config` (a model TOML), weights from elsewhere (.pth, .pt,
    /// .safetensors).
    #[new]
    #[pyo3(signature = (path, checkpoint = "best", config = None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        checkpoint: &str,
        config: Option<String>,
    ) -> PyResult<Self> {
        let device = prixfixe::device::parse_device("cpu").map_err(runtime)?;
        let inner = py
            .allow_threads(|| match &config {
                None if path.is_dir() => RustModel::from_run_dir(&path, checkpoint, &device),
                None => RustModel::from_checkpoint(&path, &device),
                Some(text) => prixfixe::NetConfig::from_toml(text)
                    .and_then(|c| RustModel::from_weights(c, &path, &device)),
            })
            .map_err(engine)?;
        let profile = prixfixe::atac::model::counts_weight(&inner.config).is_some();
        Ok(Model { inner, profile })
    }

    /// The prediction columns (task names).
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.inner.columns()
    }

    /// The model's input length (sequences are padded or must fit it).
    #[getter]
    fn length(&self) -> usize {
        self.inner.encoder().length()
    }

    /// The model config, TOML.
    #[getter]
    fn config(&self) -> String {
        self.inner.config.to_toml()
    }

    /// The config with its defaults and the block shapes, JSON (see `config_json`).
    #[getter]
    fn layout(&self) -> PyResult<String> {
        config_json(
            &self.inner.config,
            self.inner.net().clone().param_counts().total(),
        )
    }

    /// Every tensor under its reference name (the PyTorch state dict's): `(name, shape,
    /// f32 bytes)`, BatchNorm running statistics included.
    fn weights<'py>(&self, py: Python<'py>) -> Vec<(String, Vec<usize>, Bound<'py, PyBytes>)> {
        let mut net = self.inner.net().clone();
        let map = prixfixe::weights::WeightMap::from_model(&mut net, "");
        map.tensors
            .into_iter()
            .map(|(name, t)| (name, t.shape, bytes(py, &t.data)))
            .collect()
    }

    /// The input planes of each sequence, `(N, planes, L)` as `f32` bytes, with `planes` (4:
    /// A, C, G, T; 6 for Unlock_DNA tokens): what the PyTorch twin takes.
    fn planes<'py>(
        &self,
        py: Python<'py>,
        seqs: Vec<String>,
    ) -> PyResult<(usize, Bound<'py, PyBytes>)> {
        let c = codes(&seqs)?;
        let (planes, x) = py
            .allow_threads(|| prixfixe::interpret::input_planes(&self.inner, &c))
            .map_err(engine)?;
        Ok((planes, bytes(py, &x)))
    }

    /// Predictions `(N × tasks)` as `f32` bytes.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        seqs: Vec<String>,
        batch_size: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        if self.profile {
            return Err(PyValueError::new_err(
                prixfixe::atac::model::PREDICTION_NEEDS_BIAS,
            ));
        }
        let c = codes(&seqs)?;
        let out = py
            .allow_threads(|| {
                let refs: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
                predict_codes(&self.inner, &refs, batch_size)
            })
            .map_err(runtime)?;
        Ok(bytes(py, &out))
    }

    /// ISM effects per sequence, each `(4 (A, C, G, T), length, tasks)` as `f32` bytes, with
    /// the reference predictions `(N × tasks)`.
    fn ism<'py>(
        &self,
        py: Python<'py>,
        seqs: Vec<String>,
        batch_size: usize,
    ) -> PyResult<(Vec<Bound<'py, PyBytes>>, Bound<'py, PyBytes>)> {
        let c = codes(&seqs)?;
        let maps = py
            .allow_threads(|| prixfixe::interpret::ism(&self.inner, &c, batch_size))
            .map_err(runtime)?;
        let mut effects = Vec::new();
        let mut reference = Vec::new();
        for m in &maps {
            let mut v = Vec::with_capacity(m.effects.len());
            // codes A=0 G=1 C=2 T=3 → A, C, G, T
            for b in [0u8, 2, 1, 3] {
                for p in 0..m.seq.len() {
                    for t in 0..m.tasks {
                        v.push(m.effect(p, b, t));
                    }
                }
            }
            effects.push(bytes(py, &v));
            reference.extend_from_slice(&m.reference);
        }
        Ok((effects, bytes(py, &reference)))
    }

    /// Attributions: `(onehot, values, predictions, references)`, the first two `(N, 4, L)`
    /// as `f32` bytes, references NaN where the method has none.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (seqs, method, task, steps, shuffles, seed, batch_size))]
    fn attribute<'py>(
        &self,
        py: Python<'py>,
        seqs: Vec<String>,
        method: &str,
        task: usize,
        steps: Option<usize>,
        shuffles: usize,
        seed: u64,
        batch_size: usize,
    ) -> PyResult<[Bound<'py, PyBytes>; 4]> {
        // The command line's names (`input-x-gradient`), or Python's (`input_x_gradient`).
        let method = Method::from_name(&method.replace('_', "-")).ok_or_else(|| {
            let names: Vec<String> = Method::ALL
                .iter()
                .map(|m| m.name().replace('-', "_"))
                .collect();
            PyValueError::new_err(format!("method {method:?}: one of {}", names.join(", ")))
        })?;
        let mut opts = AttributeOptions::new(method);
        opts.task = task;
        opts.shuffles = shuffles;
        opts.seed = seed;
        if let Some(s) = steps {
            opts.steps = s;
        }
        let c = codes(&seqs)?;
        let out = py
            .allow_threads(|| prixfixe::interpret::attribute(&[&self.inner], &c, &opts, batch_size))
            .map_err(runtime)?;
        let (mut oh, mut va, mut pr, mut re) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for a in out {
            oh.extend(a.onehot);
            va.extend(a.values);
            pr.push(a.prediction);
            re.push(a.reference.unwrap_or(f32::NAN));
        }
        Ok([
            bytes(py, &oh),
            bytes(py, &va),
            bytes(py, &pr),
            bytes(py, &re),
        ])
    }
}

/// The DREAM score of `predictions` as JSON: against `measured` (the `all` subset only), or
/// against a test file and its subsets directory (the challenge's weighted score).
#[pyfunction]
#[pyo3(signature = (predictions, measured = None, test = None, subsets = None))]
fn dream_score(
    py: Python<'_>,
    predictions: Vec<f64>,
    measured: Option<Vec<f64>>,
    test: Option<PathBuf>,
    subsets: Option<PathBuf>,
) -> PyResult<String> {
    use prixfixe::eval::score;
    let score = py.allow_threads(|| -> prixfixe::Result<score::DreamScore> {
        let (subsets, meas) = match (&measured, &test) {
            (Some(m), None) => {
                if m.len() != predictions.len() {
                    return Err(prixfixe::Error::Config(format!(
                        "{} predictions but {} measured values",
                        predictions.len(),
                        m.len()
                    )));
                }
                let s = score::prepare(m.len(), &[], &Default::default())?;
                (s, m.clone())
            }
            (None, Some(t)) => {
                let files = match &subsets {
                    Some(d) => prixfixe::eval::report::subset_files(d)?,
                    None => Vec::new(),
                };
                let set = prixfixe::eval::report::load_test_set(t, &files, None)?;
                if set.measured.len() != predictions.len() {
                    return Err(prixfixe::Error::Config(format!(
                        "{} predictions for a test file of {} rows",
                        predictions.len(),
                        set.measured.len()
                    )));
                }
                (set.subsets, set.measured)
            }
            _ => {
                return Err(prixfixe::Error::Config(
                    "give measured values, or a test file (with its subsets directory)".into(),
                ));
            }
        };
        Ok(score::dream_score(&subsets, &predictions, &meas))
    });
    let score = score.map_err(|e| PyValueError::new_err(e.to_string()))?;
    prixfixe::eval::score::to_json(&score).map_err(runtime)
}

/// The sequences of a file prixfixe reads (FASTA, plain or gzipped; DREAM; a table with a
/// `sequence` column, such as `predict`'s and `design`'s outputs), its format told from the
/// file: `(ids, sequences, targets, label names)`; ids are the 1-based line numbers where the
/// file has none, targets NaN where a row has none.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn read_sequences(
    py: Python<'_>,
    path: PathBuf,
) -> PyResult<(Vec<String>, Vec<String>, Vec<f64>, Vec<String>)> {
    let opts = prixfixe::data::ReadOptions { padding: None };
    let ds = py
        .allow_threads(|| prixfixe::data::formats::detect::read_sequences(&path, &opts))
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let ids = match &ds.ids {
        Some(ids) => ids.clone(),
        None => ds.lines.iter().map(|l| format!("line{l}")).collect(),
    };
    let seqs = ds.seqs.iter().map(alphabet::decode).collect();
    Ok((ids, seqs, ds.targets, ds.task_names))
}

#[pymodule]
fn _prixfixe(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(dream_score, m)?)?;
    m.add_function(wrap_pyfunction!(model_config, m)?)?;
    m.add_function(wrap_pyfunction!(read_sequences, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
