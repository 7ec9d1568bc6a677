//! The scope catalogue: what a key may be allowed to do. There is a default
//! catalogue; a deployment may configure its own (`keydeck serve --scopes-file`).

use serde::Deserialize;

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

/// The reporter's scope: a key with it may report leaked keys
/// (`POST /v1/leaks`) and do nothing else; it is never combined with another.
/// A scope of keydeck itself, not of the gateway's APIs: every catalogue
/// accepts it ([`Catalog::normalize`]), none lists it among the scopes a
/// gateway checks, and Full Access does not grant it.
pub const LEAKS_REPORT: &str = "leaks:report";

/// The reporter's scope as `GET /v1/scopes` lists it: after the catalogue,
/// apart from it (what an admin ticks to make a key for a scanner or CI).
pub const REPORTER: Scope = Scope {
    id: LEAKS_REPORT,
    label: "Leak reports",
    description: "For a scanner or CI: can only report leaked keys (POST /v1/leaks); \
        never combined with another scope, not granted by Full Access.",
};

/// Why `scopes` cannot make one key: [`LEAKS_REPORT`] with another scope (a
/// reporter key can do nothing else). What the service answers and the
/// create form says under its scopes.
pub fn reporter_not_alone(scopes: &[String]) -> Option<String> {
    (scopes.len() > 1 && scopes.iter().any(|s| s == LEAKS_REPORT)).then(|| {
        format!(
            "{LEAKS_REPORT} cannot be combined with other scopes: a reporter key can only \
             report leaked keys (make a second key for the rest)"
        )
    })
}

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

/// Most scopes a catalogue may have.
pub const MAX_SCOPES: usize = 100;

/// One scope of a deployment's catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeDef {
    /// Machine name, 1–64 of `a-z 0-9 _ : . -`, e.g. `billing:read`.
    pub id: String,
    /// What people see, 1–64 characters, e.g. `Billing (Read)`.
    pub label: String,
    #[serde(default)]
    pub description: String,
}

impl From<&Scope> for ScopeDef {
    fn from(s: &Scope) -> Self {
        Self {
            id: s.id.to_owned(),
            label: s.label.to_owned(),
            description: s.description.to_owned(),
        }
    }
}

/// The scopes a deployment offers, in display order, Full Access always last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    scopes: Vec<ScopeDef>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self {
            scopes: SCOPES.iter().map(ScopeDef::from).collect(),
        }
    }
}

/// The file `--scopes-file` reads: `[[scope]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    scope: Vec<ScopeDef>,
}

