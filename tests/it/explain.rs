//! Every hot query of the key list uses an index (issue 19, acceptance 2):
//! the plan each backend chooses for the list of every tab × sort, both
//! ways, from a position and to the last page, for the Attention order, the
//! counts and the filter (`store::explain_hot_queries` hands them over; no
//! SQL here) must not read `api_keys` whole.
//!
//! SQLite: `EXPLAIN QUERY PLAN`; its planner does not weigh row counts
//! (there are no statistics until `ANALYZE`), so the plan is the one a
//! million keys get. A `SCAN api_keys` line (with or without an index: a
//! full index scan reads every row too) fails. A list ordered by a sort
//! must also read its index in order, never sort rows in a temporary B-tree
//! (that would read the whole tab to show one page), but with a filter of 3
//! characters or more, whose trigram matches are sorted.
//!
//! PostgreSQL: `EXPLAIN` with `enable_seqscan = off` (see the store's
//! dialect): on a test's handful of rows a sequential scan is cheapest, so
//! the planner would choose it whatever the indexes; priced out, it is still
//! chosen when no index can serve the query. `Seq Scan on api_keys` fails,
//! and so does a `Sort` node in a list's plan (a tab sorted whole).

use crate::common;

use common::Backend;
use keydeck::store::{Org, Plan};

on_both_backends!(no_hot_query_reads_the_whole_key_table);

async fn no_hot_query_reads_the_whole_key_table(backend: Backend) {
    let store = backend.store().await;
    let org = Org {
        id: "org_explain".into(),
        name: "explain".into(),
        plan: Plan::Paid,
        created_at: chrono::Utc::now(),
    };
    store.create_org(&org).await.unwrap();
    let plans = store.explain_hot_queries(&org.id).await.unwrap();
    assert!(plans.len() > 300, "{} hot queries", plans.len());
    let mut bad = Vec::new();
    for (name, lines) in &plans {
        assert!(!lines.is_empty(), "{name}: no plan");
        let text = lines.join("\n");
        if !name.starts_with("list") || name.contains("sort=attention order=asc page=after") {
            println!("{} {name}:\n{text}", backend.name);
        }
        if let Some(why) = full_read(backend.name, name, &text) {
            bad.push(format!("{name}: {why}\n{text}"));
        }
    }
    println!(
        "{}: {} hot queries, each from an index",
        backend.name,
        plans.len()
    );
    store.close().await;
    backend.cleanup().await;
    assert!(
        bad.is_empty(),
        "{} hot queries read api_keys whole:\n{}",
        bad.len(),
        bad.join("\n\n")
    );
}

/// Why the plan reads the whole table (or a whole tab), if it does.
fn full_read(backend: &str, name: &str, plan: &str) -> Option<&'static str> {
    if backend == "postgres" {
        if plan.contains("Seq Scan on api_keys") {
            return Some("sequential scan of api_keys");
        }
        let sorts = plan
            .lines()
            .any(|l| l.trim_start().starts_with("-> Sort") || l.starts_with("Sort"));
        return (name.starts_with("list") && sorts)
            .then_some("sorts rows instead of reading the sort's index in order");
    }
    let scans = plan.lines().any(|l| {
        let l = l.trim();
        l.starts_with("SCAN api_keys") && !l.starts_with("SCAN api_keys_fts")
    });
    if scans {
        return Some("SCAN api_keys");
    }
    if name == "counts" && !plan.contains("USING COVERING INDEX api_keys_counts") {
        // Every key of the organisation is read once: from the covering
        // index alone, not from each key's row as well.
        return Some("counts read the keys' rows, not the covering index alone");
    }
    let sorted_matches = name.starts_with("filter q=") && !name.ends_with("q=sn");
    let sorts = plan.contains("USE TEMP B-TREE FOR ORDER BY");
    ((name.starts_with("list") || name.starts_with("filter")) && sorts && !sorted_matches)
        .then_some("sorts rows instead of reading the sort's index in order")
}
