//! The ATAC models (SPEC_BENCHMARKS §5.3–5.5, §5.10–5.11): ChromBPNet's accessibility and
//! bias models as Prix Fixe blocks, the DREAM models with ChromBPNet's head, and the
//! frozen-bias combination that every one of them is trained and scored as.

use burn::tensor::{Device, Tensor, TensorData};

use crate::blocks::core_layers::bpnet::BpnetCoreConfig;
use crate::blocks::final_layers::profile::{ProfileConfig, combine_with_bias};
use crate::blocks::first_layers::bpnet::BpnetFirstConfig;
use crate::blocks::{CoreConfig, FinalConfig, FirstConfig};
use crate::data::{BaseOrder, Channels, NCode, Padding, Strands};
use crate::error::{Error, Result};
use crate::net::{InputConfig, NetConfig, PrixFixeNet};
use crate::weights::WeightMap;

/// The input of every ATAC model, in nucleotides.
pub const INPUT_LENGTH: usize = 2114;
/// The predicted profile's length: the input's central 1,000 nt.
pub const PROFILE_LENGTH: usize = 1000;
/// The accessibility models `train --task atac --model` knows.
pub const MODELS: [&str; 4] = ["chrombpnet", "dream-cnn", "dream-rnn", "dream-attn"];

/// ATAC input: 2,114 nt one-hot in A, C, G, T order, other bases as zeros, no extra
/// channels, one pass per region (the sampler turns regions itself; §5.2, §5.7).
pub fn input() -> InputConfig {
    InputConfig {
        padding: Padding::exact(INPUT_LENGTH),
        channels: Channels::BASES_ONLY.with_bases(BaseOrder::Acgt, NCode::Zero),
        strands: Strands::Given,
    }
}

/// An accessibility model by name, with ChromBPNet's head and `counts_weight`.
pub fn preset(name: &str, counts_weight: f64) -> Result<NetConfig> {
    let head = FinalConfig::Profile(ProfileConfig {
        counts_weight,
        ..Default::default()
    });
    // BPNet's tower (F = 512, D = 8: 6,377,986 parameters), or a DREAM model's blocks on the
    // 4 bases (§5.10).
    let blocks = match name {
        "chrombpnet" => Some((
            FirstConfig::Bpnet(BpnetFirstConfig::default()),
            CoreConfig::Bpnet(BpnetCoreConfig::default()),
        )),
        "legnet" => None,
        other => crate::net::dream_blocks(other),
    };
    let Some((first, core)) = blocks else {
        return Err(Error::Config(format!(
            "unknown ATAC model {name:?}; known: {}",
            MODELS.join(", ")
        )));
    };
    Ok(NetConfig {
        tasks: Vec::new(),
        input: input(),
        first,
        core,
        final_block: head,
    })
}

/// ChromBPNet's Tn5 bias model: F = 128, D = 4 (217,730 parameters; §5.3–5.4).
pub fn bias_preset(counts_weight: f64) -> NetConfig {
    NetConfig {
        tasks: Vec::new(),
        input: input(),
        first: FirstConfig::Bpnet(BpnetFirstConfig {
            filters: 128,
            ..Default::default()
        }),
        core: CoreConfig::Bpnet(BpnetCoreConfig {
            layers: 4,
            ..Default::default()
        }),
        final_block: FinalConfig::Profile(ProfileConfig {
            counts_weight,
            ..Default::default()
        }),
    }
}

/// Why `predict` (and what builds on it) refuses an ATAC profile model, and where to go.
pub const PREDICTION_NEEDS_BIAS: &str = "this is an ATAC profile model (ChromBPNet's head): its \
    predictions combine it with the frozen bias model it was trained with, and this would use it \
    alone. Score regions of a genome with `prixfixe predict atac --model DIR --genome FASTA \
    --regions PEAKS --out OUT` (`ism` and `attribute` explain the model on its own, bias-free)";

/// The counts weight of a profile model's head.
pub fn counts_weight(config: &NetConfig) -> Option<f64> {
    match &config.final_block {
        FinalConfig::Profile(p) => Some(p.counts_weight),
        _ => None,
    }
}

/// A profile model's config with its counts weight set.
pub fn with_counts_weight(mut config: NetConfig, weight: f64) -> NetConfig {
    if let FinalConfig::Profile(p) = &mut config.final_block {
        p.counts_weight = weight;
    }
    config
}

/// The name of the bias model's final Dense bias, which the counts adjustment shifts.
pub const COUNTS_BIAS: &str = "final.counts.bias";

/// Add `delta` to a profile model's log-count output (its final Dense bias, §5.5).
pub fn shift_log_counts(net: &mut PrixFixeNet, delta: f64, device: &Device) -> Result<()> {
    let mut map = WeightMap::from_model(net, "");
    let bias = map.tensors.get_mut(COUNTS_BIAS).ok_or_else(|| {
        Error::Other(format!(
            "the bias model has no {COUNTS_BIAS} (not a profile model?)"
        ))
    })?;
    for v in &mut bias.data {
        *v += delta as f32;
    }
    map.apply_to(net, "", device)
}

/// The combined model's raw output `(batch, P + 1)` for one-hot `x` (`(batch, 4, L)` on the
/// accessibility model's device): the accessibility model's output combined with the frozen
/// bias model's, which runs without gradients on `bias_device` (§5.5); without a bias model
/// (the bias model's own training), the model's output alone.
pub fn combined_forward(
    main: &PrixFixeNet,
    bias: Option<&PrixFixeNet>,
    x: Tensor<3>,
    bias_device: &Device,
) -> Tensor<2> {
    let Some(bias) = bias else {
        return main.forward(x).out;
    };
    let device = x.device();
    let plain = Tensor::<3>::from_data(x.clone().into_data(), bias_device);
    let b = bias.forward(plain).out;
    let dims = b.dims();
    let b = Tensor::<2>::from_data(
        TensorData::new(
            b.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32"),
            dims,
        ),
        &device,
    );
    combine_with_bias(main.forward(x).out, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(config: &NetConfig) -> (usize, usize, usize) {
        let s = config.check().unwrap();
        let mut net = config.init(&Device::flex()).unwrap();
        let c = net.param_counts();
        (c.total(), s.first_length, s.core_length)
    }

    /// SPEC_BENCHMARKS §5.3, §5.10–5.11: the published or computed parameter counts and the
    /// tower lengths.
    #[test]
    fn atac_models_have_the_published_counts_and_lengths() {
        assert_eq!(params(&bias_preset(1.0)), (217_730, 2094, 2034));
        assert_eq!(
            params(&preset("chrombpnet", 1.0).unwrap()),
            (6_377_986, 2094, 1074)
        );
        // PyTorch's two LSTM biases: 4,138,882 in Keras.
        assert_eq!(params(&preset("dream-rnn", 1.0).unwrap()).0, 4_141_442);
        assert_eq!(params(&preset("dream-attn", 1.0).unwrap()).0, 5_053_442);
        // 1,940,738 in Keras, counting BatchNorm's 10,752 moving statistics.
        assert_eq!(params(&preset("dream-cnn", 1.0).unwrap()).0, 1_929_986);
        assert!(preset("deepstarr", 1.0).is_err());
    }

    /// The head refuses a tower whose length it cannot crop to 1,000.
    #[test]
    fn the_profile_head_names_a_length_it_cannot_crop() {
        let mut c = bias_preset(1.0);
        c.input.padding = Padding::exact(2113);
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("profile_length"), "{e}");
    }
}
