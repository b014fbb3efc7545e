//! Where a model is assembled: `PrixFixeNet` = first + core + final block, built from a
//! [`NetConfig`] after its shapes are checked, and the registry of named models.

use std::fmt;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::core_layers::autosome::AutosomeCoreConfig;
use crate::blocks::core_layers::bhi::BhiCoreConfig;
use crate::blocks::core_layers::unlock_dna::UnlockDnaConfig;
use crate::blocks::final_layers::deepstarr::DeepStarrFinalConfig;
use crate::blocks::final_layers::mprann::MprannFinalConfig;
use crate::blocks::final_layers::regression::RegressionConfig;
use crate::blocks::final_layers::soft_class::SoftClassConfig;
use crate::blocks::first_layers::autosome::AutosomeFirstConfig;
use crate::blocks::first_layers::bhi::BhiFirstConfig;
use crate::blocks::{CoreBlock, CoreConfig, FinalBlock, FinalConfig, FirstBlock, FirstConfig};
use crate::data::{BaseOrder, Channels, Encoder, NCode, Padding, Strands};
use crate::error::{Error, Result};
use crate::nn::visit::{NamedWeights, WeightVisitor};
use crate::weights::count_params;

/// The data processor's part of a model: how sequences become input planes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Padding to the model length.
    pub padding: Padding,
    /// Extra channels after the four bases.
    pub channels: Channels,
    /// What the reverse complement turns and whether prediction averages it.
    #[serde(default, skip_serializing_if = "Strands::is_default")]
    pub strands: Strands,
}

impl InputConfig {
    /// Yeast DREAM: plasmid padding to 150, 6 channels.
    pub fn yeast() -> Self {
        InputConfig {
            padding: Padding::yeast(),
            channels: Channels::YEAST,
            strands: Strands::Average,
        }
    }

    /// The BHI data processor on yeast reads: BHI padding to 110, the four bases only
    /// (SPEC_GRID §2; its trainer adds the reverse complement itself).
    pub fn bhi() -> Self {
        InputConfig {
            padding: Padding::bhi(),
            channels: Channels::BASES_ONLY,
            strands: Strands::Average,
        }
    }

    /// The Unlock_DNA data processor on yeast reads: trimmed, centred in 100 nt of `N`, then
    /// its reverse complement; one-hot tokens A, C, G, T, N, M (6 × 200; SPEC_GRID §5, Q1).
    pub fn unlock_dna() -> Self {
        InputConfig {
            padding: Padding::unlock_dna(),
            channels: Channels::TOKENS,
            strands: Strands::Average,
        }
    }

    /// Human lentiMPRA for the DREAM models: 230 nt as given, A, G, C, T + `is_reverse` (1
    /// for `_Reversed:` oligos), `N` as zeros, one pass per oligo (SPEC_BENCHMARKS §2.2).
    pub fn human() -> Self {
        InputConfig {
            padding: Padding::exact(230),
            channels: Channels::REVERSE_ONLY.with_bases(BaseOrder::Agct, NCode::Zero),
            strands: Strands::Given,
        }
    }

    /// Drosophila STARR-seq for the DREAM models: 249 nt as given, A, G, C, T + `is_reverse`
    /// (1 for `-` strand rows), `N` as zeros, one pass per row (SPEC_BENCHMARKS §1.2, §1.4).
    pub fn drosophila() -> Self {
        InputConfig {
            padding: Padding::exact(249),
            channels: Channels::REVERSE_ONLY.with_bases(BaseOrder::Agct, NCode::Zero),
            strands: Strands::Given,
        }
    }

    /// The encoder for this input.
    pub fn encoder(&self) -> Result<Encoder> {
        Encoder::new(&self.padding, self.channels)
            .and_then(|e| e.with_strands(self.strands))
            .map_err(Error::Config)
    }
}

