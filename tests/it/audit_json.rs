//! `keydeck audit --json` streams (issue 19, bounded memory): with more
//! entries than a page of the API (500), it writes one valid JSON array of
//! every entry, newest first, laid out as a whole array would be.

use crate::common;

use common::cli::{Service, User};
use keydeck::api::AuditEntry;
use keydeck::store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_json_of_more_entries_than_a_page_is_one_array_of_them_all() {
    let service = Service::start();
    // 1 200 keys: their creations and some 120 revocations, over 2 pages.
    service.admin(&["seed", "--count", "1200"]);
    let user = User::of(&service);

    let run = user.run(&["audit", "--json", "--limit", "100000"]).ok();
    let value = run.json();
    let entries = value.as_array().expect("one array");
    // Laid out as the whole array was before it streamed: serde_json's
    // pretty layout of the API's entries.
    let typed: Vec<AuditEntry> = serde_json::from_str(&run.stdout).unwrap();
    let whole = format!("{}\n", serde_json::to_string_pretty(&typed).unwrap());
    assert!(
        run.stdout == whole,
        "the layout differs from one pretty array"
    );

    let url = keydeck::service::database_url(None, service.data_dir());
    let store = store::open(&url).await.unwrap();
    let org = store.org_by_name("default").await.unwrap().unwrap();
    let stored = store.list_audit(&org.id, 100_000, None).await.unwrap();
    assert!(stored.len() > 1000, "{} entries", stored.len());
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let stored_ids: Vec<i64> = stored.iter().map(|a| a.id).collect();
    assert_eq!(ids, stored_ids, "every entry once, newest first");

    // A limit inside the second page stops there.
    let some = user.run(&["audit", "--json", "--limit", "700"]).ok().json();
    let some_ids: Vec<i64> = some
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(some_ids, stored_ids[..700]);
    store.close().await;
}
