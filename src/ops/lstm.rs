//! The LSTM: one direction, or both side by side, as one node (back-propagation through time
//! with one product per step).

use super::*;

/// What the LSTM's backward pass needs, kept from its forward pass.
struct LstmSaved {
    x: Values,
    w_ih: Values,
    w_hh: Values,
    /// Activated gates `i, f, g, o` per `(sequence, time)` row: `[b·l, 4H]`.
    gates: Vec<f32>,
    /// Cell states `[b·l, H]`.
    cells: Vec<f32>,
    /// Outputs `[b·l, H]`.
    out: Vec<f32>,
    dims: LstmDims,
}

debug_shows!(LstmSaved, "LstmSaved", dims);

#[derive(Debug, Clone, Copy)]
struct LstmDims {
    batch: usize,
    len: usize,
    inp: usize,
    hidden: usize,
    reverse: bool,
    /// Run on the calling thread only (the two directions of a BiLSTM run side by side).
    serial: bool,
}

impl LstmDims {
    /// The time index of processing step `s`.
    fn time(&self, s: usize) -> usize {
        if self.reverse { self.len - 1 - s } else { s }
    }

    /// Sequences per parallel chunk.
    fn chunk(&self) -> usize {
        if self.serial {
            return self.batch.max(1);
        }
        self.batch.div_ceil(rayon::current_num_threads()).max(1)
    }

    /// `c (m × n, row-major) = [c +] a · b`, operands with their strides, on all threads
    /// unless serial.
    fn matmul(
        &self,
        mnk: (usize, usize, usize),
        a: (&[f32], (usize, usize)),
        b: (&[f32], (usize, usize)),
        c: &mut [f32],
        accumulate: bool,
    ) {
        kernels::gemm_into(mnk, a, b, (c, (mnk.1, 1)), accumulate, !self.serial);
    }
}

/// One LSTM direction's weights in PyTorch's layout: `w_ih [4H, in]`, `w_hh [4H, H]`, two
/// biases `[4H]`; gates `i, f, g, o`.
pub(crate) struct LstmWeights<'a> {
    pub w_ih: &'a Tensor<2>,
    pub w_hh: &'a Tensor<2>,
    pub b_ih: &'a Tensor<1>,
    pub b_hh: &'a Tensor<1>,
}

/// A direction's weights on `Autodiff<Flex>`: the primitives (graph inputs) and their values.
struct LstmPrims {
    prims: [AdTensor; 4],
    w_ih: Values,
    w_hh: Values,
    bias: Vec<f32>,
    hidden: usize,
}

impl LstmWeights<'_> {
    fn prims(&self) -> Option<LstmPrims> {
        let prims = [
            primitive(self.w_ih)?,
            primitive(self.w_hh)?,
            primitive(self.b_ih)?,
            primitive(self.b_hh)?,
        ];
        let bias = values(prims[2].primitive())
            .iter()
            .zip(values(prims[3].primitive()).iter())
            .map(|(a, b)| a + b)
            .collect();
        Some(LstmPrims {
            w_ih: values(prims[0].primitive()),
            w_hh: values(prims[1].primitive()),
            bias,
            hidden: self.w_hh.dims()[1],
            prims,
        })
    }
}

/// One LSTM direction over `x: [batch, length, in]`: `[batch, length, H]`, or `None` off
/// `Autodiff<Flex>`.
pub(crate) fn lstm_direction(
    x: &Tensor<3>,
    weights: LstmWeights,
    reverse: bool,
) -> Option<Tensor<3>> {
    let [batch, len, inp] = x.dims();
    let xp = primitive(x)?;
    let w = weights.prims()?;
    let dims = LstmDims {
        batch,
        len,
        inp,
        hidden: w.hidden,
        reverse,
        serial: false,
    };
    let saved = lstm_forward(values(xp.primitive()), w.w_ih, w.w_hh, &w.bias, dims);
    let output = flex(saved.out.clone(), &[batch, len, w.hidden]);
    let [a, b, c, d] = &w.prims;
    let nodes = [xp.node(), a.node(), b.node(), c.node(), d.node()];
    Some(node(LstmBackward, nodes, Arc::new(saved), output))
}

