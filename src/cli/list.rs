//! `keydeck keys list`: every key, or the Attention tab's rows worst first
//! (`--attention`), as a table with the terminal UI's HEALTH badges — fitted
//! to the terminal by dropping columns in the UI's order — or as JSON with
//! each key's badge ids.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::console::{self, note};
use super::output::{self, Cell};
use super::CliError;
use crate::api::{ApiKey, KeyListQuery, ScopeInfo};
use crate::cli::ListArgs;
use crate::client::{Client, PageQuery};
use crate::key::health::{self, Badge, Badges};
use crate::key::policy::Policy;
use crate::present::{self, KeyColumn};

pub async fn run(client: &Client, args: ListArgs) -> Result<(), CliError> {
    if args.json {
        return print_json_pages(client, &args).await;
    }
    let keys = client.list_all_keys(args.status).await?;
    if keys.is_empty() {
        note!(
            "No keys{}.",
            args.status
                .map_or(String::new(), |s| format!(" with status {}", s.as_str()))
        );
        return Ok(());
    }
    let now = Utc::now();
    let policy = policy(client).await;
    let rows = if args.attention {
        health::attention(&keys, &policy, now)
    } else {
        (0..keys.len()).collect()
    };
    if rows.is_empty() {
        note!("Nothing needs attention: every key follows the best practices.");
        return Ok(());
    }
    let catalogue = client.scopes().await.unwrap_or_default();
    let table = Table {
        keys: &keys,
        catalogue: &catalogue,
        policy: &policy,
        now,
    };
    let limit = if args.wide {
        None
    } else {
        output::stdout_width()
    };
    output::print(&table.render(&rows, limit, output::stdout_colour()))
}

/// `--json`: one JSON array of the API's keys, each with the badges the
/// service computed, written page by page as the pages come (the Attention
/// tab's order from the service for `--attention`), so that memory does not
/// grow with the number of keys.
async fn print_json_pages(client: &Client, args: &ListArgs) -> Result<(), CliError> {
    let mut query = KeyListQuery {
        tab: args.attention.then(|| "attention".to_owned()),
        status: args.status.filter(|_| !args.attention),
        limit: Some(500),
        ..KeyListQuery::default()
    };
    let mut array = output::JsonArray::default();
    loop {
        let (keys, next) = query.fetch(client).await?;
        // `--attention --status S`: the tab's keys of that status.
        let keys: Vec<ApiKey> = keys
            .into_iter()
            .filter(|k| !args.attention || args.status.is_none_or(|s| k.status == s))
            .collect();
        if !keys.is_empty() {
            array.push_page(&keys)?;
            // Over SSH: the session sends the page on before the next comes.
            console::pace().await;
        }
        match next {
            Some(cursor) => query.set_cursor(cursor),
            None => break,
        }
    }
    array.finish()
}

/// The organisation's policy, whose thresholds the badges follow. Should the
/// service not send it, the default thresholds, said on standard error.
/// `keys list` and `keys show` read it.
pub(super) async fn policy(client: &Client) -> Policy {
    match client.policy().await {
        Ok(policy) => policy,
        Err(e) => {
            note!(
                "warning: cannot read the organisation's policy ({}); HEALTH uses the default thresholds.",
                output::printable(&e.to_string())
            );
            Policy::default()
        }
    }
}

/// The table's columns: the UI's, and two of the CLI's own, the scope ids
/// (what `--scope` takes) and the key id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Col {
    Ui(KeyColumn),
    ScopeIds,
    Id,
}

impl Col {
    /// Display order: the UI's, scope ids before their labels, the id last.
    fn order() -> Vec<Col> {
        let mut order = Vec::new();
        for c in KeyColumn::ORDER {
            if c == KeyColumn::Scopes {
                order.push(Col::ScopeIds);
            }
            order.push(Col::Ui(c));
        }
        order.push(Col::Id);
        order
    }

