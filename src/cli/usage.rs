//! `keydeck keys usage` and `keydeck usage`: key checks by outcome over a
//! window as a compact text sparkline and totals (or the API's JSON), a
//! key's client addresses, the organisation's top keys.

use chrono::Utc;

use super::output::{self, Cell};
use super::{select, CliError, KeyUsageArgs, UsageArgs};
use crate::api::{UsageBucket, UsageCounts};
use crate::client::Client;
use crate::present;

/// Columns of the sparkline at most.
const SPARK_WIDTH: usize = 60;

/// `keydeck keys usage ID`.
pub async fn key(client: &Client, args: KeyUsageArgs) -> Result<(), CliError> {
    let key = select::find_key(client, &args.key).await?;
    let usage = client.key_usage(&key.id, args.window).await?;
    if args.json {
        return output::print_json(&usage);
    }
    let colour = output::stdout_colour();
    let now = Utc::now();
    let mut text = format!(
        "{} · last {}\n{}\n{}\n",
        output::key_label(&key),
        usage.window,
        spark(&usage.buckets),
        totals(&usage.totals, false),
    );
    if usage.addresses.is_empty() {
        text.push_str("No client address seen.\n");
    } else {
        let rows: Vec<Vec<Cell>> = usage
            .addresses
            .iter()
            .map(|a| {
                vec![
                    Cell::from(output::printable(&a.address).as_ref()),
                    Cell::from(present::relative(a.first_seen, now).as_str()),
                    Cell::from(present::relative(a.last_seen, now).as_str()),
                    Cell::from(present::grouped(a.uses).as_str()),
                ]
            })
            .collect();
        text.push_str(&output::table(
            &["ADDRESS", "FIRST SEEN", "LAST SEEN", "USES"],
            &rows,
            colour,
        ));
    }
    output::print(&text)
}

/// `keydeck usage`.
pub async fn org(client: &Client, args: UsageArgs) -> Result<(), CliError> {
    let usage = client.org_usage(args.window).await?;
    if args.json {
        return output::print_json(&usage);
    }
    let colour = output::stdout_colour();
    let mut text = format!(
        "Key checks · last {}\n{}\n{}\n",
        usage.window,
        spark(&usage.buckets),
        totals(&usage.totals, true),
    );
    for (title, keys) in [
        ("Most checks", &usage.top_by_checks),
        ("Most refusals", &usage.top_by_refusals),
    ] {
        text.push_str(&format!("\n{title}:\n"));
        if keys.is_empty() {
            text.push_str("  none\n");
            continue;
        }
        let rows: Vec<Vec<Cell>> = keys
            .iter()
            .map(|k| {
                vec![
                    Cell::from(output::printable(&k.name).as_ref()),
                    Cell::from(present::prefix(&k.prefix).as_str()),
                    Cell::from(present::grouped(k.checks).as_str()),
                    Cell::from(present::grouped(k.refused).as_str()),
                ]
            })
            .collect();
        text.push_str(&output::table(
            &["NAME", "PREFIX", "CHECKS", "REFUSED"],
            &rows,
            colour,
        ));
    }
    output::print(&text)
}

fn spark(buckets: &[UsageBucket]) -> String {
    let values: Vec<u64> = buckets.iter().map(|b| b.counts.checks()).collect();
    let line = present::sparkline(&values, SPARK_WIDTH);
    format!("│{line}│")
}

fn totals(t: &UsageCounts, unknown: bool) -> String {
    let mut parts = vec![
        format!("{} checks", present::grouped(t.checks())),
        format!("valid {}", present::grouped(t.valid)),
        format!(
            "insufficient scope {}",
            present::grouped(t.insufficient_scope)
        ),
        format!("expired {}", present::grouped(t.expired)),
        format!("revoked {}", present::grouped(t.revoked)),
        format!("rate limited {}", present::grouped(t.rate_limited)),
    ];
    if unknown {
        parts.push(format!(
            "unknown keys {} (service-wide)",
            present::grouped(t.unknown)
        ));
    }
    parts.join(" · ")
}
