//! Choosing where models run. A GPU that was asked for and is not available is an error,
//! never a silent fall-back to the CPU.

use burn::tensor::Device;

use crate::error::{Error, Result};

/// Devices this build can use, for help texts.
pub fn available() -> Vec<&'static str> {
    let mut v = vec!["cpu"];
    if cfg!(feature = "cuda") {
        v.push("cuda[:N]");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu[:N]");
    }
    if cfg!(feature = "vulkan") {
        v.push("vulkan[:N]");
    }
    v
}

fn missing(kind: &str, feature: &str) -> Error {
    Error::Config(format!(
        "device {kind:?} was asked for but this prixfixe was built without it; rebuild with \
         `cargo install prixfixe --features {feature}` (devices in this build: {})",
        available().join(", ")
    ))
}

/// Parse `cpu`, `cuda[:N]`, `wgpu[:N]` or `vulkan[:N]`.
pub fn parse_device(spec: &str) -> Result<Device> {
    let (kind, index) = match spec.split_once(':') {
        Some((k, i)) => (
            k,
            i.parse::<usize>().map_err(|_| {
                Error::Config(format!("device {spec:?}: {i:?} is not a device index"))
            })?,
        ),
        None => (spec, 0),
    };
    let _ = index;
    match kind {
        "cpu" | "flex" => Ok(Device::flex()),
        "cuda" => {
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(index));
            #[cfg(not(feature = "cuda"))]
            Err(missing("cuda", "cuda"))
        }
        "wgpu" => {
            #[cfg(feature = "wgpu")]
            return Ok(Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(index)));
            #[cfg(not(feature = "wgpu"))]
            Err(missing("wgpu", "wgpu"))
        }
        "vulkan" => {
            #[cfg(feature = "vulkan")]
            return Ok(Device::vulkan(burn::tensor::DeviceKind::DiscreteGpu(index)));
            #[cfg(not(feature = "vulkan"))]
            Err(missing("vulkan", "vulkan"))
        }
        other => Err(Error::Config(format!(
            "unknown device {other:?}; devices in this build: {}",
            available().join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_always_parses_and_missing_gpus_are_errors() {
        assert!(parse_device("cpu").is_ok());
        if !cfg!(feature = "cuda") {
            let e = parse_device("cuda:0").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
        assert!(parse_device("tpu").is_err());
        assert!(parse_device("cuda:x").is_err());
    }
}
