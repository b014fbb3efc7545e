//! Helpers shared by the integration tests.

use std::process::Command;

/// Run the `prixfixe` binary: (success, stdout, stderr).
pub fn prixfixe(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prixfixe"))
        .args(args)
        .output()
        .expect("run prixfixe");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The config of `tests/fixtures/tiny_dream-rnn.pth`: a DREAM-RNN-shaped model shrunk to a
/// few thousand parameters (weights saved by PyTorch).
pub const TINY_RNN: &str = r#"[input]
padding = { kind = "plasmid", length = 150 }
channels = { is_reverse = true, is_singleton = true }
[first]
block = "bhi"
out_channels = 16
[core]
block = "bhi"
hidden = 8
out_channels = 16
[final]
block = "soft-class"
"#;
