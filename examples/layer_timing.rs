//! Rough timings of a whole model on the CPU backend (development aid).
use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use prixfixe::{DataKind, NetConfig};

fn time<F: FnMut()>(name: &str, mut f: F) {
    f();
    let t = Instant::now();
    let n = 2;
    for _ in 0..n {
        f();
    }
    println!(
        "{name:<40} {:>8.1} ms",
        t.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or("dream-cnn".into());
    let b: usize = std::env::args().nth(2).map_or(128, |s| s.parse().unwrap());
    let d = Device::flex();
    let config = NetConfig::preset(&name, DataKind::Yeast).unwrap();
    let net = config.init(&d).unwrap();
    let x = Tensor::<3>::random([b, 6, 150], Distribution::Default, &d);
    time(&format!("{name} inference fwd b{b}"), || {
        let _ = net.predict(x.clone()).into_data();
    });
    let ad = d.clone().autodiff();
    let net = config.init(&ad).unwrap();
    let x = Tensor::<3>::random([b, 6, 150], Distribution::Default, &ad);
    time(&format!("{name} train fwd only b{b}"), || {
        let _ = net.forward(x.clone()).out.into_data();
    });
    time(&format!("{name} train fwd+bwd b{b}"), || {
        let out = net.forward(x.clone()).out;
        let g = out.sum().backward();
        drop(g);
    });
}
