//! `tfhub` subcommands: `inspect`, `run` (and more as they land).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use serde_json::Value;

use tfhub::api::json::{tensor_from_json, tensor_to_json};

#[derive(Parser)]
#[command(name = "tfhub", version, about = "TensorFlow Hub models in pure Rust")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show a model's tags, signatures, assets and variables (like `saved_model_cli show --all`).
    Inspect {
        /// SavedModel directory or frozen GraphDef `.pb`.
        model: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a signature on inputs.json; write outputs in the golden.json format.
    Run {
        /// SavedModel directory.
        model: PathBuf,
        /// `{"<input name>": nested list}`.
        #[arg(long)]
        inputs: PathBuf,
        /// Signature to run.
        #[arg(long, default_value = "serving_default")]
        signature: String,
        /// Write here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// Runs the CLI; errors print their whole cause chain joined by `: `.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Inspect { model, json } => {
            let i = tfhub::api::inspect(&model)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&i.json)?);
            } else {
                print!("{}", i.to_text());
            }
        }
        Cmd::Run {
            model,
            inputs,
            signature,
            output,
        } => {
            let m = tfhub::load(&model)?;
            let sig = m.signature(&signature)?;
            let text = std::fs::read_to_string(&inputs)
                .with_context(|| format!("cannot read {}", inputs.display()))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", inputs.display()))?;
            let obj = v
                .as_object()
                .ok_or_else(|| anyhow!("{}: expected a JSON object", inputs.display()))?;
            let mut feeds = Vec::new();
            for (k, val) in obj {
                let spec = sig
                    .inputs()
                    .iter()
                    .find(|s| &s.key == k)
                    .ok_or_else(|| {
                        anyhow!(
                            "signature {signature:?} has no input {k:?}; expected {}",
                            sig.describe_inputs()
                        )
                    })?;
                let t = tensor_from_json(val, spec.dtype)
                    .with_context(|| format!("input {k:?}"))?;
                feeds.push((k.clone(), t));
            }
            let outs = sig.call(feeds)?;
            let j: BTreeMap<String, Value> =
                outs.iter().map(|(k, t)| (k.clone(), tensor_to_json(t))).collect();
            let s = serde_json::to_string(&j)?;
            match output {
                Some(p) => std::fs::write(&p, s)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => println!("{s}"),
            }
        }
    }
    Ok(())
}
