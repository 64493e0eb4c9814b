//! Training classification heads on frozen encoder features: a linear layer over window
//! vectors, aggregated per document by mean, max or a learned attention, fitted with
//! AdamW on cross-entropy (one label) or binary cross-entropy (many labels), with a
//! held-out split and early stopping. Deterministic for a given seed.

use crate::ModelError;
use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// How a document's windows combine into document logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadAggregation {
    /// Mean of window logits.
    Mean,
    /// Per-label maximum of window logits.
    Max,
    /// Logits of the attention-weighted mean of window vectors.
    Attention,
}

impl HeadAggregation {
    pub fn name(self) -> &'static str {
        match self {
            HeadAggregation::Mean => "mean",
            HeadAggregation::Max => "max",
            HeadAggregation::Attention => "attention",
        }
    }
}

/// One training document: its window vectors and its targets (one 0/1 per label).
#[derive(Clone, Debug)]
pub struct Example {
    pub windows: Vec<Vec<f32>>,
    pub targets: Vec<f32>,
    /// How much this example counts in the loss (1 for most; more for a small source that
    /// matters, such as in-domain sentences beside a large general corpus).
    pub weight: f32,
}

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub aggregation: HeadAggregation,
    pub multi_label: bool,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    pub attention_dim: usize,
    /// Learn a BERT-style pooler (dense + tanh) before the classifier, as
    /// `…ForSequenceClassification` models have; used on first-token states.
    pub pooler: bool,
    pub validation_fraction: f64,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            aggregation: HeadAggregation::Attention,
            multi_label: false,
            learning_rate: 3e-3,
            weight_decay: 1e-2,
            batch_size: 32,
            max_epochs: 200,
            patience: 12,
            attention_dim: 64,
            pooler: false,
            validation_fraction: 0.1,
            seed: 17,
        }
    }
}

/// The trained parameters, as plain vectors (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainedHead {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    /// (proj [a × dim], proj bias [a], query [a]) for attention heads.
    pub attention: Option<(Vec<f32>, Vec<f32>, Vec<f32>)>,
    /// (weight [dim × dim], bias [dim]) when trained with a pooler.
    pub pooler: Option<(Vec<f32>, Vec<f32>)>,
    pub report: TrainReport,
}

/// What training did, for logs and the head's metadata.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TrainReport {
    pub epochs: usize,
    pub best_epoch: usize,
    pub train_examples: usize,
    pub validation_examples: usize,
    pub best_validation_loss: f32,
}

/// Called after every epoch with (epoch, train loss, validation loss).
pub trait Progress {
    fn epoch(&mut self, epoch: usize, train_loss: f32, validation_loss: f32);
}

impl<F: FnMut(usize, f32, f32)> Progress for F {
    fn epoch(&mut self, epoch: usize, train_loss: f32, validation_loss: f32) {
        self(epoch, train_loss, validation_loss)
    }
}

struct Params {
    weight: Var,
    bias: Var,
    attention: Option<(Var, Var, Var)>,
    pooler: Option<(Var, Var)>,
}

/// Trains a head on `examples` (at least two). The last `validation_fraction` of a seeded
/// shuffle is held out for early stopping; the best epoch's parameters are returned.
pub fn train_head(
    examples: &[Example],
    config: &TrainConfig,
    progress: &mut impl Progress,
) -> Result<TrainedHead, ModelError> {
    let (dim, labels) = shape_of(examples)?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(&mut rng);
    let held_out = ((examples.len() as f64 * config.validation_fraction).round() as usize)
        .clamp(1, examples.len() - 1);
    let (validation, train) = order.split_at(held_out);
    let mut train = train.to_vec();

    let device = Device::Cpu;
    let params = init_params(&mut rng, dim, labels, config, &device)?;
    let mut optimizer = AdamW::new(params.vars(), adam_params(config))?;
    let mut best = (f32::INFINITY, 0, params.snapshot()?);
    let mut epochs = 0;
    for epoch in 1..=config.max_epochs {
        epochs = epoch;
        train.shuffle(&mut rng);
        let mut train_loss = 0.0;
        for batch in train.chunks(config.batch_size) {
            let loss = batch_loss(&params, examples, batch, config, &device)?;
            optimizer.backward_step(&loss)?;
            train_loss += loss.to_scalar::<f32>()? * batch.len() as f32;
        }
        let validation_loss = evaluate(&params, examples, validation, config, &device)?;
        progress.epoch(epoch, train_loss / train.len() as f32, validation_loss);
        if validation_loss < best.0 {
            best = (validation_loss, epoch, params.snapshot()?);
        } else if epoch - best.1 >= config.patience {
            break;
        }
    }
    let (best_validation_loss, best_epoch, snapshot) = best;
    let report = TrainReport {
        epochs,
        best_epoch,
        train_examples: train.len(),
        validation_examples: validation.len(),
        best_validation_loss,
    };
    Ok(TrainedHead { report, ..snapshot })
}