/// A bidirectional LSTM layer as one node: both directions run side by side, each on one
/// thread (no synchronisation per time step), forwards and backwards. Output `[batch, length,
/// 2H]` (forward features, then backward); `None` off `Autodiff<Flex>`.
pub(crate) fn bilstm(
    x: &Tensor<3>,
    forward: LstmWeights,
    backward: LstmWeights,
) -> Option<Tensor<3>> {
    let [batch, len, inp] = x.dims();
    let xp = primitive(x)?;
    let (wf, wb) = (forward.prims()?, backward.prims()?);
    if wf.hidden != wb.hidden {
        return None;
    }
    let h = wf.hidden;
    let dims = |reverse| LstmDims {
        batch,
        len,
        inp,
        hidden: h,
        reverse,
        serial: true,
    };
    let xv = values(xp.primitive());
    let (sf, sb) = rayon::join(
        || {
            lstm_forward(
                xv.clone(),
                wf.w_ih.clone(),
                wf.w_hh.clone(),
                &wf.bias,
                dims(false),
            )
        },
        || {
            lstm_forward(
                xv.clone(),
                wb.w_ih.clone(),
                wb.w_hh.clone(),
                &wb.bias,
                dims(true),
            )
        },
    );
    let mut y = vec![0.0f32; batch * len * 2 * h];
    y.par_chunks_mut(2 * h * len)
        .zip(sf.out.par_chunks(h * len).zip(sb.out.par_chunks(h * len)))
        .for_each(|(ys, (f, b))| {
            for ((row, f), b) in ys.chunks_mut(2 * h).zip(f.chunks(h)).zip(b.chunks(h)) {
                row[..h].copy_from_slice(f);
                row[h..].copy_from_slice(b);
            }
        });
    let output = flex(y, &[batch, len, 2 * h]);
    let [f0, f1, f2, f3] = &wf.prims;
    let [b0, b1, b2, b3] = &wb.prims;
    let nodes = [
        xp.node(),
        f0.node(),
        f1.node(),
        f2.node(),
        f3.node(),
        b0.node(),
        b1.node(),
        b2.node(),
        b3.node(),
    ];
    Some(node(BiLstmBackward, nodes, Arc::new([sf, sb]), output))
}

#[derive(Debug)]
struct BiLstmBackward;

impl Backward<Flex, 9> for BiLstmBackward {
    type State = Arc<[LstmSaved; 2]>;

    fn backward(self, ops: Ops<Self::State, 9>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let [sf, sb] = &*ops.state;
        let d = sf.dims;
        let h = d.hidden;
        let split = |half: usize| -> Vec<f32> {
            dy.chunks(2 * h)
                .flat_map(|row| row[half * h..(half + 1) * h].iter().copied())
                .collect()
        };
        let (gf, gb) = rayon::join(
            || lstm_backward(sf, &split(0)),
            || lstm_backward(sb, &split(1)),
        );
        // The input's gradient is the sum of both directions'.
        let dx: Vec<f32> = gf.0.iter().zip(&gb.0).map(|(a, b)| a + b).collect();
        let g4 = 4 * h;
        let mut items = vec![(dx, vec![d.batch, d.len, d.inp])];
        for (_, dw_ih, dw_hh, db) in [gf, gb] {
            items.push((dw_ih, vec![g4, d.inp]));
            items.push((dw_hh, vec![g4, h]));
            items.push((db.clone(), vec![g4]));
            items.push((db, vec![g4]));
        }
        register!(grads, ops.parents, items);
    }
}

fn lstm_forward(x: Values, w_ih: Values, w_hh: Values, bias: &[f32], d: LstmDims) -> LstmSaved {
    let (h, l) = (d.hidden, d.len);
    let g4 = 4 * h;
    let rows = d.batch * l;
    // Input projections of every (sequence, time) row at once.
    let mut gates = vec![0.0f32; rows * g4];
    for row in gates.chunks_mut(g4) {
        row.copy_from_slice(bias);
    }
    d.matmul(
        (rows, g4, d.inp),
        (&x, (d.inp, 1)),
        (&w_ih, (1, d.inp)),
        &mut gates,
        true,
    );
    // W_hhᵀ row-major [H, 4H]: the per-step product reads it without repacking strides.
    let w_hh_t = kernels::transpose(&w_hh, g4);
    let mut cells = vec![0.0f32; rows * h];
    let mut out = vec![0.0f32; rows * h];
    let chunk = d.chunk();
    for s in 0..l {
        let t = d.time(s);
        let prev = (s > 0).then(|| d.time(s - 1));
        gates
            .par_chunks_mut(chunk * l * g4)
            .zip(cells.par_chunks_mut(chunk * l * h))
            .zip(out.par_chunks_mut(chunk * l * h))
            .for_each(|((g, c), y)| {
                let n = y.len() / (l * h);
                if let Some(p) = prev {
                    // gates[r, t] += h[r, prev] · W_hhᵀ
                    kernels::matmul_strided(
                        n,
                        g4,
                        h,
                        &y[p * h..],
                        (l * h, 1),
                        &w_hh_t,
                        (g4, 1),
                        &mut g[t * g4..],
                        l * g4,
                    );
                }
                let mut tc = vec![0.0f32; h];
                for r in 0..n {
                    let (row, base) = (r * l + t, r * l * h);
                    // The cell state starts as the previous step's (zero at the first step).
                    if let Some(p) = prev {
                        c.copy_within(base + p * h..base + (p + 1) * h, base + t * h);
                    }
                    kernels::lstm_cell(
                        kernels::lstm_gates(&mut g[row * g4..(row + 1) * g4], h),
                        &mut c[row * h..(row + 1) * h],
                        &mut y[row * h..(row + 1) * h],
                        &mut tc,
                    );
                }
            });
    }
    LstmSaved {
        x,
        w_ih,
        w_hh,
        gates,
        cells,
        out,
        dims: d,
    }
}

