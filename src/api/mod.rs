//! Kubernetes objects as berth serves them: the resource registry, admission (strict
//! decoding, defaulting, validation), errors as `metav1.Status`, selectors, patches, table
//! rendering and watch events. Depends on nothing else in the crate.

pub mod allocation;
pub mod describe;
pub mod error;
pub mod kinds;
pub mod meta;
pub mod patch;
pub mod quota;
pub mod registry;
pub mod selector;
pub mod table;
pub mod validation;
pub mod watch;

pub use error::{ApiError, FieldError, ObjectRef};
pub use registry::{REGISTRY, ResourceType};

/// Largest request body the server accepts, as Kubernetes (3 MiB).
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;
