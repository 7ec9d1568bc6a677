//! Values that many keys share, kept once: a key's scope set, the emails of
//! who created or revoked it, descriptions repeated from a template. A UI
//! with 100 000 keys holds a handful of scope sets and admins, not 100 000
//! copies of each. They read like a `[String]` and a `str`; on the wire, a
//! list and a string.

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Distinct values kept for sharing, per kind; past this, new values are
/// simply not shared (a catalogue of a few scopes makes a few dozen sets).
const MAX_INTERNED: usize = 4096;

/// The shared copy of `value` from `table`, adding it while there is room.
fn intern<T: ?Sized + Eq + Hash>(
    table: &'static OnceLock<Mutex<HashSet<Arc<T>>>>,
    value: &T,
    make: impl FnOnce() -> Arc<T>,
) -> Arc<T> {
    let mut table = table
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(shared) = table.get(value) {
        return shared.clone();
    }
    let made = make();
    if table.len() < MAX_INTERNED {
        table.insert(made.clone());
    }
    made
}

/// Scope ids in catalogue order, shared between every key that has them.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(Arc<[String]>);

impl ScopeSet {
    pub fn new(ids: Vec<String>) -> Self {
        static TABLE: OnceLock<Mutex<HashSet<Arc<[String]>>>> = OnceLock::new();
        Self(intern(&TABLE, ids.as_slice(), || ids.clone().into()))
    }

    /// An owned copy, for what takes a `Vec`.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.to_vec()
    }
}

impl Deref for ScopeSet {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl From<Vec<String>> for ScopeSet {
    fn from(ids: Vec<String>) -> Self {
        Self::new(ids)
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl<const N: usize> PartialEq<[&str; N]> for ScopeSet {
    fn eq(&self, other: &[&str; N]) -> bool {
        self.0.len() == N && self.0.iter().zip(other).all(|(a, b)| a == b)
    }
}

impl PartialEq<Vec<String>> for ScopeSet {
    fn eq(&self, other: &Vec<String>) -> bool {
        *self.0 == **other
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(deserializer).map(Self::new)
    }
}

/// A text that many keys may repeat (an admin's email, a description), shared.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SharedStr(Arc<str>);

impl SharedStr {
    pub fn new(text: &str) -> Self {
        static TABLE: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
        Self(intern(&TABLE, text, || text.into()))
    }
}

impl Deref for SharedStr {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SharedStr {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> Self {
        Self::new(&text)
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Borrowed when the input allows, so nothing is allocated for a repeat.
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Ok(Self::new(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_scope_sets_share_one_copy_and_read_as_a_list() {
        let a = ScopeSet::new(vec!["sessions:read".into(), "sessions:write".into()]);
        let b: ScopeSet = serde_json::from_str(r#"["sessions:read","sessions:write"]"#).unwrap();
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, ["sessions:read", "sessions:write"]);
        assert_eq!(a.join(" "), "sessions:read sessions:write");
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"["sessions:read","sessions:write"]"#
        );
        let other = ScopeSet::new(vec!["full_access".into()]);
        assert!(!Arc::ptr_eq(&a.0, &other.0));
        assert_eq!(format!("{other:?}"), r#"["full_access"]"#);
    }

    #[test]
    fn equal_texts_share_one_copy_and_read_as_a_string() {
        let a = SharedStr::new("admin@localhost");
        let b: SharedStr = serde_json::from_str(r#""admin@localhost""#).unwrap();
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, "admin@localhost");
        assert_eq!(format!("{a} {b:?}"), r#"admin@localhost "admin@localhost""#);
        assert_eq!(serde_json::to_string(&a).unwrap(), r#""admin@localhost""#);
        assert!(a.starts_with("admin@"));
    }
}
