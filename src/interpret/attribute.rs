//! Gradient attributions: how much each base of a sequence contributes to one task's
//! prediction, by saliency, input × gradient, integrated gradients, or SHAP values against
//! dinucleotide-shuffled references.
//!
//! The function explained is the prediction as [`Model::predict`] makes it: the mean of the
//! forward and reverse-complement passes where the model averages strands, layers in inference
//! behaviour (running statistics, no dropout), averaged over the members of an ensemble. It is
//! taken as a function of the model's whole input window (padding included), as the
//! `(4, L)` one-hot planes in A, C, G, T order; the reverse-complement pass is built from those
//! planes inside the graph, so gradients reach the forward planes through both passes.
//!
//! Gradients are computed on burn's autodiff backend with our own kernels, `batch` input rows at
//! a time; memory holds one batch's graph and the attributions of the sequences in flight.

use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::data::{BaseOrder, Strands};
use crate::error::{Error, Result};
use crate::predict::{Model, Predictor, encode_for_prediction};
use crate::weights::{WeightMap, tensor_values};

/// An attribution method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// ∂f/∂x at the sequence: the hypothetical contribution of every base at every position
    /// (signed; what TF-MoDISco calls hypothetical scores once mean-centred per position).
    Saliency,
    /// x ⊙ ∂f/∂x: the gradient at the bases present, 0 elsewhere.
    InputXGradient,
    /// Integrated gradients from the all-zero input: (x − 0) ⊙ the mean gradient along the
    /// straight path, midpoint rule. Sums to f(x) − f(0) up to the rule's error.
    IntegratedGradients,
    /// SHAP values with dinucleotide-shuffled references, estimated as integrated gradients
    /// from each reference, averaged ("expected gradients"): they sum to f(x) − mean f(ref), as
    /// DeepLIFT/DeepSHAP's do, up to the midpoint rule's error (exact as `steps` grows). This is
    /// not DeepLIFT's rescale rule, which needs a rule for every layer type.
    Shap,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 4] = [
        Method::Saliency,
        Method::InputXGradient,
        Method::IntegratedGradients,
        Method::Shap,
    ];

    /// The method of a [`Method::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Method::Saliency => "saliency",
            Method::InputXGradient => "input-x-gradient",
            Method::IntegratedGradients => "integrated-gradients",
            Method::Shap => "shap",
        }
    }

    /// Whether the attributions sum to f(x) − f(reference).
    pub fn sums_to_difference(self) -> bool {
        matches!(self, Method::IntegratedGradients | Method::Shap)
    }
}

/// How to attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeOptions {
    /// The method.
    pub method: Method,
    /// The prediction column explained (0-based).
    pub task: usize,
    /// Points on each path (integrated gradients and SHAP).
    pub steps: usize,
    /// Shuffled references per sequence (SHAP).
    pub shuffles: usize,
    /// Seed of the shuffles.
    pub seed: u64,
}

impl AttributeOptions {
    /// The defaults of `method`: 50 steps for integrated gradients; 20 shuffles × 10 steps
    /// for SHAP (tangermeme's `deep_lift_shap` also takes 20 shuffles).
    pub fn new(method: Method) -> Self {
        AttributeOptions {
            method,
            task: 0,
            steps: if method == Method::Shap { 10 } else { 50 },
            shuffles: 20,
            seed: 1234,
        }
    }

    /// Gradient evaluations per sequence: what the run's time grows with.
    pub fn passes(&self) -> usize {
        match self.method {
            Method::Saliency | Method::InputXGradient => 1,
            Method::IntegratedGradients => self.steps,
            Method::Shap => self.steps * self.shuffles,
        }
    }
}

/// The attribution of one sequence over the model's input window.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    /// The input's base planes `(4, L)`, A, C, G, T: one-hot, 0.25 each at an `N` where the
    /// model encodes it so.
    pub onehot: Vec<f32>,
    /// Attributions `(4, L)`, same layout.
    pub values: Vec<f32>,
    /// The prediction f(x) of the task.
    pub prediction: f32,
    /// f(reference): the all-zero input's (integrated gradients) or the mean of the shuffled
    /// references' (SHAP); `None` for the other methods.
    pub reference: Option<f32>,
}

