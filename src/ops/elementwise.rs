//! Element-wise layers: dropout, channel scaling, SwiGLU.

use super::*;

/// Chris Wellons' `lowbias32` integer hash: a bijection of `u32` with low bias, branch-free
/// 32-bit arithmetic only, so loops over it vectorise 16 lanes wide.
#[inline(always)]
fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// `x ⊙ mask`, the mask's multipliers `0` or `1 / (1 − prob)` from a counter-based generator:
/// element `i` keeps its value when `mix32(mix32(i ⊕ seed_lo) ⊕ seed_hi ⊕ i_hi) < keep · 2³²`,
/// so the mask depends on the seed only (not on how the work is split over threads) and the
/// backward pass regenerates it instead of storing it.
pub(super) fn dropout_apply(x: &[f32], prob: f64, seed: u64) -> Vec<f32> {
    let keep = 1.0 - prob;
    let threshold = (keep * 4_294_967_296.0) as u64;
    let scale = (1.0 / keep) as f32;
    let (seed_lo, seed_hi) = (seed as u32, (seed >> 32) as u32);
    let mut y = vec![0.0f32; x.len()];
    // A power of two below 2³², so a chunk's indices share their high 32 bits.
    const CHUNK: usize = 1 << 14;
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(c, (ys, xs))| {
            let base = (c * CHUNK) as u64;
            let (lo, hi) = (base as u32, seed_hi ^ (base >> 32) as u32);
            kernels::simd(|| {
                for (j, (o, &v)) in ys.iter_mut().zip(xs).enumerate() {
                    let bits = mix32(mix32(lo.wrapping_add(j as u32) ^ seed_lo) ^ hi);
                    *o = if u64::from(bits) < threshold {
                        v * scale
                    } else {
                        0.0
                    };
                }
            });
        });
    y
}

thread_local! {
    /// The calling thread's dropout stream (a SplitMix64 state), while one is set.
    static DROPOUT_STREAM: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Run `f` with the calling thread's dropout masks drawn from a stream seeded with `seed`:
/// the `k`-th dropout node built inside `f` gets the `k`-th seed of that stream, whatever
/// other threads draw meanwhile. (burn's own generator is one per process, so two trainings on
/// two threads would otherwise take each other's draws.) The previous stream, if any, comes
/// back when `f` returns or unwinds.
pub(crate) fn with_dropout_stream<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<u64>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DROPOUT_STREAM.set(self.0);
        }
    }
    let _restore = Restore(DROPOUT_STREAM.replace(Some(seed)));
    f()
}

/// The next seed of the thread's dropout stream (SplitMix64), or `None` when none is set.
fn next_stream_seed() -> Option<u64> {
    let state = DROPOUT_STREAM.get()?.wrapping_add(0x9E37_79B9_7F4A_7C15);
    DROPOUT_STREAM.set(Some(state));
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Some(z ^ (z >> 31))
}

/// The next seed of the thread's dropout stream, or, outside one, 48 bits from burn's random
/// stream on `x`'s device.
pub(super) fn draw_seed<const D: usize>(x: &Tensor<D>) -> u64 {
    if let Some(seed) = next_stream_seed() {
        return seed;
    }
    let draw: Tensor<1> = Tensor::random(
        [2],
        burn::tensor::Distribution::Uniform(0.0, 1.0),
        &x.device().inner(),
    );
    let draw = draw
        .into_data()
        .try_into_vec::<f32>()
        .expect("uniform draws are f32");
    ((draw[0] * 16_777_216.0) as u64) << 24 | (draw[1] * 16_777_216.0) as u64
}

/// Dropout as one node, or `None` off `Autodiff<Flex>`. The mask is drawn by our generator from
/// a seed taken from the thread's dropout stream ([`with_dropout_stream`]), or, outside one,
/// from burn's random stream (so `device.seed(..)` makes single-threaded runs repeatable).
pub(crate) fn dropout<const D: usize>(x: &Tensor<D>, prob: f64) -> Option<Tensor<D>> {
    let xp = primitive(x)?;
    let seed = draw_seed(x);
    let output = flex(
        dropout_apply(&values(xp.primitive()), prob, seed),
        &x.dims(),
    );
    Some(node(ScaleBackward, [xp.node()], (prob, seed), output))
}

/// Dropout's backward: the same mask, regenerated from its seed.
#[derive(Debug)]
struct ScaleBackward;

impl Backward<Flex, 1> for ScaleBackward {
    /// The dropout probability and the mask's seed.
    type State = (f64, u64);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let shape = grad.layout().shape().to_vec();
        let (prob, seed) = ops.state;
        let [node] = ops.parents;
        if let Some(node) = node {
            let dx = dropout_apply(&values(&grad), prob, seed);
            grads.register::<Flex>(node.id, flex(dx, &shape));
        }
    }
}