fn shape_of(examples: &[Example]) -> Result<(usize, usize), ModelError> {
    let invalid = |why: &str| ModelError::Fetch(format!("training data: {why}"));
    if examples.len() < 2 {
        return Err(invalid("need at least two examples"));
    }
    let dim = examples[0]
        .windows
        .first()
        .map(Vec::len)
        .ok_or_else(|| invalid("an example has no windows"))?;
    let labels = examples[0].targets.len();
    for example in examples {
        if example.windows.is_empty()
            || example.windows.iter().any(|w| w.len() != dim)
            || example.targets.len() != labels
        {
            return Err(invalid(
                "examples differ in window size, label count, or have no windows",
            ));
        }
    }
    Ok((dim, labels))
}

fn adam_params(config: &TrainConfig) -> ParamsAdamW {
    ParamsAdamW {
        lr: config.learning_rate,
        weight_decay: config.weight_decay,
        ..Default::default()
    }
}

/// Small uniform initial weights from the seeded generator, so training is repeatable.
fn init_params(
    rng: &mut StdRng,
    dim: usize,
    labels: usize,
    config: &TrainConfig,
    device: &Device,
) -> Result<Params, ModelError> {
    let bound = 1.0 / (dim as f32).sqrt();
    let mut uniform = |rows: usize, cols: usize| -> Result<Var, ModelError> {
        let values: Vec<f32> = (0..rows * cols)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        Ok(Var::from_tensor(&Tensor::from_vec(
            values,
            (rows, cols),
            device,
        )?)?)
    };
    let weight = uniform(labels, dim)?;
    let attention = match config.aggregation {
        HeadAggregation::Attention => {
            let proj = uniform(config.attention_dim, dim)?;
            let query = uniform(1, config.attention_dim)?;
            Some((
                proj,
                Var::zeros(config.attention_dim, DType::F32, device)?,
                query,
            ))
        }
        _ => None,
    };
    let pooler = match config.pooler {
        true => Some((uniform(dim, dim)?, Var::zeros(dim, DType::F32, device)?)),
        false => None,
    };
    Ok(Params {
        weight,
        bias: Var::zeros(labels, DType::F32, device)?,
        attention,
        pooler,
    })
}

impl Params {
    fn vars(&self) -> Vec<Var> {
        let mut vars = vec![self.weight.clone(), self.bias.clone()];
        if let Some((proj, proj_bias, query)) = &self.attention {
            vars.extend([proj.clone(), proj_bias.clone(), query.clone()]);
        }
        if let Some((weight, bias)) = &self.pooler {
            vars.extend([weight.clone(), bias.clone()]);
        }
        vars
    }

    fn snapshot(&self) -> Result<TrainedHead, ModelError> {
        let flat = |v: &Var| -> Result<Vec<f32>, ModelError> {
            Ok(v.as_tensor().flatten_all()?.to_vec1()?)
        };
        let attention = match &self.attention {
            Some((proj, bias, query)) => Some((flat(proj)?, flat(bias)?, flat(query)?)),
            None => None,
        };
        let pooler = match &self.pooler {
            Some((weight, bias)) => Some((flat(weight)?, flat(bias)?)),
            None => None,
        };
        Ok(TrainedHead {
            weight: flat(&self.weight)?,
            bias: flat(&self.bias)?,
            attention,
            pooler,
            report: TrainReport::default(),
        })
    }

