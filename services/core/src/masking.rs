//! Which tenants get their text masked, and how: a default for everyone and per-tenant
//! overrides, compiled once into [`Masking`], which every place that lets text out calls.

use crate::redact::{RedactError, RedactionRules, Redactor, Sensitive};
use crate::tenant::Tenant;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use thiserror::Error;

/// Masking as configured: the `[masking]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaskingSettings {
    /// Mask for tenants without their own setting.
    pub enabled: bool,
    pub kinds: Vec<Sensitive>,
    /// Extra regular expressions masked as `[REDACTED]`.
    pub patterns: Vec<String>,
    /// Per-tenant overrides; unset fields inherit the defaults above.
    pub tenants: BTreeMap<String, TenantMasking>,
}

impl Default for MaskingSettings {
    fn default() -> Self {
        let rules = RedactionRules::default();
        Self {
            enabled: false,
            kinds: rules.kinds,
            patterns: rules.patterns,
            tenants: BTreeMap::new(),
        }
    }
}

/// One tenant's override of the masking defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantMasking {
    pub enabled: Option<bool>,
    pub kinds: Option<Vec<Sensitive>>,
    pub patterns: Option<Vec<String>>,
}

#[derive(Debug, Error)]
pub enum MaskingError {
    #[error("masking: {0}")]
    Default(#[source] RedactError),
    #[error("masking.tenants.{tenant}: {source}")]
    Tenant {
        tenant: String,
        #[source]
        source: RedactError,
    },
}

/// Compiled masking for every tenant. The default value masks nothing.
#[derive(Clone, Debug, Default)]
pub struct Masking {
    default: Option<Arc<Redactor>>,
    tenants: HashMap<Tenant, Option<Arc<Redactor>>>,
}

impl Masking {
    pub fn new(settings: &MaskingSettings) -> Result<Self, MaskingError> {
        let default = compile(settings.enabled, &settings.kinds, &settings.patterns)
            .map_err(MaskingError::Default)?;
        let mut tenants = HashMap::new();
        for (name, own) in &settings.tenants {
            let redactor = compile(
                own.enabled.unwrap_or(settings.enabled),
                own.kinds.as_ref().unwrap_or(&settings.kinds),
                own.patterns.as_ref().unwrap_or(&settings.patterns),
            )
            .map_err(|source| MaskingError::Tenant {
                tenant: name.clone(),
                source,
            })?;
            tenants.insert(Tenant::new(name.as_str()), redactor);
        }
        Ok(Self { default, tenants })
    }

    /// The redactor for `tenant`, or `None` when its text is not masked.
    pub fn redactor(&self, tenant: &Tenant) -> Option<&Redactor> {
        match self.tenants.get(tenant) {
            Some(own) => own.as_deref(),
            None => self.default.as_deref(),
        }
    }

    /// `text` as `tenant` may let it out: masked when its masking is on.
    pub fn apply<'a>(&self, tenant: &Tenant, text: &'a str) -> Cow<'a, str> {
        match self.redactor(tenant) {
            Some(redactor) => redactor.redact(text),
            None => Cow::Borrowed(text),
        }
    }

    /// Whether any tenant's text is masked.
    pub fn any(&self) -> bool {
        self.default.is_some() || self.tenants.values().any(Option::is_some)
    }
}

fn compile(
    enabled: bool,
    kinds: &[Sensitive],
    patterns: &[String],
) -> Result<Option<Arc<Redactor>>, RedactError> {
    let rules = RedactionRules {
        kinds: kinds.to_vec(),
        patterns: patterns.to_vec(),
    };
    // Compiled even when off, so a broken pattern is found before someone turns it on.
    let redactor = Redactor::new(&rules)?;
    Ok(enabled.then(|| Arc::new(redactor)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "mail ops@acme.example now";

    #[test]
    fn default_masks_nothing() {
        let masking = Masking::new(&MaskingSettings::default()).unwrap();
        assert!(!masking.any());
        assert_eq!(masking.apply(&Tenant::default(), TEXT), TEXT);
    }

    #[test]
    fn tenants_override_the_default() {
        let mut settings = MaskingSettings::default();
        let on = TenantMasking {
            enabled: Some(true),
            ..TenantMasking::default()
        };
        settings.tenants.insert("acme".into(), on);
        let masking = Masking::new(&settings).unwrap();
        assert_eq!(
            masking.apply(&Tenant::new("acme"), TEXT),
            "mail [EMAIL] now"
        );
        assert_eq!(masking.apply(&Tenant::new("other"), TEXT), TEXT);

        settings.enabled = true;
        settings.tenants.insert(
            "raw".into(),
            TenantMasking {
                enabled: Some(false),
                ..TenantMasking::default()
            },
        );
        let masking = Masking::new(&settings).unwrap();
        assert_eq!(
            masking.apply(&Tenant::new("other"), TEXT),
            "mail [EMAIL] now"
        );
        assert_eq!(masking.apply(&Tenant::new("raw"), TEXT), TEXT);
    }

    #[test]
    fn bad_tenant_pattern_names_the_tenant() {
        let mut settings = MaskingSettings::default();
        settings.tenants.insert(
            "acme".into(),
            TenantMasking {
                enabled: Some(true),
                patterns: Some(vec!["[".into()]),
                ..TenantMasking::default()
            },
        );
        let err = Masking::new(&settings).unwrap_err().to_string();
        assert!(err.starts_with("masking.tenants.acme: "), "{err}");
    }
}
