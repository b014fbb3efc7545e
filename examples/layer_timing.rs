//! Rough per-layer timings on the CPU backend (development aid).
use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use prixfixe::nn::{ConvInit, conv1d};

fn time<F: FnMut()>(name: &str, mut f: F) {
    f();
    let t = Instant::now();
    let n = 3;
    for _ in 0..n {
        f();
    }
    println!(
        "{name:<40} {:>8.1} ms",
        t.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
}

fn main() {
    let d = Device::flex();
    let ad = d.clone().autodiff();
    let b = 128;
    for (cin, cout, k, g) in [(512, 512, 7, 512), (512, 512, 7, 256)] {
        let conv = conv1d(cin, cout, k, g, false, ConvInit::Default, &ad);
        let x = Tensor::<3>::random([b, cin, 150], Distribution::Default, &ad).require_grad();
        time(&format!("fwd+bwd conv {cin}->{cout} k{k} g{g}"), || {
            let y = conv.forward(x.clone());
            let g = y.sum().backward();
            let _ = x.grad(&g).unwrap().into_data();
        });
    }
    // 1x1 conv as a matmul in (B*L, C) layout.
    let w = Tensor::<2>::random([320, 512], Distribution::Default, &ad).require_grad();
    let x = Tensor::<3>::random([b, 320, 150], Distribution::Default, &ad).require_grad();
    time("fwd+bwd 1x1 as matmul 320->512", || {
        let y = x
            .clone()
            .swap_dims(1, 2)
            .reshape([b * 150, 320])
            .matmul(w.clone());
        let y = y.reshape([b, 150, 512]).swap_dims(1, 2);
        let g = y.sum().backward();
        let _ = x.grad(&g).unwrap().into_data();
    });
    let x2 = Tensor::<3>::random([b, 150, 320], Distribution::Default, &ad).require_grad();
    time("fwd+bwd 1x1 matmul, (B,L,C) layout", || {
        let y = x2.clone().reshape([b * 150, 320]).matmul(w.clone());
        let g = y.sum().backward();
        let _ = x2.grad(&g).unwrap().into_data();
    });
    let a = Tensor::<3>::random([b, 512, 150], Distribution::Default, &ad).require_grad();
    time("fwd+bwd elementwise silu 512x150", || {
        let y = burn::tensor::activation::silu(a.clone());
        let g = y.sum().backward();
        let _ = a.grad(&g).unwrap().into_data();
    });
}
