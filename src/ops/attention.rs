//! Multi-head softmax self-attention.

use super::*;

/// Query rows per block of the blocked attention.
const BLOCK: usize = 64;

/// Above this many bytes of softmax weights for the whole batch, attention keeps only each
/// row's softmax statistics and recomputes the weights one block of query rows at a time in
/// the backward pass (flash-attention's recomputation, on the CPU): memory `O(b·l·d)` instead
/// of `O(b·heads·l²)`. DREAM-Attn at 2,114 nt and batch 64 would hold 4.58 GB per layer.
pub(crate) const SAVED_WEIGHTS_LIMIT: usize = 256 << 20;

/// Scaled dot-product self-attention of all heads from stacked projections `qkv [b, l, 3d]`
/// (`Q, K, V` blocks of `d`, each split into `heads` of `d/heads`): `[b, l, d]` with heads
/// concatenated, no mask, as one node; `None` off `Autodiff<Flex>`. Blocked (see
/// [`SAVED_WEIGHTS_LIMIT`]) when the weights would be large.
pub(crate) fn attention(qkv: &Tensor<3>, heads: usize) -> Option<Tensor<3>> {
    let [b, l, _] = qkv.dims();
    let blocked = b * heads * l * l * 4 > SAVED_WEIGHTS_LIMIT;
    attention_with(qkv, heads, blocked)
}

/// [`attention`], saving the whole weight matrices (`blocked = false`) or only each row's
/// softmax statistics (`true`).
pub(crate) fn attention_with(qkv: &Tensor<3>, heads: usize, blocked: bool) -> Option<Tensor<3>> {
    let [b, l, d3] = qkv.dims();
    if !d3.is_multiple_of(3) || !(d3 / 3).is_multiple_of(heads) {
        return None;
    }
    let qp = primitive(qkv)?;
    let x = values(qp.primitive());
    let d = d3 / 3;
    let dh = d / heads;
    // Per (sequence, head): what the backward pass needs and the output [l, dh].
    let per: Vec<(Weights, Vec<f32>)> = (0..b * heads)
        .into_par_iter()
        .map(|ph| {
            let (s, h) = (ph / heads, ph % heads);
            let base = s * l * d3 + h * dh;
            let mut o = vec![0.0f32; l * dh];
            if blocked {
                let stats = blocked_head(&x[base..], d3, d, dh, l, &mut o);
                (Weights::Stats(stats), o)
            } else {
                let mut p = vec![0.0f32; l * l];
                kernels::attention_head(&x[base..], d3, d, dh, l, &mut p, &mut o, dh);
                (Weights::Full(p), o)
            }
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
        weights: per.into_iter().map(|(p, _)| p).collect(),
        dims: [b, l, d, heads],
    });
    Some(node(AttentionBackward, [qp.node()], saved, output))
}

/// One head's output `o [l, dh]`, a block of query rows at a time; returns each row's softmax
/// statistics `(max of the raw scores, log of the normaliser)`.
fn blocked_head(
    x: &[f32],
    d3: usize,
    d: usize,
    dh: usize,
    l: usize,
    o: &mut [f32],
) -> Vec<(f32, f32)> {
    let scale = 1.0 / (dh as f32).sqrt();
    let mut stats = vec![(0.0, 0.0); l];
    let mut s = vec![0.0f32; BLOCK * l];
    for r0 in (0..l).step_by(BLOCK) {
        let bq = BLOCK.min(l - r0);
        let s = &mut s[..bq * l];
        kernels::matmul(
            bq,
            l,
            dh,
            &x[r0 * d3..],
            (d3, 1),
            &x[d..],
            (1, d3),
            s,
            false,
        );
        for (i, row) in s.chunks_mut(l).enumerate() {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            row.iter_mut().for_each(|v| *v = (*v - max) * scale);
            kernels::exp_in_place(row);
            let z = kernels::sum(row);
            row.iter_mut().for_each(|v| *v /= z);
            stats[r0 + i] = (max, z.ln());
        }
        kernels::gemm_block(
            bq,
            dh,
            l,
            s,
            (l, 1),
            &x[2 * d..],
            (d3, 1),
            &mut o[r0 * dh..],
            dh,
            false,
            false,
        );
    }
    stats
}

/// What the backward pass of one (sequence, head) keeps.
enum Weights {
    /// The softmax weights `[l, l]`.
    Full(Vec<f32>),
    /// Each query row's softmax statistics; the weights are recomputed.
    Stats(Vec<(f32, f32)>),
}