/// Attribute every sequence (base codes) for `models` averaged (one model, or an ensemble's
/// members); `batch` input rows per gradient pass.
pub fn attribute(
    models: &[&Model],
    seqs: &[Vec<u8>],
    opts: &AttributeOptions,
    batch: usize,
) -> Result<Vec<Attribution>> {
    let first = *models
        .first()
        .ok_or_else(|| Error::Config("attribution needs a model".into()))?;
    let tasks = first.tasks();
    if opts.task >= tasks {
        return Err(Error::Config(format!(
            "task {} asked for, but the model predicts {tasks} value(s) ({})",
            opts.task + 1,
            first.columns().join(", ")
        )));
    }
    if opts.method.sums_to_difference() && opts.steps == 0 {
        return Err(Error::Config("--steps must be at least 1".into()));
    }
    if opts.method == Method::Shap && opts.shuffles == 0 {
        return Err(Error::Config("--shuffles must be at least 1".into()));
    }
    let layout = Layout::of(first)?;
    let nets = models
        .iter()
        .map(|m| {
            use burn::module::Module;
            // A prediction model is a validation snapshot, whose tensors stay plain on any
            // device: the network is built again on the autodiff device and given its weights
            // (running statistics too). Its layers behave as in inference under `nn::frozen`.
            let ad = m.device.clone().autodiff();
            let mut net = m.config.init(&ad)?;
            let mut plain = m.net().clone();
            WeightMap::from_model(&mut plain, "").apply_to(&mut net, "", &ad)?;
            Ok((net.no_grad(), ad))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let mut out = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let x = layout.planes(seq)?;
        // Baselines and the number of points on each path.
        let (baselines, steps, reference) = match opts.method {
            Method::Saliency | Method::InputXGradient => (vec![None], 1, None),
            Method::IntegratedGradients => {
                let zero = vec![0.0; x.len()];
                let f0 = mean_prediction(models, &layout, std::slice::from_ref(&zero), opts.task)?;
                (vec![Some(zero)], opts.steps, Some(f0))
            }
            Method::Shap => {
                let refs: Vec<Vec<f32>> = (0..opts.shuffles)
                    .map(|_| {
                        let s = super::shuffle::dinucleotide_shuffle(seq, &mut rng);
                        layout.planes(&s)
                    })
                    .collect::<Result<_>>()?;
                let f0 = mean_prediction(models, &layout, &refs, opts.task)?;
                (refs.into_iter().map(Some).collect(), opts.steps, Some(f0))
            }
        };
        // Every point at which a gradient is taken, with the baseline it belongs to.
        let points: Vec<(usize, f32)> = (0..baselines.len())
            .flat_map(|b| (0..steps).map(move |k| (b, (k as f32 + 0.5) / steps as f32)))
            .collect();
        let mut grad_sum = vec![vec![0.0f32; x.len()]; baselines.len()];
        for chunk in points.chunks(batch.max(1)) {
            let rows: Vec<Vec<f32>> = chunk
                .iter()
                .map(|&(b, alpha)| match &baselines[b] {
                    None => x.clone(),
                    Some(r) => r.iter().zip(&x).map(|(r, x)| r + alpha * (x - r)).collect(),
                })
                .collect();
            let g = layout.gradients(&nets, &rows, opts.task);
            for (i, &(b, _)) in chunk.iter().enumerate() {
                let row = &g[i * x.len()..(i + 1) * x.len()];
                grad_sum[b].iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
        }
        let n = (baselines.len() * steps) as f32;
        let values: Vec<f32> = match opts.method {
            Method::Saliency => grad_sum.swap_remove(0),
            Method::InputXGradient => grad_sum[0].iter().zip(&x).map(|(g, x)| g * x).collect(),
            Method::IntegratedGradients | Method::Shap => {
                let mut v = vec![0.0f32; x.len()];
                for (g, r) in grad_sum.iter().zip(&baselines) {
                    let r = r.as_ref().expect("a path has a baseline");
                    for j in 0..v.len() {
                        v[j] += (x[j] - r[j]) * g[j] / n;
                    }
                }
                v
            }
        };
        let prediction = mean_prediction(models, &layout, std::slice::from_ref(&x), opts.task)?;
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::Other(format!(
                "an attribution came out {bad}: the model's weights or inputs are broken"
            )));
        }
        out.push(Attribution {
            onehot: layout.to_acgt(&x),
            values: layout.to_acgt(&values),
            prediction,
            reference,
        });
    }
    Ok(out)
}

