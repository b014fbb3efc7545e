//! A matrix product with weights packed once, when the engine is built: `out[r, :] (+)= bias +
//! x[r, :] · W` for rows of `x` that each hold `K` contiguous values at any row stride.
//!
//! Two things make it fit the engine where a general product (`gemm`) loses time:
//! - the weights are already in the micro-kernel's order (panels of 64 output columns, `K`
//!   rows each), so nothing is packed per call. `gemm` repacks a row-major operand on every
//!   call: the BiLSTM's step product runs 150 times per sequence batch.
//! - the rows of `x` may overlap. A `same` convolution over channels-last input is then one
//!   product: output position `j`'s receptive field, taps × channels, is the contiguous run of
//!   `k · cin` values starting at row `j − pad`, so the row stride is `cin` and no im2col copy
//!   is made.
//!
//! The micro-kernel (AVX-512: six rows × 64 columns held in 24 registers) runs when the CPU
//! has AVX-512; elsewhere the same product goes through [`super::gemm_into`], the
//! weights then kept row-major. The layout is chosen once, when the weights are packed.

/// Output columns per panel: four 16-lane vectors.
const NR: usize = 64;
/// Rows per micro-kernel call.
const MR: usize = 6;
/// Rows per block: their `KC` values stay in the L2 cache while every panel passes over them.
const MC: usize = 16 * MR;
/// Inner dimension per block: a panel's `KC × 64` weights (96 KiB) stay in the L2 cache while
/// every row block passes over them.
const KC: usize = 384;

/// Weights `[K, N]` (with an optional bias `[N]`), packed for [`Panels::apply`].
#[derive(Debug, Clone)]
pub struct Panels {
    k: usize,
    n: usize,
    /// Whether the weights are packed for the AVX-512 micro-kernel (else row-major for `gemm`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    wide: bool,
    /// Wide: panel `p` holds `W[kk, 64p .. 64p + 64]` for every `kk` (zero past `N`).
    /// Otherwise `W` row-major, `[K, N]`.
    w: Vec<f32>,
    /// The bias padded to whole panels (zero when there is none).
    bias: Vec<f32>,
}

impl Panels {
    /// Pack `W[kk, o] = w(kk, o)` for `kk < k`, `o < n`, for this CPU.
    pub fn new(k: usize, n: usize, w: impl Fn(usize, usize) -> f32, bias: Option<&[f32]>) -> Self {
        #[cfg(target_arch = "x86_64")]
        let wide = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let wide = false;
        Self::new_on(k, n, w, bias, wide)
    }

    /// [`Panels::new`], packed for the AVX-512 micro-kernel when `wide` (the CPU must have it).
    fn new_on(
        k: usize,
        n: usize,
        w: impl Fn(usize, usize) -> f32,
        bias: Option<&[f32]>,
        wide: bool,
    ) -> Self {
        assert!(k > 0 && n > 0, "empty weights");
        if let Some(b) = bias {
            assert_eq!(b.len(), n, "bias of the wrong length");
        }
        let panels = n.div_ceil(NR);
        let mut packed = vec![0.0; if wide { panels * k * NR } else { k * n }];
        for kk in 0..k {
            for o in 0..n {
                let at = if wide {
                    ((o / NR) * k + kk) * NR + o % NR
                } else {
                    kk * n + o
                };
                packed[at] = w(kk, o);
            }
        }
        let mut padded = vec![0.0; panels * NR];
        if let Some(b) = bias {
            padded[..n].copy_from_slice(b);
        }
        Self {
            k,
            n,
            wide,
            w: packed,
            bias: padded,
        }
    }

