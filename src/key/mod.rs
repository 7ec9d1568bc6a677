//! The API-key domain, pure and free of I/O: secret format, scopes, status,
//! expiry, and the finder of keys in text.

pub mod expiry;
pub mod health;
pub mod leak;
pub mod org;
pub mod policy;
pub mod scan;
pub mod scope;
pub mod secret;
pub mod ssh;
pub mod status;
pub mod validate;
pub mod webhook;

pub use expiry::{parse_expiry, ExpiryError};
pub use org::{Plan, Role};
pub use scope::{Catalog, Scope, ScopeDef, SCOPES};
pub use secret::{
    digest, new_id, random_base62, BadKeyPrefix, Secret, SecretFormat, SecretParseError,
};
pub use status::KeyStatus;