    /// Which stay on a narrow terminal, most important first: the UI's
    /// priority, then the id (the prefix finds a key too), then the scope ids
    /// (LABELS says the same in words).
    fn priority() -> Vec<Col> {
        let mut priority: Vec<Col> = KeyColumn::PRIORITY.into_iter().map(Col::Ui).collect();
        priority.extend([Col::Id, Col::ScopeIds]);
        priority
    }

    fn header(self) -> &'static str {
        match self {
            Col::Ui(KeyColumn::Name) => "NAME",
            Col::Ui(KeyColumn::Prefix) => "PREFIX",
            Col::ScopeIds => "SCOPES",
            Col::Ui(KeyColumn::Scopes) => "LABELS",
            Col::Ui(KeyColumn::LastUsed) => "LAST USED",
            Col::Ui(KeyColumn::Status) => "STATUS",
            Col::Ui(KeyColumn::Health) => "HEALTH",
            Col::Ui(KeyColumn::Created) => "CREATED",
            Col::Ui(KeyColumn::Expires) => "EXPIRES",
            Col::Id => "ID",
        }
    }

    /// Where the column narrows rather than go, the widths its cells are
    /// asked to fit: first the comfortable one, then, should that not fit,
    /// the least. The name is cut with `…`; the badges keep the first and
    /// count the rest (`rotate +2`).
    fn narrows_to(self) -> Option<(usize, usize)> {
        match self {
            Col::Ui(KeyColumn::Name) => Some((NAME_LEAST, NAME_LEAST)),
            Col::Ui(KeyColumn::Health) => Some((HEALTH_COMFORT, 0)),
            _ => None,
        }
    }
}

/// Names are cut to this many columns in any case.
const NAME_MAX: usize = 40;
/// A name narrows to this many columns before other columns go.
const NAME_LEAST: usize = 20;
/// Room for two or three badges before less needed columns join.
const HEALTH_COMFORT: usize = 20;

/// What one column needs: its width with every cell whole, the width it
/// takes before less needed columns join, and the least it can narrow to.
#[derive(Debug, Clone, Copy)]
struct Need {
    col: Col,
    natural: usize,
    comfort: usize,
    least: usize,
}

/// The columns shown within `limit` (none: all, whole) and their widths, in
/// display order. Columns join in priority order, two spaces apart (the
/// first always), at their comfortable width if it fits, else at their
/// least; what is left widens the name, then the badges, up to their whole
/// width.
fn fit(needs: &[Need], limit: Option<usize>) -> Vec<(Col, usize)> {
    let Some(limit) = limit else {
        return needs.iter().map(|n| (n.col, n.natural)).collect();
    };
    let mut widths: HashMap<Col, usize> = HashMap::new();
    let mut used = 0;
    for col in Col::priority() {
        let Some(need) = needs.iter().find(|n| n.col == col) else {
            continue;
        };
        let gap = if widths.is_empty() { 0 } else { 2 };
        let width = [need.comfort, need.least]
            .into_iter()
            .find(|w| widths.is_empty() || used + gap + w <= limit);
        if let Some(width) = width {
            used += gap + width;
            widths.insert(col, width);
        }
    }
    let mut spare = limit.saturating_sub(used);
    for col in [Col::Ui(KeyColumn::Name), Col::Ui(KeyColumn::Health)] {
        if let (Some(need), Some(w)) = (needs.iter().find(|n| n.col == col), widths.get_mut(&col)) {
            let add = need.natural.saturating_sub(*w).min(spare);
            *w += add;
            spare -= add;
        }
    }
    needs
        .iter()
        .filter_map(|n| widths.get(&n.col).map(|w| (n.col, *w)))
        .collect()
}

/// What the table is made of: the keys, the scope catalogue for labels, the
/// policy and instant the badges are read at.
struct Table<'a> {
    keys: &'a [ApiKey],
    catalogue: &'a [ScopeInfo],
    policy: &'a Policy,
    now: DateTime<Utc>,
}

