//! `keys list --json` of more keys than one page (500) is written page by
//! page, and the whole array holds every key once, newest first: through the
//! command line over HTTP and as a command over SSH (the same CLI code).

use crate::common;

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use common::cli::User;
use common::{ssh, Backend};
use serde_json::{json, Value};

const ADMIN: &str = "admin@localhost";
const KEYS: usize = 1100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_list_of_several_pages_holds_every_key_once_in_order() {
    let backend = Backend::sqlite();
    let server = ssh::start(&backend, |_| {}).await;
    let mut made = HashSet::new();
    for batch in 0..KEYS / 10 {
        let creates = (0..10).map(|i| {
            let body = json!({"name": format!("k{batch}-{i}"), "scopes": ["sessions:read"]});
            server.create_key_as(&server.admin_token, body)
        });
        for r in futures_util::future::join_all(creates).await {
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            assert_eq!(status, 201, "{v}");
            made.insert(v["api_key"]["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(made.len(), KEYS);

    let base = server.base.clone();
    let token = server.admin_token.clone();
    let cli = tokio::task::spawn_blocking(move || {
        let user = User::new()
            .env("KEYDECK_URL", &base)
            .env("KEYDECK_TOKEN", &token);
        user.run(&["keys", "list", "--json"]).ok().stdout
    })
    .await
    .unwrap();
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    let handle = ssh::connect(ssh::addr(&server), &key).await.unwrap();
    let over_ssh = ssh::exec(&handle, "keys list --json", false).await;
    assert_eq!(over_ssh.status, Some(0), "{}", over_ssh.stderr);

    for (how, text) in [("http", &cli), ("ssh", &over_ssh.stdout)] {
        let keys: Vec<Value> = serde_json::from_str(text).expect("one JSON array");
        let ids: Vec<&str> = keys.iter().map(|k| k["id"].as_str().unwrap()).collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!((ids.len(), unique.len()), (KEYS, KEYS), "{how}");
        assert!(ids.iter().all(|id| made.contains(*id)), "{how}");
        let created: Vec<(DateTime<Utc>, &str)> = keys
            .iter()
            .map(|k| {
                let at = k["created_at"].as_str().unwrap().parse().unwrap();
                (at, k["id"].as_str().unwrap())
            })
            .collect();
        assert!(
            created.windows(2).all(|w| w[0] >= w[1]),
            "{how}: not newest first"
        );
        assert!(keys.iter().all(|k| k["health"].is_array()), "{how}: badges");
    }
    server.stop().await;
}