/// `y[b, c, t] = h[b, c, t] · w[b, c]` (squeeze-excitation's channel weights) as one node, or
/// `None` off `Autodiff<Flex>`.
pub(crate) fn channel_scale(h: &Tensor<3>, w: &Tensor<2>) -> Option<Tensor<3>> {
    let [batch, ch, len] = h.dims();
    if w.dims() != [batch, ch] {
        return None;
    }
    let (hp, wp) = (primitive(h)?, primitive(w)?);
    let (hv, wv) = (values(hp.primitive()), values(wp.primitive()));
    let (hs, ws): (&[f32], &[f32]) = (&hv, &wv);
    let output = flex(scale_rows(hs, ws, len), &[batch, ch, len]);
    let state = (hv, wv, [batch, ch, len]);
    Some(node(
        ScaleRowsBackward,
        [hp.node(), wp.node()],
        state,
        output,
    ))
}

/// Row `r` (of `len` values) of `x` times `w[r]`.
fn scale_rows(x: &[f32], w: &[f32], len: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(len)
        .zip(x.par_chunks(len))
        .zip(w.par_iter())
        .for_each(|((o, x), &g)| o.iter_mut().zip(x).for_each(|(o, v)| *o = v * g));
    y
}

#[derive(Debug)]
struct ScaleRowsBackward;

impl Backward<Flex, 2> for ScaleRowsBackward {
    /// The input, the channel weights, the shape.
    type State = (Values, Values, [usize; 3]);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let (hv, wv, [batch, ch, len]) = ops.state;
        let (dys, hs, ws): (&[f32], &[f32], &[f32]) = (&dy, &hv, &wv);
        let [node_h, node_w] = ops.parents;
        if let Some(node) = node_h {
            let dh = scale_rows(dys, ws, len);
            grads.register::<Flex>(node.id, flex(dh, &[batch, ch, len]));
        }
        if let Some(node) = node_w {
            let dw: Vec<f32> = dys
                .par_chunks(len)
                .zip(hs.par_chunks(len))
                .map(|(d, x)| kernels::dot(d, x))
                .collect();
            grads.register::<Flex>(node.id, flex(dw, &[batch, ch]));
        }
    }
}

/// SwiGLU over the last axis: `value · SiLU(gate)` with `value, gate` its two halves, as one
/// node (`[.., 2m] → [.., m]`), or `None` off `Autodiff<Flex>`.
pub(crate) fn swiglu<const D: usize>(h: &Tensor<D>) -> Option<Tensor<D>> {
    let width = h.dims()[D - 1];
    if !width.is_multiple_of(2) {
        return None;
    }
    let hp = primitive(h)?;
    let hv = values(hp.primitive());
    let m = width / 2;
    let mut y = vec![0.0f32; hv.len() / 2];
    y.par_chunks_mut(row_chunk(m))
        .zip(hv.par_chunks(2 * row_chunk(m)))
        .for_each(|(yc, hc)| {
            for (yr, hr) in yc.chunks_mut(m).zip(hc.chunks(width)) {
                kernels::swiglu_row(hr, yr);
            }
        });
    let mut shape = h.dims().to_vec();
    shape[D - 1] = m;
    let output = flex(y, &shape);
    Some(node(SwigluBackward, [hp.node()], hv, output))
}

#[derive(Debug)]
struct SwigluBackward;

impl Backward<Flex, 1> for SwigluBackward {
    type State = Values;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let mut shape = grad.layout().shape().to_vec();
        let dy = values(&grad);
        let m = *shape.last().expect("rank ≥ 1");
        let h = &ops.state;
        let [node] = ops.parents;
        let Some(node) = node else { return };
        let mut dh = vec![0.0f32; h.len()];
        dh.par_chunks_mut(2 * row_chunk(m))
            .zip(h.par_chunks(2 * row_chunk(m)))
            .zip(dy.par_chunks(row_chunk(m)))
            .for_each(|((dc, hc), dyc)| {
                for ((dr, hr), dyr) in dc
                    .chunks_mut(2 * m)
                    .zip(hc.chunks(2 * m))
                    .zip(dyc.chunks(m))
                {
                    let (dv, dg) = dr.split_at_mut(m);
                    let (v, g) = hr.split_at(m);
                    dg.copy_from_slice(g);
                    kernels::sigmoid(dg);
                    for j in 0..m {
                        let s = dg[j];
                        dv[j] = dyr[j] * g[j] * s;
                        dg[j] = dyr[j] * v[j] * s * (1.0 + g[j] * (1.0 - s));
                    }
                }
            });
        *shape.last_mut().expect("rank ≥ 1") = 2 * m;
        grads.register::<Flex>(node.id, flex(dh, &shape));
    }
}
