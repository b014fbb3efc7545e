//! Normalisation: BatchNorm with batch statistics (+ SiLU), LayerNorm.

use super::*;

/// Batch normalisation with batch statistics (training), optionally followed by SiLU, as one
/// node: `y = act(γ · (x − μ) / sqrt(σ² + ε) + β)` per channel over `[batch, channels, len]`.
/// Returns the output and the batch mean and biased variance (for the running statistics), or
/// `None` off `Autodiff<Flex>`.
pub(crate) fn batch_norm_train(
    x: &Tensor<3>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    eps: f64,
    silu: bool,
) -> Option<(Tensor<3>, Vec<f32>, Vec<f32>)> {
    let [batch, ch, len] = x.dims();
    let (xp, gp, bp) = (primitive(x)?, primitive(gamma)?, primitive(beta)?);
    let xv = values(xp.primitive());
    let (gv, bv) = (values(gp.primitive()), values(bp.primitive()));
    // Plain slices in the loops: indexing `Values` re-derives the slice each time.
    let (g, b): (&[f32], &[f32]) = (&gv, &bv);
    let n = (batch * len) as f64;
    let stats: Vec<(f32, f32)> = (0..ch)
        .into_par_iter()
        .map(|c| {
            let rows = || (0..batch).map(|s| &xv[(s * ch + c) * len..(s * ch + c + 1) * len]);
            let mean = rows().map(|r| kernels::sum(r) as f64).sum::<f64>() / n;
            let var = rows()
                .map(|r| kernels::sum_sq_dev(r, mean as f32) as f64)
                .sum::<f64>()
                / n;
            (mean as f32, var as f32)
        })
        .collect();
    let inv: Vec<f32> = stats
        .iter()
        .map(|&(_, v)| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect();
    let mut xhat = vec![0.0f32; xv.len()];
    let mut y = vec![0.0f32; xv.len()];
    let chunk = row_chunk(len);
    xhat.par_chunks_mut(chunk)
        .zip(y.par_chunks_mut(chunk))
        .enumerate()
        .for_each(|(ci, (xhc, yc))| {
            let first_row = ci * chunk / len;
            for (r, (xh, yr)) in xhc.chunks_mut(len).zip(yc.chunks_mut(len)).enumerate() {
                let row = first_row + r;
                let c = row % ch;
                let (mu, iv) = (stats[c].0, inv[c]);
                for ((h, o), &v) in xh.iter_mut().zip(yr.iter_mut()).zip(&xv[row * len..]) {
                    *h = (v - mu) * iv;
                    *o = g[c] * *h + b[c];
                }
                if silu {
                    kernels::silu(yr);
                }
            }
        });
    let output = flex(y, &[batch, ch, len]);
    let saved = Arc::new(NormSaved {
        xhat,
        gamma: gv.clone(),
        beta: bv.clone(),
        inv,
        dims: [batch, ch, len],
        silu,
    });
    let out = node(
        NormBackward,
        [xp.node(), gp.node(), bp.node()],
        saved,
        output,
    );
    let (mean, var) = stats.into_iter().unzip();
    Some((out, mean, var))
}

struct NormSaved {
    xhat: Vec<f32>,
    gamma: Values,
    beta: Values,
    inv: Vec<f32>,
    dims: [usize; 3],
    silu: bool,
}

debug_shows!(NormSaved, "NormSaved", dims);

/// Gradients of batch normalisation (+ SiLU): `(dx, dγ, dβ)`.
fn norm_backward(s: &NormSaved, dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [batch, ch, len] = s.dims;
    let (g, b): (&[f32], &[f32]) = (&s.gamma, &s.beta);
    let xhat: &[f32] = &s.xhat;
    let chunk = row_chunk(len);
    // Gradient at the affine output z = γ·x̂ + β (through SiLU when there is one).
    let mut dz = vec![0.0f32; dy.len()];
    dz.par_chunks_mut(chunk)
        .zip(dy.par_chunks(chunk))
        .enumerate()
        .for_each(|(ci, (dzc, dyc))| {
            let first_row = ci * chunk / len;
            let mut sig = vec![0.0f32; len];
            for (r, (d, dyr)) in dzc.chunks_mut(len).zip(dyc.chunks(len)).enumerate() {
                let row = first_row + r;
                let c = row % ch;
                if !s.silu {
                    d.copy_from_slice(dyr);
                    continue;
                }
                let xh = &xhat[row * len..(row + 1) * len];
                for (v, &h) in sig.iter_mut().zip(xh) {
                    *v = -(g[c] * h + b[c]);
                }
                kernels::sigmoid(&mut sig); // sigmoid(−z) = 1 − sigmoid(z)
                for (((dv, &dyv), &h), &one_minus) in d.iter_mut().zip(dyr).zip(xh).zip(&sig) {
                    let z = g[c] * h + b[c];
                    *dv = dyv * (1.0 - one_minus) * (1.0 + z * one_minus);
                }
            }
        });
    let sums: Vec<(f64, f64)> = (0..ch)
        .into_par_iter()
        .map(|c| {
            (0..batch).fold((0.0, 0.0), |(a, bx), sq| {
                let r = (sq * ch + c) * len..(sq * ch + c + 1) * len;
                let (d, xh) = (&dz[r.clone()], &xhat[r]);
                let (sd, sdx) = (kernels::sum(d), kernels::dot(d, xh));
                (a + sd as f64, bx + sdx as f64)
            })
        })
        .collect();
    let dgamma = sums.iter().map(|s| s.1 as f32).collect();
    let dbeta = sums.iter().map(|s| s.0 as f32).collect();
    // dx, in place of dz.
    let n = (batch * len) as f32;
    dz.par_chunks_mut(chunk).enumerate().for_each(|(ci, dzc)| {
        let first_row = ci * chunk / len;
        for (r, d) in dzc.chunks_mut(len).enumerate() {
            let row = first_row + r;
            let c = row % ch;
            let (sd, sdx) = (sums[c].0 as f32 / n, sums[c].1 as f32 / n);
            let k = g[c] * s.inv[c];
            for (o, &h) in d.iter_mut().zip(&xhat[row * len..(row + 1) * len]) {
                *o = k * (*o - sd - h * sdx);
            }
        }
    });
    (dz, dgamma, dbeta)
}

#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = Arc<NormSaved>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let (dx, dg, db) = norm_backward(&ops.state, &dy);
        let [batch, ch, len] = ops.state.dims;
        let shapes = [vec![batch, ch, len], vec![ch], vec![ch]];
        register!(grads, ops.parents, [dx, dg, db].into_iter().zip(shapes));
    }
}

