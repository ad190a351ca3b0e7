//! Search attributes as a change sees them: the namespace's custom attribute types, read by
//! the service before the change, and the stamping of values with their types.

use chronicle_api::common::v1::SearchAttributes;
use chronicle_common::search_attributes::{self as sa, ValueType};
use std::collections::HashMap;
use std::sync::Arc;

/// The custom search attributes a namespace defines, by name (system ones are always known).
#[derive(Clone, Debug, Default)]
pub(crate) struct AttributeTypes(Arc<HashMap<String, ValueType>>);

impl AttributeTypes {
    pub fn new(types: Arc<HashMap<String, ValueType>>) -> Self {
        Self(types)
    }

    pub fn type_of(&self, name: &str) -> Option<ValueType> {
        sa::system_type(name).or_else(|| self.0.get(name).copied())
    }

    /// Whether every attribute named is known (else the service re-reads the registry once).
    pub fn knows_all<'a>(&self, mut names: impl Iterator<Item = &'a String>) -> bool {
        names.all(|name| self.type_of(name).is_some())
    }

    /// Checks search attributes given at start or by a command and stamps each with its
    /// type. Err carries Temporal's message for the first bad attribute.
    pub fn stamp(&self, attributes: SearchAttributes) -> Result<SearchAttributes, String> {
        let mut typed = SearchAttributes::default();
        for (name, payload) in attributes.indexed_fields {
            let Some(ty) = self.type_of(&name) else {
                return Err(format!("search attribute {name} is not defined"));
            };
            if let Err(value) = sa::decode(ty, &payload) {
                return Err(format!(
                    "invalid value for search attribute {name} of type {}: {value}",
                    ty.name()
                ));
            }
            typed.indexed_fields.insert(name, sa::typed(ty, payload));
        }
        Ok(typed)
    }
}
