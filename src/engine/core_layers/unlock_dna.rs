//! Twin of [`crate::blocks::core_layers::unlock_dna`]: the conformer layers per group of
//! sequences on rows `[L, d]` (LayerNorm, SwiGLU feed-forward, depthwise convolution module,
//! multi-head attention). Row-wise layers run on all rows of a group at once, so each product
//! is wide.

use crate::blocks::core_layers::unlock_dna::{ConformerLayer, FeedForward, UnlockDnaCore};
use crate::engine::rows::{self, LayerNorm, RowGrouped, RowLinear};
use crate::engine::{CoreTwin, Engine, Layout};
use crate::kernels;
use crate::weights::tensor_values;

struct FeedForwardRows {
    norm: LayerNorm,
    /// `d → ff`, no bias.
    w1: RowLinear,
    /// `ff/2 → d`, no bias.
    w2: RowLinear,
}

struct Layer {
    ff1: FeedForwardRows,
    norm1: LayerNorm,
    depthwise: RowGrouped,
    pointwise: RowLinear,
    norm2: LayerNorm,
    in_proj: RowLinear,
    out_proj: RowLinear,
    heads: usize,
    ff2: FeedForwardRows,
}

/// The Unlock_DNA core.
pub(crate) struct Conformer {
    pos: Vec<f32>,
    layers: Vec<Layer>,
    d: usize,
}

impl FeedForwardRows {
    fn new(ff: &FeedForward) -> Self {
        Self {
            norm: LayerNorm::new(&ff.layernorm),
            w1: RowLinear::new(&ff.linear1),
            w2: RowLinear::new(&ff.linear2),
        }
    }

    /// `x += 0.5 · FF(x)` on `len × d` rows.
    fn add_half(&self, x: &mut [f32], len: usize, d: usize) {
        let mut h = vec![0.0; len * d];
        self.norm.apply(x, &mut h);
        let ff = self.w1.n();
        let mut u = vec![0.0; len * ff];
        self.w1.apply(&h, len, &mut u);
        let half = ff / 2;
        let mut v = vec![0.0; len * half];
        for (vr, ur) in v.chunks_mut(half).zip(u.chunks(ff)) {
            kernels::swiglu_row(ur, vr);
        }
        self.w2.apply(&v, len, &mut h);
        x.iter_mut().zip(&h).for_each(|(a, b)| *a += 0.5 * b);
    }
}

impl Layer {
    fn new(l: &ConformerLayer) -> Option<Self> {
        let [d3, d] = l.attn.in_proj_weight.dims();
        Some(Self {
            ff1: FeedForwardRows::new(&l.ff1),
            norm1: LayerNorm::new(&l.layernorm1),
            depthwise: RowGrouped::new(rows::conv(&l.depthwise))?,
            pointwise: RowLinear::pointwise(&l.pointwise),
            norm2: LayerNorm::new(&l.layernorm2),
            in_proj: RowLinear::out_in(
                &tensor_values(l.attn.in_proj_weight.val()),
                Some(&tensor_values(l.attn.in_proj_bias.val())),
                d3,
                d,
            ),
            out_proj: RowLinear::new(&l.attn.out_proj),
            heads: l.attn.heads,
            ff2: FeedForwardRows::new(&l.ff2),
        })
    }

    /// `x += MHA(x)` on `seqs` sequences of `len × d` rows, attention within each sequence
    /// (PyTorch's `in_proj` layout: q, k, v stacked).
    fn attention(&self, x: &mut [f32], seqs: usize, len: usize, d: usize) {
        let (dh, rows) = (d / self.heads, seqs * len);
        let mut qkv = vec![0.0; rows * 3 * d];
        self.in_proj.apply(x, rows, &mut qkv);
        let mut probs = vec![0.0; len * len];
        let mut att = vec![0.0; rows * d];
        for (qs, atts) in qkv.chunks(len * 3 * d).zip(att.chunks_mut(len * d)) {
            for hd in 0..self.heads {
                let (q, out) = (&qs[hd * dh..], &mut atts[hd * dh..]);
                kernels::attention_head(q, 3 * d, d, dh, len, &mut probs, out, d);
            }
        }
        let mut out = vec![0.0; rows * d];
        self.out_proj.apply(&att, rows, &mut out);
        x.iter_mut().zip(&out).for_each(|(a, b)| *a += b);
    }
}

impl Conformer {
    /// `None` if a depthwise convolution cannot run on rows.
    pub(crate) fn new(core: &UnlockDnaCore) -> Option<Self> {
        let [_, d] = core.pos_embedding.dims();
        Some(Self {
            pos: tensor_values(core.pos_embedding.val()),
            layers: core.layers.iter().map(Layer::new).collect::<Option<_>>()?,
            d,
        })
    }

    /// `seqs` sequences of rows `[L, d]`, one after another → the same layout.
    fn apply(&self, mut t: Vec<f32>, seqs: usize, len: usize) -> Vec<f32> {
        let d = self.d;
        let block = len * d;
        assert_eq!(t.len(), seqs * block, "rows of the wrong size");
        // plus the position embedding
        for ts in t.chunks_mut(block) {
            ts.iter_mut().zip(&self.pos).for_each(|(v, p)| *v += p);
        }
        let rows = seqs * len;
        let mut h = vec![0.0; rows * d];
        let mut conv = vec![0.0; rows * d];
        let mut pw = vec![0.0; rows * d];
        let mut rotated = Vec::new();
        for layer in &self.layers {
            layer.ff1.add_half(&mut t, rows, d);
            // convolution module on LN1(x), added to LN1(x); then x = LN2(x + that)
            layer.norm1.apply(&t, &mut h);
            for (hs, cs) in h.chunks(block).zip(conv.chunks_mut(block)) {
                layer.depthwise.apply(hs, len, cs, &mut rotated);
            }
            // the 1×1 convolution is a linear layer on rows
            layer.pointwise.apply(&conv, rows, &mut pw);
            kernels::relu(&mut pw);
            for ((a, p), x) in h.iter_mut().zip(&pw).zip(&t) {
                *a += p + x;
            }
            layer.norm2.apply(&h, &mut t);
            layer.attention(&mut t, seqs, len, d);
            layer.ff2.add_half(&mut t, rows, d);
        }
        t
    }
}

impl CoreTwin for Conformer {
    fn pad(&self) -> usize {
        0
    }

    fn predict(&self, net: &Engine, x: &[f32], rows: usize) -> Vec<f32> {
        net.per_group(x, rows, |xs| {
            let seqs = xs.len() / net.row();
            let h = self.apply(net.first_rows(xs), seqs, net.length());
            let lay = Layout {
                seqs,
                len: net.length(),
                pad: 0,
            };
            net.decode(&h, &lay)
        })
    }
}