/// Layer normalisation over the last axis (`γ`, optional `β`) as one node, or `None` off
/// `Autodiff<Flex>`.
pub(crate) fn layer_norm<const D: usize>(
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: Option<&Tensor<1>>,
    eps: f64,
) -> Option<Tensor<D>> {
    let d = gamma.dims()[0];
    if x.dims()[D - 1] != d {
        return None;
    }
    let (xp, gp) = (primitive(x)?, primitive(gamma)?);
    let bp = optional_primitive(beta)?;
    let xv = values(xp.primitive());
    let gv = values(gp.primitive());
    let bv = bp.as_ref().map(|b| values(b.primitive()));
    let (g, b): (&[f32], Option<&[f32]>) = (&gv, bv.as_deref());
    let rows = xv.len() / d;
    let mut xhat = vec![0.0f32; xv.len()];
    let mut inv = vec![0.0f32; rows];
    let mut y = vec![0.0f32; xv.len()];
    let chunk = row_chunk(d);
    xhat.par_chunks_mut(chunk)
        .zip(y.par_chunks_mut(chunk))
        .zip(inv.par_chunks_mut(chunk / d))
        .zip(xv.par_chunks(chunk))
        .for_each(|(((xh, yc), iv), xc)| {
            for (((xr, yr), i), src) in xh
                .chunks_mut(d)
                .zip(yc.chunks_mut(d))
                .zip(iv.iter_mut())
                .zip(xc.chunks(d))
            {
                *i = kernels::layer_norm_row(src, g, b, eps as f32, xr, yr);
            }
        });
    let output = flex(y, &x.dims());
    let saved = Arc::new(LayerNormSaved {
        xhat,
        inv,
        gamma: gv.clone(),
        shape: x.dims().to_vec(),
    });
    Some(layer_node((&xp, &gp, bp.as_ref()), saved, output))
}

struct LayerNormSaved {
    xhat: Vec<f32>,
    inv: Vec<f32>,
    gamma: Values,
    shape: Vec<usize>,
}

debug_shows!(LayerNormSaved, "LayerNormSaved", shape);

/// `(dx, dγ, dβ)` of layer normalisation.
fn layer_norm_backward(s: &LayerNormSaved, dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let gamma: &[f32] = &s.gamma;
    let d = gamma.len();
    let chunk = row_chunk(d);
    let mut dx = vec![0.0f32; dy.len()];
    let partial: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(chunk)
        .zip(dy.par_chunks(chunk))
        .zip(s.xhat.par_chunks(chunk))
        .zip(s.inv.par_chunks(chunk / d))
        .map(|(((dxc, dyc), xhc), ivc)| {
            let (mut dg, mut db) = (vec![0.0f32; d], vec![0.0f32; d]);
            for (((o, dr), xr), &i) in dxc
                .chunks_mut(d)
                .zip(dyc.chunks(d))
                .zip(xhc.chunks(d))
                .zip(ivc)
            {
                // o ← dy·γ first: its mean and its mean against x̂ (vectorised sums).
                for j in 0..d {
                    o[j] = dr[j] * gamma[j];
                    dg[j] += dr[j] * xr[j];
                    db[j] += dr[j];
                }
                let (m1, m2) = (kernels::sum(o) / d as f32, kernels::dot(o, xr) / d as f32);
                for j in 0..d {
                    o[j] = i * (o[j] - m1 - xr[j] * m2);
                }
            }
            (dg, db)
        })
        .collect();
    let (mut dg, mut db) = (vec![0.0f32; d], vec![0.0f32; d]);
    for (g, b) in partial {
        dg.iter_mut().zip(g).for_each(|(a, v)| *a += v);
        db.iter_mut().zip(b).for_each(|(a, v)| *a += v);
    }
    (dx, dg, db)
}

impl LayerGrads for LayerNormSaved {
    fn grads(&self, dy: &[f32]) -> [(Vec<f32>, Vec<usize>); 3] {
        let (dx, dg, db) = layer_norm_backward(self, dy);
        let d = self.gamma.len();
        [(dx, self.shape.clone()), (dg, vec![d]), (db, vec![d])]
    }
}