/// The data sets the presets know, each with its input and head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataKind {
    /// Yeast random promoters: 6 × 150, 18-bin soft classification.
    Yeast,
    /// Human lentiMPRA: 5 × 230, one regression output.
    Human,
    /// Drosophila STARR-seq: 5 × 249, two regression outputs (dev, hk).
    Drosophila,
}

impl DataKind {
    /// Every kind.
    pub const ALL: [DataKind; 3] = [DataKind::Yeast, DataKind::Human, DataKind::Drosophila];

    /// Parse a name.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "yeast" => Ok(DataKind::Yeast),
            "human" => Ok(DataKind::Human),
            "drosophila" => Ok(DataKind::Drosophila),
            _ => Err(Error::Config(format!(
                "unknown data kind {name:?}; known: yeast, human, drosophila"
            ))),
        }
    }

    /// The input (padding and channels) of this data kind's models.
    pub fn input(self) -> InputConfig {
        match self {
            DataKind::Yeast => InputConfig::yeast(),
            DataKind::Human => InputConfig::human(),
            DataKind::Drosophila => InputConfig::drosophila(),
        }
    }

    /// The names of this data kind's tasks (none where there is one).
    pub fn task_names(self) -> Vec<String> {
        match self {
            DataKind::Drosophila => vec!["dev".into(), "hk".into()],
            DataKind::Human | DataKind::Yeast => Vec::new(),
        }
    }

    /// The head of this data kind's models.
    pub fn final_block(self) -> FinalConfig {
        match self {
            DataKind::Yeast => FinalConfig::SoftClass(SoftClassConfig::default()),
            DataKind::Human => FinalConfig::Regression(RegressionConfig::new(1)),
            DataKind::Drosophila => FinalConfig::Regression(RegressionConfig::new(2)),
        }
    }
}

/// The length of each lentiMPRA adapter around the 200-nt element (`AGGACCGGATCAACT`,
/// `CATTGCGTGAACCGA`).
pub const HUMAN_ADAPTER: usize = 15;

/// The named models: the three DREAM models, LegNet as the blocks allow, and the field's
/// baselines DeepSTARR (Drosophila) and MPRAnn (human).
pub const PRESETS: [&str; 6] = [
    "dream-cnn",
    "dream-rnn",
    "dream-attn",
    "legnet",
    "deepstarr",
    "mprann",
];

/// The first and core blocks of a DREAM model (or LegNet as the blocks allow) by name.
pub fn dream_blocks(name: &str) -> Option<(FirstConfig, CoreConfig)> {
    Some(match name {
        "dream-cnn" => (
            FirstConfig::Bhi(BhiFirstConfig::default()),
            CoreConfig::Autosome(AutosomeCoreConfig::default()),
        ),
        "dream-rnn" => (
            FirstConfig::Bhi(BhiFirstConfig::default()),
            CoreConfig::Bhi(BhiCoreConfig::default()),
        ),
        "dream-attn" => (
            FirstConfig::Autosome(AutosomeFirstConfig::default()),
            CoreConfig::UnlockDna(UnlockDnaConfig::default()),
        ),
        // LegNet as far as the blocks allow: Autosome first (256) and core; the original's
        // final SiLU-activated 1×1 convolution and its extra SE branch are not reproduced.
        "legnet" => (
            FirstConfig::Autosome(AutosomeFirstConfig::default()),
            CoreConfig::Autosome(AutosomeCoreConfig::default()),
        ),
        _ => return None,
    })
}

/// A whole model: input, first, core and final blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// The tasks' names, one per output of a multi-task head (Drosophila: `dev`, `hk`); the
    /// prediction columns are then `prediction_dev`, …. Left out, they are numbered
    /// (`prediction_0`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<String>,
    /// How sequences become input.
    pub input: InputConfig,
    /// First layers block.
    pub first: FirstConfig,
    /// Core layers block.
    pub core: CoreConfig,
    /// Final layers block.
    #[serde(rename = "final")]
    pub final_block: FinalConfig,
}

