//! Turning a request's options into a checked plan, at the edge.

use crate::ClassifyError;
use crate::heads::HeadRegistry;
use longview_core::WindowSpec;
use longview_core::head::ClassifierHead;
use longview_proto::v1 as pb;
use std::collections::HashSet;
use std::sync::Arc;

/// Service limits and defaults.
#[derive(Clone, Copy, Debug)]
pub struct ClassifyLimits {
    pub max_labels: usize,
    pub max_document_tokens: usize,
    pub max_document_bytes: usize,
    pub default_window: usize,
    pub default_overlap: usize,
    pub default_top_evidence: usize,
    pub max_top_evidence: usize,
    /// Windows sent to the model per job: bounds memory per request and lets other
    /// requests interleave while a long document is read.
    pub windows_per_job: usize,
}

impl Default for ClassifyLimits {
    fn default() -> Self {
        Self {
            max_labels: 64,
            max_document_tokens: 2_000_000,
            max_document_bytes: 16 << 20,
            default_window: 256,
            default_overlap: 32,
            default_top_evidence: 3,
            max_top_evidence: 32,
            windows_per_job: 32,
        }
    }
}

/// A label: its name and the text its prototype is embedded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSpec {
    pub name: String,
    pub description: String,
}

/// Where label scores come from.
#[derive(Clone, Debug)]
pub enum LabelSource {
    ZeroShot(Vec<LabelSpec>),
    Head(Arc<ClassifierHead>),
}

/// How window scores become document scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentAggregation {
    Mean,
    Max,
    /// A trained head's learned attention over window vectors.
    Attention,
}

/// The model the plan is checked against.
#[derive(Clone, Copy, Debug)]
pub struct ModelLimits<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub max_positions: usize,
    pub special_tokens: usize,
}

/// A validated request, independent of the wire format.
#[derive(Clone, Debug)]
pub struct ClassifyPlan {
    pub source: LabelSource,
    pub labels: Vec<String>,
    pub multi_label: bool,
    pub aggregation: DocumentAggregation,
    pub window: WindowSpec,
    pub top_evidence: usize,
    pub include_windows: bool,
}

impl ClassifyPlan {
    /// Checks options against the limits, the model and the installed heads.
    pub fn from_options(
        options: Option<pb::ClassifyOptions>,
        limits: &ClassifyLimits,
        model: ModelLimits<'_>,
        heads: &HeadRegistry,
    ) -> Result<Self, ClassifyError> {
        let options = options.ok_or(ClassifyError::MissingOptions)?;
        let source = source(options.labels.clone(), limits, model, heads)?;
        let head = match &source {
            LabelSource::Head(head) => Some(head.clone()),
            LabelSource::ZeroShot(_) => None,
        };
        let aggregation = aggregation(options.aggregation(), head.as_deref())?;
        let window = window(
            options.windows.unwrap_or_default(),
            limits,
            model.special_tokens,
            head.as_deref(),
        );
        window.validate(model.max_positions)?;
        let top_evidence = match options.top_evidence as usize {
            0 => limits.default_top_evidence,
            n => n.min(limits.max_top_evidence),
        };
        let (labels, multi_label) = match &source {
            LabelSource::ZeroShot(specs) => (
                specs.iter().map(|l| l.name.clone()).collect(),
                options.multi_label,
            ),
            LabelSource::Head(head) => (head.labels().to_vec(), head.spec.multi_label),
        };
        let include_windows = options.include_windows;
        Ok(Self {
            source,
            labels,
            multi_label,
            aggregation,
            window,
            top_evidence,
            include_windows,
        })
    }
}

fn source(
    labels: Option<pb::classify_options::Labels>,
    limits: &ClassifyLimits,
    model: ModelLimits<'_>,
    heads: &HeadRegistry,
) -> Result<LabelSource, ClassifyError> {
    match labels.ok_or(ClassifyError::MissingLabels)? {
        pb::classify_options::Labels::ZeroShot(zero_shot) => {
            Ok(LabelSource::ZeroShot(zero_shot_labels(zero_shot, limits)?))
        }
        pb::classify_options::Labels::LabelSet(name) => {
            head(name, model, heads).map(LabelSource::Head)
        }
    }
}

fn head(
    name: String,
    model: ModelLimits<'_>,
    heads: &HeadRegistry,
) -> Result<Arc<ClassifierHead>, ClassifyError> {
    let Some(head) = heads.get(&name) else {
        let names = heads.names();
        let known = if names.is_empty() {
            "none installed".to_string()
        } else {
            names.join(", ")
        };
        return Err(ClassifyError::UnknownLabelSet { name, known });
    };
    let spec = &head.spec;
    if spec.encoder_name != model.name || spec.encoder_version != model.version {
        return Err(ClassifyError::HeadForOtherEncoder {
            name,
            trained_on: format!("{} ({})", spec.encoder_name, spec.encoder_version),
            serving: format!("{} ({})", model.name, model.version),
        });
    }
    Ok(head)
}

