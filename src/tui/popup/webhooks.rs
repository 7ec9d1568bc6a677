//! The webhooks screen (`W`, issue 24): the organisation's endpoints with
//! their health, one endpoint's deliveries (`webhook_deliveries.rs`), and
//! add (its signing secret in the copy-once modal), test, enable, a new
//! signing secret (asked first, shown once) and remove; its state, keys,
//! answers and drawing. The service checks everything (admins only, the
//! URL, the events) and its messages are shown where they belong.

use crossterm::event::KeyEvent;
use tui_input::backend::crossterm::EventHandler;
use tui_input::Input;

use super::webhook_deliveries::Deliveries;
use super::{Confirm, CopyOnce, Ctx, Intent, Popup, Then};
use crate::api::webhooks::{CreateWebhookRequest, Webhook, WebhookDelivery};
use crate::client::ClientError;
use crate::key::webhook::redacted_url;
use crate::tui::action::{DeliveriesPage, WebhookAnswer, WebhookOp};
use crate::tui::keymap::{self, Command, Context, FooterState};
use crate::tui::message::banner_message;
use crate::tui::view::cut;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

/// The longest URL the form takes (the service's limit too).
const URL_MAX: usize = 2048;
/// The longest events line the form takes (ten types fit easily).
const EVENTS_MAX: usize = 400;
/// What the events field starts with: the changes to keys.
const DEFAULT_EVENTS: &str = "api_key.created, api_key.revoked, api_key.rotated";

/// The add form: a URL and the event types, comma-separated.
#[derive(Default)]
pub struct AddForm {
    pub url: Input,
    pub events: Input,
    /// 0 the URL, 1 the events.
    pub focus: usize,
    pub submitting: bool,
    /// The service's words about each field, and about the rest.
    pub url_error: Option<String>,
    pub events_error: Option<String>,
    pub error: Option<String>,
}

impl AddForm {
    fn new() -> Self {
        Self {
            events: Input::new(DEFAULT_EVENTS.into()),
            ..Self::default()
        }
    }