/// Channels and length at each boundary, once a config is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shapes {
    /// Input channels.
    pub input_channels: usize,
    /// Input length.
    pub length: usize,
    /// After the first block.
    pub first_channels: usize,
    /// Positions after the first block (most blocks keep the length).
    pub first_length: usize,
    /// After the core block.
    pub core_channels: usize,
    /// Positions after the core block.
    pub core_length: usize,
}

impl Shapes {
    /// Whether every block keeps the input's length (the CPU engine's twins need it).
    pub fn keeps_length(&self) -> bool {
        self.first_length == self.length && self.core_length == self.length
    }
}

impl NetConfig {
    /// A named model for a data kind (SPEC §3; the baselines SPEC_BENCHMARKS §3–4).
    pub fn preset(name: &str, data: DataKind) -> Result<Self> {
        if let Some(baseline) = Self::baseline(name, data) {
            return Ok(baseline);
        }
        let Some((first, core)) = dream_blocks(name) else {
            return Err(Error::Config(format!(
                "unknown model preset {name:?}; known presets: {}",
                PRESETS.join(", ")
            )));
        };
        Ok(NetConfig {
            tasks: data.task_names(),
            input: data.input(),
            first,
            core,
            final_block: data.final_block(),
        })
    }

    /// DeepSTARR or MPRAnn on `data`'s sequences: their own one-hot (A, C, G, T, `N` as zeros,
    /// no extra channels) and one output per task of the data kind. DeepSTARR predicts each
    /// row once; MPRAnn on human oligos averages each with its 200-nt element turned between
    /// the adapters (SPEC_BENCHMARKS §4.4), elsewhere predicts once.
    fn baseline(name: &str, data: DataKind) -> Option<Self> {
        let tasks = match data {
            DataKind::Drosophila => 2,
            DataKind::Human | DataKind::Yeast => 1,
        };
        let mut input = data.input();
        input.channels = Channels::BASES_ONLY.with_bases(BaseOrder::Acgt, NCode::Zero);
        input.strands = Strands::Given;
        Some(match name {
            "deepstarr" => NetConfig {
                tasks: data.task_names(),
                input,
                first: FirstConfig::DeepStarr(Default::default()),
                core: CoreConfig::DeepStarr(Default::default()),
                final_block: FinalConfig::DeepStarr(DeepStarrFinalConfig {
                    tasks,
                    ..Default::default()
                }),
            },
            "mprann" => {
                if data == DataKind::Human {
                    input.strands = Strands::AverageCore {
                        start: HUMAN_ADAPTER,
                        end: 230 - HUMAN_ADAPTER,
                    };
                }
                NetConfig {
                    tasks: data.task_names(),
                    input,
                    first: FirstConfig::Mprann(Default::default()),
                    core: CoreConfig::Mprann(Default::default()),
                    final_block: FinalConfig::Mprann(MprannFinalConfig {
                        tasks,
                        ..Default::default()
                    }),
                }
            }
            _ => return None,
        })
    }

    /// Check that the blocks fit together, before anything is built or trained.
    pub fn check(&self) -> Result<Shapes> {
        let input_channels = self.input.channels.count();
        let length = self.input.padding.length();
        let ctx = |e: String| Error::Config(format!("model does not fit together: {e}"));
        self.input.padding.prepare().map_err(ctx)?;
        self.input.strands.check(length).map_err(ctx)?;
        self.first.check().map_err(ctx)?;
        self.first
            .check_input(input_channels, length)
            .map_err(ctx)?;
        let first_channels = self.first.out_channels();
        let first_length = self.first.out_length(length).map_err(ctx)?;
        self.core.check(first_channels).map_err(ctx)?;
        let core_channels = self.core.out_channels(first_channels);
        let core_length = self.core.out_length(first_length).map_err(ctx)?;
        self.final_block.check().map_err(ctx)?;
        self.final_block.check_length(core_length).map_err(ctx)?;
        check_task_names(&self.tasks, self.final_block.tasks()).map_err(ctx)?;
        Ok(Shapes {
            input_channels,
            length,
            first_channels,
            first_length,
            core_channels,
            core_length,
        })
    }

