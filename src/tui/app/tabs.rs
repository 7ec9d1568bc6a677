//! The table's tabs (by status, and Attention) and the columns it sorts by:
//! plain values the state holds and the rows are rebuilt from.

use crate::key::health::Badges;
use crate::key::KeyStatus;

/// The tabs: All / Active / Expired / Revoked by status, and Attention:
/// the keys with a health badge, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    All,
    Active,
    Expired,
    Revoked,
    Attention,
}

impl Tab {
    pub const ALL: [Tab; 5] = [
        Tab::All,
        Tab::Active,
        Tab::Expired,
        Tab::Revoked,
        Tab::Attention,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Tab::All => "All",
            Tab::Active => "Active",
            Tab::Expired => "Expired",
            Tab::Revoked => "Revoked",
            Tab::Attention => "Attention",
        }
    }

    pub(in crate::tui) fn admits(self, status: KeyStatus, badges: Badges) -> bool {
        match self {
            Tab::All => true,
            Tab::Active => status == KeyStatus::Active,
            Tab::Expired => status == KeyStatus::Expired,
            Tab::Revoked => status == KeyStatus::Revoked,
            Tab::Attention => !badges.is_empty(),
        }
    }

    pub(in crate::tui) fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// Columns the table can be sorted by (`s` cycles, `S` reverses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Created,
    Name,
    LastUsed,
    Expires,
    Status,
}

impl SortBy {
    /// In the order `s` cycles through; the palette's `sort …` commands
    /// name them by index.
    pub const ALL: [SortBy; 5] = [
        SortBy::Created,
        SortBy::Name,
        SortBy::LastUsed,
        SortBy::Expires,
        SortBy::Status,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SortBy::Created => "Created",
            SortBy::Name => "Name",
            SortBy::LastUsed => "Last Used",
            SortBy::Expires => "Expires",
            SortBy::Status => "Status",
        }
    }

    pub(in crate::tui) fn next(self) -> Self {
        match self {
            SortBy::Created => SortBy::Name,
            SortBy::Name => SortBy::LastUsed,
            SortBy::LastUsed => SortBy::Expires,
            SortBy::Expires => SortBy::Status,
            SortBy::Status => SortBy::Created,
        }
    }
}