impl Catalog {
    /// A catalogue of `scopes` in this order; Full Access is added (last) if
    /// missing, since it must satisfy every check.
    pub fn new(scopes: Vec<ScopeDef>) -> Result<Self, String> {
        let mut seen = std::collections::HashSet::new();
        for s in &scopes {
            let id_ok = (1..=64).contains(&s.id.len())
                && s.id.bytes().all(|b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || matches!(b, b'_' | b':' | b'.' | b'-')
                });
            if !id_ok {
                return Err(format!(
                    "scope id {:?} must be 1-64 characters of a-z, 0-9, _ : . -",
                    s.id
                ));
            }
            if !(1..=64).contains(&s.label.chars().count()) || s.label.chars().any(char::is_control)
            {
                return Err(format!(
                    "scope {:?}: the label must be 1-64 characters without control characters",
                    s.id
                ));
            }
            if s.description.chars().count() > 500 {
                return Err(format!(
                    "scope {:?}: the description must be at most 500 characters",
                    s.id
                ));
            }
            if !seen.insert(s.id.clone()) {
                return Err(format!("scope {:?} is listed twice", s.id));
            }
        }
        let (mut scopes, full): (Vec<ScopeDef>, Vec<ScopeDef>) =
            scopes.into_iter().partition(|s| s.id != FULL_ACCESS);
        scopes.push(
            full.into_iter()
                .next()
                .unwrap_or_else(|| ScopeDef::from(&SCOPES[SCOPES.len() - 1])),
        );
        if scopes.len() > MAX_SCOPES {
            return Err(format!("a catalogue has at most {MAX_SCOPES} scopes"));
        }
        Ok(Self { scopes })
    }

    /// Reads a catalogue file: `[[scope]]` tables with `id`, `label` and `description`.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| e.to_string())?;
        Self::new(file.scope)
    }

    pub fn scopes(&self) -> &[ScopeDef] {
        &self.scopes
    }

    pub fn find(&self, id: &str) -> Option<&ScopeDef> {
        self.scopes.iter().find(|s| s.id == id)
    }

    /// Scopes in catalogue order without duplicates (then [`LEAKS_REPORT`],
    /// which every catalogue accepts); `Err` names the first unknown one.
    pub fn normalize(&self, requested: &[String]) -> Result<Vec<String>, String> {
        if let Some(unknown) = requested
            .iter()
            .find(|r| self.find(r).is_none() && *r != LEAKS_REPORT)
        {
            return Err(unknown.clone());
        }
        let mut scopes: Vec<String> = self
            .scopes
            .iter()
            .filter(|s| requested.contains(&s.id))
            .map(|s| s.id.clone())
            .collect();
        if requested.iter().any(|r| r == LEAKS_REPORT) {
            scopes.push(LEAKS_REPORT.to_owned());
        }
        Ok(scopes)
    }

    /// The ids, comma-separated, for messages.
    pub fn ids(&self) -> String {
        self.scopes
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
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
        let c = Catalog::default();
        assert_eq!(
            c.normalize(&v(&["full_access", "sessions:read", "sessions:read"]))
                .unwrap(),
            v(&["sessions:read", "full_access"])
        );
        assert_eq!(c.normalize(&v(&["admin:all"])), Err("admin:all".to_owned()));
    }

    #[test]
    fn every_catalogue_accepts_the_reporter_scope_and_lists_it_nowhere() {
        let custom = Catalog::from_toml("[[scope]]\nid = \"a\"\nlabel = \"A\"").unwrap();
        for c in [Catalog::default(), custom] {
            assert_eq!(
                c.normalize(&v(&[LEAKS_REPORT, LEAKS_REPORT])).unwrap(),
                v(&[LEAKS_REPORT])
            );
            assert!(c.find(LEAKS_REPORT).is_none());
        }
        assert!(grants(&v(&[FULL_ACCESS]), "sessions:read"));
    }

    #[test]
    fn a_deployment_catalogue_is_read_checked_and_ends_with_full_access() {
        let c = Catalog::from_toml(
            r#"
            [[scope]]
            id = "billing:read"
            label = "Billing (Read)"
            description = "Read invoices."

            [[scope]]
            id = "billing:write"
            label = "Billing (Write)"
            "#,
        )
        .unwrap();
        let ids: Vec<&str> = c.scopes().iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["billing:read", "billing:write", "full_access"]);
        assert!(c.find("sessions:read").is_none());
        assert!(
            Catalog::from_toml("[[scope]]\nid = \"Bad Id\"\nlabel = \"x\"")
                .unwrap_err()
                .contains("Bad Id")
        );
        assert!(Catalog::from_toml(
            "[[scope]]\nid = \"a\"\nlabel = \"x\"\n[[scope]]\nid = \"a\"\nlabel = \"y\""
        )
        .unwrap_err()
        .contains("twice"));
        assert!(Catalog::from_toml("[[scope]]\nid = \"a\"\nlabel = \"\"").is_err());
        assert!(Catalog::from_toml("[[scope]]\nid = \"a\"\nlabel = \"x\"\ncolour = 1").is_err());
        assert!(Catalog::from_toml("nonsense").is_err());
        // Full Access stays last wherever the file puts it.
        let c = Catalog::from_toml("[[scope]]\nid = \"full_access\"\nlabel = \"Everything\"\n[[scope]]\nid = \"a\"\nlabel = \"A\"").unwrap();
        assert_eq!(c.scopes().last().unwrap().label, "Everything");
    }

    #[test]
    fn the_reporter_scope_stands_alone() {
        assert_eq!(reporter_not_alone(&v(&[LEAKS_REPORT])), None);
        assert_eq!(
            reporter_not_alone(&v(&["sessions:read", FULL_ACCESS])),
            None
        );
        let both = reporter_not_alone(&v(&[LEAKS_REPORT, FULL_ACCESS])).unwrap();
        assert!(both.contains("cannot be combined"), "{both}");
    }

    #[test]
    fn full_access_is_last_in_the_catalogue() {
        assert_eq!(SCOPES.last().unwrap().id, FULL_ACCESS);
    }
}