    /// Build the model with fresh initialisation (SPEC §3) on `device`, drawing from burn's
    /// generator as it stands (see [`NetConfig::init_seeded`] for repeatable weights).
    pub fn init(&self, device: &Device) -> Result<PrixFixeNet> {
        let s = self.check()?;
        Ok(PrixFixeNet {
            first: self.first.init(s.input_channels, s.length, device),
            core: self.core.init(s.first_channels, s.first_length, device),
            final_block: self
                .final_block
                .init(s.core_channels, s.core_length, device),
        })
    }

    /// Build the model with the fresh initialisation that `seed` gives, whatever other threads
    /// draw meanwhile: burn's generator is one per process, so seeding it and drawing the
    /// weights (burn draws them lazily; this draws them all before it returns) happen under
    /// one process-wide lock, taken by every caller of this function.
    pub fn init_seeded(&self, device: &Device, seed: u64) -> Result<PrixFixeNet> {
        static SEEDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = SEEDING.lock().unwrap_or_else(|e| e.into_inner());
        device.seed(seed);
        let mut net = self.init(device)?;
        crate::nn::visit::materialize(&mut net);
        Ok(net)
    }

    /// Read a model config from TOML: either `preset = "…"` (with `data = "yeast"` etc.) or the
    /// full `[input]`, `[first]`, `[core]`, `[final]` tables. A training run's config (its
    /// `config.toml`, with `[model]`, `[data]`, `[recipe]`) gives its `[model]`.
    pub fn from_toml(text: &str) -> Result<Self> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Preset {
            preset: String,
            #[serde(default = "yeast")]
            data: DataKind,
        }
        fn yeast() -> DataKind {
            DataKind::Yeast
        }
        let err = |e: toml::de::Error| Error::Config(format!("model config: {e}"));
        let table: toml::Table = toml::from_str(text).map_err(err)?;
        if let (Some(toml::Value::Table(model)), true) =
            (table.get("model"), table.contains_key("data"))
        {
            return Self::from_toml(&toml::to_string(model).expect("a TOML table serialises"));
        }
        if table.contains_key("preset") {
            let p: Preset = toml::from_str(text).map_err(err)?;
            return Self::preset(&p.preset, p.data);
        }
        let config: NetConfig = toml::from_str(text).map_err(err)?;
        config.check()?;
        Ok(config)
    }

    /// The names of the prediction columns: `prediction`, `prediction_<task>` per named
    /// task, else `prediction_0`, … (the head's own names where it has them).
    pub fn columns(&self) -> Vec<String> {
        if self.tasks.len() > 1 && self.tasks.len() == self.final_block.tasks() {
            self.tasks
                .iter()
                .map(|t| format!("prediction_{t}"))
                .collect()
        } else {
            self.final_block.columns()
        }
    }

    /// Name the tasks after a training file's label columns, where the config names none
    /// and the head has one output per column (several).
    pub fn name_tasks_after(&mut self, labels: &[String]) {
        if self.tasks.is_empty()
            && labels.len() > 1
            && labels.len() == self.final_block.tasks()
            && check_task_names(labels, labels.len()).is_ok()
        {
            self.tasks = labels.to_vec();
        }
    }

    /// As TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configs serialise")
    }
}

/// Task names, where given, are one per task, distinct, and fit a column name.
fn check_task_names(names: &[String], tasks: usize) -> std::result::Result<(), String> {
    if names.is_empty() {
        return Ok(());
    }
    if names.len() != tasks {
        return Err(format!(
            "tasks names {} task(s) ({}) but the head has {tasks} output(s)",
            names.len(),
            names.join(", ")
        ));
    }
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() || n.chars().any(|c| c.is_whitespace() || c == ',') {
            return Err(format!(
                "task name {n:?} cannot name a column (empty, or with a space, tab or comma)"
            ));
        }
        if names[..i].contains(n) {
            return Err(format!("task name {n:?} is given twice"));
        }
    }
    Ok(())
}