/// Gradients of one LSTM direction: `(dx [b·l, in], dW_ih [4H, in], dW_hh [4H, H], db [4H])`.
fn lstm_backward(s: &LstmSaved, dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = s.dims;
    let (h, l) = (d.hidden, d.len);
    let g4 = 4 * h;
    let rows = d.batch * l;
    // Gradients of the gates' pre-activations, laid out like `gates`.
    let mut da = vec![0.0f32; rows * g4];
    let mut dh = vec![0.0f32; d.batch * h];
    let mut dc = vec![0.0f32; d.batch * h];
    let chunk = d.chunk();
    for step in (0..l).rev() {
        let t = d.time(step);
        let prev = (step > 0).then(|| d.time(step - 1));
        da.par_chunks_mut(chunk * l * g4)
            .zip(dh.par_chunks_mut(chunk * h))
            .zip(dc.par_chunks_mut(chunk * h))
            .enumerate()
            .for_each(|(ci, ((da, dh), dc))| {
                let n = dh.len() / h;
                let first = ci * chunk;
                let mut tc = vec![0.0f32; h];
                for r in 0..n {
                    let row = (first + r) * l + t;
                    let g = &s.gates[row * g4..(row + 1) * g4];
                    let c = &s.cells[row * h..(row + 1) * h];
                    tc.copy_from_slice(c);
                    kernels::tanh(&mut tc);
                    let out = &mut da[(r * l + t) * g4..(r * l + t + 1) * g4];
                    let (dh_r, dc_r) = (&mut dh[r * h..(r + 1) * h], &mut dc[r * h..(r + 1) * h]);
                    let dy_r = &dy[row * h..(row + 1) * h];
                    for j in 0..h {
                        let (i, f, gg, o) = (g[j], g[h + j], g[2 * h + j], g[3 * h + j]);
                        let c_prev = prev.map_or(0.0, |p| s.cells[((first + r) * l + p) * h + j]);
                        let dhj = dy_r[j] + dh_r[j];
                        let dcj = dhj * o * (1.0 - tc[j] * tc[j]) + dc_r[j];
                        out[j] = dcj * gg * i * (1.0 - i);
                        out[h + j] = dcj * c_prev * f * (1.0 - f);
                        out[2 * h + j] = dcj * i * (1.0 - gg * gg);
                        out[3 * h + j] = dhj * tc[j] * o * (1.0 - o);
                        dc_r[j] = dcj * f;
                    }
                }
                // dh[r] = dA[r, t] · W_hh
                kernels::matmul(
                    n,
                    h,
                    g4,
                    &da[t * g4..],
                    (l * g4, 1),
                    &s.w_hh,
                    (h, 1),
                    dh,
                    false,
                );
            });
    }
    // The state each step read: h at the previous time, zero at the first step.
    let mut h_prev = vec![0.0f32; rows * h];
    for r in 0..d.batch {
        for step in 1..l {
            let (t, p) = (d.time(step), d.time(step - 1));
            h_prev[(r * l + t) * h..(r * l + t + 1) * h]
                .copy_from_slice(&s.out[(r * l + p) * h..(r * l + p + 1) * h]);
        }
    }
    let mut dw_hh = vec![0.0f32; g4 * h];
    d.matmul(
        (g4, h, rows),
        (&da, (1, g4)),
        (&h_prev, (h, 1)),
        &mut dw_hh,
        false,
    );
    let mut dw_ih = vec![0.0f32; g4 * d.inp];
    d.matmul(
        (g4, d.inp, rows),
        (&da, (1, g4)),
        (&s.x, (d.inp, 1)),
        &mut dw_ih,
        false,
    );
    let mut dx = vec![0.0f32; rows * d.inp];
    d.matmul(
        (rows, d.inp, g4),
        (&da, (g4, 1)),
        (&s.w_ih, (d.inp, 1)),
        &mut dx,
        false,
    );
    let mut db = vec![0.0f32; g4];
    for row in da.chunks(g4) {
        for (acc, v) in db.iter_mut().zip(row) {
            *acc += v;
        }
    }
    (dx, dw_ih, dw_hh, db)
}

#[derive(Debug)]
struct LstmBackward;

impl Backward<Flex, 5> for LstmBackward {
    type State = Arc<LstmSaved>;

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let d = ops.state.dims;
        let (dx, dw_ih, dw_hh, db) = lstm_backward(&ops.state, &dy);
        let g4 = 4 * d.hidden;
        let items = [
            (dx, vec![d.batch, d.len, d.inp]),
            (dw_ih, vec![g4, d.inp]),
            (dw_hh, vec![g4, d.hidden]),
            (db.clone(), vec![g4]),
            (db, vec![g4]),
        ];
        register!(grads, ops.parents, items);
    }
}
