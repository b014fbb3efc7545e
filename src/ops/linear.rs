//! Linear layers, either weight layout, all rows in one product.

use super::*;

/// Where a linear layer's weight matrix keeps `W[i, o]` (input `i`, output `o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightLayout {
    /// `[in, out]`, as burn's `Linear` stores it.
    InOut,
    /// `[out, in]`, as PyTorch stores it.
    OutIn,
}

#[derive(Debug, Clone, Copy)]
struct LinearDims {
    rows: usize,
    din: usize,
    dout: usize,
    layout: WeightLayout,
}

impl LinearDims {
    /// `(row, column)` strides of `W` read as a `[din, dout]` matrix.
    fn w_strides(&self) -> (usize, usize) {
        match self.layout {
            WeightLayout::InOut => (self.dout, 1),
            WeightLayout::OutIn => (1, self.din),
        }
    }
}

struct LinearSaved {
    x: Values,
    x_shape: Vec<usize>,
    w: Values,
    dims: LinearDims,
}

debug_shows!(LinearSaved, "LinearSaved", dims);

/// `y = x · W (+ b)` over the last dimension of `x` (`[.., din]` → `[.., dout]`) as one node
/// whose products run on all rows at once, or `None` off `Autodiff<Flex>`.
pub(crate) fn linear<const D: usize>(
    x: &Tensor<D>,
    weight: &Tensor<2>,
    layout: WeightLayout,
    bias: Option<&Tensor<1>>,
) -> Option<Tensor<D>> {
    let dims = x.dims();
    let din = dims[D - 1];
    let [a, b] = weight.dims();
    let dout = match layout {
        WeightLayout::InOut if a == din => b,
        WeightLayout::OutIn if b == din => a,
        _ => return None,
    };
    if bias.is_some_and(|b| b.dims() != [dout]) {
        return None;
    }
    let (xp, wp) = (primitive(x)?, primitive(weight)?);
    let bp = optional_primitive(bias)?;
    let d = LinearDims {
        rows: dims.iter().product::<usize>() / din.max(1),
        din,
        dout,
        layout,
    };
    let (xv, wv) = (values(xp.primitive()), values(wp.primitive()));
    let mut y = vec![0.0f32; d.rows * dout];
    if let Some(b) = &bp {
        let b = values(b.primitive());
        for row in y.chunks_mut(dout) {
            row.copy_from_slice(&b);
        }
    }
    kernels::gemm_block(
        d.rows,
        dout,
        din,
        &xv,
        (din, 1),
        &wv,
        d.w_strides(),
        &mut y,
        dout,
        bp.is_some(),
        true,
    );
    let mut shape = dims.to_vec();
    shape[D - 1] = dout;
    let saved = Arc::new(LinearSaved {
        x: xv,
        x_shape: dims.to_vec(),
        w: wv,
        dims: d,
    });
    Some(layer_node((&xp, &wp, bp.as_ref()), saved, flex(y, &shape)))
}

/// `(dx [rows, din], dW in its layout, db [dout])`.
fn linear_backward(s: &LinearSaved, dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let LinearDims {
        rows, din, dout, ..
    } = s.dims;
    let (wr, wc) = s.dims.w_strides();
    // dX = dY · Wᵀ
    let mut dx = vec![0.0f32; rows * din];
    kernels::gemm_block(
        rows,
        din,
        dout,
        dy,
        (dout, 1),
        &s.w,
        (wc, wr),
        &mut dx,
        din,
        false,
        true,
    );
    // dW[i, o] = Σ_r X[r, i] · dY[r, o], written in the weight's own layout
    let mut dw = vec![0.0f32; din * dout];
    kernels::gemm_into(
        (din, dout, rows),
        (&s.x, (1, din)),
        (dy, (dout, 1)),
        (&mut dw, (wr, wc)),
        false,
        true,
    );
    let db = dy.chunks(dout).fold(vec![0.0f32; dout], |mut acc, row| {
        acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
        acc
    });
    (dx, dw, db)
}

impl LayerGrads for LinearSaved {
    fn grads(&self, dy: &[f32]) -> [(Vec<f32>, Vec<usize>); 3] {
        let d = self.dims;
        let (dx, dw, db) = linear_backward(self, dy);
        let w_shape = match d.layout {
            WeightLayout::InOut => vec![d.din, d.dout],
            WeightLayout::OutIn => vec![d.dout, d.din],
        };
        [
            (dx, self.x_shape.clone()),
            (dw, w_shape),
            (db, vec![d.dout]),
        ]
    }
}