impl Table<'_> {
    /// The table of `rows` (indices into the keys), fitted to `limit` columns.
    fn render(&self, rows: &[usize], limit: Option<usize>, colour: bool) -> String {
        let by_id: HashMap<&str, &ApiKey> = self.keys.iter().map(|k| (k.id.as_str(), k)).collect();
        let keys: Vec<&ApiKey> = rows.iter().map(|&i| &self.keys[i]).collect();
        let needs: Vec<Need> = Col::order()
            .into_iter()
            .map(|col| {
                let header = output::width(col.header());
                let widest = |width: usize| {
                    keys.iter()
                        .map(|k| self.cell(col, k, &by_id, width).width())
                        .max()
                        .unwrap_or(0)
                        .max(header)
                };
                let natural = widest(usize::MAX);
                let (comfort, least) = col.narrows_to().map_or((natural, natural), |(c, l)| {
                    (natural.min(widest(c)), natural.min(widest(l)))
                });
                Need {
                    col,
                    natural,
                    comfort,
                    least,
                }
            })
            .collect();
        let columns = fit(&needs, limit);
        let headers: Vec<&str> = columns.iter().map(|(c, _)| c.header()).collect();
        let cells: Vec<Vec<Cell>> = keys
            .iter()
            .map(|k| {
                columns
                    .iter()
                    .map(|&(col, width)| self.cell(col, k, &by_id, width))
                    .collect()
            })
            .collect();
        output::table(&headers, &cells, colour)
    }

    /// One cell, at most `width` columns wide where the column narrows.
    fn cell(&self, col: Col, k: &ApiKey, by_id: &HashMap<&str, &ApiKey>, width: usize) -> Cell {
        match col {
            Col::Ui(KeyColumn::Name) => output::truncate(&k.name, width.min(NAME_MAX)),
            Col::Ui(KeyColumn::Prefix) => present::prefix(&k.prefix).into(),
            Col::ScopeIds => k.scopes.join(",").into(),
            Col::Ui(KeyColumn::Scopes) => present::scopes_short(&k.scopes, self.catalogue).into(),
            Col::Ui(KeyColumn::LastUsed) => k
                .last_used_at
                .map_or_else(|| "Never".to_owned(), |at| present::relative(at, self.now))
                .into(),
            Col::Ui(KeyColumn::Status) => output::status_cell(k.status),
            Col::Ui(KeyColumn::Health) => {
                let badges = health::badges(k, self.policy, self.now);
                let successor = k
                    .replaced_by
                    .as_deref()
                    .and_then(|id| by_id.get(id).copied());
                health_cell(badges, k, successor, self.now, width)
            }
            Col::Ui(KeyColumn::Created) => present::relative(k.created_at, self.now).into(),
            Col::Ui(KeyColumn::Expires) => present::expires_relative(k, self.now).into(),
            Col::Id => k.id.as_str().into(),
        }
    }
}

