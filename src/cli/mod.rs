//! Command-line surface. Each subcommand parses its flags and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use prixfixe::data::inspect::{inspect_file, Format};
use prixfixe::data::{ReverseRule, TableSpec};

/// Prix Fixe sequence-to-expression models of gene regulation (Random Promoter DREAM
/// Challenge 2022): simulate data, train, predict, score, interpret and design.
#[derive(Parser)]
#[command(name = "prixfixe", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the small end-to-end job on built-in defaults: simulate → train → predict → score.
    Demo,
    /// Simulate the random-promoter experiment and the DREAM test set, with known truth.
    Simulate,
    /// Train a Prix Fixe model (DREAM-CNN, DREAM-RNN, DREAM-Attn or any block combination).
    Train,
    /// Predict expression for sequences with a trained model.
    Predict,
    /// Score predictions with the DREAM Challenge's weighted metrics.
    Score,
    /// In-silico mutagenesis: the predicted effect of every single-base substitution.
    Ism,
    /// Design sequences with a genetic algorithm driven by trained models.
    Design,
    /// Show a model's blocks and parameter counts; check that a weight file fits it.
    Inspect(InspectArgs),
    /// Measure training and inference speed and memory.
    Bench,
    /// Validate a data file and summarise it (rows, lengths, singletons, label range).
    InspectData(InspectDataArgs),
}

#[derive(Args)]
struct InspectArgs {
    /// A named model: dream-cnn, dream-rnn, dream-attn, legnet.
    #[arg(long, conflicts_with = "config")]
    model: Option<String>,
    /// The data set the named model is for (sets its input and head).
    #[arg(long, default_value = "yeast", value_parser = ["yeast", "human", "drosophila"])]
    data: String,
    /// A model config in TOML (`preset = …` or `[input]`, `[first]`, `[core]`, `[final]`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A weight file (.pth, .pt or .safetensors) to load into the model, by the reference's
    /// parameter names.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Print the resolved config as TOML too.
    #[arg(long)]
    show_config: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// DREAM training file: sequence<TAB>expression[<TAB>fold], no header.
    Dream,
    /// DREAM test file: sequence[<TAB>measured], no header.
    DreamTest,
    /// FASTA.
    Fasta,
    /// Table with a header; name the columns with --seq-col/--target-col.
    Table,
    /// DREAM test-subset CSV.
    Subset,
}

#[derive(Args)]
struct InspectDataArgs {
    /// The file to check (plain or gzip-compressed).
    file: PathBuf,
    /// The file's format (guessed from its name and first line when left out).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Tables: the sequence column.
    #[arg(long)]
    seq_col: Option<String>,
    /// Tables: a label column (repeat for several tasks).
    #[arg(long = "target-col")]
    target_cols: Vec<String>,
    /// Tables: an id column (ids must be unique).
    #[arg(long)]
    id_col: Option<String>,
    /// Tables: a fold column.
    #[arg(long)]
    fold_col: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn not_yet(what: &str, issue: u32) -> Result<(), String> {
    Err(format!(
        "`prixfixe {what}` is not yet available in this build (tracked as issue {issue})"
    ))
}

fn inspect_data(a: InspectDataArgs) -> Result<(), String> {
    let format = match a.format {
        None if a.seq_col.is_none() => None,
        Some(FormatArg::Dream) => Some(Format::Dream),
        Some(FormatArg::DreamTest) => Some(Format::DreamTest),
        Some(FormatArg::Fasta) => Some(Format::Fasta),
        Some(FormatArg::Subset) => Some(Format::Subset),
        None | Some(FormatArg::Table) => {
            let sequence = a
                .seq_col
                .clone()
                .ok_or("--format table needs --seq-col NAME")?;
            Some(Format::Table(TableSpec {
                sequence,
                targets: a.target_cols.clone(),
                id: a.id_col.clone(),
                fold: a.fold_col.clone(),
                reverse: ReverseRule::None,
            }))
        }
    };
    if a.json {
        let format = match format {
            Some(f) => f,
            None => prixfixe::data::inspect::detect_format(&a.file).map_err(|e| e.to_string())?,
        };
        if format == Format::Subset {
            return Err("--json is for sequence files, not subset files".into());
        }
        let ds = prixfixe::data::inspect::read_any(&a.file, &format, &Default::default())
            .map_err(|e| e.to_string())?;
        let summary = prixfixe::data::inspect::summarize(&ds, &format);
        println!("{}", serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?);
    } else {
        print!("{}", inspect_file(&a.file, format).map_err(|e| e.to_string())?);
    }
    Ok(())
}

fn inspect(a: InspectArgs) -> Result<(), String> {
    use prixfixe::net::ModelSummary;
    use prixfixe::{DataKind, NetConfig};
    let config = match (&a.model, &a.config) {
        (Some(name), _) => NetConfig::preset(name, DataKind::parse(&a.data).map_err(|e| e.to_string())?),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| prixfixe::Error::Other(format!("{}: {e}", path.display())))
            .and_then(|text| NetConfig::from_toml(&text)),
        (None, None) => return Err("name a model with --model NAME or --config FILE".into()),
    }
    .map_err(|e| e.to_string())?;
    let shapes = config.check().map_err(|e| e.to_string())?;
    let device = burn::tensor::Device::flex();
    let mut net = config.init(&device).map_err(|e| e.to_string())?;
    let counts = net.param_counts();
    print!("{}", ModelSummary { config: &config, shapes, counts });
    if let Some(path) = &a.weights {
        let map = prixfixe::weights::WeightMap::read(path).map_err(|e| e.to_string())?;
        map.apply_to(&mut net, "", &device).map_err(|e| e.to_string())?;
        println!("weights {}: all {} tensors loaded", path.display(), map.tensors.len());
    }
    if a.show_config {
        println!("\n{}", config.to_toml());
    }
    Ok(())
}

fn demo() -> Result<(), String> {
    println!("prixfixe demo: simulate → train → predict → score on built-in defaults");
    not_yet("demo", 6)
}

/// Parse the command line and run it; errors print as `error: …` with exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo(),
        Command::Simulate => not_yet("simulate", 6),
        Command::Train => not_yet("train", 4),
        Command::Predict => not_yet("predict", 4),
        Command::Score => not_yet("score", 5),
        Command::Ism => not_yet("ism", 8),
        Command::Design => not_yet("design", 8),
        Command::Inspect(a) => inspect(a),
        Command::Bench => not_yet("bench", 7),
        Command::InspectData(a) => inspect_data(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
