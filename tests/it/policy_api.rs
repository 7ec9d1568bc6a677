//! The organisation policy over HTTP, on SQLite and PostgreSQL: `GET/PUT
//! /v1/policy` (members read, admins set, audited), each rule refusing a new
//! key with 400 `policy_violation`, rotation capping the new expiry, and keys
//! made before the policy left working (grandfathered).

use crate::common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{error_code, manual_clock, Backend, TestServer};
use keydeck::clock::Clock;
use keydeck::store::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    members_read_admins_set_and_the_change_is_audited,
    each_rule_refuses_a_new_key_and_rotation_caps_the_expiry,
);

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 3, 1, 12, 0, 0).unwrap()
}

async fn put_policy(s: &TestServer, token: &str, body: Value) -> reqwest::Response {
    s.http
        .put(s.url("/v1/policy"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn create(s: &TestServer, body: Value) -> reqwest::Response {
    s.create_key_as(&s.admin_token, body).await
}

async fn rotate(s: &TestServer, id: &str) -> Value {
    let r = s
        .http
        .post(s.url(&format!("/v1/api-keys/{id}/rotate")))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    serde_json::from_value(v.clone()).unwrap()
}

/// A 400 `policy_violation`; its message and the field it names.
async fn violation(r: reqwest::Response) -> (String, Value) {
    let (status, code, body) = error_code(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "policy_violation"),
        "{body}"
    );
    (
        body["error"]["message"].as_str().unwrap().to_owned(),
        body["error"]["fields"].clone(),
    )
}

async fn members_read_admins_set_and_the_change_is_audited(backend: Backend) {
    let clock = manual_clock(start());
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    let store = backend.store().await;
    let (_, member) = keydeck::accounts::add_user(
        store.as_ref(),
        "default",
        "member@default.test",
        Role::Member,
        clock.now(),
    )
    .await
    .unwrap();
    let member = member.expose().to_owned();

    let default = s.get_json("/v1/policy", &member).await;
    assert_eq!(
        default,
        json!({"max_lifetime_days": null, "require_expiry": false, "require_description": false,
               "expiring_within_days": 7, "rotate_after_days": 90, "unused_after_days": 30})
    );

    let wanted =
        json!({"max_lifetime_days": 90, "require_description": true, "rotate_after_days": 60});
    let (status, code, _) = error_code(put_policy(&s, &member, wanted.clone()).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "admin_required")
    );
    let r = put_policy(&s, "kdt_not_a_real_token", wanted.clone()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get_json("/v1/policy", &member).await,
        default,
        "refused changes change nothing"
    );

    // Bad input: 400 with a message naming the field, never a 500.
    for (body, needle) in [
        (json!({"max_lifetime_days": 0}), "max_lifetime_days"),
        (json!({"rotate_after_days": 3651}), "rotate_after_days"),
        (json!({"unused_after_days": -1}), "unused_after_days"),
        (json!({"max_lifetime": 90}), "unknown field"),
        (json!({"require_expiry": "yes"}), "require_expiry"),
    ] {
        let (status, code, err) =
            error_code(put_policy(&s, &s.admin_token, body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body}"
        );
        assert!(err.to_string().contains(needle), "{body}: {err}");
    }

    let r = put_policy(&s, &s.admin_token, wanted).await;
    assert_eq!(r.status(), StatusCode::OK);
    let set: Value = r.json().await.unwrap();
    let expected = json!({"max_lifetime_days": 90, "require_expiry": false, "require_description": true,
               "expiring_within_days": 7, "rotate_after_days": 60, "unused_after_days": 30});
    assert_eq!(set, expected);
    assert_eq!(s.get_json("/v1/policy", &member).await, expected);
    assert_eq!(s.get_json("/v1/policy", &s.admin_token).await, expected);

    // Audited with the old and the new policy, by whom.
    let audit = s.get_json("/v1/audit-logs", &s.admin_token).await;
    let entries: Vec<&Value> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "policy.updated")
        .collect();
    assert_eq!(entries.len(), 1, "one change, one entry: {audit}");
    assert_eq!(entries[0]["details"]["old"], default);
    assert_eq!(entries[0]["details"]["new"], expected);
    assert_eq!(entries[0]["actor"]["name"], "admin@localhost");

    // The document has both routes and the policy's bounds.
    let doc = s.get_json("/openapi.json", "").await;
    assert!(doc["paths"]["/v1/policy"]["get"].is_object());
    assert!(doc["paths"]["/v1/policy"]["put"]["responses"]["403"].is_object());
    let props = &doc["components"]["schemas"]["Policy"]["properties"];
    for field in [
        "max_lifetime_days",
        "expiring_within_days",
        "rotate_after_days",
        "unused_after_days",
    ] {
        assert_eq!(props[field]["minimum"], 1, "{field}: {props}");
        assert_eq!(props[field]["maximum"], 3650, "{field}: {props}");
    }

    // Another organisation keeps its own (default) policy.
    let (other_admin, _) =
        common::add_org(store.as_ref(), "acme", keydeck::store::Plan::Paid).await;
    assert_eq!(s.get_json("/v1/policy", &other_admin).await, default);
    store.close().await;
    s.stop().await;
    backend.cleanup().await;
}