/// The input planes a model's first block sees for each sequence, before the constant
/// `is_reverse`/`is_singleton` planes and the reverse-complement pass: `(N, planes, L)`
/// flattened, with `planes` = 4 (A, C, G, T: the one-hot of [`attribute`]) or, for the
/// Unlock_DNA tokens, 6 (A, C, G, T, N, M). What a PyTorch twin of the model takes as input.
pub fn input_planes(model: &Model, seqs: &[Vec<u8>]) -> Result<(usize, Vec<f32>)> {
    let layout = Layout::of(model)?;
    let mut out = Vec::with_capacity(seqs.len() * layout.base * layout.length);
    for seq in seqs {
        let x = layout.planes(seq)?;
        out.extend(layout.to_acgt(&x));
        out.extend_from_slice(&x[4 * layout.length..]);
    }
    Ok((layout.base, out))
}

/// How a model's input is laid out: base planes first (4, or the 6 token planes), then the
/// constant `is_reverse`/`is_singleton` planes.
struct Layout {
    /// The model's encoder, each row in its own (forward) orientation: the base planes of a
    /// sequence; the reverse complement is built from them in [`Layout::input`].
    forward: crate::data::Encoder,
    /// Base planes (4, or 6 for tokens A, C, G, T, N, M).
    base: usize,
    /// All input channels.
    channels: usize,
    length: usize,
    is_reverse: bool,
    strands: Strands,
    /// Model channel of A, C, G, T.
    acgt: [usize; 4],
}

impl Layout {
    fn of(model: &Model) -> Result<Self> {
        let enc = model.encoder();
        let ch = enc.channels();
        let base = if ch.tokens { 6 } else { 4 };
        let acgt = if ch.tokens || ch.bases == BaseOrder::Acgt {
            [0, 1, 2, 3]
        } else {
            // A, G, C, T order: C is channel 2, G channel 1.
            [0, 2, 1, 3]
        };
        let forward = if enc.strands().averages() {
            enc.clone()
                .with_strands(Strands::Given)
                .map_err(Error::Config)?
        } else {
            enc.clone()
        };
        Ok(Layout {
            forward,
            base,
            channels: ch.count(),
            length: enc.length(),
            is_reverse: ch.is_reverse,
            strands: enc.strands(),
            acgt,
        })
    }

    /// The base planes `(base, L)` of a sequence's forward encoding.
    fn planes(&self, seq: &[u8]) -> Result<Vec<f32>> {
        let x = encode_for_prediction(&self.forward, &[seq], None)?;
        Ok(x[..self.base * self.length].to_vec())
    }

    /// `(base, L)` planes → `(4, L)` in A, C, G, T order.
    fn to_acgt(&self, planes: &[f32]) -> Vec<f32> {
        let l = self.length;
        self.acgt
            .iter()
            .flat_map(|&c| planes[c * l..(c + 1) * l].iter().copied())
            .collect()
    }