struct AttentionSaved {
    qkv: Values,
    weights: Vec<Weights>,
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
            let (x, dy) = (&x[base..], &dy[dyb..]);
            let mut g = [
                vec![0.0f32; l * dh],
                vec![0.0f32; l * dh],
                vec![0.0f32; l * dh],
            ];
            match &s.weights[ph] {
                Weights::Full(p) => {
                    let mut dp = vec![0.0f32; l * l];
                    head_backward(x, dy, [d3, d, dh, l], 0, l, p, &mut dp, scale, &mut g);
                }
                Weights::Stats(stats) => {
                    let mut p = vec![0.0f32; BLOCK * l];
                    let mut dp = vec![0.0f32; BLOCK * l];
                    for r0 in (0..l).step_by(BLOCK) {
                        let bq = BLOCK.min(l - r0);
                        let p = &mut p[..bq * l];
                        // The block's weights again, from its rows' statistics.
                        kernels::matmul(
                            bq,
                            l,
                            dh,
                            &x[r0 * d3..],
                            (d3, 1),
                            &x[d..],
                            (1, d3),
                            p,
                            false,
                        );
                        for (row, &(max, lnz)) in p.chunks_mut(l).zip(&stats[r0..r0 + bq]) {
                            row.iter_mut().for_each(|v| *v = (*v - max) * scale - lnz);
                            kernels::exp_in_place(row);
                        }
                        head_backward(
                            x,
                            dy,
                            [d3, d, dh, l],
                            r0,
                            bq,
                            p,
                            &mut dp[..bq * l],
                            scale,
                            &mut g,
                        );
                    }
                }
            }
            g
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

/// The gradients of query rows `r0..r0 + bq` of one head, from their weights `p [bq, l]`:
/// their `dQ` rows, and their parts of `dK` and `dV` added to `g = [dQ, dK, dV]`.
#[allow(clippy::too_many_arguments)]
fn head_backward(
    x: &[f32],
    dy: &[f32],
    [d3, d, dh, l]: [usize; 4],
    r0: usize,
    bq: usize,
    p: &[f32],
    dp: &mut [f32],
    scale: f32,
    g: &mut [Vec<f32>; 3],
) {
    let [dq, dk, dv] = g;
    let dyr = &dy[r0 * d..];
    // dP = dO Vᵀ
    kernels::matmul(bq, l, dh, dyr, (d, 1), &x[2 * d..], (1, d3), dp, false);
    // dV += Pᵀ dO
    kernels::matmul(l, dh, bq, p, (1, l), dyr, (d, 1), dv, true);
    // dS = P ⊙ (dP − rowsum(dP ⊙ P)), times the scale.
    for (dr, pr) in dp.chunks_mut(l).zip(p.chunks(l)) {
        let dot = kernels::dot(dr, pr);
        dr.iter_mut()
            .zip(pr)
            .for_each(|(a, &pv)| *a = pv * (*a - dot) * scale);
    }
    // dQ = dS K, dK += dSᵀ Q
    kernels::matmul(
        bq,
        dh,
        l,
        dp,
        (l, 1),
        &x[d..],
        (d3, 1),
        &mut dq[r0 * dh..(r0 + bq) * dh],
        false,
    );
    kernels::matmul(l, dh, bq, dp, (1, l), &x[r0 * d3..], (d3, 1), dk, true);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_all_close, normal, probed};

    /// The blocked attention (row statistics saved, weights recomputed block by block) gives
    /// the plain one's output and input gradient, on a length that is not a multiple of the
    /// block.
    #[test]
    fn blocked_attention_is_exact_to_the_plain_one() {
        let device = burn::tensor::Device::flex().autodiff();
        let (b, l, d, heads) = (2, 2 * BLOCK + 13, 16, 4);
        let x = normal([b, l, 3 * d], 0.0, 1.0, 5, &device).require_grad();
        let probe = normal([b, l, d], 0.0, 1.0, 6, &device);
        let (plain, _) = probed(&x, attention_with(&x, heads, false).unwrap(), &probe);
        let (blocked, _) = probed(&x, attention_with(&x, heads, true).unwrap(), &probe);
        assert_all_close(&plain, &blocked, 1e-5, "blocked attention");
        assert!(
            plain[1].iter().any(|v| v.abs() > 1e-3),
            "the gradient is not trivial"
        );
    }
}