    /// Document logits [batch, labels] from padded windows [batch, windows, dim] and the
    /// window mask [batch, windows].
    fn forward(
        &self,
        windows: &Tensor,
        mask: &Tensor,
        aggregation: HeadAggregation,
    ) -> candle_core::Result<Tensor> {
        let linear = |x: &Tensor| {
            let pooled = match &self.pooler {
                Some((w, b)) => x.broadcast_matmul(&w.t()?)?.broadcast_add(b)?.tanh()?,
                None => x.clone(),
            };
            pooled
                .broadcast_matmul(&self.weight.t()?)?
                .broadcast_add(&self.bias)
        };
        // Padded windows get a large negative offset so max and softmax ignore them.
        let padding = ((mask - 1.0)? * 1e4)?;
        match (aggregation, &self.attention) {
            (HeadAggregation::Attention, Some((proj, proj_bias, query))) => {
                let hidden = windows
                    .broadcast_matmul(&proj.t()?)?
                    .broadcast_add(proj_bias)?
                    .tanh()?;
                let scores = hidden.broadcast_matmul(&query.t()?)?.squeeze(D::Minus1)?;
                let weights = candle_nn::ops::softmax(&(scores + padding)?, D::Minus1)?;
                let pooled = windows
                    .broadcast_mul(&weights.unsqueeze(D::Minus1)?)?
                    .sum(1)?;
                linear(&pooled)
            }
            (HeadAggregation::Max, _) => linear(windows)?
                .broadcast_add(&padding.unsqueeze(D::Minus1)?)?
                .max(1),
            _ => {
                let logits = linear(windows)?
                    .broadcast_mul(&mask.unsqueeze(D::Minus1)?)?
                    .sum(1)?;
                logits.broadcast_div(&mask.sum_keepdim(1)?)
            }
        }
    }
}

/// Padded window vectors, mask and targets for a batch of examples.
fn batch_tensors(
    examples: &[Example],
    batch: &[usize],
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let dim = examples[0].windows[0].len();
    let longest = batch
        .iter()
        .map(|&i| examples[i].windows.len())
        .max()
        .unwrap_or(1);
    let mut windows = Vec::with_capacity(batch.len() * longest * dim);
    let mut mask = Vec::with_capacity(batch.len() * longest);
    let mut targets = Vec::with_capacity(batch.len() * examples[0].targets.len());
    for &index in batch {
        let example = &examples[index];
        for slot in 0..longest {
            match example.windows.get(slot) {
                Some(vector) => windows.extend_from_slice(vector),
                None => windows.resize(windows.len() + dim, 0.0),
            }
            mask.push(if slot < example.windows.len() {
                1.0f32
            } else {
                0.0
            });
        }
        targets.extend_from_slice(&example.targets);
    }
    let labels = examples[0].targets.len();
    Ok((
        Tensor::from_vec(windows, (batch.len(), longest, dim), device)?,
        Tensor::from_vec(mask, (batch.len(), longest), device)?,
        Tensor::from_vec(targets, (batch.len(), labels), device)?,
    ))
}

fn batch_loss(
    params: &Params,
    examples: &[Example],
    batch: &[usize],
    config: &TrainConfig,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let (windows, mask, targets) = batch_tensors(examples, batch, device)?;
    let weights: Vec<f32> = batch.iter().map(|&i| examples[i].weight).collect();
    let weights = Tensor::from_vec(weights, batch.len(), device)?;
    let logits = params.forward(&windows, &mask, config.aggregation)?;
    let per_example = if config.multi_label {
        stable_bce_with_logits(&logits, &targets)?.mean(D::Minus1)?
    } else {
        let log_probabilities = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        (log_probabilities * &targets)?.sum(D::Minus1)?.neg()?
    };
    (per_example * &weights)?.sum_all()? / weights.sum_all()?.to_scalar::<f32>()? as f64
}

/// Binary cross-entropy on logits, computed as max(x, 0) − x·y + log(1 + e^−|x|) so that
/// confident logits never take the log of zero.
fn stable_bce_with_logits(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    logits.relu()? - (logits * targets)? + softplus
}

fn evaluate(
    params: &Params,
    examples: &[Example],
    indices: &[usize],
    config: &TrainConfig,
    device: &Device,
) -> Result<f32, ModelError> {
    let mut total = 0.0;
    for batch in indices.chunks(config.batch_size) {
        total += batch_loss(params, examples, batch, config, device)?.to_scalar::<f32>()?
            * batch.len() as f32;
    }
    Ok(total / indices.len() as f32)
}

