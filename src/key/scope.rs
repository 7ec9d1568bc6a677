//! The scope catalogue: what a key may be allowed to do.

/// One entry of the scope catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// Machine name, e.g. `sessions:read`.
    pub id: &'static str,
    /// What the admin page shows, e.g. `Sessions (Read)`.
    pub label: &'static str,
    /// A sentence about what it grants.
    pub description: &'static str,
}

/// The scope that satisfies every scope check.
pub const FULL_ACCESS: &str = "full_access";

/// The default catalogue, in display order (Full Access last).
pub const SCOPES: &[Scope] = &[
    Scope {
        id: "sessions:read",
        label: "Sessions (Read)",
        description: "Read sessions.",
    },
    Scope {
        id: "sessions:write",
        label: "Sessions (Write)",
        description: "Create, change and end sessions.",
    },
    Scope {
        id: "resources:read",
        label: "Resources (Read)",
        description: "Read resources.",
    },
    Scope {
        id: "audit_logs:read",
        label: "Audit Logs (Read)",
        description: "Read the organisation's audit log.",
    },
    Scope {
        id: FULL_ACCESS,
        label: "Full Access (grants all scopes)",
        description: "Every permission, including scopes added later.",
    },
];

/// The catalogue entry for `id`, if there is one.
pub fn find(id: &str) -> Option<&'static Scope> {
    SCOPES.iter().find(|s| s.id == id)
}

/// Whether a key holding `granted` passes a check for `required`.
pub fn grants(granted: &[String], required: &str) -> bool {
    granted.iter().any(|g| g == required || g == FULL_ACCESS)
}

/// Scopes in catalogue order without duplicates; `Err` names the first unknown one.
pub fn normalize(requested: &[String]) -> Result<Vec<String>, String> {
    if let Some(unknown) = requested.iter().find(|r| find(r).is_none()) {
        return Err(unknown.clone());
    }
    Ok(SCOPES
        .iter()
        .filter(|s| requested.iter().any(|r| r == s.id))
        .map(|s| s.id.to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn full_access_satisfies_every_scope() {
        for s in SCOPES {
            assert!(grants(&v(&["full_access"]), s.id));
        }
        assert!(grants(&v(&["sessions:read"]), "sessions:read"));
        assert!(!grants(&v(&["sessions:read"]), "sessions:write"));
        assert!(!grants(&[], "sessions:read"));
    }

    #[test]
    fn normalize_orders_dedups_and_names_unknown_scopes() {
        assert_eq!(
            normalize(&v(&["full_access", "sessions:read", "sessions:read"])).unwrap(),
            v(&["sessions:read", "full_access"])
        );
        assert_eq!(normalize(&v(&["admin:all"])), Err("admin:all".to_owned()));
    }

    #[test]
    fn full_access_is_last_in_the_catalogue() {
        assert_eq!(SCOPES.last().unwrap().id, FULL_ACCESS);
    }
}