fn zero_shot_labels(
    zero_shot: pb::ZeroShotLabels,
    limits: &ClassifyLimits,
) -> Result<Vec<LabelSpec>, ClassifyError> {
    let count = zero_shot.labels.len();
    if count < 2 {
        return Err(ClassifyError::TooFewLabels(count));
    }
    if count > limits.max_labels {
        return Err(ClassifyError::TooManyLabels {
            count,
            limit: limits.max_labels,
        });
    }
    let mut seen = HashSet::new();
    let mut specs = Vec::with_capacity(count);
    for (index, label) in zero_shot.labels.into_iter().enumerate() {
        let name = label.name.trim().to_string();
        if name.is_empty() {
            return Err(ClassifyError::EmptyLabel { index });
        }
        if !seen.insert(name.to_lowercase()) {
            return Err(ClassifyError::DuplicateLabel { name });
        }
        specs.push(LabelSpec {
            name,
            description: label.description.trim().to_string(),
        });
    }
    Ok(specs)
}

/// The request's aggregation; unspecified means the head's own, or mean for zero-shot.
fn aggregation(
    requested: pb::Aggregation,
    head: Option<&ClassifierHead>,
) -> Result<DocumentAggregation, ClassifyError> {
    let trained = head.map(|h| h.spec.aggregation.as_str());
    match (requested, trained) {
        (pb::Aggregation::Unspecified, Some("attention")) | (pb::Aggregation::Attention, _) => {
            match head {
                Some(head) if head.has_attention() => Ok(DocumentAggregation::Attention),
                Some(head) => Err(ClassifyError::HeadWithoutAttention {
                    name: head.spec.name.clone(),
                }),
                None => Err(ClassifyError::AttentionNeedsHead),
            }
        }
        (pb::Aggregation::Unspecified, Some("max")) | (pb::Aggregation::Max, _) => {
            Ok(DocumentAggregation::Max)
        }
        (pb::Aggregation::Unspecified | pb::Aggregation::Mean, _) => Ok(DocumentAggregation::Mean),
    }
}

/// The request's windows; unspecified means the head's training windows, else the defaults.
fn window(
    options: pb::WindowOptions,
    limits: &ClassifyLimits,
    special_tokens: usize,
    head: Option<&ClassifierHead>,
) -> WindowSpec {
    let (default_size, default_overlap) = match head {
        Some(head) => (head.spec.window_size, head.spec.window_overlap),
        None => (limits.default_window, limits.default_overlap),
    };
    let size = if options.size == 0 {
        default_size
    } else {
        options.size as usize
    };
    let overlap = if options.size == 0 && options.overlap == 0 {
        default_overlap
    } else {
        options.overlap as usize
    };
    WindowSpec {
        size,
        overlap,
        special_tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(labels: &[&str]) -> pb::ClassifyOptions {
        let labels = labels
            .iter()
            .map(|n| pb::Label {
                name: n.to_string(),
                description: String::new(),
            })
            .collect();
        pb::ClassifyOptions {
            labels: Some(pb::classify_options::Labels::ZeroShot(pb::ZeroShotLabels {
                labels,
            })),
            ..Default::default()
        }
    }

    fn plan(options: pb::ClassifyOptions) -> Result<ClassifyPlan, ClassifyError> {
        let model = ModelLimits {
            name: "enc",
            version: "v1",
            max_positions: 512,
            special_tokens: 2,
        };
        ClassifyPlan::from_options(
            Some(options),
            &ClassifyLimits::default(),
            model,
            &HeadRegistry::default(),
        )
    }

    #[test]
    fn defaults_apply() {
        let plan = plan(options(&["a", "b"])).unwrap();
        assert_eq!((plan.window.size, plan.window.overlap), (256, 32));
        assert_eq!(plan.aggregation, DocumentAggregation::Mean);
        assert_eq!(plan.top_evidence, 3);
    }

    #[test]
    fn bad_label_sets_are_named() {
        assert!(matches!(
            plan(options(&["only"])),
            Err(ClassifyError::TooFewLabels(1))
        ));
        assert!(matches!(
            plan(options(&["a", " "])),
            Err(ClassifyError::EmptyLabel { index: 1 })
        ));
        let err = plan(options(&["Sports", "sports"])).unwrap_err();
        assert_eq!(err.to_string(), "label \"sports\" appears more than once");
        let mut by_name = options(&[]);
        by_name.labels = Some(pb::classify_options::Labels::LabelSet("topics".into()));
        assert!(matches!(
            plan(by_name),
            Err(ClassifyError::UnknownLabelSet { .. })
        ));
    }

    #[test]
    fn overlap_not_below_window_is_refused() {
        let mut opts = options(&["a", "b"]);
        opts.windows = Some(pb::WindowOptions {
            size: 64,
            overlap: 64,
        });
        let err = plan(opts).unwrap_err();
        assert!(err.to_string().contains("overlap 64"), "{err}");
    }
}
