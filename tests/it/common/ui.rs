//! The UI tests' world: a service and a UI (in `TestBackend`) sharing one
//! hand-moved clock, how to read a secret off a screen, and the output of a
//! byte-stream session.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use keydeck::client::Client;
use keydeck::clock::{Clock, ManualClock};
use keydeck::key::Secret;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use serde_json::Value;

use super::{Backend, TestServer};

/// The instant every UI test starts at, so that times on screen are stable.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 15, 9, 0, 0).unwrap()
}

pub struct World {
    pub server: TestServer,
    pub clock: Arc<ManualClock>,
    pub backend: Backend,
}

impl World {
    pub async fn new() -> Self {
        let clock = Arc::new(ManualClock::new(start_time()));
        let backend = Backend::sqlite();
        let server = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
        Self {
            server,
            clock,
            backend,
        }
    }

    /// A UI of `width`×`height` talking to `base` (the service, or a proxy in front of it).
    pub async fn ui_at(&self, base: &str, theme: Theme, width: u16, height: u16) -> Harness {
        let client = Client::new(base, Secret::new(self.server.admin_token.clone())).unwrap();
        let clock: Arc<dyn Clock> = self.clock.clone();
        let mut h = Harness::start(client, clock, theme, width, height).await;
        // Refreshes only when a test asks for one.
        h.app.set_refresh_every(Duration::days(1));
        h
    }

    pub async fn ui(&self, theme: Theme, width: u16, height: u16) -> Harness {
        self.ui_at(&self.server.base.clone(), theme, width, height)
            .await
    }

    /// Creates a key through the API; returns the whole answer.
    pub async fn create(&self, body: Value) -> Value {
        let r = self
            .server
            .create_key_as(&self.server.admin_token, body)
            .await;
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    /// Every key the service has, newest first.
    pub async fn keys(&self) -> Vec<Value> {
        let list: Value = self
            .server
            .get("/v1/api-keys", &self.server.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list["data"].as_array().unwrap().clone()
    }

    /// The status `/v1/auth` answers for `secret` and `scope`.
    pub async fn auth(&self, secret: &str, scope: &str) -> u16 {
        self.server
            .auth(secret, Some(scope))
            .await
            .status()
            .as_u16()
    }
}

/// A byte-stream session's output: every byte the UI wrote.
#[derive(Clone, Default)]
pub struct Output(pub Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A table line without the mark gutter (its first two columns: `✓` or a
/// blank, and a gap), so a row can be found by the name it starts with.
pub fn past_gutter(line: &str) -> &str {
    line.char_indices().nth(2).map_or("", |(at, _)| &line[at..])
}

/// The whole secret shown on `screen` (46 characters), not a table prefix.
pub fn secret_on(screen: &str) -> String {
    let secret = screen
        .match_indices("eg_live_")
        .map(|(at, _)| {
            screen[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .find(|s| s.len() == 46)
        .unwrap_or_else(|| panic!("the whole secret is on screen:\n{screen}"));
    assert!(keydeck::key::SecretFormat::default().parse(&secret).is_ok());
    secret
}