    /// Inner dimension `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output columns `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// `out[r·out_rs + o] = [out[r·out_rs + o] +] bias[o] + Σ_kk x[r·x_rs + kk] · W[kk, o]` for
    /// `r < rows`, `o < N` (other entries of `out` untouched); `x` and `out` given with their
    /// row strides.
    pub fn apply(
        &self,
        (x, x_rs): (&[f32], usize),
        rows: usize,
        (out, out_rs): (&mut [f32], usize),
        accumulate: bool,
    ) {
        if rows == 0 {
            return;
        }
        let (k, n) = (self.k, self.n);
        assert!(x.len() >= (rows - 1) * x_rs + k, "input too small");
        assert!(out.len() >= (rows - 1) * out_rs + n, "output too small");
        #[cfg(target_arch = "x86_64")]
        if self.wide {
            // SAFETY: `wide` only when the CPU has AVX-512 (`Panels::new`); the asserts above
            // bound every row read and written.
            unsafe { self.apply_avx512((x, x_rs), rows, (out, out_rs), accumulate) };
            return;
        }
        if !accumulate {
            for r in 0..rows {
                out[r * out_rs..r * out_rs + n].fill(0.0);
            }
        }
        super::gemm_into(
            (rows, n, k),
            (x, (x_rs, 1)),
            (&self.w, (n, 1)),
            (out, (out_rs, 1)),
            true,
            false,
        );
        for r in 0..rows {
            super::axpy(&mut out[r * out_rs..r * out_rs + n], &self.bias[..n], 1.0);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn apply_avx512(
        &self,
        (x, x_rs): (&[f32], usize),
        rows: usize,
        (out, out_rs): (&mut [f32], usize),
        accumulate: bool,
    ) {
        let (k, n) = (self.k, self.n);
        let (x, out) = (x.as_ptr(), out.as_mut_ptr());
        for r0 in (0..rows).step_by(MC) {
            let r1 = (r0 + MC).min(rows);
            for k0 in (0..k).step_by(KC) {
                let kc = KC.min(k - k0);
                // The first block of the inner dimension adds the bias (to `out` when
                // accumulating); later blocks add to what the earlier ones wrote.
                let load = accumulate || k0 > 0;
                for p in 0..n.div_ceil(NR) {
                    let cols = NR.min(n - p * NR);
                    let w = self.w[(p * k + k0) * NR..].as_ptr();
                    let bias = self.bias[p * NR..].as_ptr();
                    for rb in (r0..r1).step_by(MR) {
                        let t = Tile {
                            kc,
                            x: unsafe { x.add(rb * x_rs + k0) },
                            x_rs,
                            w,
                            out: unsafe { out.add(rb * out_rs + p * NR) },
                            out_rs,
                            cols,
                            load,
                            bias: (k0 == 0).then_some(bias),
                        };
                        unsafe { t.run_rows((r1 - rb).min(MR)) };
                    }
                }
            }
        }
    }
}

/// One micro-kernel call: up to six rows × one panel over `kc` inner values.
#[cfg(target_arch = "x86_64")]
struct Tile {
    kc: usize,
    x: *const f32,
    x_rs: usize,
    /// The panel's weights from the block's first inner value: `[kc][64]`.
    w: *const f32,
    out: *mut f32,
    out_rs: usize,
    /// Valid output columns of this panel (1..=64).
    cols: usize,
    /// Start the sums from `out` (else from zero).
    load: bool,
    /// Add these 64 values (the bias) to the start.
    bias: Option<*const f32>,
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    #[target_feature(enable = "avx512f")]
    unsafe fn run_rows(&self, rows: usize) {
        unsafe {
            match rows {
                1 => self.run::<1>(),
                2 => self.run::<2>(),
                3 => self.run::<3>(),
                4 => self.run::<4>(),
                5 => self.run::<5>(),
                _ => self.run::<6>(),
            }
        }
    }

    /// `R` rows: the vectors past the valid columns are skipped (a panel of 32 columns costs
    /// half as much), partial vectors are masked.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run<const R: usize>(&self) {
        match self.cols.div_ceil(16) {
            1 => unsafe { self.kernel::<R, 1>() },
            2 => unsafe { self.kernel::<R, 2>() },
            3 => unsafe { self.kernel::<R, 3>() },
            _ => unsafe { self.kernel::<R, 4>() },
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn kernel<const R: usize, const V: usize>(&self) {
        use std::arch::x86_64::*;
        let mask = |v: usize| -> __mmask16 {
            let valid = self.cols.saturating_sub(16 * v).min(16);
            ((1u32 << valid) - 1) as __mmask16
        };
        let masks: [__mmask16; V] = std::array::from_fn(mask);
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for (q, row) in acc.iter_mut().enumerate() {
            for (v, a) in row.iter_mut().enumerate() {
                if self.load {
                    *a = unsafe {
                        _mm512_maskz_loadu_ps(masks[v], self.out.add(q * self.out_rs + 16 * v))
                    };
                }
                if let Some(b) = self.bias {
                    *a = _mm512_add_ps(*a, unsafe { _mm512_loadu_ps(b.add(16 * v)) });
                }
            }
        }
        for p in 0..self.kc {
            let w: [__m512; V] =
                std::array::from_fn(|v| unsafe { _mm512_loadu_ps(self.w.add(p * NR + 16 * v)) });
            for (q, row) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(unsafe { *self.x.add(q * self.x_rs + p) });
                for (a, wv) in row.iter_mut().zip(&w) {
                    *a = _mm512_fmadd_ps(*wv, xv, *a);
                }
            }
        }
        for (q, row) in acc.iter().enumerate() {
            for (v, a) in row.iter().enumerate() {
                unsafe {
                    _mm512_mask_storeu_ps(self.out.add(q * self.out_rs + 16 * v), masks[v], *a)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the definition, for shapes with partial row tiles, partial panels, several
    /// inner blocks, overlapping rows (a convolution's), with and without accumulation.
    #[test]
    fn panels_match_the_definition() {
        #[cfg(target_arch = "x86_64")]
        let paths = if std::arch::is_x86_feature_detected!("avx512f") {
            vec![false, true]
        } else {
            vec![false]
        };
        #[cfg(not(target_arch = "x86_64"))]
        let paths = vec![false];
        for wide in paths {
            check(wide);
        }
    }

    fn check(wide: bool) {
        for (rows, k, n, x_rs) in [
            (1, 1, 1, 1),
            (7, 5, 17, 5),
            (13, 400, 130, 400),
            (150, 9 * 8, 160, 8),
            (101, 800, 64, 811),
            (6, 384, 33, 384),
        ] {
            let w = |kk: usize, o: usize| ((kk * 31 + o * 7) % 19) as f32 * 0.1 - 0.9;
            let bias: Vec<f32> = (0..n).map(|o| o as f32 * 0.01).collect();
            let x: Vec<f32> = (0..(rows - 1) * x_rs + k)
                .map(|i| ((i * 13) % 23) as f32 * 0.05 - 0.5)
                .collect();
            let out_rs = n + 3;
            for (with_bias, accumulate) in [(true, false), (false, true), (true, true)] {
                let p = Panels::new_on(k, n, w, with_bias.then_some(&bias[..]), wide);
                let before: Vec<f32> = (0..rows * out_rs).map(|i| i as f32 * 0.001).collect();
                let mut out = before.clone();
                p.apply((&x, x_rs), rows, (&mut out, out_rs), accumulate);
                for r in 0..rows {
                    for o in 0..out_rs {
                        let got = out[r * out_rs + o];
                        if o >= n {
                            assert_eq!(got, before[r * out_rs + o], "column past N written");
                            continue;
                        }
                        let mut want = if accumulate {
                            before[r * out_rs + o] as f64
                        } else {
                            0.0
                        };
                        if with_bias {
                            want += bias[o] as f64;
                        }
                        for kk in 0..k {
                            want += x[r * x_rs + kk] as f64 * w(kk, o) as f64;
                        }
                        assert!(
                            (got as f64 - want).abs() < 1e-3 * (1.0 + want.abs()),
                            "{rows}×{k}×{n} (wide {wide}) at {r}, {o}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
