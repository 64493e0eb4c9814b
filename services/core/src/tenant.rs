//! Who a request acts for. Authentication (in the server's tower stack) decides it and
//! puts it in the request's extensions; services that store data keep each tenant's apart.

use std::fmt;
use std::sync::Arc;

/// A tenant's name, as its API key maps it. Requests without authentication act for
/// [`Tenant::default`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// The tenant of unauthenticated deployments.
    pub const DEFAULT_NAME: &'static str = "default";

    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Tenant {
    fn default() -> Self {
        Self::new(Self::DEFAULT_NAME)
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tenant_is_named_default() {
        assert_eq!(Tenant::default().as_str(), "default");
        assert_eq!(Tenant::new("acme").to_string(), "acme");
    }
}
