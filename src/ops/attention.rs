//! Multi-head softmax self-attention.

use super::*;

/// Scaled dot-product self-attention of all heads from stacked projections `qkv [b, l, 3d]`
/// (`Q, K, V` blocks of `d`, each split into `heads` of `d/heads`): `[b, l, d]` with heads
/// concatenated, no mask, as one node; `None` off `Autodiff<Flex>`.
pub(crate) fn attention(qkv: &Tensor<3>, heads: usize) -> Option<Tensor<3>> {
    let [b, l, d3] = qkv.dims();
    if !d3.is_multiple_of(3) || !(d3 / 3).is_multiple_of(heads) {
        return None;
    }
    let qp = primitive(qkv)?;
    let x = values(qp.primitive());
    let d = d3 / 3;
    let dh = d / heads;
    // Per (sequence, head): the attention weights [l, l] and the output [l, dh].
    let per: Vec<(Vec<f32>, Vec<f32>)> = (0..b * heads)
        .into_par_iter()
        .map(|ph| {
            let (s, h) = (ph / heads, ph % heads);
            let base = s * l * d3 + h * dh;
            let mut p = vec![0.0f32; l * l];
            let mut o = vec![0.0f32; l * dh];
            kernels::attention_head(&x[base..], d3, d, dh, l, &mut p, &mut o, dh);
            (p, o)
        })
        .collect();
    let mut y = vec![0.0f32; b * l * d];
    y.par_chunks_mut(l * d).enumerate().for_each(|(s, ys)| {
        for h in 0..heads {
            let o = &per[s * heads + h].1;
            for t in 0..l {
                ys[t * d + h * dh..t * d + (h + 1) * dh].copy_from_slice(&o[t * dh..(t + 1) * dh]);
            }
        }
    });
    let output = flex(y, &[b, l, d]);
    let saved = Arc::new(AttentionSaved {
        qkv: x,
        probs: per.into_iter().map(|(p, _)| p).collect(),
        dims: [b, l, d, heads],
    });
    Some(node(AttentionBackward, [qp.node()], saved, output))
}

struct AttentionSaved {
    qkv: Values,
    /// Softmax weights per (sequence, head), `[l, l]`.
    probs: Vec<Vec<f32>>,
    dims: [usize; 4],
}

debug_shows!(AttentionSaved, "AttentionSaved", dims);

/// `d qkv [b, l, 3d]` from `dy [b, l, d]`.
fn attention_backward(s: &AttentionSaved, dy: &[f32]) -> Vec<f32> {
    let [b, l, d, heads] = s.dims;
    let (d3, dh) = (3 * d, d / heads);
    let scale = 1.0 / (dh as f32).sqrt();
    let x = &s.qkv;
    // Per (sequence, head): dQ, dK, dV as [l, dh] each.
    let per: Vec<[Vec<f32>; 3]> = (0..b * heads)
        .into_par_iter()
        .map(|ph| {
            let (sq, h) = (ph / heads, ph % heads);
            let base = sq * l * d3 + h * dh;
            let dyb = sq * l * d + h * dh;
            let p = &s.probs[ph];
            // dP = dO Vᵀ
            let mut dp = vec![0.0f32; l * l];
            kernels::matmul(
                l,
                l,
                dh,
                &dy[dyb..],
                (d, 1),
                &x[base + 2 * d..],
                (1, d3),
                &mut dp,
                false,
            );
            // dV = Pᵀ dO
            let mut dv = vec![0.0f32; l * dh];
            kernels::matmul(l, dh, l, p, (1, l), &dy[dyb..], (d, 1), &mut dv, false);
            // dS = P ⊙ (dP − rowsum(dP ⊙ P)), times the scale.
            for (dr, pr) in dp.chunks_mut(l).zip(p.chunks(l)) {
                let dot = kernels::dot(dr, pr);
                dr.iter_mut()
                    .zip(pr)
                    .for_each(|(a, &pv)| *a = pv * (*a - dot) * scale);
            }
            let mut dq = vec![0.0f32; l * dh];
            kernels::matmul(
                l,
                dh,
                l,
                &dp,
                (l, 1),
                &x[base + d..],
                (d3, 1),
                &mut dq,
                false,
            );
            let mut dk = vec![0.0f32; l * dh];
            kernels::matmul(l, dh, l, &dp, (1, l), &x[base..], (d3, 1), &mut dk, false);
            [dq, dk, dv]
        })
        .collect();
    let mut dx = vec![0.0f32; b * l * d3];
    dx.par_chunks_mut(l * d3).enumerate().for_each(|(sq, xs)| {
        for h in 0..heads {
            for (part, g) in per[sq * heads + h].iter().enumerate() {
                for t in 0..l {
                    let at = t * d3 + part * d + h * dh;
                    xs[at..at + dh].copy_from_slice(&g[t * dh..(t + 1) * dh]);
                }
            }
        }
    });
    dx
}

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 1> for AttentionBackward {
    type State = Arc<AttentionSaved>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let [node] = ops.parents;
        if let Some(node) = node {
            let [b, l, d, _] = ops.state.dims;
            let dx = attention_backward(&ops.state, &dy);
            grads.register::<Flex>(node.id, flex(dx, &[b, l, 3 * d]));
        }
    }
}
