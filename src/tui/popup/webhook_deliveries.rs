//! One endpoint's deliveries on the webhooks screen: a window of pages of
//! `GET /v1/webhooks/{id}/deliveries` around what is on screen, never every
//! delivery at once. `j`/`k`, `PgDn`/`PgUp` scroll and fetch the next page
//! as the screen nears an end of what is held; `g`/`G` read the newest or
//! the oldest page without what lies between; pages far from the screen go.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::api::webhooks::{WebhookDelivery, WebhookDeliveryList};
use crate::tui::action::DeliveriesPage;
use crate::tui::keymap::Command;

/// Deliveries asked for at once.
pub const PAGE: u32 = 50;
/// Deliveries held at most.
pub const MAX_HELD: usize = 4 * PAGE as usize;
/// The next page is asked for when the screen comes this close to an end of what is held.
const AHEAD: usize = 10;

/// The deliveries held, newest first, and where the screen is among them.
pub struct Deliveries {
    /// Whose (the endpoint's id).
    pub endpoint: String,
    pub rows: Vec<WebhookDelivery>,
    /// The first row on screen (an index in `rows`).
    pub scroll: usize,
    /// Where the first row held is among all of them (0: the newest), when known.
    pub offset: Option<usize>,
    /// The cursor of the page after the last row held (`None`: the oldest is held).
    pub older: Option<String>,
    /// The cursor of the page before the first row held (`None`: the newest is held).
    pub newer: Option<String>,
    /// The page asked for and not answered yet; another answer is dropped.
    pub pending: Option<DeliveriesPage>,
    /// Rows on screen, as of the last frame drawn.
    visible: AtomicUsize,
}

impl Deliveries {
    /// The deliveries of `endpoint`, waiting for the newest page.
    pub fn new(endpoint: String) -> Self {
        Self {
            endpoint,
            rows: Vec::new(),
            scroll: 0,
            offset: Some(0),
            older: None,
            newer: None,
            pending: Some(DeliveriesPage::Newest),
            visible: AtomicUsize::new(0),
        }
    }

    /// Rows on screen (10 before the first frame).
    pub fn visible(&self) -> usize {
        match self.visible.load(Ordering::Relaxed) {
            0 => 10,
            n => n,
        }
    }

    /// The frame being drawn shows `rows` rows.
    pub fn set_visible(&self, rows: usize) {
        self.visible.store(rows, Ordering::Relaxed);
    }

    /// The furthest the screen scrolls among what is held.
    pub fn max_scroll(&self) -> usize {
        self.rows.len().saturating_sub(self.visible())
    }

    /// Asks for `page` (unless a page is on its way): what to fetch.
    fn ask(&mut self, page: DeliveriesPage) -> Option<DeliveriesPage> {
        if self.pending.is_some() {
            return None;
        }
        self.pending = Some(page.clone());
        Some(page)
    }

    /// Reads the newest page again, dropping what is held (`r`, `g` far down).
    pub fn reload(&mut self) -> Option<DeliveriesPage> {
        self.pending = Some(DeliveriesPage::Newest);
        Some(DeliveriesPage::Newest)
    }

    /// A key: where the screen goes, and the page to fetch, if any.
    pub fn on_command(&mut self, command: Option<Command>) -> Option<DeliveriesPage> {
        let page = self.visible().max(1);
        let last = self.max_scroll();
        match command {
            Some(Command::ScrollDown) => self.scroll = (self.scroll + 1).min(last),
            Some(Command::ScrollUp) => self.scroll = self.scroll.saturating_sub(1),
            Some(Command::ScrollPageDown) => self.scroll = (self.scroll + page).min(last),
            Some(Command::ScrollPageUp) => self.scroll = self.scroll.saturating_sub(page),
            Some(Command::First) if self.newer.is_some() => {
                return self.jump(DeliveriesPage::Newest)
            }
            Some(Command::First) => self.scroll = 0,
            Some(Command::Last) if self.older.is_some() => {
                return self.jump(DeliveriesPage::Oldest)
            }
            Some(Command::Last) => self.scroll = last,
            _ => return None,
        }
        self.ahead()
    }

    /// `g`/`G` past what is held: that end's page replaces it.
    fn jump(&mut self, page: DeliveriesPage) -> Option<DeliveriesPage> {
        self.pending = Some(page.clone());
        Some(page)
    }