async fn each_rule_refuses_a_new_key_and_rotation_caps_the_expiry(backend: Backend) {
    let clock = manual_clock(start());
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    let now = clock.now();
    let scopes = json!(["sessions:read"]);

    // Made before any policy: no expiry, no description; and one for a year.
    let r = create(&s, json!({"name": "old forever", "scopes": scopes})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let forever: Value = r.json().await.unwrap();
    let r = create(
        &s,
        json!({"name": "old year", "scopes": scopes, "expires_at": now + Duration::days(365)}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let year: Value = r.json().await.unwrap();

    let r = put_policy(
        &s,
        &s.admin_token,
        json!({"max_lifetime_days": 90, "require_description": true}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Each rule refuses, in its own words, at its own field.
    let (message, fields) = violation(
        create(
            &s,
            json!({"name": "x", "description": "d", "scopes": scopes}),
        )
        .await,
    )
    .await;
    assert_eq!(
        message,
        "this organisation requires an expiry of at most 90 days"
    );
    assert_eq!(fields["expires_at"], message);
    let (message, _) = violation(
        create(
            &s,
            json!({"name": "x", "description": "d", "scopes": scopes,
                   "expires_at": now + Duration::days(91)}),
        )
        .await,
    )
    .await;
    assert_eq!(
        message,
        "this organisation requires an expiry of at most 90 days"
    );
    let (message, fields) = violation(
        create(
            &s,
            json!({"name": "x", "description": "  ", "scopes": scopes,
                   "expires_at": now + Duration::days(30)}),
        )
        .await,
    )
    .await;
    assert_eq!(message, "this organisation requires a description");
    assert_eq!(fields["description"], message);
    assert!(fields.get("expires_at").is_none(), "{fields}");
    // A key that follows every rule is made; the refused ones were not.
    let r = create(
        &s,
        json!({"name": "compliant", "description": "CI", "scopes": scopes,
               "expires_at": now + Duration::days(90)}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let keys = s.get_json("/v1/api-keys", &s.admin_token).await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 3, "{keys}");

    // Grandfathered: the old keys are unchanged and keep working.
    let shown = s
        .get_json(
            &format!(
                "/v1/api-keys/{}",
                forever["api_key"]["id"].as_str().unwrap()
            ),
            &s.admin_token,
        )
        .await;
    assert_eq!(shown, forever["api_key"]);
    for old in [&forever, &year] {
        let r = s
            .auth(old["secret"].as_str().unwrap(), Some("sessions:read"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    // Rotation caps the new expiry, whatever the old key had; it never fails for it.
    clock.advance(Duration::days(1));
    let later = clock.now();
    for old in [&forever, &year] {
        let rotated = rotate(&s, old["api_key"]["id"].as_str().unwrap()).await;
        assert_eq!(
            time(&rotated["api_key"]["expires_at"]),
            Some(later + Duration::days(90)),
            "{rotated}"
        );
        assert_eq!(rotated["previous"]["status"], "revoked");
    }

    // Expiry required without a maximum: a new key needs one, and a rotated
    // key without one gets one rotation period.
    let r = put_policy(
        &s,
        &s.admin_token,
        json!({"require_expiry": true, "rotate_after_days": 30}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (message, _) = violation(create(&s, json!({"name": "x", "scopes": scopes})).await).await;
    assert_eq!(message, "this organisation requires an expiry date");
    let r = create(
        &s,
        json!({"name": "far", "scopes": scopes, "expires_at": later + Duration::days(400)}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED, "no maximum now");
    // Back to no rule: made without expiry, then rotated under the rule.
    put_policy(&s, &s.admin_token, json!({})).await;
    let r = create(&s, json!({"name": "free", "scopes": scopes})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let free: Value = r.json().await.unwrap();
    put_policy(
        &s,
        &s.admin_token,
        json!({"require_expiry": true, "rotate_after_days": 30}),
    )
    .await;
    let rotated = rotate(&s, free["api_key"]["id"].as_str().unwrap()).await;
    assert_eq!(
        time(&rotated["api_key"]["expires_at"]),
        Some(later + Duration::days(30))
    );

    // `keydeck admin seed` ignores the policy: demo keys are history, and
    // those that would not comply are grandfathered like any other.
    let store = backend.store().await;
    let seeded = keydeck::accounts::seed(store.as_ref(), "default", 20, clock.as_ref())
        .await
        .unwrap();
    assert_eq!(seeded, 20);
    store.close().await;
    s.stop().await;
    backend.cleanup().await;
}
