//! Soft classification of expression values (SPEC §2.5) — the challenge's winning trick.
//!
//! A measured value `e` becomes a probability vector over [`N_BINS`] classes: the mass of a
//! Normal(`e + 0.5`, 0.5) in class 0 = (−∞, 1), class i = [i, i+1), class 17 = [17, ∞).
//! Predictions decode as the expectation `Σ i · p_i` ([`crate::kernels::soft_class_expectation`]).

/// Number of expression bins (and head logits).
pub const N_BINS: usize = 18;

const SD: f64 = 0.5;

fn normal_cdf(x: f64, mean: f64) -> f64 {
    // erfc keeps precision in the far tails, where 1 + erf would round to 0.
    0.5 * libm::erfc(-(x - mean) / (SD * std::f64::consts::SQRT_2))
}

/// The soft label of a measured value.
pub fn soft_label(value: f64) -> [f32; N_BINS] {
    let mean = value + 0.5;
    let mut out = [0f32; N_BINS];
    let mut below = 0.0;
    for (i, p) in out.iter_mut().enumerate() {
        let upper = if i + 1 == N_BINS {
            1.0
        } else {
            normal_cdf((i + 1) as f64, mean)
        };
        *p = (upper - below) as f32;
        below = upper;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn worked_example_eleven() {
        let p = soft_label(11.0);
        assert!(close(p[10], 0.1573) && close(p[11], 0.6827) && close(p[12], 0.1573));
        assert!(close(p[9], 0.00135) && close(p[13], 0.00135));
        assert!(close(p.iter().sum(), 1.0));
    }

    #[test]
    fn worked_example_zero() {
        let p = soft_label(0.0);
        assert!(close(p[0], 0.8413) && close(p[1], 0.1573));
        assert!(close(p.iter().sum(), 1.0));
    }

    #[test]
    fn top_bin_takes_the_upper_tail() {
        let p = soft_label(17.0);
        assert!(close(p[17], 0.8413) && close(p[16], 0.1573));
    }

    #[test]
    fn expectation_of_a_symmetric_label_is_the_value() {
        for v in [3.0, 8.0, 11.0, 14.0] {
            // logits log p decode through softmax back to p
            let logits: Vec<f32> = soft_label(v).iter().map(|p| p.max(1e-30).ln()).collect();
            let decoded = crate::kernels::soft_class_expectation(&logits);
            assert!((decoded - v as f32).abs() < 1e-3, "{v}: {decoded}");
        }
    }
}