    /// The page to fetch next to what is held when the screen nears an end of it.
    fn ahead(&mut self) -> Option<DeliveriesPage> {
        let bottom = self.scroll + self.visible();
        match (&self.older, &self.newer) {
            (Some(older), _) if bottom + AHEAD >= self.rows.len() => {
                let page = DeliveriesPage::Older(older.clone());
                self.ask(page)
            }
            (_, Some(newer)) if self.scroll < AHEAD => {
                let page = DeliveriesPage::Newer(newer.clone());
                self.ask(page)
            }
            _ => None,
        }
    }

    /// A page came: whether it was the one asked for (a stale one is dropped),
    /// and the next page to fetch, if the screen is still near an end.
    pub fn answered(
        &mut self,
        page: DeliveriesPage,
        list: WebhookDeliveryList,
    ) -> (bool, Option<DeliveriesPage>) {
        if self.pending.as_ref() != Some(&page) {
            return (false, None);
        }
        self.pending = None;
        let n = list.data.len();
        match page {
            DeliveriesPage::Newest => {
                self.rows = list.data;
                self.scroll = 0;
                self.offset = Some(0);
                self.older = list.next_cursor;
                self.newer = None;
            }
            DeliveriesPage::Oldest => {
                self.rows = list.data;
                self.older = None;
                self.newer = list.prev_cursor;
                self.offset = self.newer.is_none().then_some(0);
                self.scroll = self.max_scroll();
            }
            DeliveriesPage::Older(_) => {
                self.rows.extend(list.data);
                self.older = list.next_cursor;
                let over = self.rows.len().saturating_sub(MAX_HELD);
                if over > 0 {
                    self.rows.drain(..over);
                    self.scroll = self.scroll.saturating_sub(over);
                    self.offset = self.offset.map(|o| o + over);
                    self.newer = self.rows.first().map(|d| d.id.to_string());
                }
            }
            DeliveriesPage::Newer(_) => {
                let mut rows = list.data;
                rows.append(&mut self.rows);
                self.rows = rows;
                self.scroll += n;
                self.newer = list.prev_cursor;
                self.offset = match self.newer {
                    None => Some(0),
                    Some(_) => self.offset.and_then(|o| o.checked_sub(n)),
                };
                if self.rows.len() > MAX_HELD {
                    self.rows.truncate(MAX_HELD);
                    self.older = self.rows.last().map(|d| d.id.to_string());
                }
            }
        }
        (true, self.ahead())
    }

    /// A page did not come: nothing is on its way any more.
    pub fn failed(&mut self, page: &DeliveriesPage) -> bool {
        if self.pending.as_ref() != Some(page) {
            return false;
        }
        self.pending = None;
        true
    }