/// Document logits for one example with trained parameters, computed the same way as in
/// training (used to check that serving-time arithmetic agrees).
pub fn document_logits(
    head: &TrainedHead,
    example: &Example,
    aggregation: HeadAggregation,
) -> Result<Vec<f32>, ModelError> {
    let device = Device::Cpu;
    let dim = example.windows[0].len();
    let labels = head.bias.len();
    let var = |values: &[f32], shape: (usize, usize)| -> Result<Var, ModelError> {
        Ok(Var::from_tensor(&Tensor::from_vec(
            values.to_vec(),
            shape,
            &device,
        )?)?)
    };
    let attention = match &head.attention {
        Some((proj, bias, query)) => Some((
            var(proj, (bias.len(), dim))?,
            Var::from_tensor(&Tensor::new(bias.as_slice(), &device)?)?,
            var(query, (1, query.len()))?,
        )),
        None => None,
    };
    let pooler = match &head.pooler {
        Some((weight, bias)) => Some((
            var(weight, (dim, dim))?,
            Var::from_tensor(&Tensor::new(bias.as_slice(), &device)?)?,
        )),
        None => None,
    };
    let params = Params {
        weight: var(&head.weight, (labels, dim))?,
        bias: Var::from_tensor(&Tensor::new(head.bias.as_slice(), &device)?)?,
        attention,
        pooler,
    };
    let (windows, mask, _) = batch_tensors(std::slice::from_ref(example), &[0], &device)?;
    Ok(params
        .forward(&windows, &mask, aggregation)?
        .squeeze(0)?
        .to_vec1()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two classes told apart by which of two directions dominates a document's windows;
    /// some windows are noise, so aggregation matters.
    fn toy_examples(count: usize, seed: u64) -> Vec<Example> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..count)
            .map(|i| {
                let class = i % 2;
                let windows = (0..rng.random_range(1..6))
                    .map(|w| {
                        let mut v: Vec<f32> = (0..8).map(|_| rng.random_range(-0.1..0.1)).collect();
                        if w == 0 {
                            v[class] += 1.0;
                        }
                        v
                    })
                    .collect();
                let mut targets = vec![0.0; 2];
                targets[class] = 1.0;
                Example {
                    windows,
                    targets,
                    weight: 1.0,
                }
            })
            .collect()
    }

    fn accuracy(head: &TrainedHead, examples: &[Example], aggregation: HeadAggregation) -> f32 {
        let correct = examples
            .iter()
            .filter(|e| {
                let logits = document_logits(head, e, aggregation).unwrap();
                (logits[1] > logits[0]) == (e.targets[1] > 0.5)
            })
            .count();
        correct as f32 / examples.len() as f32
    }

    #[test]
    fn every_aggregation_learns_and_training_is_deterministic() {
        let (train, test) = (toy_examples(200, 1), toy_examples(60, 2));
        for aggregation in [
            HeadAggregation::Mean,
            HeadAggregation::Max,
            HeadAggregation::Attention,
        ] {
            let config = TrainConfig {
                aggregation,
                max_epochs: 60,
                ..Default::default()
            };
            let head = train_head(&train, &config, &mut |_, _, _| {}).unwrap();
            assert!(accuracy(&head, &test, aggregation) > 0.9, "{aggregation:?}");
            let again = train_head(&train, &config, &mut |_, _, _| {}).unwrap();
            assert_eq!(head, again, "{aggregation:?} is not deterministic");
        }
    }

    #[test]
    fn pooler_heads_learn() {
        let (train, test) = (toy_examples(200, 3), toy_examples(60, 4));
        let config = TrainConfig {
            aggregation: HeadAggregation::Mean,
            pooler: true,
            max_epochs: 60,
            ..Default::default()
        };
        let head = train_head(&train, &config, &mut |_, _, _| {}).unwrap();
        assert!(head.pooler.is_some());
        assert!(accuracy(&head, &test, HeadAggregation::Mean) > 0.9);
    }

    #[test]
    fn multi_label_loss_is_finite_for_confident_logits() {
        let logits = Tensor::new(&[[80.0f32, -80.0]], &Device::Cpu).unwrap();
        let targets = Tensor::new(&[[0.0f32, 1.0]], &Device::Cpu).unwrap();
        let loss = stable_bce_with_logits(&logits, &targets)
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((loss - 80.0).abs() < 1e-3, "{loss}");
    }
}