/// The output of a forward pass.
pub struct NetOutput {
    /// Raw head output: 18 logits (soft classification) or task values.
    pub out: Tensor<2>,
    /// Sum of the blocks' auxiliary losses, if any.
    pub aux_loss: Option<Tensor<1>>,
}

/// A Prix Fixe model: first + core + final block.
#[derive(Module, Debug)]
pub struct PrixFixeNet {
    first: FirstBlock,
    core: CoreBlock,
    final_block: FinalBlock,
}

impl PrixFixeNet {
    /// `(batch, channels, length)` → head output and auxiliary loss.
    pub fn forward(&self, x: Tensor<3>) -> NetOutput {
        let a = self.first.forward(x);
        let b = self.core.forward(a.x);
        let aux_loss = match (a.aux_loss, b.aux_loss) {
            (Some(p), Some(q)) => Some(p + q),
            (p, q) => p.or(q),
        };
        NetOutput {
            out: self.final_block.forward(b.x),
            aux_loss,
        }
    }

    /// Predictions `(batch, tasks)`: decoded expression or task values.
    pub fn predict(&self, x: Tensor<3>) -> Tensor<2> {
        self.final_block.decode(self.forward(x).out)
    }

    /// The first layers block.
    pub fn first(&self) -> &FirstBlock {
        &self.first
    }

    /// The core layers block.
    pub fn core(&self) -> &CoreBlock {
        &self.core
    }

    /// The final layers block (loss and decoding).
    pub fn final_block(&self) -> &FinalBlock {
        &self.final_block
    }

    /// Trained parameters per block and in all, as PyTorch counts them.
    pub fn param_counts(&mut self) -> ParamCounts {
        ParamCounts {
            first: count_params(&mut self.first),
            core: count_params(&mut self.core),
            final_block: count_params(&mut self.final_block),
            running: crate::weights::count_running(self),
        }
    }
}

impl NamedWeights for PrixFixeNet {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        let p = |name: &str| crate::nn::visit::join(prefix, name);
        self.first.visit_weights(&p("first"), v);
        self.core.visit_weights(&p("core"), v);
        self.final_block.visit_weights(&p("final"), v);
    }
}

/// Parameter counts of a model's blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamCounts {
    /// First block.
    pub first: usize,
    /// Core block.
    pub core: usize,
    /// Final block.
    pub final_block: usize,
    /// Values of BatchNorm running statistics (not trained; Keras counts them as
    /// non-trainable parameters).
    pub running: usize,
}

impl ParamCounts {
    /// All of them.
    pub fn total(&self) -> usize {
        self.first + self.core + self.final_block
    }
}