    fn request(&self) -> CreateWebhookRequest {
        CreateWebhookRequest {
            url: self.url.value().trim().to_owned(),
            events: self
                .events
                .value()
                .split([',', ' '])
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// What the screen shows.
pub enum Mode {
    List,
    /// The deliveries of the endpoint selected.
    Deliveries(Box<Deliveries>),
    Adding(Box<AddForm>),
}

pub struct WebhooksView {
    pub webhooks: Vec<Webhook>,
    pub selected: usize,
    pub mode: Mode,
    /// The list is on its way.
    pub loading: bool,
    /// An error of the last request, shown in the screen.
    pub error: Option<String>,
    /// What the last action did ("test event queued").
    pub note: Option<String>,
}

impl WebhooksView {
    /// A screen waiting for its first list.
    pub fn loading() -> Self {
        Self {
            webhooks: Vec::new(),
            selected: 0,
            mode: Mode::List,
            loading: true,
            error: None,
            note: None,
        }
    }

    pub fn context(&self) -> Context {
        match self.mode {
            Mode::Adding(_) => Context::WebhookForm,
            Mode::Deliveries(_) => Context::WebhookDeliveries,
            Mode::List => Context::Webhooks,
        }
    }

    fn selected_webhook(&self) -> Option<&Webhook> {
        self.webhooks.get(self.selected)
    }

    /// Whether the endpoint selected on the list is disabled (`e` enables it).
    pub fn selected_is_disabled(&self) -> bool {
        matches!(self.mode, Mode::List)
            && self
                .selected_webhook()
                .is_some_and(|w| w.disabled_at.is_some())
    }

    /// The request for a page of the deliveries shown.
    fn fetch(d: &Deliveries, page: Option<DeliveriesPage>) -> Intent {
        match page {
            Some(page) => Intent::Webhooks(WebhookOp::Deliveries {
                id: d.endpoint.clone(),
                page,
            }),
            None => Intent::Stay,
        }
    }

    pub fn on_command(&mut self, command: Option<Command>, key: KeyEvent) -> Intent {
        if let Mode::Adding(form) = &mut self.mode {
            return match command {
                Some(Command::Cancel) => {
                    self.mode = Mode::List;
                    Intent::Stay
                }
                _ if form.submitting => Intent::Stay,
                Some(Command::FocusNext | Command::FocusPrev) => {
                    form.focus = 1 - form.focus;
                    Intent::Stay
                }
                Some(Command::Submit) => {
                    form.submitting = true;
                    form.url_error = None;
                    form.events_error = None;
                    form.error = None;
                    Intent::Webhooks(WebhookOp::Add(form.request()))
                }
                _ => {
                    let (field, max) = if form.focus == 0 {
                        (&mut form.url, URL_MAX)
                    } else {
                        (&mut form.events, EVENTS_MAX)
                    };
                    let before = field.clone();
                    field.handle_event(&crossterm::event::Event::Key(key));
                    if field.value().chars().count() > max {
                        *field = before;
                    }
                    Intent::Stay
                }
            };
        }
        self.note = None;
        if let Mode::Deliveries(d) = &mut self.mode {
            return match command {
                Some(Command::Reload) => {
                    self.error = None;
                    let page = d.reload();
                    Self::fetch(d, page)
                }
                Some(Command::Back) => {
                    self.mode = Mode::List;
                    self.error = None;
                    Intent::Stay
                }
                _ => {
                    let page = d.on_command(command);
                    Self::fetch(d, page)
                }
            };
        }
        match command {
            Some(Command::Down) => {
                self.selected = (self.selected + 1).min(self.webhooks.len().saturating_sub(1));
            }
            Some(Command::Up) => self.selected = self.selected.saturating_sub(1),
            Some(Command::Details) => {
                if let Some(id) = self.selected_webhook().map(|w| w.id.clone()) {
                    let d = Deliveries::new(id);
                    let intent = Self::fetch(&d, d.pending.clone());
                    self.mode = Mode::Deliveries(Box::new(d));
                    self.error = None;
                    return intent;
                }
            }
            Some(Command::New) => {
                self.mode = Mode::Adding(Box::new(AddForm::new()));
            }
            Some(Command::Test) => {
                if let Some(id) = self.selected_webhook().map(|w| w.id.clone()) {
                    return Intent::Webhooks(WebhookOp::Test(id));
                }
            }
            Some(Command::Enable) => match self.selected_webhook() {
                Some(w) if w.disabled_at.is_some() => {
                    return Intent::Webhooks(WebhookOp::Enable(w.id.clone()));
                }
                Some(w) => {
                    self.note = Some(format!(
                        "{} is {}: nothing to enable.",
                        redacted_url(&w.url),
                        w.health
                    ));
                }
                None => {}
            },
            Some(Command::Rotate) => {
                if let Some(webhook) = self.selected_webhook() {
                    let lines = vec![
                        format!("Give {} a new signing secret?", redacted_url(&webhook.url)),
                        "The new one signs from now on and is shown once. The current one \
                         signs too for 24 hours (both signatures are sent): update your \
                         receiver before then."
                            .into(),
                    ];
                    let dialog = Confirm::ask(
                        "New signing secret",
                        lines,
                        "Rotate",
                        Then::RotateWebhookSecret(webhook.id.clone()),
                    );
                    return Intent::Open(Popup::Confirm(Box::new(dialog)));
                }
            }
            Some(Command::Revoke) => {
                if let Some(webhook) = self.selected_webhook() {
                    let lines = vec![
                        format!("Remove the endpoint {}?", redacted_url(&webhook.url)),
                        "Its deliveries go too; nothing more is sent to it.".into(),
                    ];
                    let dialog = Confirm::ask(
                        "Remove webhook endpoint",
                        lines,
                        "Remove",
                        Then::RemoveWebhook(webhook.id.clone()),
                    );
                    return Intent::Open(Popup::Confirm(Box::new(dialog)));
                }
            }
            Some(Command::Reload) if !self.loading => {
                self.loading = true;
                return Intent::Webhooks(WebhookOp::List);
            }
            Some(Command::Back) => return Intent::Close,
            _ => {}
        }
        Intent::Stay
    }

    /// The endpoint as the service now has it, in the list.
    fn replace(&mut self, webhook: &Webhook) {
        if let Some(w) = self.webhooks.iter_mut().find(|w| w.id == webhook.id) {
            *w = webhook.clone();
        }
    }

    /// An answer to one of the screen's requests; what the app should do
    /// next (the new secret's modal).
    pub fn answered(&mut self, answer: WebhookAnswer, source: &str) -> Intent {
        // `r` reads a list again; nothing on the screen sends a test, an
        // add, a removal again by itself: their lines name no key.
        let message = |e: &ClientError| banner_message(e, source, None);
        let reload =
            |e: &ClientError, context| banner_message(e, source, Some((context, Command::Reload)));
        match answer {
            WebhookAnswer::List(result) => {
                self.loading = false;
                match result {
                    Ok(list) => {
                        self.webhooks = list.data;
                        self.selected = self.selected.min(self.webhooks.len().saturating_sub(1));
                        self.error = None;
                    }
                    Err(e) => self.error = Some(reload(&e, Context::Webhooks)),
                }
            }
            WebhookAnswer::Deliveries(id, page, result) => {
                let Mode::Deliveries(d) = &mut self.mode else {
                    return Intent::Stay;
                };
                if d.endpoint != id {
                    return Intent::Stay;
                }
                match result {
                    Ok(list) => {
                        let (taken, next) = d.answered(page, list);
                        if taken {
                            self.error = None;
                            return Self::fetch(d, next);
                        }
                    }
                    Err(e) => {
                        if d.failed(&page) {
                            self.error = Some(reload(&e, Context::WebhookDeliveries));
                        }
                    }
                }
            }
            WebhookAnswer::Added(result) => {
                let Mode::Adding(form) = &mut self.mode else {
                    // The form was cancelled meanwhile: still, the secret is shown.
                    if let Ok(created) = *result {
                        self.webhooks.push(created.webhook.clone());
                        return Intent::Open(Popup::CopyOnce(Box::new(CopyOnce::webhook(
                            created.webhook,
                            created.secret,
                        ))));
                    }
                    return Intent::Stay;
                };
                form.submitting = false;
                match *result {
                    Ok(created) => {
                        self.mode = Mode::List;
                        self.webhooks.push(created.webhook.clone());
                        self.selected = self.webhooks.len() - 1;
                        return Intent::Open(Popup::CopyOnce(Box::new(CopyOnce::webhook(
                            created.webhook,
                            created.secret,
                        ))));
                    }
                    Err(ClientError::Invalid { message, fields }) if !fields.is_empty() => {
                        form.url_error = fields.get("url").cloned();
                        form.events_error = fields.get("events").cloned();
                        if form.url_error.is_none() && form.events_error.is_none() {
                            form.error = Some(message);
                        }
                    }
                    Err(e) => form.error = Some(message(&e)),
                }
            }
            WebhookAnswer::Tested(result) => match result {
                Ok(queued) => {
                    self.note = Some(format!(
                        "Test event {} queued; Enter shows the deliveries.",
                        queued.event_id
                    ));
                    self.error = None;
                }
                Err(e) => self.error = Some(message(&e)),
            },
            WebhookAnswer::Enabled(result) => match result {
                Ok(webhook) => {
                    self.replace(&webhook);
                    self.note = Some(format!(
                        "Enabled {}: what waited is being sent.",
                        redacted_url(&webhook.url)
                    ));
                    self.error = None;
                }
                Err(e) => self.error = Some(message(&e)),
            },
            WebhookAnswer::SecretRotated(result) => match *result {
                Ok(rotated) => {
                    self.replace(&rotated.webhook);
                    self.error = None;
                    return Intent::Open(Popup::CopyOnce(Box::new(CopyOnce::webhook_rotated(
                        rotated.webhook,
                        rotated.secret,
                    ))));
                }
                Err(e) => self.error = Some(message(&e)),
            },
            WebhookAnswer::Removed(id, result) => match result {
                Ok(webhook) => {
                    self.webhooks.retain(|w| w.id != id);
                    self.selected = self.selected.min(self.webhooks.len().saturating_sub(1));
                    self.note = Some(format!("Removed {}.", redacted_url(&webhook.url)));
                    self.error = None;
                }
                Err(e) => self.error = Some(message(&e)),
            },
        }
        Intent::Stay
    }
}

/// The health word and its colour.
fn health<'a>(ctx: &Ctx, webhook: &Webhook) -> Span<'a> {
    use crate::key::KeyStatus;
    let style = match webhook.health.as_str() {
        "healthy" => ctx.theme.status(KeyStatus::Active),
        "failing" => ctx.theme.status(KeyStatus::Expired),
        _ => ctx.theme.error_text(),
    };
    Span::styled(format!("{:<9}", webhook.health), style)
}

/// One endpoint as a row of `width` columns: health, URL cut with `…`, events.
fn row(ctx: &Ctx, webhook: &Webhook, width: usize, selected: bool) -> Line<'static> {
    let events = webhook.events.join(",");
    let events = cut::end(&events, (width / 3).max(10));
    let url_width =
        width.saturating_sub(9 + 2 + unicode_width::UnicodeWidthStr::width(events.as_str()));
    let url = cut::end(&redacted_url(&webhook.url), url_width);
    let pad = url_width.saturating_sub(unicode_width::UnicodeWidthStr::width(url.as_str()));
    let mut line = Line::from(vec![
        health(ctx, webhook),
        Span::raw(format!("{url}{}  ", " ".repeat(pad))),
        Span::styled(events, ctx.theme.dim()),
    ]);
    if selected {
        line = line.style(ctx.theme.selected());
    }
    line
}

/// One delivery: when, event type, status, attempts, next try, last code.
fn delivery(ctx: &Ctx, d: &WebhookDelivery, width: usize) -> Line<'static> {
    let next = d
        .next_attempt_at
        .filter(|_| d.status == "pending")
        .map(|at| format!(" · next {}", crate::present::relative(at, ctx.now)))
        .unwrap_or_default();
    let code = d
        .last_response_code
        .map(|c| format!(" · HTTP {c}"))
        .unwrap_or_default();
    let error = d
        .last_error
        .as_deref()
        .filter(|_| d.status != "delivered")
        .map(|e| format!(" · {e}"))
        .unwrap_or_default();
    let text = format!(
        "{:<16} {:<10} {} attempt{}{next}{code}{error}",
        d.event_type,
        d.status,
        d.attempts,
        if d.attempts == 1 { "" } else { "s" },
    );
    let style = match d.status.as_str() {
        "delivered" => Style::default(),
        "pending" => ctx.theme.status(crate::key::KeyStatus::Expired),
        _ => ctx.theme.error_text(),
    };
    Line::from(vec![
        Span::styled(ctx.tz.date_time(d.created_at), ctx.theme.dim()),
        Span::raw("  "),
        Span::styled(
            cut::end(
                &text,
                width.saturating_sub(2 + ctx.tz.date_time(d.created_at).len()),
            ),
            style,
        ),
    ])
}

/// The last `width` columns of `text`, `…` first when cut.
fn tail(text: &str, width: usize) -> String {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    if text.width() <= width || width == 0 {
        return text.to_owned();
    }
    let mut out: Vec<char> = Vec::new();
    let mut used = 1;
    for c in text.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            break;
        }
        used += w;
        out.push(c);
    }
    std::iter::once('…').chain(out.into_iter().rev()).collect()
}

