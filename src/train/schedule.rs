//! Learning-rate schedules, stepped once per batch: the one-cycle schedule of the Autosome.org
//! trainer (SPEC §4), as PyTorch's `OneCycleLR` computes it (cosine annealing, two phases,
//! momentum cycling), and the cosine annealing of the BHI trainer (SPEC_GRID §3), as
//! PyTorch's `CosineAnnealingLR` does.

use serde::{Deserialize, Serialize};

/// One-cycle learning rate and beta1 over `total_steps` batches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OneCycle {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Batches in the whole run.
    pub total_steps: usize,
    /// Fraction of steps spent rising.
    pub pct_start: f64,
    /// `initial_lr = max_lr / div_factor`.
    pub div_factor: f64,
    /// `min_lr = initial_lr / final_div_factor`.
    pub final_div_factor: f64,
    /// Beta1 at the peak learning rate.
    pub base_momentum: f64,
    /// Beta1 at the start and the end.
    pub max_momentum: f64,
}

fn anneal_cos(start: f64, end: f64, pct: f64) -> f64 {
    end + (start - end) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
}

impl OneCycle {
    /// PyTorch's defaults (pct 0.3, div 25, final div 1e4, beta1 0.95 → 0.85 → 0.95).
    pub fn new(max_lr: f64, total_steps: usize) -> Self {
        OneCycle {
            max_lr,
            total_steps,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }

    /// `(learning rate, beta1)` for the batch at 0-based `step`.
    pub fn at(&self, step: usize) -> (f64, f64) {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let rise_end = self.pct_start * self.total_steps as f64 - 1.0;
        let fall_end = self.total_steps as f64 - 1.0;
        let s = step as f64;
        if s <= rise_end {
            let pct = s / rise_end;
            (
                anneal_cos(initial, self.max_lr, pct),
                anneal_cos(self.max_momentum, self.base_momentum, pct),
            )
        } else {
            let pct = (s - rise_end) / (fall_end - rise_end);
            (
                anneal_cos(self.max_lr, min, pct),
                anneal_cos(self.base_momentum, self.max_momentum, pct),
            )
        }
    }
}

/// Cosine annealing from `max_lr` to 0 over `t_max` steps, beta1 fixed (PyTorch's
/// `CosineAnnealingLR` with `eta_min = 0`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cosine {
    /// The learning rate at step 0.
    pub max_lr: f64,
    /// Steps to reach 0 (the BHI trainer counts training rows × epochs, SPEC_GRID Q9).
    pub t_max: usize,
    /// Beta1, fixed.
    pub beta1: f64,
}

impl Cosine {
    /// `(learning rate, beta1)` for the batch at 0-based `step`.
    pub fn at(&self, step: usize) -> (f64, f64) {
        let pct = step as f64 / self.t_max.max(1) as f64;
        (anneal_cos(self.max_lr, 0.0, pct), self.beta1)
    }
}

/// The Transformer schedule of the Unlock_DNA trainer (`ScheduledOptim`, lr_mul 1):
/// `lr(n) = d^−½ · min(n^−½, n · warmup^−1.5)` with `n = step + 1`, beta1 fixed at 0.9.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Transformer {
    /// The model width `d`.
    pub d: usize,
    /// Warm-up steps.
    pub warmup: usize,
}

impl Transformer {
    /// `(learning rate, beta1)` for the batch at 0-based `step`.
    pub fn at(&self, step: usize) -> (f64, f64) {
        let n = (step + 1) as f64;
        let w = self.warmup as f64;
        let lr = (self.d as f64).powf(-0.5) * n.powf(-0.5).min(n * w.powf(-1.5));
        (lr, 0.9)
    }
}

/// The DREAM models' schedule on the ATAC task (SPEC_BENCHMARKS §5.10): a linear rise from
/// `max_lr / 25` to `max_lr` over the first 30% of the steps, then a cosine down to
/// `max_lr / 25 / 1e4`; beta1 stays 0.9.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupCosine {
    /// Peak rate.
    pub max_lr: f64,
    /// Steps in all.
    pub total_steps: usize,
}