/// The badges the Health column shows, worst first, as the UI words them,
/// ` · ` between them; as many as fit in `width` and a count of the rest
/// (`rotate +2`); the first one always. Coloured as the worst: the warning
/// colour when urgent, blue for a rotation winding down, magenta for advice.
fn health_cell(
    badges: Badges,
    key: &ApiKey,
    successor: Option<&ApiKey>,
    now: DateTime<Utc>,
    width: usize,
) -> Cell {
    let shown: Vec<Badge> = badges.iter().filter(|b| b.in_column()).collect();
    let mut text = String::new();
    for (i, badge) in shown.iter().enumerate() {
        let rest = shown.len() - i - 1;
        let more = if rest > 0 {
            format!(" +{rest}").len()
        } else {
            0
        };
        let gap = if i > 0 { " · " } else { "" };
        let used = output::width(&text) + output::width(gap);
        let room = width.saturating_sub(used + more);
        let word = present::badge_text(*badge, key, successor, console::display_tz(), now, room);
        if i > 0 && used + output::width(&word) + more > width {
            text.push_str(&format!(" +{}", shown.len() - i));
            break;
        }
        text.push_str(gap);
        text.push_str(&word);
    }
    let cell = Cell::from(text);
    match shown.first() {
        Some(b) if b.urgent() => cell.coloured("33"),
        Some(Badge::Rotating) => cell.coloured("94"),
        Some(Badge::Refused) => cell.coloured("31"),
        Some(_) => cell.coloured("35"),
        None => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyStatus;
    use chrono::Duration;

    use crate::cli::fixtures::{builtin, key};

    /// The whole table, as piped output prints it.
    fn key_table(keys: &[ApiKey], catalogue: &[ScopeInfo], colour: bool) -> String {
        let rows: Vec<usize> = (0..keys.len()).collect();
        Table {
            keys,
            catalogue,
            policy: &Policy::default(),
            now: Utc::now(),
        }
        .render(&rows, None, colour)
    }

    #[test]
    fn the_table_shows_every_column() {
        let text = key_table(
            &[key(KeyStatus::Active), key(KeyStatus::Expired)],
            &builtin(),
            false,
        );
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        for column in [
            "NAME",
            "PREFIX",
            "SCOPES",
            "LAST USED",
            "STATUS",
            "CREATED",
            "EXPIRES",
            "ID",
        ] {
            assert!(header.contains(column), "{header}");
        }
        let row = lines.next().unwrap();
        for cell in [
            "CI/CD Pipeline",
            "eg_live_1a2B...",
            "sessions:read,sessions:write",
            "3m ago",
            "● Active",
            "Never",
            "key_abc",
        ] {
            assert!(row.contains(cell), "{cell:?} in {row}");
        }
        assert!(lines.next().unwrap().contains("◷ Expired"));
        assert!(!text.contains('\x1b'));
        assert!(key_table(&[key(KeyStatus::Revoked)], &builtin(), true)
            .contains("\x1b[31m✕ Revoked\x1b[0m"));
    }

    /// A key with every advice badge: old, never used, no expiry.
    fn neglected() -> ApiKey {
        ApiKey {
            created_at: Utc::now() - Duration::days(200),
            last_used_at: None,
            ..key(KeyStatus::Active)
        }
    }

    #[test]
    fn health_has_the_uis_words_and_narrows_to_a_count() {
        let k = neglected();
        let b = health::badges(&k, &Policy::default(), Utc::now());
        let cell = |w| output::paint(&health_cell(b, &k, None, Utc::now(), w), false);
        assert_eq!(cell(usize::MAX), "rotate · unused · no expiry");
        assert_eq!(cell(20), "rotate · unused +1");
        assert_eq!(cell(0), "rotate +2");
        let coloured = output::paint(&health_cell(b, &k, None, Utc::now(), 99), true);
        assert_eq!(coloured, "\x1b[35mrotate · unused · no expiry\x1b[0m");
        let healthy = ApiKey {
            expires_at: Some(Utc::now() + Duration::days(60)),
            ..key(KeyStatus::Active)
        };
        let none = health::badges(&healthy, &Policy::default(), Utc::now());
        assert_eq!(
            output::paint(&health_cell(none, &healthy, None, Utc::now(), 9), true),
            ""
        );
    }

    #[test]
    fn a_narrow_terminal_drops_columns_in_the_uis_order() {
        let keys = [neglected(), key(KeyStatus::Active)];
        let table = Table {
            keys: &keys,
            catalogue: &builtin(),
            policy: &Policy::default(),
            now: Utc::now(),
        };
        let header = |limit| {
            let text = table.render(&[0, 1], limit, false);
            for line in text.lines() {
                assert!(output::width(line) <= limit.unwrap_or(usize::MAX), "{text}");
            }
            text.lines()
                .next()
                .unwrap()
                .split("  ")
                .filter(|h| !h.is_empty())
                .map(|h| h.trim().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(header(None).len(), 10);
        assert_eq!(
            header(Some(80)),
            ["NAME", "PREFIX", "LAST USED", "STATUS", "HEALTH"]
        );
        assert!(
            table
                .render(&[0, 1], Some(80), false)
                .contains("  rotate · unused +1\n"),
            "the badges keep their room before less needed columns join"
        );
        assert_eq!(header(Some(50)), ["NAME", "STATUS", "HEALTH"]);
        assert_eq!(header(Some(32)), ["NAME", "HEALTH"]);
    }
}
