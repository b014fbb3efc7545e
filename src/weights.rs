//! Weight files: PyTorch `.pth`/`.pt` state dicts and safetensors, read into one name → tensor
//! map and applied to a model by the reference's parameter names (see [`crate::nn::visit`]).
//!
//! Our own checkpoints are safetensors with the same names, so a model trained here loads in
//! the PyTorch reference and the other way round. The metadata carries our model config.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::{Param, RunningState};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::nn::visit::{NamedWeights, WeightVisitor};

/// One tensor: row-major `f32` values and a shape.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightTensor {
    /// Extents, outermost first.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// Entries of the reference state dict that are not weights: ignored when loading.
fn is_buffer(name: &str) -> bool {
    name.ends_with("num_batches_tracked") || name == "final.bins"
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f`, turning a panic into `Err` without printing it (see [`install_panic_hook`]).
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    QUIET.with(|q| q.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    r
}

/// Keep the default panic message, except for panics of third-party readers that prixfixe
/// catches and reports as errors itself (a malformed pickle), which would only confuse.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !QUIET.with(|q| q.get()) {
            default(info);
        }
    }));
}

/// The container formats a weight file can have, told apart by parsing its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// safetensors: a little-endian `u64` header length `n`, then `n` bytes of JSON.
    Safetensors,
    /// PyTorch ≥ 1.6 (`torch.save`): a zip archive.
    PytorchZip,
    /// Older PyTorch: a bare pickle (protocol byte `0x80`).
    PytorchLegacy,
    /// None of these.
    Unknown,
}

impl WeightFormat {
    /// The format of a file starting with `bytes`. The safetensors header is checked first:
    /// its length's low byte may be anything, `0x80` (a pickle's first byte) or `PK` included.
    pub fn of(bytes: &[u8]) -> Self {
        if let Some(head) = bytes.get(..8) {
            let n = u64::from_le_bytes(head.try_into().expect("8 bytes"));
            let fits = n >= 2 && n <= (bytes.len() - 8) as u64;
            if fits && bytes[8] == b'{' {
                return WeightFormat::Safetensors;
            }
        }
        if bytes.starts_with(b"PK\x03\x04") {
            WeightFormat::PytorchZip
        } else if bytes.first() == Some(&0x80) {
            WeightFormat::PytorchLegacy
        } else {
            WeightFormat::Unknown
        }
    }
}

/// Named tensors, plus string metadata (safetensors' header `__metadata__`).
#[derive(Debug, Clone, Default)]
pub struct WeightMap {
    /// Tensors by name.
    pub tensors: BTreeMap<String, WeightTensor>,
    /// Metadata.
    pub metadata: HashMap<String, String>,
}

impl WeightMap {
    /// Read a safetensors file or a PyTorch checkpoint (`.pth`/`.pt`, zip or legacy), told
    /// apart by content. A checkpoint that nests its state dict under `state_dict` or `model`
    /// is unwrapped.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |msg: String| Error::Other(format!("{}: {msg}", path.display()));
        match WeightFormat::of(&bytes) {
            WeightFormat::Safetensors => Self::read_safetensors(&bytes).map_err(&bad),
            WeightFormat::PytorchZip | WeightFormat::PytorchLegacy => {
                // burn's pickle reader is third-party code fed with the user's bytes: a panic
                // there must become an error naming the file, not a crash.
                let read = quietly(|| Self::read_pytorch(path));
                match read {
                    Ok(r) => r.map_err(&bad),
                    Err(_) => Err(bad(
                        "the PyTorch checkpoint is malformed (its pickle could not be read)".into(),
                    )),
                }
            }
            WeightFormat::Unknown => Err(bad(
                "neither a safetensors file (8-byte header length, then a JSON header) nor a \
                 PyTorch checkpoint (zip archive or pickle)"
                    .into(),
            )),
        }
    }

    fn read_safetensors(bytes: &[u8]) -> std::result::Result<Self, String> {
        let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| format!("not a valid safetensors file ({e})"))?;
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| format!("not a valid safetensors file ({e})"))?;
        let mut map = WeightMap {
            metadata: meta.metadata().clone().unwrap_or_default(),
            ..Default::default()
        };
        for (name, view) in st.tensors() {
            let data = to_f32(view.dtype(), view.data())
                .ok_or_else(|| format!("tensor {name} has unsupported type {:?}", view.dtype()))?;
            map.tensors.insert(
                name,
                WeightTensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(map)
    }

    fn read_pytorch(path: &Path) -> std::result::Result<Self, String> {
        use burn::store::pytorch_reader::{DType, PytorchReader};
        let mut reader = PytorchReader::new(path).map_err(|e| e.to_string())?;
        for key in ["state_dict", "model"] {
            if reader
                .keys()
                .iter()
                .all(|k| k.starts_with(&format!("{key}.")))
                && let Ok(r) = PytorchReader::with_top_level_key(path, key)
            {
                reader = r;
            }
        }
        let mut map = WeightMap::default();
        for (name, t) in reader.into_tensors() {
            let bytes = t.read().map_err(|e| e.to_string())?;
            let dtype = match t.dtype() {
                DType::F32 => safetensors::Dtype::F32,
                DType::F64 => safetensors::Dtype::F64,
                DType::F16 => safetensors::Dtype::F16,
                DType::BF16 => safetensors::Dtype::BF16,
                DType::I64 => safetensors::Dtype::I64,
                other if is_buffer(&name) => {
                    let _ = other;
                    continue;
                }
                other => return Err(format!("tensor {name} has unsupported type {other:?}")),
            };
            let data = to_f32(dtype, &bytes)
                .ok_or_else(|| format!("tensor {name} could not be converted to f32"))?;
            map.tensors.insert(
                name,
                WeightTensor {
                    shape: t.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(map)
    }

    /// The safetensors bytes (f32), with the metadata.
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let bytes: &[u8] = bytemuck_cast(&t.data);
                let view = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    t.shape.clone(),
                    bytes,
                )
                .expect("shape matches data");
                (name.clone(), view)
            })
            .collect();
        let meta = (!self.metadata.is_empty()).then(|| self.metadata.clone());
        let bytes = safetensors::serialize(views, meta)
            .map_err(|e| Error::Other(format!("safetensors: {e}")))?;
        Ok(canonical_header(bytes))
    }

    /// Write as safetensors (f32), with the metadata, atomically.
    pub fn write_safetensors(&self, path: &Path) -> Result<()> {
        crate::output::write_atomic(path, &self.to_safetensors_bytes()?)
    }

    /// Take every tensor of `model` under its reference name.
    pub fn from_model<M: NamedWeights>(model: &mut M, prefix: &str) -> Self {
        let mut collector = Collector::default();
        model.visit_weights(prefix, &mut collector);
        WeightMap {
            tensors: collector.tensors,
            metadata: HashMap::new(),
        }
    }

    /// Set every tensor of `model` from this map. Every tensor the model has must be present
    /// with its shape; entries the model does not have are an error too (unless they are
    /// buffers such as `num_batches_tracked`), so a wrong file never half-loads silently.
    pub fn apply_to<M: NamedWeights>(
        &self,
        model: &mut M,
        prefix: &str,
        device: &Device,
    ) -> Result<()> {
        let mut loader = Loader {
            map: self,
            device,
            used: Vec::new(),
            problems: Vec::new(),
        };
        model.visit_weights(prefix, &mut loader);
        let used: std::collections::HashSet<&str> =
            loader.used.iter().map(String::as_str).collect();
        let unexpected: Vec<&String> = self
            .tensors
            .keys()
            .filter(|k| k.starts_with(prefix) && !used.contains(k.as_str()) && !is_buffer(k))
            .collect();
        let mut problems = loader.problems;
        if !unexpected.is_empty() {
            let list: Vec<&str> = unexpected.iter().take(8).map(|s| s.as_str()).collect();
            problems.insert(
                0,
                format!(
                    "{} tensor(s) in the file that this model does not have: {}{}",
                    unexpected.len(),
                    list.join(", "),
                    if unexpected.len() > 8 { ", …" } else { "" }
                ),
            );
        }
        if problems.is_empty() {
            return Ok(());
        }
        const SHOWN: usize = 10;
        let more = problems.len().saturating_sub(SHOWN);
        problems.truncate(SHOWN);
        if more > 0 {
            problems.push(format!("… and {more} more"));
        }
        Err(Error::Config(format!(
            "the weights do not fit this model (is it the right model and data kind?):\n  {}",
            problems.join("\n  ")
        )))
    }
}

/// The same file with its JSON header's keys in sorted order: safetensors writes the metadata
/// map in hash order, which differs between processes, and a checkpoint must be the same
/// bytes whenever its content is the same (a resumed run is compared bit for bit).
fn canonical_header(mut bytes: Vec<u8>) -> Vec<u8> {
    use std::collections::BTreeMap;
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let b: BTreeMap<String, serde_json::Value> =
                    m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::to_value(b).expect("json")
            }
            other => other,
        }
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = &bytes[8..8 + n];
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(header) else {
        return bytes;
    };
    let b: BTreeMap<String, serde_json::Value> = match sorted(v) {
        serde_json::Value::Object(m) => m.into_iter().collect(),
        _ => return bytes,
    };
    let text = serde_json::to_vec(&b).expect("json");
    if text.len() > n {
        return bytes;
    }
    bytes[8..8 + text.len()].copy_from_slice(&text);
    bytes[8 + text.len()..8 + n].fill(b' ');
    bytes
}

fn bytemuck_cast(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any byte pattern of it is valid to read as u8.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

fn to_f32(dtype: safetensors::Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    use safetensors::Dtype as T;
    let chunks = |n: usize| bytes.chunks_exact(n);
    Some(match dtype {
        T::F32 => chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        T::F64 => chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        T::F16 => chunks(2)
            .map(|c| half_to_f32(u16::from_le_bytes(c.try_into().unwrap())))
            .collect(),
        T::BF16 => chunks(2)
            .map(|c| f32::from_bits((u16::from_le_bytes(c.try_into().unwrap()) as u32) << 16))
            .collect(),
        T::I64 => chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        _ => return None,
    })
}

fn half_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = frac;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// A tensor's values, row-major, as `f32`.
pub fn tensor_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 after convert")
}

fn transpose(t: &WeightTensor) -> WeightTensor {
    let (r, c) = (t.shape[0], t.shape[1]);
    let mut data = vec![0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            data[j * r + i] = t.data[i * c + j];
        }
    }
    WeightTensor {
        shape: vec![c, r],
        data,
    }
}

#[derive(Default)]
struct Collector {
    tensors: BTreeMap<String, WeightTensor>,
}

impl WeightVisitor for Collector {
    fn param<const D: usize>(&mut self, name: &str, param: &mut Param<Tensor<D>>) {
        let t = param.val();
        let shape = t.dims().to_vec();
        self.tensors.insert(
            name.to_string(),
            WeightTensor {
                shape,
                data: tensor_values(t),
            },
        );
    }

    fn linear_weight(&mut self, name: &str, param: &mut Param<Tensor<2>>) {
        let t = param.val();
        let w = WeightTensor {
            shape: t.dims().to_vec(),
            data: tensor_values(t),
        };
        self.tensors.insert(name.to_string(), transpose(&w));
    }

    fn running(&mut self, name: &str, state: &mut RunningState<Tensor<1>>) {
        let t = state.value_sync();
        self.tensors.insert(
            name.to_string(),
            WeightTensor {
                shape: t.dims().to_vec(),
                data: tensor_values(t),
            },
        );
    }
}

/// A loaded parameter that keeps its id and takes gradients when on an autodiff device.
fn trainable<const D: usize>(id: burn::module::ParamId, t: Tensor<D>) -> Param<Tensor<D>> {
    let mut p = Param::from_tensor(t);
    p.id = id;
    p
}

struct Loader<'a> {
    map: &'a WeightMap,
    device: &'a Device,
    used: Vec<String>,
    problems: Vec<String>,
}

impl Loader<'_> {
    fn take<const D: usize>(
        &mut self,
        name: &str,
        want: [usize; D],
        transposed: bool,
    ) -> Option<Tensor<D>> {
        let Some(t) = self.map.tensors.get(name) else {
            self.problems
                .push(format!("missing tensor {name} (shape {want:?})"));
            return None;
        };
        self.used.push(name.to_string());
        let bad = t.data.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            self.problems.push(format!(
                "tensor {name} holds {bad} non-finite value(s) (NaN or infinite): the weights are \
                 broken (a diverged run?)"
            ));
            return None;
        }
        let t = if transposed { transpose(t) } else { t.clone() };
        if t.shape != want {
            let shown = if transposed {
                vec![t.shape[1], t.shape[0]]
            } else {
                t.shape.clone()
            };
            let expected: Vec<usize> = if transposed {
                vec![want[1], want[0]]
            } else {
                want.to_vec()
            };
            self.problems.push(format!(
                "tensor {name} has shape {shown:?}, this model needs {expected:?}"
            ));
            return None;
        }
        Some(Tensor::from_data(
            TensorData::new(t.data, t.shape),
            self.device,
        ))
    }
}

impl WeightVisitor for Loader<'_> {
    fn param<const D: usize>(&mut self, name: &str, param: &mut Param<Tensor<D>>) {
        if let Some(t) = self.take(name, param.val().dims(), false) {
            *param = trainable(param.id, t);
        }
    }

    fn linear_weight(&mut self, name: &str, param: &mut Param<Tensor<2>>) {
        if let Some(t) = self.take(name, param.val().dims(), true) {
            *param = trainable(param.id, t);
        }
    }

    fn running(&mut self, name: &str, state: &mut RunningState<Tensor<1>>) {
        if let Some(t) = self.take(name, state.value_sync().dims(), false) {
            // A fresh state: `update` would only stage the value for the next sync.
            *state = RunningState::new(t);
        }
    }
}

/// Counts trained parameters (running statistics excluded), as PyTorch's `parameters()` does.
#[derive(Default)]
pub struct ParamCounter {
    /// Total parameters seen.
    pub total: usize,
}

impl WeightVisitor for ParamCounter {
    fn param<const D: usize>(&mut self, _: &str, param: &mut Param<Tensor<D>>) {
        self.total += param.val().dims().iter().product::<usize>();
    }
    fn linear_weight(&mut self, name: &str, param: &mut Param<Tensor<2>>) {
        self.param(name, param);
    }
    fn running(&mut self, _: &str, _: &mut RunningState<Tensor<1>>) {}
}

/// Count the values of a module's running statistics (BatchNorm's mean and variance).
pub fn count_running<M: NamedWeights>(model: &mut M) -> usize {
    struct Running(usize);
    impl WeightVisitor for Running {
        fn param<const D: usize>(&mut self, _: &str, _: &mut Param<Tensor<D>>) {}
        fn linear_weight(&mut self, _: &str, _: &mut Param<Tensor<2>>) {}
        fn running(&mut self, _: &str, state: &mut RunningState<Tensor<1>>) {
            self.0 += state.value_sync().dims()[0];
        }
    }
    let mut c = Running(0);
    model.visit_weights("", &mut c);
    c.0
}

/// Count a module's trained parameters.
pub fn count_params<M: NamedWeights>(model: &mut M) -> usize {
    let mut c = ParamCounter::default();
    model.visit_weights("", &mut c);
    c.total
}