impl WarmupCosine {
    /// `(lr, beta1)` at 0-based `step`.
    pub fn at(&self, step: usize) -> (f64, f64) {
        let start = self.max_lr / 25.0;
        let end = start / 1e4;
        let warm = 0.3 * self.total_steps as f64;
        let s = step as f64;
        let lr = if s < warm {
            start + (self.max_lr - start) * s / warm
        } else {
            let t = ((s - warm) / (self.total_steps as f64 - warm).max(1.0)).min(1.0);
            end + (self.max_lr - end) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
        };
        (lr, 0.9)
    }
}

/// A trainer's schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// The Autosome.org trainer's.
    OneCycle(OneCycle),
    /// The BHI trainer's.
    Cosine(Cosine),
    /// The Unlock_DNA trainer's.
    Transformer(Transformer),
    /// The Keras baselines': a constant rate, beta1 0.9.
    Constant(f64),
    /// The DREAM models' on ATAC.
    WarmupCosine(WarmupCosine),
}

impl Schedule {
    /// `(learning rate, beta1)` for the batch at 0-based `step`.
    pub fn at(&self, step: usize) -> (f64, f64) {
        match self {
            Schedule::OneCycle(s) => s.at(step),
            Schedule::Cosine(s) => s.at(step),
            Schedule::Transformer(s) => s.at(step),
            Schedule::Constant(lr) => (*lr, 0.9),
            Schedule::WarmupCosine(s) => s.at(step),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_cosine_rises_then_falls_to_its_floor() {
        let s = WarmupCosine {
            max_lr: 5e-4,
            total_steps: 100,
        };
        assert!((s.at(0).0 - 2e-5).abs() < 1e-12);
        assert!((s.at(30).0 - 5e-4).abs() < 1e-12);
        assert!((s.at(15).0 - (2e-5 + 4.8e-4 / 2.0)).abs() < 1e-12);
        assert!((s.at(100).0 - 2e-9).abs() < 1e-15);
        assert!(s.at(60).0 < s.at(40).0);
    }

    /// Values printed by PyTorch 2's `OneCycleLR(max_lr=0.005, total_steps=100)` on AdamW.
    #[test]
    fn matches_pytorch_one_cycle() {
        let s = OneCycle::new(0.005, 100);
        let expect = [
            (0, 0.00019999999999999966, 0.95),
            (1, 0.00021406890282953638, 0.9497068978577179),
            (15, 0.002729933380605002, 0.897293054570729),
            (29, 0.005, 0.85),
            (30, 0.004997482676422621, 0.8500503466729342),
            (50, 0.00396946725287866, 0.8706107373853763),
            (99, 2e-08, 0.95),
        ];
        for (step, lr, beta1) in expect {
            let (l, b) = s.at(step);
            assert!((l - lr).abs() < 1e-15, "lr at {step}: {l} vs {lr}");
            assert!((b - beta1).abs() < 1e-12, "beta1 at {step}: {b} vs {beta1}");
        }
    }

    /// Values printed by PyTorch 2's `CosineAnnealingLR(T_max=1000)` on AdamW(lr=0.0015).
    #[test]
    fn matches_pytorch_cosine_annealing() {
        let s = Cosine {
            max_lr: 0.0015,
            t_max: 1000,
            beta1: 0.9,
        };
        let expect = [
            (0, 0.0015),
            (1, 0.0014999962989013938),
            (250, 0.0012803300858899103),
            (500, 0.0007499999999999993),
            (999, 3.7010986063401466e-09),
            (1000, 0.0),
        ];
        for (step, lr) in expect {
            let (l, b) = s.at(step);
            assert!((l - lr).abs() < 1e-15, "lr at {step}: {l} vs {lr}");
            assert_eq!(b, 0.9);
        }
    }

    /// SPEC_GRID §6: linear rise to the peak `1/√(d·w)` at n = w, then `n^−½` decay.
    #[test]
    fn transformer_schedule_peaks_where_the_spec_says() {
        for (d, peak) in [(512, 3.953e-4), (256, 5.590e-4)] {
            let s = Transformer { d, warmup: 12_500 };
            let (lr, b) = s.at(12_499);
            assert!((lr - peak).abs() < 5e-8, "d {d}: {lr}");
            assert_eq!(b, 0.9);
            assert!((s.at(0).0 - lr / 12_500.0).abs() < 1e-15);
            assert!((s.at(49_999).0 - lr / 2.0).abs() < 1e-12);
        }
    }
}