fn form_lines<'a>(ctx: &Ctx, form: &AddForm, width: usize) -> Vec<Line<'a>> {
    let theme = ctx.theme;
    let field = |label: &str, input: &Input, focused: bool, error: &Option<String>| {
        let style = if focused {
            theme.focused_field()
        } else {
            theme.field()
        };
        let cursor = if focused { "█" } else { "" };
        let room = width.saturating_sub(label.len() + 2);
        // The end of a long value stays in view, where the cursor is.
        let value = tail(input.value(), room.saturating_sub(1));
        let mut lines = vec![Line::from(vec![
            Span::styled(label.to_owned(), theme.title()),
            Span::raw("  "),
            Span::styled(format!("{value}{cursor}"), style),
        ])];
        if let Some(error) = error {
            lines.push(Line::styled(format!("  ✗ {error}"), theme.error_text()));
        }
        lines
    };
    let mut lines = vec![Line::from("Add a webhook endpoint")];
    lines.push(Line::from(""));
    lines.extend(field("URL   ", &form.url, form.focus == 0, &form.url_error));
    lines.extend(field(
        "Events",
        &form.events,
        form.focus == 1,
        &form.events_error,
    ));
    lines.push(Line::styled(
        format!(
            "  comma-separated: {}",
            crate::key::webhook::EVENT_TYPES.join(", ")
        ),
        theme.dim(),
    ));
    if let Some(error) = &form.error {
        lines.push(Line::styled(error.clone(), theme.error_text()));
    }
    if form.submitting {
        lines.push(Line::from("Adding…"));
    }
    lines
}