    /// Where the screen is, for the title: `21-38`, `of 40` once the oldest
    /// is held; read from the oldest end, `oldest` or `12 older` (below the screen).
    pub fn position(&self) -> String {
        if self.rows.is_empty() {
            return String::new();
        }
        let scroll = self.scroll.min(self.max_scroll());
        let shown = self.visible().min(self.rows.len() - scroll);
        match self.offset {
            Some(offset) => {
                let (from, to) = (offset + scroll + 1, offset + scroll + shown);
                match self.older {
                    None => format!(" {from}-{to} of {} ", offset + self.rows.len()),
                    Some(_) => format!(" {from}-{to} "),
                }
            }
            // Read from the oldest end (`G`): how far from it.
            None if self.older.is_none() => match self.rows.len() - scroll - shown {
                0 => " oldest ".into(),
                below => format!(" {below} older "),
            },
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn delivery(id: i64) -> WebhookDelivery {
        let at = DateTime::<Utc>::from_timestamp(1_700_000_000 + id, 0).unwrap();
        WebhookDelivery {
            id,
            event_id: format!("msg_{id}"),
            event_type: "api_key.created".into(),
            status: "delivered".into(),
            attempts: 1,
            next_attempt_at: None,
            last_attempt_at: Some(at),
            last_response_code: Some(200),
            last_error: None,
            created_at: at,
        }
    }

    /// What the service answers for `page` of deliveries 1..=total (newest first).
    fn serve(total: i64, page: &DeliveriesPage) -> WebhookDeliveryList {
        let n = i64::from(PAGE);
        let (from, to) = match page {
            DeliveriesPage::Newest => (total - n + 1, total),
            DeliveriesPage::Older(c) => {
                let c: i64 = c.parse().unwrap();
                (c - n, c - 1)
            }
            DeliveriesPage::Newer(c) => {
                let c: i64 = c.parse().unwrap();
                (c + 1, c + n)
            }
            DeliveriesPage::Oldest => (1, n),
        };
        let (from, to) = (from.max(1), to.min(total));
        let data: Vec<_> = (from..=to).rev().map(delivery).collect();
        WebhookDeliveryList {
            next_cursor: (from > 1).then(|| from.to_string()),
            prev_cursor: (to < total).then(|| to.to_string()),
            data,
        }
    }

    /// Carries out each fetch as the service would, until none is asked.
    fn settle(d: &mut Deliveries, total: i64, mut next: Option<DeliveriesPage>) -> usize {
        let mut fetched = 0;
        while let Some(page) = next {
            let list = serve(total, &page);
            let (taken, more) = d.answered(page, list);
            assert!(taken);
            next = more;
            fetched += 1;
            assert!(fetched < 100);
        }
        fetched
    }

    #[test]
    fn scrolling_fetches_pages_and_holds_a_bounded_window() {
        let total = 1000;
        let mut d = Deliveries::new("whk_1".into());
        d.set_visible(20);
        settle(&mut d, total, Some(DeliveriesPage::Newest));
        assert_eq!(d.rows.len(), PAGE as usize);
        assert_eq!(d.rows[0].id, total);
        assert_eq!(d.position(), " 1-20 ");
        // Down to the 600th delivery: pages come as the screen nears the end.
        let mut fetched = 0;
        for _ in 0..600 {
            let next = d.on_command(Some(Command::ScrollDown));
            fetched += settle(&mut d, total, next);
            assert!(d.rows.len() <= MAX_HELD, "{}", d.rows.len());
        }
        assert!((11..=13).contains(&fetched), "{fetched} pages");
        let top = &d.rows[d.scroll];
        assert_eq!(top.id, total - 600, "the row on top is the 601st newest");
        assert_eq!(d.position(), " 601-620 ");
        // And back up: the dropped pages come again.
        for _ in 0..600 {
            let next = d.on_command(Some(Command::ScrollUp));
            settle(&mut d, total, next);
            assert!(d.rows.len() <= MAX_HELD);
        }
        assert_eq!(d.rows[d.scroll].id, total);
        assert_eq!(d.newer, None);
        assert_eq!(d.offset, Some(0));
    }

    #[test]
    fn g_and_big_g_read_the_ends_without_what_lies_between() {
        let total = 1000;
        let mut d = Deliveries::new("whk_1".into());
        d.set_visible(20);
        settle(&mut d, total, Some(DeliveriesPage::Newest));
        let next = d.on_command(Some(Command::Last));
        assert_eq!(next, Some(DeliveriesPage::Oldest));
        assert_eq!(settle(&mut d, total, next), 1, "one page, the oldest");
        assert_eq!(d.rows.last().unwrap().id, 1);
        assert_eq!(d.rows[d.scroll + 19].id, 1, "the oldest on the last line");
        assert_eq!(d.position(), " oldest ");
        let next = d.on_command(Some(Command::First));
        assert_eq!(next, Some(DeliveriesPage::Newest));
        settle(&mut d, total, next);
        assert_eq!((d.scroll, d.rows[0].id), (0, total));
        // A short list: G and g only move.
        let mut short = Deliveries::new("whk_2".into());
        short.set_visible(20);
        settle(&mut short, 30, Some(DeliveriesPage::Newest));
        assert_eq!(short.on_command(Some(Command::Last)), None);
        assert_eq!(short.scroll, 10);
        assert_eq!(short.position(), " 11-30 of 30 ");
        assert_eq!(short.on_command(Some(Command::ScrollDown)), None);
        assert_eq!(short.scroll, 10, "no scrolling past the end");
    }

    #[test]
    fn a_stale_page_is_dropped() {
        let mut d = Deliveries::new("whk_1".into());
        d.set_visible(20);
        settle(&mut d, 1000, Some(DeliveriesPage::Newest));
        for _ in 0..30 {
            d.on_command(Some(Command::ScrollDown));
        }
        let asked = d.pending.clone().expect("the next page asked for");
        // r before it came: the newest page again; the older page is dropped.
        let again = d.reload();
        let (taken, _) = d.answered(asked.clone(), serve(1000, &asked));
        assert!(!taken);
        settle(&mut d, 1000, again);
        assert_eq!((d.scroll, d.rows.len()), (0, PAGE as usize));
    }
}