/// A printable block tree with parameter counts (`prixfixe inspect --model`).
pub struct ModelSummary<'a> {
    /// The config.
    pub config: &'a NetConfig,
    /// Its shapes.
    pub shapes: Shapes,
    /// Its counts.
    pub counts: ParamCounts,
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl fmt::Display for ModelSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shapes;
        let c = &self.counts;
        writeln!(f, "input   {} × {}", s.input_channels, s.length)?;
        let positions = |from: usize, to: usize| {
            if from == to {
                String::new()
            } else {
                format!("   (length {from} → {to})")
            }
        };
        writeln!(
            f,
            "first   {:<12} {:>3} → {:<3} channels {:>12}{}",
            self.config.first.name(),
            s.input_channels,
            s.first_channels,
            thousands(c.first),
            positions(s.length, s.first_length)
        )?;
        writeln!(
            f,
            "core    {:<12} {:>3} → {:<3} channels {:>12}{}",
            self.config.core.name(),
            s.first_channels,
            s.core_channels,
            thousands(c.core),
            positions(s.first_length, s.core_length)
        )?;
        writeln!(
            f,
            "final   {:<12} {:>3} → {:<3} outputs  {:>12}",
            self.config.final_block.name(),
            s.core_channels,
            self.config.final_block.tasks(),
            thousands(c.final_block)
        )?;
        writeln!(f, "total parameters {:>37}", thousands(c.total()))?;
        if c.running > 0 {
            writeln!(
                f,
                "BatchNorm running statistics {:>25}   ({} with them, as Keras counts)",
                thousands(c.running),
                thousands(c.total() + c.running)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::first_layers::unlock_dna::UnlockDnaFirstConfig;

    fn count(name: &str, data: DataKind) -> usize {
        let device = Device::flex();
        let mut net = NetConfig::preset(name, data)
            .unwrap()
            .init(&device)
            .unwrap();
        net.param_counts().total()
    }

    #[test]
    fn task_names_name_the_prediction_columns() {
        for name in ["dream-cnn", "deepstarr"] {
            let c = NetConfig::preset(name, DataKind::Drosophila).unwrap();
            assert_eq!(c.columns(), ["prediction_dev", "prediction_hk"], "{name}");
            // The names travel with the config (a run's config.toml, a checkpoint's metadata).
            let back = NetConfig::from_toml(&c.to_toml()).unwrap();
            assert_eq!(back.columns(), c.columns());
        }
        let yeast = NetConfig::preset("dream-cnn", DataKind::Yeast).unwrap();
        assert_eq!(yeast.columns(), ["prediction"]);
        assert!(yeast.tasks.is_empty() && !yeast.to_toml().contains("tasks"));
        // Numbered where the config names none; a table's label columns name them.
        let mut c = NetConfig::preset("deepstarr", DataKind::Drosophila).unwrap();
        c.tasks.clear();
        assert_eq!(c.columns(), ["prediction_0", "prediction_1"]);
        c.name_tasks_after(&["a b".into(), "c".into()]);
        assert!(
            c.tasks.is_empty(),
            "a name with a space cannot name a column"
        );
        c.name_tasks_after(&["dev_log2".into(), "hk_log2".into()]);
        assert_eq!(c.columns(), ["prediction_dev_log2", "prediction_hk_log2"]);
        // Names that do not fit the head are refused when the config is checked.
        for (tasks, why) in [
            (vec!["dev"], "1 task(s)"),
            (vec!["dev", "dev"], "twice"),
            (vec!["dev", "h k"], "cannot name a column"),
        ] {
            c.tasks = tasks.into_iter().map(String::from).collect();
            let e = c.check().unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn parameter_counts_match_the_reference() {
        let expect = [
            ("dream-cnn", [1_933_970, 1_945_857, 1_962_754]),
            ("dream-rnn", [4_130_578, 4_203_393, 4_285_826]),
            ("dream-attn", [4_539_410, 4_619_521, 4_690_434]),
        ];
        for (name, counts) in expect {
            for (data, want) in DataKind::ALL.into_iter().zip(counts) {
                assert_eq!(count(name, data), want, "{name} on {data:?}");
            }
        }
    }

    /// SPEC_BENCHMARKS §3.1 and §4.1: trainable parameters as PyTorch counts them, and the
    /// Keras totals with BatchNorm's moving statistics; the lengths through the towers.
    #[test]
    fn baselines_have_the_published_counts_and_lengths() {
        let device = Device::flex();
        for (name, data, trainable, keras, lengths) in [
            (
                "deepstarr",
                DataKind::Drosophila,
                622_722,
                624_738,
                (249, 124, 15),
            ),
            (
                "mprann",
                DataKind::Human,
                3_957_751,
                3_959_451,
                (230, 224, 105),
            ),
        ] {
            let config = NetConfig::preset(name, data).unwrap();
            let s = config.check().unwrap();
            assert_eq!((s.length, s.first_length, s.core_length), lengths, "{name}");
            assert_eq!(s.input_channels, 4, "{name}");
            assert!(!s.keeps_length());
            let c = config.init(&device).unwrap().param_counts();
            assert_eq!(c.total(), trainable, "{name}");
            assert_eq!(c.total() + c.running, keras, "{name}");
        }
    }

    /// A baseline on inputs too short for its valid convolutions and pooling is refused
    /// before anything is built, with the key named.
    #[test]
    fn baselines_refuse_inputs_too_short_for_them() {
        let mut c = NetConfig::preset("mprann", DataKind::Human).unwrap();
        c.input.padding = Padding::exact(20);
        c.input.strands = Strands::Given;
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("[core] kernels"), "{e}");
        let mut c = NetConfig::preset("deepstarr", DataKind::Drosophila).unwrap();
        c.input.padding = Padding::exact(9);
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("[core] pool"), "{e}");
    }

    #[test]
    fn shapes_that_do_not_fit_are_rejected_with_the_blocks_named() {
        let mut c = NetConfig::preset("dream-cnn", DataKind::Yeast).unwrap();
        c.core = CoreConfig::UnlockDna(UnlockDnaConfig::default());
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("unlock-dna") && e.contains("320"), "{e}");
        assert!(c.init(&Device::flex()).is_err());
    }

    #[test]
    fn unlock_dna_first_refuses_odd_widths_and_odd_lengths() {
        let mut c = NetConfig::preset("dream-cnn", DataKind::Yeast).unwrap();
        c.first = FirstConfig::UnlockDna(UnlockDnaFirstConfig {
            out_channels: 16,
            kmer: 9,
        });
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("kmer = 9 is odd"), "{e}");
        c.first = FirstConfig::UnlockDna(UnlockDnaFirstConfig::default());
        assert_eq!(c.check().unwrap().first_channels, 256);
        c.input = DataKind::Drosophila.input(); // 249 positions
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("must be even") && e.contains("249"), "{e}");
    }

    #[test]
    fn any_fitting_combination_builds_and_runs() {
        let device = Device::flex();
        let firsts = [
            FirstConfig::Bhi(BhiFirstConfig {
                out_channels: 16,
                ..Default::default()
            }),
            FirstConfig::Autosome(AutosomeFirstConfig {
                out_channels: 16,
                kernel: 7,
            }),
            FirstConfig::UnlockDna(UnlockDnaFirstConfig {
                out_channels: 16,
                kmer: 4,
            }),
        ];
        let cores = [
            CoreConfig::Autosome(AutosomeCoreConfig {
                widths: vec![8, 8],
                ..Default::default()
            }),
            CoreConfig::Bhi(BhiCoreConfig {
                hidden: 8,
                out_channels: 8,
                ..Default::default()
            }),
            CoreConfig::UnlockDna(UnlockDnaConfig {
                d: 16,
                layers: 1,
                ff: 32,
                ..Default::default()
            }),
        ];
        for first in &firsts {
            for core in &cores {
                for data in DataKind::ALL {
                    let config = NetConfig {
                        tasks: data.task_names(),
                        input: data.input(),
                        first: first.clone(),
                        core: core.clone(),
                        final_block: data.final_block(),
                    };
                    let s = match config.check() {
                        // Two equal strand halves cannot cover Drosophila's 249 positions.
                        Err(e) if matches!(first, FirstConfig::UnlockDna(_)) => {
                            assert_eq!(data, DataKind::Drosophila, "{e}");
                            continue;
                        }
                        s => s.unwrap(),
                    };
                    let net = config.init(&device).unwrap();
                    let x = Tensor::<3>::zeros([2, s.input_channels, s.length], &device);
                    let y = net.predict(x);
                    assert_eq!(y.dims(), [2, config.final_block.tasks()]);
                }
            }
        }
    }

    fn stats(v: &[f32]) -> (f64, f64, f32) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        (mean, var.sqrt(), max)
    }

    #[test]
    fn initialisation_follows_the_spec() {
        let device = Device::flex();
        let mut net = NetConfig::preset("dream-cnn", DataKind::Yeast)
            .unwrap()
            .init_seeded(&device, 7)
            .unwrap();
        let w = crate::weights::WeightMap::from_model(&mut net, "").tensors;
        let std_of = |name: &str| stats(&w[name].data).1;
        let close = |got: f64, want: f64| (got / want - 1.0).abs() < 0.05;
        // Autosome convolutions: Normal(0, sqrt(2 / (k · C_out))).
        let s = std_of("core.seqextractor.resize_blc0.0.weight");
        assert!(close(s, (2.0f64 / (7.0 * 128.0)).sqrt()), "{s}");
        let s = std_of("core.seqextractor.inv_res_blc0.0.weight");
        assert!(close(s, (2.0f64 / 512.0).sqrt()), "{s}");
        let s = std_of("final.mapper.0.weight");
        assert!((s / (2.0f64 / 18.0).sqrt() - 1.0).abs() < 0.15, "{s}");
        assert!(w["final.mapper.0.bias"].data.iter().all(|&b| b == 0.0));
        // Autosome linear layers: Normal(0, 0.001), bias 0.
        let s = std_of("core.seqextractor.inv_res_blc0.6.fc.0.weight");
        assert!(close(s, 0.001), "{s}");
        assert!(
            w["core.seqextractor.inv_res_blc0.6.fc.0.bias"]
                .data
                .iter()
                .all(|&b| b == 0.0)
        );
        // BatchNorm: weight 1, bias 0, running statistics 0 and 1.
        let bn = "core.seqextractor.inv_res_blc0.1";
        assert!(w[&format!("{bn}.weight")].data.iter().all(|&x| x == 1.0));
        assert!(w[&format!("{bn}.bias")].data.iter().all(|&x| x == 0.0));
        assert!(
            w[&format!("{bn}.running_var")]
                .data
                .iter()
                .all(|&x| x == 1.0)
        );
        // BHI first block: PyTorch's default, uniform within ±1/sqrt(fan_in).
        let (_, s, max) = stats(&w["first.conv_list.0.conv.weight"].data);
        let bound = 1.0 / (6.0f32 * 9.0).sqrt();
        assert!(max <= bound && max > 0.95 * bound, "{max} vs {bound}");
        assert!(close(s, bound as f64 / 3f64.sqrt()), "{s}");
    }

    #[test]
    fn unknown_preset_lists_the_known_ones() {
        let e = NetConfig::preset("dream-gpt", DataKind::Yeast)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dream-cnn, dream-rnn, dream-attn, legnet, deepstarr, mprann"),
            "{e}"
        );
    }

    #[test]
    fn toml_round_trip_and_preset_form() {
        let c = NetConfig::preset("dream-attn", DataKind::Human).unwrap();
        assert_eq!(NetConfig::from_toml(&c.to_toml()).unwrap(), c);
        let p = NetConfig::from_toml("preset = \"dream-rnn\"\ndata = \"drosophila\"\n").unwrap();
        assert_eq!(
            p,
            NetConfig::preset("dream-rnn", DataKind::Drosophila).unwrap()
        );
        let e = NetConfig::from_toml("[first]\nblock = \"lstm\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("model config"), "{e}");
    }

    /// A run's `config.toml` gives its model (`prixfixe inspect --config run/config.toml`).
    #[test]
    fn a_run_config_gives_its_model() {
        let model = NetConfig::preset("dream-rnn", DataKind::Yeast).unwrap();
        let run =
            crate::train::TrainConfig::for_data(model.clone(), DataKind::Yeast, "t.txt".into());
        assert_eq!(NetConfig::from_toml(&run.to_toml()).unwrap(), model);
    }
}