pub fn draw(frame: &mut Frame, ctx: &Ctx, view: &WebhooksView, area: Rect) {
    let theme = ctx.theme;
    let inner = usize::from(area.width.saturating_sub(2));
    let visible = usize::from(area.height.saturating_sub(2));
    let mut lines: Vec<Line> = Vec::new();
    let mut position = String::new();
    let title;
    let context;
    match &view.mode {
        Mode::Adding(form) => {
            title = " Webhooks · add ".to_owned();
            context = Context::WebhookForm;
            lines = form_lines(ctx, form, inner);
        }
        Mode::Deliveries(d) => {
            context = Context::WebhookDeliveries;
            let url = view
                .webhooks
                .iter()
                .find(|w| w.id == d.endpoint)
                .map(|w| redacted_url(&w.url))
                .unwrap_or_default();
            title = format!(
                " Deliveries to {} ",
                cut::end(&url, inner.saturating_sub(20))
            );
            if let Some(error) = &view.error {
                lines.push(Line::styled(error.clone(), theme.error_text()));
            } else if d.pending.is_some() && d.rows.is_empty() {
                lines.push(Line::from("Loading the deliveries…"));
            } else if d.rows.is_empty() {
                lines.push(Line::from(
                    "Nothing sent yet: t on the list sends a test event.",
                ));
            }
            let room = visible.saturating_sub(lines.len());
            d.set_visible(room.max(1));
            let scroll = d.scroll.min(d.max_scroll());
            lines.extend(
                d.rows
                    .iter()
                    .skip(scroll)
                    .take(room)
                    .map(|r| delivery(ctx, r, inner)),
            );
            position = d.position();
        }
        Mode::List => {
            context = Context::Webhooks;
            title = format!(
                " Webhooks · {} ",
                crate::present::count(view.webhooks.len(), "endpoint", "endpoints")
            );
            if let Some(error) = &view.error {
                lines.push(Line::styled(error.clone(), theme.error_text()));
            }
            if let Some(note) = &view.note {
                lines.push(Line::from(note.clone()));
            }
            if view.loading && view.webhooks.is_empty() {
                lines.push(Line::from("Loading the endpoints…"));
            } else if view.webhooks.is_empty() && view.error.is_none() {
                lines.push(Line::from("No endpoints yet: a adds one."));
            }
            let room = visible.saturating_sub(lines.len()).max(1);
            let first = view.selected.saturating_sub(room - 1);
            lines.extend(
                view.webhooks
                    .iter()
                    .enumerate()
                    .skip(first)
                    .take(room)
                    .map(|(i, w)| row(ctx, w, inner, i == view.selected)),
            );
            if !view.webhooks.is_empty() {
                position = format!(" {} of {} ", view.selected + 1, view.webhooks.len());
            }
        }
    }
    frame.render_widget(Clear, area);
    let state = FooterState {
        endpoint_disabled: view.selected_is_disabled(),
        ..FooterState::default()
    };
    let block = Block::bordered()
        .title(title)
        .title(Line::from(position).right_aligned())
        .title_bottom(keymap::border_within(context, state, inner));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_sends_the_events_split_at_commas_and_spaces() {
        let mut form = AddForm::new();
        form.url = Input::new(" https://example.com/hook ".into());
        form.events = Input::new("api_key.created,api_key.revoked  user.added".into());
        let request = form.request();
        assert_eq!(request.url, "https://example.com/hook");
        assert_eq!(
            request.events,
            ["api_key.created", "api_key.revoked", "user.added"]
        );
    }
}
