//! Key status, derived from the key's times and never stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

impl KeyStatus {
    /// `revoked` if revoked; else `expired` once `expires_at <= now`; else `active`.
    pub fn derive(
        revoked_at: Option<DateTime<Utc>>,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        if revoked_at.is_some() {
            Self::Revoked
        } else if expires_at.is_some_and(|e| e <= now) {
            Self::Expired
        } else {
            Self::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    /// The word shown to people: `Active`, `Expired`, `Revoked`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Expired => "Expired",
            Self::Revoked => "Revoked",
        }
    }
}

impl std::str::FromStr for KeyStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "expired" => Ok(Self::Expired),
            "revoked" => Ok(Self::Revoked),
            other => Err(format!(
                "unknown status {other:?}: use active, expired or revoked"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn status_is_derived_at_the_instant() {
        let now = Utc::now();
        assert_eq!(KeyStatus::derive(None, None, now), KeyStatus::Active);
        assert_eq!(
            KeyStatus::derive(None, Some(now + Duration::milliseconds(1)), now),
            KeyStatus::Active
        );
        assert_eq!(KeyStatus::derive(None, Some(now), now), KeyStatus::Expired);
        assert_eq!(
            KeyStatus::derive(Some(now), Some(now - Duration::days(1)), now),
            KeyStatus::Revoked
        );
    }
}
