//! The namespace of an operation, as both the engine and the service name it.

/// The namespace an operation runs in: history keys by id but some responses carry the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceRef {
    pub id: String,
    pub name: String,
}
