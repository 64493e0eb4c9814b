//! Choosing the answer generator from flags: the local GGUF model (default: SmolLM2,
//! pulled on first start) or an OpenAI-compatible server. Roles that answer questions
//! flatten [`GeneratorArgs`] into their flags and call [`GeneratorArgs::start`].

use crate::config::ConfigError;
use anyhow::Context;
use clap::{Args, ValueEnum};
use longview_models::DeviceKind;
use longview_models::pull::{DEFAULT_GENERATOR, default_generator_dir, default_generator_file};
use longview_worker::{Generator, GeneratorConfig, LocalGeneratorConfig, OpenAiConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where answers come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorKind {
    /// A llama-architecture GGUF chat model in this process.
    #[default]
    Local,
    /// An OpenAI-compatible server (vLLM, TGI, llama.cpp server) over HTTP.
    Openai,
    /// No generator: Ask answers extractively.
    None,
}

/// The generator's flags; each also reads its environment variable.
#[derive(Clone, Args, Serialize)]
pub struct GeneratorArgs {
    /// Where answers come from: local (a GGUF model here) or openai (a server).
    #[arg(
        long = "generator",
        env = "LONGVIEW_GENERATOR",
        value_enum,
        default_value_t
    )]
    pub kind: GeneratorKind,
    /// A llama-architecture GGUF chat model. Default: SmolLM2-135M-Instruct under
    /// --models-root, downloaded on first start.
    #[arg(long, env = "LONGVIEW_GENERATOR_MODEL")]
    pub generator_model: Option<PathBuf>,
    /// Answers that may wait for the local model; beyond that RESOURCE_EXHAUSTED.
    #[arg(long, env = "LONGVIEW_GENERATOR_QUEUE_CAPACITY", default_value_t = 8)]
    pub generator_queue_capacity: usize,
    /// API root of the OpenAI-compatible server, e.g. http://vllm:8000/v1.
    #[arg(long, env = "LONGVIEW_GENERATOR_URL")]
    pub generator_url: Option<String>,
    /// The model name the server serves.
    #[arg(long, env = "LONGVIEW_GENERATOR_MODEL_NAME")]
    pub generator_model_name: Option<String>,
    /// Bearer token for the server; best set through the environment. Never logged.
    #[arg(long, env = "LONGVIEW_GENERATOR_API_KEY", hide_env_values = true)]
    #[serde(skip)]
    pub generator_api_key: Option<String>,
    /// Seconds one remote answer may take in all.
    #[arg(
        long,
        env = "LONGVIEW_GENERATOR_TIMEOUT_SECONDS",
        default_value_t = 300
    )]
    pub generator_timeout_seconds: u64,
    /// Remote answers in flight at once; beyond that RESOURCE_EXHAUSTED.
    #[arg(long, env = "LONGVIEW_GENERATOR_MAX_CONCURRENT", default_value_t = 16)]
    pub generator_max_concurrent: usize,
}

impl std::fmt::Debug for GeneratorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).unwrap_or_default())
    }
}

impl Default for GeneratorArgs {
    /// The local default model, as `serve` runs without generator flags.
    fn default() -> Self {
        Self {
            kind: GeneratorKind::Local,
            generator_model: None,
            generator_queue_capacity: 8,
            generator_url: None,
            generator_model_name: None,
            generator_api_key: None,
            generator_timeout_seconds: 300,
            generator_max_concurrent: 16,
        }
    }
}

impl GeneratorArgs {
    /// Checks the flags belong together (a server needs a URL and a model name).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.kind != GeneratorKind::Openai {
            return Ok(());
        }
        let missing = |flag: &'static str| ConfigError::Invalid {
            flag,
            problem: "required with --generator openai".into(),
        };
        self.generator_url
            .as_ref()
            .ok_or_else(|| missing("--generator-url"))?;
        self.generator_model_name
            .as_ref()
            .ok_or_else(|| missing("--generator-model-name"))?;
        Ok(())
    }

    /// Starts the generator (none with `--generator none`); a local one loads on its own
    /// thread (wait with `ready`). The default local model is pulled first when missing.
    pub async fn start(
        &self,
        models_root: &Path,
        device: DeviceKind,
    ) -> anyhow::Result<Option<Generator>> {
        self.validate()?;
        let config = match self.kind {
            GeneratorKind::Local => GeneratorConfig::Local(self.local(models_root, device).await?),
            GeneratorKind::Openai => GeneratorConfig::OpenAi(self.openai()),
            GeneratorKind::None => return Ok(None),
        };
        tracing::info!(generator = ?self, "starting the answer generator");
        Ok(Some(Generator::spawn(config)?))
    }

    async fn local(
        &self,
        models_root: &Path,
        device: DeviceKind,
    ) -> anyhow::Result<LocalGeneratorConfig> {
        let model = match &self.generator_model {
            Some(model) => model.clone(),
            None => {
                let dir = default_generator_dir(models_root);
                tokio::task::spawn_blocking(move || DEFAULT_GENERATOR.ensure(&dir))
                    .await?
                    .with_context(|| format!("pulling {}", DEFAULT_GENERATOR.name))?;
                default_generator_file(models_root)
            }
        };
        let mut config = LocalGeneratorConfig::new(model);
        config.device = device;
        config.queue_capacity = self.generator_queue_capacity;
        Ok(config)
    }

    fn openai(&self) -> OpenAiConfig {
        let mut config = OpenAiConfig::new(
            self.generator_url.clone().unwrap_or_default(),
            self.generator_model_name.clone().unwrap_or_default(),
        );
        config.api_key = self.generator_api_key.clone();
        config.request_timeout = Duration::from_secs(self.generator_timeout_seconds);
        config.max_concurrent = self.generator_max_concurrent;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        generator: GeneratorArgs,
    }

    #[test]
    fn openai_needs_url_and_model_and_hides_the_key() {
        let flags = Flags::try_parse_from(["x", "--generator", "openai"]).unwrap();
        let err = flags.generator.validate().unwrap_err();
        assert!(err.to_string().contains("--generator-url"), "{err}");

        let flags = Flags::try_parse_from([
            "x",
            "--generator",
            "openai",
            "--generator-url",
            "http://h:8000/v1",
            "--generator-model-name",
            "m",
            "--generator-api-key",
            "sk-secret",
        ])
        .unwrap();
        flags.generator.validate().unwrap();
        assert!(!format!("{:?}", flags.generator).contains("sk-secret"));
    }
}
