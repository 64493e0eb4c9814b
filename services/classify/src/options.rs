//! Turning a request's options into a checked plan, at the edge.

use crate::ClassifyError;
use longview_core::WindowSpec;
use longview_core::aggregate::Aggregation;
use longview_proto::v1 as pb;
use std::collections::HashSet;

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

/// A validated request, independent of the wire format.
#[derive(Clone, Debug)]
pub struct ClassifyPlan {
    pub labels: Vec<LabelSpec>,
    pub multi_label: bool,
    pub aggregation: Aggregation,
    pub window: WindowSpec,
    pub top_evidence: usize,
    pub include_windows: bool,
}

impl ClassifyPlan {
    /// Checks options against the limits and the model (positions and special tokens).
    pub fn from_options(
        options: Option<pb::ClassifyOptions>,
        limits: &ClassifyLimits,
        max_positions: usize,
        special_tokens: usize,
    ) -> Result<Self, ClassifyError> {
        let options = options.ok_or(ClassifyError::MissingOptions)?;
        let labels = labels(options.labels.clone(), limits)?;
        let aggregation = aggregation(options.aggregation())?;
        let window = window(options.windows.unwrap_or_default(), limits, special_tokens);
        window.validate(max_positions)?;
        let top_evidence = match options.top_evidence as usize {
            0 => limits.default_top_evidence,
            n => n.min(limits.max_top_evidence),
        };
        let (multi_label, include_windows) = (options.multi_label, options.include_windows);
        Ok(Self {
            labels,
            multi_label,
            aggregation,
            window,
            top_evidence,
            include_windows,
        })
    }
}

fn labels(
    labels: Option<pb::classify_options::Labels>,
    limits: &ClassifyLimits,
) -> Result<Vec<LabelSpec>, ClassifyError> {
    let zero_shot = match labels.ok_or(ClassifyError::MissingLabels)? {
        pb::classify_options::Labels::ZeroShot(zero_shot) => zero_shot,
        pb::classify_options::Labels::LabelSet(name) => {
            // TODO(classify-heads): load trained heads by name from the models directory.
            return Err(ClassifyError::UnknownLabelSet {
                name,
                known: "none installed".into(),
            });
        }
    };
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

fn aggregation(requested: pb::Aggregation) -> Result<Aggregation, ClassifyError> {
    match requested {
        pb::Aggregation::Unspecified | pb::Aggregation::Mean => Ok(Aggregation::Mean),
        pb::Aggregation::Max => Ok(Aggregation::Max),
        pb::Aggregation::Attention => Err(ClassifyError::AttentionNeedsHead),
    }
}

fn window(
    options: pb::WindowOptions,
    limits: &ClassifyLimits,
    special_tokens: usize,
) -> WindowSpec {
    let size = if options.size == 0 {
        limits.default_window
    } else {
        options.size as usize
    };
    let overlap = if options.size == 0 && options.overlap == 0 {
        limits.default_overlap
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
        ClassifyPlan::from_options(Some(options), &ClassifyLimits::default(), 512, 2)
    }

    #[test]
    fn defaults_apply() {
        let plan = plan(options(&["a", "b"])).unwrap();
        assert_eq!((plan.window.size, plan.window.overlap), (256, 32));
        assert_eq!(plan.aggregation, Aggregation::Mean);
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