    /// The model input for base planes `x` `(rows, base, L)`: forward rows, then (where the
    /// model averages strands) the reverse-complement rows built from the same planes.
    fn input(&self, x: &Tensor<3>) -> Tensor<3> {
        let [rows, _, l] = x.dims();
        let device = x.device();
        let extras = |reverse: bool| -> Option<Tensor<3>> {
            let n = self.channels - self.base;
            (n > 0).then(|| {
                let mut v = vec![0.0f32; rows * n * l];
                if self.is_reverse && reverse {
                    for r in 0..rows {
                        v[r * n * l..r * n * l + l].fill(1.0);
                    }
                }
                Tensor::<3>::from_data(TensorData::new(v, [rows, n, l]), &device)
            })
        };
        let with_extras = |planes: Tensor<3>, reverse: bool| match extras(reverse) {
            Some(e) => Tensor::cat(vec![planes, e], 1),
            None => planes,
        };
        let fwd = with_extras(x.clone(), false);
        if !self.strands.averages() {
            return fwd;
        }
        // The complement of A, C, G, T or A, G, C, T is the reversed channel order; the token
        // planes N and M stay where they are.
        let bases = x.clone().narrow(1, 0, 4);
        let turned_bases = |t: Tensor<3>| t.flip([1, 2]);
        let turned = match self.strands {
            Strands::AverageCore { start, end } => {
                let core = turned_bases(bases.clone().narrow(2, start, end - start));
                let mut parts = Vec::new();
                if start > 0 {
                    parts.push(bases.clone().narrow(2, 0, start));
                }
                parts.push(core);
                if end < l {
                    parts.push(bases.narrow(2, end, l - end));
                }
                Tensor::cat(parts, 2)
            }
            _ => turned_bases(bases),
        };
        let turned = if self.base > 4 {
            let rest = x.clone().narrow(1, 4, self.base - 4);
            let rest = match self.strands {
                Strands::AverageCore { .. } => rest,
                _ => rest.flip([2]),
            };
            Tensor::cat(vec![turned, rest], 1)
        } else {
            turned
        };
        let rev = with_extras(turned, true);
        Tensor::cat(vec![fwd, rev], 0)
    }

    /// ∂f_task/∂x for base planes `rows` (each `(base, L)`), f the prediction averaged over
    /// strands and models; flattened `(rows, base, L)`.
    fn gradients(
        &self,
        nets: &[(crate::PrixFixeNet, Device)],
        rows: &[Vec<f32>],
        task: usize,
    ) -> Vec<f32> {
        let n = rows.len();
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let mut sum = vec![0.0f32; flat.len()];
        let versions = self.strands.versions() as f32;
        for (net, ad) in nets {
            let x = Tensor::<3>::from_data(
                TensorData::new(flat.clone(), [n, self.base, self.length]),
                ad,
            )
            .require_grad();
            let g = crate::nn::frozen(|| {
                let y = net.predict(self.input(&x));
                let f = y.narrow(1, task, 1).sum() / (versions * nets.len() as f32);
                let grads = f.backward();
                x.grad(&grads).expect("the input takes a gradient")
            });
            sum.iter_mut()
                .zip(tensor_values(g))
                .for_each(|(s, v)| *s += v);
        }
        sum
    }
}

/// The task's prediction for base planes (as [`Model::predict`] makes it), averaged over
/// `planes` and `models`.
fn mean_prediction(
    models: &[&Model],
    layout: &Layout,
    planes: &[Vec<f32>],
    task: usize,
) -> Result<f32> {
    let mut total = 0.0f64;
    for m in models {
        let (net, ad) = (m.net(), &m.device);
        let flat: Vec<f32> = planes.iter().flatten().copied().collect();
        let x = Tensor::<3>::from_data(
            TensorData::new(flat, [planes.len(), layout.base, layout.length]),
            ad,
        );
        let y = tensor_values(net.predict(layout.input(&x)));
        let tasks = m.tasks();
        let rows = y.len() / tasks;
        total += (0..rows)
            .map(|r| f64::from(y[r * tasks + task]))
            .sum::<f64>()
            / rows as f64;
    }
    Ok((total / models.len() as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip_and_match_the_command_line() {
        use clap::ValueEnum;
        for m in Method::ALL {
            assert_eq!(Method::from_name(m.name()), Some(m));
            assert_eq!(m.to_possible_value().unwrap().get_name(), m.name());
        }
        assert_eq!(Method::value_variants().len(), Method::ALL.len());
        assert_eq!(Method::from_name("deeplift"), None);
    }
}
