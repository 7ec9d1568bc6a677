//! Every key binding of the UI, declared once as data: its keys, the command
//! it names, where it works, its footer hint, its help line and its name in
//! the `:` command palette. Dispatch, the `?` help screen, the palette's
//! commands, the footer, each popup's hint line and the README's binding
//! table are all derived from [`BINDINGS`].

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where the focus is: which screen or dialog receives the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The key table, nothing on top.
    Table,
    /// Typing into the filter line (`/`).
    Filter,
    /// The create form (`n`).
    Create,
    /// The copy-once modal with a new secret.
    CopyOnce,
    /// A yes/no dialog: revoke, revoke many, discard the form, close uncopied.
    Confirm,
    /// The rotate dialog: yes/no and a grace period.
    Rotate,
    /// A message with one button.
    Notice,
    /// Every field of one key.
    Details,
    /// This help.
    Help,
    /// The audit log (`a`).
    Audit,
    /// The command palette (`:`).
    Palette,
    /// The organisation's usage (`u`).
    Usage,
    /// The webhook endpoints (`W`).
    Webhooks,
    /// One webhook endpoint's deliveries (`Enter` on the webhooks screen).
    WebhookDeliveries,
    /// The webhook screen's add form (URL and events); other keys type.
    WebhookForm,
    /// The organisation's policy (`P`): digits type into the number selected.
    Policy,
}

const EVERYWHERE: &[Context] = &[
    Context::Table,
    Context::Filter,
    Context::Create,
    Context::CopyOnce,
    Context::Confirm,
    Context::Rotate,
    Context::Notice,
    Context::Details,
    Context::Help,
    Context::Audit,
    Context::Palette,
    Context::Usage,
    Context::Webhooks,
    Context::WebhookDeliveries,
    Context::WebhookForm,
    Context::Policy,
];

/// What a key asks for; each screen says what it does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Quit (waits for a change to a key still on its way).
    Quit,
    Down,
    Up,
    PageDown,
    PageUp,
    First,
    Last,
    /// Details of the selected key.
    Details,
    /// Start typing a filter.
    Filter,
    ClearFilter,
    /// Show the n-th tab (0-based): the four status tabs, then Attention.
    ShowTab(u8),
    NextTab,
    PrevTab,
    SortNext,
    SortReverse,
    Refresh,
    Help,
    New,
    Revoke,
    Rotate,
    /// Issue the secret of a key made without one (the leak policy's successor).
    IssueSecret,
    Mark,
    RevokeExpired,
    CopyId,
    Audit,
    /// The audit log of the selected key (of the key shown, in details).
    AuditKey,
    /// The webhook endpoints screen.
    Webhooks,
    /// Send a test event to the selected endpoint (webhooks screen).
    Test,
    /// Enable the selected endpoint, disabled after a day of failures (webhooks screen).
    Enable,
    /// Leave the filter line, keeping the filter.
    FilterKeep,
    /// Leave the filter line and clear it.
    FilterClear,
    /// Any other key: typed into the focused text field.
    Type,
    /// Close this screen.
    Back,
    ScrollDown,
    ScrollUp,
    ScrollPageDown,
    ScrollPageUp,
    Reload,
    FocusNext,
    FocusPrev,
    /// Tick the focused scope (or press the focused button).
    Tick,
    Submit,
    Cancel,
    /// Copy the new secret.
    Copy,
    Close,
    Yes,
    No,
    /// Press the focused button.
    Press,
    NextButton,
    PrevButton,
    GraceNext,
    GracePrev,
    /// Choose the n-th grace period (0-based).
    Grace(u8),
    /// Open the command palette.
    Palette,
    /// Sort by the n-th column of `SortBy::ALL` (palette only).
    SortBy(u8),
    /// Draw in this colour palette (palette only).
    Theme(Palette),
    /// Complete the palette's line to the chosen command.
    Complete,
    /// Show usage over the n-th window (details: 24 h, 7 d, 30 d).
    UsageWindow(u8),
    /// The organisation's usage screen.
    Usage,
    /// The organisation's key policy screen.
    Policy,
    /// Delete the last digit of the number being typed (the policy screen).
    Erase,
}

use crate::present::Palette;

/// One key: a code, and whether Ctrl must be held. Without Ctrl, other
/// modifiers do not matter (Shift is in the character already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn ch(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}

const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

impl Key {
    fn matches(&self, event: &KeyEvent) -> bool {
        self.code == event.code && (!self.ctrl || event.modifiers.contains(KeyModifiers::CONTROL))
    }
}

/// When a footer hint is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// The table has rows.
    Rows,
    /// A filter is set.
    Filtered,
    /// Only in these contexts (of the binding's).
    In(&'static [Context]),
    /// The Attention tab is showing.
    Attention,
    /// Keys are marked and no filter is set (`Esc` clears a filter first).
    Marks,
    /// The webhook endpoint selected is disabled.
    EndpointDisabled,
}

/// A footer hint ("j/k move"), and whether the popup's border shows it too.
#[derive(Debug, Clone, Copy)]
pub struct Hint {
    pub keys: &'static str,
    pub label: &'static str,
    /// Position in the footer, smallest first.
    pub rank: u8,
    /// What is dropped first when the footer is too narrow: the largest
    /// number goes first (by default the rank).
    pub priority: u8,
    pub when: When,
    /// The keys as the popup's border shows them, if it does.
    pub border: Option<&'static str>,
    /// The label while marked keys are shown, `{n}` their number
    /// (`revoke {n} marked`): the footer says what the key will act on.
    pub marked: Option<&'static str>,
    /// The marked keys shown, filled in by [`footer_ranked`] (0 in [`BINDINGS`]).
    pub count: usize,
}

impl Hint {
    /// The label as the footer shows it now.
    pub fn text(&self) -> std::borrow::Cow<'static, str> {
        match self.marked {
            Some(marked) if self.count > 0 => marked.replace("{n}", &self.count.to_string()).into(),
            _ => self.label.into(),
        }
    }
}

/// The help screen's sections, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Move,
    View,
    Keys,
    CreateForm,
    Dialogs,
    /// The webhooks screen (`W`): the endpoints.
    Webhooks,
    /// One endpoint's deliveries.
    WebhookDeliveries,
    /// The webhooks screen's add form.
    WebhookForm,
    Quit,
}

impl Section {
    pub const ALL: [Section; 9] = [
        Section::Move,
        Section::View,
        Section::Keys,
        Section::CreateForm,
        Section::Dialogs,
        Section::Webhooks,
        Section::WebhookDeliveries,
        Section::WebhookForm,
        Section::Quit,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Section::Move => "Move",
            Section::View => "View",
            Section::Keys => "Keys",
            Section::CreateForm => "Create form",
            Section::Dialogs => "Dialogs",
            Section::Webhooks => "Webhooks (W)",
            Section::WebhookDeliveries => "Webhook deliveries (Enter on an endpoint)",
            Section::WebhookForm => "Webhook add form (a)",
            Section::Quit => "Quit",
        }
    }
}

/// A help line: section, keys as shown, what they do. `{refresh}` in the
/// text becomes the configured refresh interval.
#[derive(Debug, Clone, Copy)]
pub struct HelpLine {
    pub section: Section,
    pub keys: &'static str,
    pub text: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [Key],
    pub command: Command,
    pub contexts: &'static [Context],
    pub hint: Option<Hint>,
    pub help: Option<HelpLine>,
    /// The command's name in the `:` palette (`revoke`, `sort created`).
    pub name: Option<&'static str>,
}

const fn hint(keys: &'static str, label: &'static str, rank: u8) -> Option<Hint> {
    Some(Hint {
        keys,
        label,
        rank,
        priority: rank,
        when: When::Always,
        border: None,
        marked: None,
        count: 0,
    })
}

const fn hint_when(keys: &'static str, label: &'static str, rank: u8, when: When) -> Option<Hint> {
    Some(Hint {
        keys,
        label,
        rank,
        priority: rank,
        when,
        border: None,
        marked: None,
        count: 0,
    })
}

const fn hint_border(
    keys: &'static str,
    label: &'static str,
    rank: u8,
    border: &'static str,
) -> Option<Hint> {
    Some(Hint {
        keys,
        label,
        rank,
        priority: rank,
        when: When::Always,
        border: Some(border),
        marked: None,
        count: 0,
    })
}

/// `hint` labelled `marked` while marked keys are shown.
const fn counted(hint: Option<Hint>, marked: &'static str) -> Option<Hint> {
    match hint {
        Some(h) => Some(Hint {
            marked: Some(marked),
            ..h
        }),
        None => None,
    }
}

/// `hint` shown only `when`.
const fn shown_when(hint: Option<Hint>, when: When) -> Option<Hint> {
    match hint {
        Some(h) => Some(Hint { when, ..h }),
        None => None,
    }
}

/// `hint` kept in a narrow footer as if its rank were `priority`.
const fn keep(hint: Option<Hint>, priority: u8) -> Option<Hint> {
    match hint {
        Some(h) => Some(Hint { priority, ..h }),
        None => None,
    }
}

const fn help(section: Section, keys: &'static str, text: &'static str) -> Option<HelpLine> {
    Some(HelpLine {
        section,
        keys,
        text,
    })
}

const fn bind(keys: &'static [Key], command: Command, contexts: &'static [Context]) -> Binding {
    Binding {
        keys,
        command,
        contexts,
        hint: None,
        help: None,
        name: None,
    }
}

/// `binding` named `name` in the `:` palette.
const fn named(name: &'static str, binding: Binding) -> Binding {
    Binding {
        name: Some(name),
        ..binding
    }
}

use Context as C;
use Section as S;

/// The tab keys as the footer and the help both say them: `1` to the number
/// of tabs (a test holds this to the `ShowTab` bindings and the tabs).
macro_rules! tab_keys {
    () => {
        "1-5"
    };
}
pub const TAB_KEYS: &str = tab_keys!();
const TAB_HELP_KEYS: &str = concat!(tab_keys!(), " / Tab");

/// Every binding. The first that matches a key in the current context wins
/// (Ctrl-C comes first, so it quits from anywhere). Help lines appear in this
/// order within their section.
pub const BINDINGS: &[Binding] = &[
    Binding {
        hint: keep(
            hint_when("Ctrl-C", "quit", 9, When::In(&[C::Details, C::Help])),
            0,
        ),
        help: help(
            S::Quit,
            "q / Ctrl-C",
            "quit (in a popup, Esc goes back first)",
        ),
        ..bind(&[ctrl('c')], Command::Quit, EVERYWHERE)
    },
    // Quit's second help line, on no key and in no context of its own: `q`
    // and Ctrl-C reach it; what quitting waits for (`Request::is_change`).
    Binding {
        help: help(
            S::Quit,
            "q / Ctrl-C",
            "first waits for a key create/revoke/rotate, a policy save",
        ),
        ..bind(&[], Command::Quit, &[])
    },
    // The table.
    Binding {
        hint: hint_when("j/k", "move", 1, When::Rows),
        help: help(S::Move, "j / ↓", "next key"),
        name: Some("down"),
        ..bind(&[ch('j'), code(KeyCode::Down)], Command::Down, &[C::Table])
    },
    Binding {
        help: help(S::Move, "k / ↑", "previous key"),
        name: Some("up"),
        ..bind(&[ch('k'), code(KeyCode::Up)], Command::Up, &[C::Table])
    },
    Binding {
        help: help(S::Move, "PgDn / PgUp", "a page down / up"),
        name: Some("page down"),
        ..bind(&[code(KeyCode::PageDown)], Command::PageDown, &[C::Table])
    },
    named(
        "page up",
        bind(&[code(KeyCode::PageUp)], Command::PageUp, &[C::Table]),
    ),
    Binding {
        help: help(S::Move, "g / Home", "first key"),
        name: Some("first"),
        ..bind(&[ch('g'), code(KeyCode::Home)], Command::First, &[C::Table])
    },
    Binding {
        help: help(S::Move, "G / End", "last key"),
        name: Some("last"),
        ..bind(&[ch('G'), code(KeyCode::End)], Command::Last, &[C::Table])
    },
    Binding {
        hint: hint_when("Enter", "details", 2, When::Rows),
        help: help(S::View, "Enter", "details of the selected key"),
        name: Some("details"),
        ..bind(&[code(KeyCode::Enter)], Command::Details, &[C::Table])
    },
    Binding {
        hint: keep(hint("/", "filter", 9), 1),
        help: help(S::View, "/", "filter by name, prefix, description or scope"),
        name: Some("filter"),
        ..bind(&[ch('/')], Command::Filter, &[C::Table])
    },
    Binding {
        hint: keep(hint_when("Esc", "clear filter", 0, When::Filtered), 1),
        help: help(
            S::View,
            "Esc",
            "clear the filter, else the marks; close a popup",
        ),
        name: Some("clear"),
        ..bind(&[code(KeyCode::Esc)], Command::ClearFilter, &[C::Table])
    },
    // Esc's second meaning on the table (no filter set): its footer hint
    // only; the key reaches it through `ClearFilter` above.
    Binding {
        hint: keep(hint_when("Esc", "clear marks", 0, When::Marks), 1),
        ..bind(&[], Command::ClearFilter, &[C::Table])
    },
    Binding {
        hint: keep(hint(TAB_KEYS, "tabs", 10), 12),
        help: help(
            S::View,
            TAB_HELP_KEYS,
            "tabs All / Active / Expired / Revoked / Attention",
        ),
        name: Some("tab all"),
        ..bind(&[ch('1')], Command::ShowTab(0), &[C::Table])
    },
    named(
        "tab active",
        bind(&[ch('2')], Command::ShowTab(1), &[C::Table]),
    ),
    named(
        "tab expired",
        bind(&[ch('3')], Command::ShowTab(2), &[C::Table]),
    ),
    named(
        "tab revoked",
        bind(&[ch('4')], Command::ShowTab(3), &[C::Table]),
    ),
    Binding {
        help: help(
            S::View,
            "5",
            "tab Attention: the keys that need action, worst first",
        ),
        name: Some("tab attention"),
        ..bind(&[ch('5')], Command::ShowTab(4), &[C::Table])
    },
    named(
        "tab next",
        bind(&[code(KeyCode::Tab)], Command::NextTab, &[C::Table]),
    ),
    named(
        "tab previous",
        bind(&[code(KeyCode::BackTab)], Command::PrevTab, &[C::Table]),
    ),
    Binding {
        hint: keep(hint("s", "sort", 11), 13),
        help: help(S::View, "s / S", "cycle the sort column / reverse it"),
        name: Some("sort next"),
        ..bind(&[ch('s')], Command::SortNext, &[C::Table])
    },
    named(
        "sort reverse",
        bind(&[ch('S')], Command::SortReverse, &[C::Table]),
    ),
    Binding {
        hint: keep(hint("r", "refresh", 12), 11),
        help: help(S::View, "r", "refresh now (also every {refresh})"),
        name: Some("refresh"),
        ..bind(&[ch('r')], Command::Refresh, &[C::Table])
    },
    Binding {
        hint: keep(hint("?", "help", 7), 1),
        help: help(S::View, "?", "this help (/ in it searches)"),
        name: Some("help"),
        ..bind(&[ch('?')], Command::Help, &[C::Table])
    },
    Binding {
        hint: hint("n", "new", 3),
        help: help(S::Keys, "n", "new key: the create form"),
        name: Some("new"),
        ..bind(&[ch('n')], Command::New, &[C::Table])
    },
    Binding {
        hint: counted(hint_when("d", "revoke", 4, When::Rows), "revoke {n} marked"),
        help: help(
            S::Keys,
            "d / Delete",
            "revoke the marked keys shown, else the selected key (asks)",
        ),
        name: Some("revoke"),
        ..bind(
            &[ch('d'), code(KeyCode::Delete)],
            Command::Revoke,
            &[C::Table],
        )
    },
    Binding {
        hint: hint_when("R", "rotate", 5, When::Rows),
        help: help(
            S::Keys,
            "R",
            "rotate the selected key (asks; grace: now, 1h, 24h or a span)",
        ),
        name: Some("rotate"),
        ..bind(&[ch('R')], Command::Rotate, &[C::Table])
    },
    Binding {
        hint: keep(hint_when("Space", "mark", 6, When::Rows), 10),
        help: help(
            S::Keys,
            "Space",
            "mark/unmark the row and move down (a tab switch unmarks)",
        ),
        name: Some("mark"),
        ..bind(&[ch(' ')], Command::Mark, &[C::Table])
    },
    Binding {
        hint: hint_when("X", "revoke all expired", 5, When::Attention),
        help: help(S::Keys, "X", "revoke every expired key (asks first)"),
        name: Some("revoke expired"),
        ..bind(&[ch('X')], Command::RevokeExpired, &[C::Table])
    },
    Binding {
        help: help(
            S::Keys,
            "y",
            "copy the selected key's prefix and id (never a secret)",
        ),
        name: Some("copy id"),
        ..bind(&[ch('y')], Command::CopyId, &[C::Table])
    },
    Binding {
        hint: keep(hint("a", "audit", 13), 14),
        help: help(
            S::Keys,
            "a",
            "audit log: who created, revoked, rotated what",
        ),
        name: Some("audit"),
        ..bind(&[ch('a')], Command::Audit, &[C::Table])
    },
    Binding {
        help: help(S::Keys, "A", "the audit log of the selected key alone"),
        name: Some("audit key"),
        ..bind(&[ch('A')], Command::AuditKey, &[C::Table])
    },
    Binding {
        hint: keep(hint("q", "quit", 8), 0),
        name: Some("quit"),
        ..bind(&[ch('q')], Command::Quit, &[C::Table])
    },
    Binding {
        help: help(S::View, ":", "command palette: run any command by its name"),
        ..bind(&[ch(':')], Command::Palette, &[C::Table])
    },
    // Commands only the palette names: no key of their own.
    named("sort created", bind(&[], Command::SortBy(0), &[C::Table])),
    named("sort name", bind(&[], Command::SortBy(1), &[C::Table])),
    named("sort last used", bind(&[], Command::SortBy(2), &[C::Table])),
    named("sort expires", bind(&[], Command::SortBy(3), &[C::Table])),
    named("sort status", bind(&[], Command::SortBy(4), &[C::Table])),
    named(
        "theme dark",
        bind(&[], Command::Theme(Palette::Dark), &[C::Table]),
    ),
    named(
        "theme light",
        bind(&[], Command::Theme(Palette::Light), &[C::Table]),
    ),
    named(
        "theme high contrast",
        bind(&[], Command::Theme(Palette::HighContrast), &[C::Table]),
    ),
    // The command palette's line; any other key edits it.
    Binding {
        hint: hint_border("Tab", "complete", 1, "Tab"),
        ..bind(&[code(KeyCode::Tab)], Command::Complete, &[C::Palette])
    },
    Binding {
        hint: hint_border("↑↓", "choose", 2, "↑↓"),
        ..bind(&[code(KeyCode::Down)], Command::Down, &[C::Palette])
    },
    bind(
        &[code(KeyCode::Up), code(KeyCode::BackTab)],
        Command::Up,
        &[C::Palette],
    ),
    Binding {
        hint: hint_border("Enter", "run", 3, "Enter"),
        ..bind(&[code(KeyCode::Enter)], Command::Submit, &[C::Palette])
    },
    Binding {
        hint: hint_border("Esc", "close", 4, "Esc"),
        ..bind(&[code(KeyCode::Esc)], Command::Cancel, &[C::Palette])
    },
    // The filter line; any other key edits it.
    Binding {
        hint: hint("type", "filter", 1),
        ..bind(&[], Command::Type, &[C::Filter])
    },
    Binding {
        hint: hint("Enter", "keep", 2),
        ..bind(&[code(KeyCode::Enter)], Command::FilterKeep, &[C::Filter])
    },
    Binding {
        hint: hint("Esc", "clear", 3),
        ..bind(&[code(KeyCode::Esc)], Command::FilterClear, &[C::Filter])
    },
    bind(&[code(KeyCode::Down)], Command::Down, &[C::Filter]),
    bind(&[code(KeyCode::Up)], Command::Up, &[C::Filter]),
    // The create form.
    Binding {
        hint: Some(Hint {
            keys: "Tab/↑↓",
            label: "move",
            rank: 1,
            priority: 1,
            when: When::In(&[C::Create]),
            border: Some("Tab"),
            marked: None,
            count: 0,
        }),
        help: help(S::CreateForm, "Tab / ↓", "next field (Shift-Tab / ↑ back)"),
        ..bind(
            &[code(KeyCode::Tab), code(KeyCode::Down)],
            Command::FocusNext,
            &[C::Create],
        )
    },
    bind(
        &[code(KeyCode::BackTab), code(KeyCode::Up)],
        Command::FocusPrev,
        &[C::Create],
    ),
    Binding {
        hint: hint_border("Space", "tick", 2, "Space"),
        help: help(S::CreateForm, "Space", "tick the focused scope"),
        ..bind(&[ch(' ')], Command::Tick, &[C::Create])
    },
    Binding {
        hint: hint_border("Enter", "create", 3, "Enter"),
        help: help(S::CreateForm, "Enter", "create, from any field"),
        ..bind(&[code(KeyCode::Enter)], Command::Submit, &[C::Create])
    },
    Binding {
        hint: hint_border("Esc", "cancel", 4, "Esc"),
        help: help(S::CreateForm, "Esc", "cancel (asks if something was typed)"),
        ..bind(&[code(KeyCode::Esc)], Command::Cancel, &[C::Create])
    },
    // Dialogs.
    Binding {
        hint: hint_border("y", "yes", 1, "y"),
        help: help(S::Dialogs, "y / n", "yes / no (Esc is no too)"),
        ..bind(&[ch('y'), ch('Y')], Command::Yes, &[C::Confirm, C::Rotate])
    },
    Binding {
        hint: hint_border("n/Esc", "no", 2, "n/Esc"),
        ..bind(
            &[ch('n'), ch('N'), code(KeyCode::Esc)],
            Command::No,
            &[C::Confirm, C::Rotate],
        )
    },
    Binding {
        hint: hint("←/→ Tab", "choose", 3),
        help: help(S::Dialogs, "←/→ / Tab", "choose a button; Enter presses it"),
        ..bind(
            &[code(KeyCode::Tab), code(KeyCode::Right), ch('l')],
            Command::NextButton,
            &[C::Confirm],
        )
    },
    bind(
        &[code(KeyCode::BackTab), code(KeyCode::Left), ch('h')],
        Command::PrevButton,
        &[C::Confirm],
    ),
    Binding {
        hint: hint("←/→ Tab", "choose", 3),
        ..bind(&[code(KeyCode::Tab)], Command::NextButton, &[C::Rotate])
    },
    bind(&[code(KeyCode::BackTab)], Command::PrevButton, &[C::Rotate]),
    bind(
        &[code(KeyCode::Right), ch('l')],
        Command::GraceNext,
        &[C::Rotate],
    ),
    bind(
        &[code(KeyCode::Left), ch('h')],
        Command::GracePrev,
        &[C::Rotate],
    ),
    bind(&[ch('1')], Command::Grace(0), &[C::Rotate]),
    bind(&[ch('2')], Command::Grace(1), &[C::Rotate]),
    bind(&[ch('3')], Command::Grace(2), &[C::Rotate]),
    bind(&[ch('4')], Command::Grace(3), &[C::Rotate]),
    Binding {
        hint: hint("Enter", "select", 4),
        ..bind(
            &[code(KeyCode::Enter), ch(' ')],
            Command::Press,
            &[C::Confirm, C::Rotate],
        )
    },
    Binding {
        hint: hint_border("Enter/Esc", "close", 1, "Enter/Esc"),
        ..bind(
            &[
                code(KeyCode::Esc),
                ch('n'),
                ch('N'),
                code(KeyCode::Enter),
                ch(' '),
            ],
            Command::No,
            &[C::Notice],
        )
    },
    // The copy-once modal.
    Binding {
        hint: hint_border("c", "copy", 1, "c"),
        help: help(S::Dialogs, "c", "copy the new secret (copy-once modal)"),
        ..bind(&[ch('c'), ch('C')], Command::Copy, &[C::CopyOnce])
    },
    Binding {
        hint: hint_border("Enter/Esc", "close", 2, "Enter/Esc"),
        ..bind(
            &[code(KeyCode::Esc), code(KeyCode::Enter), ch('q')],
            Command::Close,
            &[C::CopyOnce],
        )
    },
    // Details, help and the audit log.
    Binding {
        hint: hint_border("Esc", "back", 2, "Esc"),
        ..bind(
            &[code(KeyCode::Esc), ch('q'), code(KeyCode::Enter)],
            Command::Back,
            &[C::Details],
        )
    },
    // Details scroll too; their border keeps to `Esc back`, the text says `↓ more`.
    bind(
        &[ch('j'), code(KeyCode::Down)],
        Command::ScrollDown,
        &[C::Details],
    ),
    bind(
        &[ch('k'), code(KeyCode::Up)],
        Command::ScrollUp,
        &[C::Details],
    ),
    bind(
        &[code(KeyCode::PageDown), ch(' ')],
        Command::ScrollPageDown,
        &[C::Details],
    ),
    bind(
        &[code(KeyCode::PageUp)],
        Command::ScrollPageUp,
        &[C::Details],
    ),
    bind(
        &[ch('g'), code(KeyCode::Home)],
        Command::First,
        &[C::Details, C::Help, C::Audit],
    ),
    bind(
        &[ch('G'), code(KeyCode::End)],
        Command::Last,
        &[C::Details, C::Help, C::Audit],
    ),
    Binding {
        hint: hint_border("j/k", "scroll", 1, "j/k"),
        ..bind(
            &[ch('j'), code(KeyCode::Down)],
            Command::ScrollDown,
            &[C::Help, C::Audit],
        )
    },
    bind(
        &[ch('k'), code(KeyCode::Up)],
        Command::ScrollUp,
        &[C::Help, C::Audit],
    ),
    bind(
        &[code(KeyCode::PageDown), ch(' ')],
        Command::ScrollPageDown,
        &[C::Help],
    ),
    bind(
        &[code(KeyCode::PageDown)],
        Command::ScrollPageDown,
        &[C::Audit],
    ),
    bind(
        &[code(KeyCode::PageUp)],
        Command::ScrollPageUp,
        &[C::Help, C::Audit],
    ),
    Binding {
        hint: hint_border("Esc", "back", 2, "Esc"),
        ..bind(
            &[code(KeyCode::Esc), ch('q'), code(KeyCode::Enter), ch('?')],
            Command::Back,
            &[C::Help],
        )
    },
    Binding {
        hint: hint("/", "search", 3),
        ..bind(&[ch('/')], Command::Filter, &[C::Help])
    },
    Binding {
        hint: hint_border("a", "audit", 1, "a"),
        help: help(S::Keys, "a (details)", "the audit log of the key shown"),
        ..bind(&[ch('a'), ch('A')], Command::AuditKey, &[C::Details])
    },
    // Details are a place to act: the table's keys work on the key shown.
    Binding {
        hint: hint_when("d", "revoke", 1, When::In(&[C::Details])),
        help: help(
            S::Keys,
            "d, R, y",
            "in details: revoke, rotate or copy the id of the key shown",
        ),
        ..bind(
            &[ch('d'), code(KeyCode::Delete)],
            Command::Revoke,
            &[C::Details],
        )
    },
    Binding {
        hint: hint_when("R", "rotate", 1, When::In(&[C::Details])),
        ..bind(&[ch('R')], Command::Rotate, &[C::Details])
    },
    Binding {
        hint: hint_when("y", "copy id", 1, When::In(&[C::Details])),
        ..bind(&[ch('y')], Command::CopyId, &[C::Details])
    },
    // Said on the details' `no secret` Health line, shown only for a key that waits for one.
    Binding {
        help: help(
            S::Keys,
            "I (details)",
            "issue the secret of a key made without one",
        ),
        ..bind(&[ch('I')], Command::IssueSecret, &[C::Details])
    },
    // Shown in the details view's Usage line itself ("[1 24h]  2 7d  3 30d").
    bind(&[ch('1')], Command::UsageWindow(0), &[C::Details]),
    bind(&[ch('2')], Command::UsageWindow(1), &[C::Details]),
    bind(&[ch('3')], Command::UsageWindow(2), &[C::Details]),
    Binding {
        help: help(S::Keys, "u", "usage: key checks over time, top keys"),
        name: Some("usage"),
        ..bind(&[ch('u')], Command::Usage, &[C::Table])
    },
    Binding {
        hint: hint_border("j/k", "move", 1, "j/k"),
        ..bind(&[ch('j'), code(KeyCode::Down)], Command::Down, &[C::Usage])
    },
    bind(&[ch('k'), code(KeyCode::Up)], Command::Up, &[C::Usage]),
    Binding {
        hint: hint_border("Enter", "details", 2, "Enter"),
        ..bind(&[code(KeyCode::Enter)], Command::Details, &[C::Usage])
    },
    Binding {
        hint: hint_border("1-3", "24h/7d/30d", 3, "1-3"),
        ..bind(&[ch('1')], Command::UsageWindow(0), &[C::Usage])
    },
    bind(&[ch('2')], Command::UsageWindow(1), &[C::Usage]),
    bind(&[ch('3')], Command::UsageWindow(2), &[C::Usage]),
    Binding {
        hint: hint_border("Esc", "back", 4, "Esc"),
        ..bind(
            &[code(KeyCode::Esc), ch('q'), ch('u')],
            Command::Back,
            &[C::Usage],
        )
    },
    Binding {
        help: help(
            S::Keys,
            "W",
            "webhook endpoints: health, deliveries; add, test, remove",
        ),
        name: Some("webhooks"),
        ..bind(&[ch('W')], Command::Webhooks, &[C::Table])
    },
    Binding {
        help: help(
            S::Keys,
            "P",
            "key policy: badge thresholds, rules for new keys (edit, save)",
        ),
        name: Some("policy"),
        ..bind(&[ch('P')], Command::Policy, &[C::Table])
    },
    // The policy screen; digits type into the number selected.
    bind(&[code(KeyCode::Backspace)], Command::Erase, &[C::Policy]),
    Binding {
        hint: hint_border("j/k", "move", 1, "j/k"),
        ..bind(
            &[ch('j'), code(KeyCode::Down), code(KeyCode::Tab)],
            Command::Down,
            &[C::Policy],
        )
    },
    bind(
        &[ch('k'), code(KeyCode::Up), code(KeyCode::BackTab)],
        Command::Up,
        &[C::Policy],
    ),
    Binding {
        hint: hint_border("Space", "toggle", 2, "Space"),
        ..bind(&[ch(' ')], Command::Tick, &[C::Policy])
    },
    Binding {
        hint: hint_border("Enter", "save", 3, "Enter"),
        ..bind(&[code(KeyCode::Enter)], Command::Submit, &[C::Policy])
    },
    Binding {
        hint: hint_border("Esc", "cancel", 4, "Esc"),
        ..bind(&[code(KeyCode::Esc)], Command::Cancel, &[C::Policy])
    },
    Binding {
        hint: hint_border("/", "filter", 3, "/"),
        ..bind(&[ch('/')], Command::Filter, &[C::Audit])
    },
    Binding {
        hint: hint_border("r", "reload", 2, "r"),
        ..bind(&[ch('r')], Command::Reload, &[C::Audit])
    },
    Binding {
        hint: hint_border("Esc", "back", 3, "Esc"),
        ..bind(
            &[code(KeyCode::Esc), ch('q'), ch('a')],
            Command::Back,
            &[C::Audit],
        )
    },
    // The webhooks screen: the endpoints.
    Binding {
        hint: keep(hint_border("j/k", "move", 1, "j/k"), 8),
        help: help(S::Webhooks, "j / ↓", "next endpoint"),
        ..bind(
            &[ch('j'), code(KeyCode::Down)],
            Command::Down,
            &[C::Webhooks],
        )
    },
    Binding {
        help: help(S::Webhooks, "k / ↑", "previous endpoint"),
        ..bind(&[ch('k'), code(KeyCode::Up)], Command::Up, &[C::Webhooks])
    },
    Binding {
        hint: hint_border("Enter", "deliveries", 2, "Enter"),
        help: help(S::Webhooks, "Enter", "the selected endpoint's deliveries"),
        ..bind(&[code(KeyCode::Enter)], Command::Details, &[C::Webhooks])
    },
    Binding {
        hint: hint_border("a", "add", 3, "a"),
        help: help(S::Webhooks, "a / n", "add an endpoint: its URL and events"),
        ..bind(&[ch('a'), ch('n')], Command::New, &[C::Webhooks])
    },
    Binding {
        hint: hint_border("t", "test", 4, "t"),
        help: help(
            S::Webhooks,
            "t",
            "send the selected endpoint a webhook.test event",
        ),
        ..bind(&[ch('t')], Command::Test, &[C::Webhooks])
    },
    Binding {
        hint: shown_when(
            keep(hint_border("e", "enable", 5, "e"), 1),
            When::EndpointDisabled,
        ),
        help: help(
            S::Webhooks,
            "e",
            "enable an endpoint disabled after a day of failures",
        ),
        ..bind(&[ch('e')], Command::Enable, &[C::Webhooks])
    },
    Binding {
        hint: keep(hint_border("R", "new secret", 6, "R"), 5),
        help: help(
            S::Webhooks,
            "R",
            "new signing secret (asks; the old one signs a day more)",
        ),
        ..bind(&[ch('R')], Command::Rotate, &[C::Webhooks])
    },
    Binding {
        hint: keep(hint_border("d", "remove", 7, "d"), 6),
        help: help(
            S::Webhooks,
            "d / Delete",
            "remove the selected endpoint and its deliveries (asks)",
        ),
        ..bind(
            &[ch('d'), code(KeyCode::Delete)],
            Command::Revoke,
            &[C::Webhooks],
        )
    },
    Binding {
        hint: keep(hint_border("r", "reload", 8, "r"), 7),
        help: help(S::Webhooks, "r", "reload the endpoints and their health"),
        ..bind(&[ch('r')], Command::Reload, &[C::Webhooks])
    },
    Binding {
        hint: keep(hint_border("Esc", "back", 9, "Esc"), 0),
        help: help(S::Webhooks, "Esc / q / W", "back to the keys"),
        ..bind(
            &[code(KeyCode::Esc), ch('q'), ch('W')],
            Command::Back,
            &[C::Webhooks],
        )
    },
    // One endpoint's deliveries, a window of pages from the service.
    Binding {
        hint: hint_border("j/k", "scroll", 1, "j/k"),
        help: help(S::WebhookDeliveries, "j / ↓", "scroll down (older)"),
        ..bind(
            &[ch('j'), code(KeyCode::Down)],
            Command::ScrollDown,
            &[C::WebhookDeliveries],
        )
    },
    Binding {
        help: help(S::WebhookDeliveries, "k / ↑", "scroll up (newer)"),
        ..bind(
            &[ch('k'), code(KeyCode::Up)],
            Command::ScrollUp,
            &[C::WebhookDeliveries],
        )
    },
    Binding {
        help: help(S::WebhookDeliveries, "PgDn / Space", "a page down"),
        ..bind(
            &[code(KeyCode::PageDown), ch(' ')],
            Command::ScrollPageDown,
            &[C::WebhookDeliveries],
        )
    },
    Binding {
        help: help(S::WebhookDeliveries, "PgUp", "a page up"),
        ..bind(
            &[code(KeyCode::PageUp)],
            Command::ScrollPageUp,
            &[C::WebhookDeliveries],
        )
    },
    Binding {
        hint: hint_border("g/G", "newest/oldest", 2, "g/G"),
        help: help(S::WebhookDeliveries, "g / Home", "the newest deliveries"),
        ..bind(
            &[ch('g'), code(KeyCode::Home)],
            Command::First,
            &[C::WebhookDeliveries],
        )
    },
    Binding {
        help: help(S::WebhookDeliveries, "G / End", "the oldest deliveries"),
        ..bind(
            &[ch('G'), code(KeyCode::End)],
            Command::Last,
            &[C::WebhookDeliveries],
        )
    },
    Binding {
        hint: keep(hint_border("r", "reload", 8, "r"), 7),
        help: help(S::WebhookDeliveries, "r", "reload the deliveries shown"),
        ..bind(&[ch('r')], Command::Reload, &[C::WebhookDeliveries])
    },
    Binding {
        hint: keep(hint_border("Esc", "back", 9, "Esc"), 0),
        help: help(S::WebhookDeliveries, "Esc / q / W", "back to the endpoints"),
        ..bind(
            &[code(KeyCode::Esc), ch('q'), ch('W')],
            Command::Back,
            &[C::WebhookDeliveries],
        )
    },
    // Its add form; any other key types into the focused field.
    Binding {
        hint: hint_border("Tab", "next field", 1, "Tab"),
        help: help(S::WebhookForm, "Tab / ↓", "next field (Shift-Tab / ↑ back)"),
        ..bind(
            &[code(KeyCode::Tab), code(KeyCode::Down)],
            Command::FocusNext,
            &[C::WebhookForm],
        )
    },
    bind(
        &[code(KeyCode::BackTab), code(KeyCode::Up)],
        Command::FocusPrev,
        &[C::WebhookForm],
    ),
    Binding {
        hint: hint_border("Enter", "add", 2, "Enter"),
        help: help(
            S::WebhookForm,
            "Enter",
            "add the endpoint; its signing secret is shown once",
        ),
        ..bind(&[code(KeyCode::Enter)], Command::Submit, &[C::WebhookForm])
    },
    Binding {
        hint: hint_border("Esc", "cancel", 3, "Esc"),
        help: help(S::WebhookForm, "Esc", "cancel, back to the endpoints"),
        ..bind(&[code(KeyCode::Esc)], Command::Cancel, &[C::WebhookForm])
    },
];

/// The command `key` names in `context`, if any.
pub fn command(context: Context, key: &KeyEvent) -> Option<Command> {
    BINDINGS
        .iter()
        .filter(|b| b.contexts.contains(&context))
        .find(|b| b.keys.iter().any(|k| k.matches(key)))
        .map(|b| b.command)
}

/// A command the `:` palette runs: its name, the keys that also run it, and
/// what it does (the help's words, `{refresh}` as in [`HelpLine`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaletteEntry {
    pub name: &'static str,
    pub command: Command,
    pub keys: String,
    pub about: &'static str,
}

/// A key as help and the palette say it: `j`, `↓`, `PgDn`, `Ctrl-C`.
fn key_label(key: &Key) -> String {
    match key.code {
        KeyCode::Char(' ') => "Space".to_owned(),
        KeyCode::Char(c) if key.ctrl => format!("Ctrl-{}", c.to_ascii_uppercase()),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Down => "↓".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::BackTab => "Shift-Tab".into(),
        KeyCode::Delete => "Delete".into(),
        other => format!("{other:?}"),
    }
}

/// Every command of the table by its palette name, in keymap order: the
/// bindings of the table that have a name (a test holds every table binding
/// to having one).
pub fn palette() -> Vec<PaletteEntry> {
    BINDINGS
        .iter()
        .filter(|b| b.contexts.contains(&Context::Table))
        .filter_map(|b| {
            let name = b.name?;
            // A command's help line may sit on another of its bindings (Ctrl-C's for `q`).
            let help = b.help.or_else(|| {
                BINDINGS
                    .iter()
                    .filter(|o| o.command == b.command && o.contexts.contains(&Context::Table))
                    .find_map(|o| o.help)
            });
            let about = match (help, b.command) {
                (Some(help), _) => help.text,
                (None, Command::SortBy(_)) => "sort the table by this column",
                (None, Command::ShowTab(_)) => "show this tab",
                (None, Command::Theme(_)) => "draw in these colours",
                (None, Command::PageUp) => "a page up",
                (None, Command::NextTab) => "the next tab",
                (None, Command::PrevTab) => "the previous tab",
                (None, Command::SortReverse) => "reverse the sort order",
                (None, _) => "",
            };
            let keys: Vec<String> = b.keys.iter().map(key_label).collect();
            Some(PaletteEntry {
                name,
                command: b.command,
                keys: keys.join(" / "),
                about,
            })
        })
        .collect()
}

/// How well `typed` names `name`, best 0: the name itself, its start, a
/// word's start, anywhere in it, then its letters in order (fuzzy).
fn match_rank(name: &str, typed: &str) -> Option<u8> {
    if typed.is_empty() || name == typed {
        return Some(0);
    }
    if name.starts_with(typed) {
        return Some(1);
    }
    if name.split(' ').any(|word| word.starts_with(typed)) {
        return Some(2);
    }
    if name.contains(typed) {
        return Some(3);
    }
    let mut letters = name.chars().filter(|c| *c != ' ');
    typed
        .chars()
        .filter(|c| *c != ' ')
        .all(|t| letters.any(|c| c == t))
        .then_some(4)
}

/// The palette's completions of `typed`, best first (keymap order among
/// equals); spaces and case do not matter.
pub fn complete(typed: &str) -> Vec<PaletteEntry> {
    let typed = typed
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let mut ranked: Vec<(u8, PaletteEntry)> = palette()
        .into_iter()
        .filter_map(|e| match_rank(e.name, &typed).map(|r| (r, e)))
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, e)| e).collect()
}

/// A key press of one character, as the terminal reports it.
pub fn char_key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// What the footer may depend on besides the context.
#[derive(Debug, Clone, Copy, Default)]
pub struct FooterState {
    pub has_rows: bool,
    pub filtered: bool,
    /// The Attention tab is showing.
    pub attention: bool,
    /// Marked keys among the rows shown (what `d` revokes).
    pub marked: usize,
    /// Some key is marked, shown or not.
    pub marks: bool,
    /// The webhook endpoint selected is disabled (what `e` enables).
    pub endpoint_disabled: bool,
}

fn shown(binding: &Binding, context: Context) -> Option<Hint> {
    let hint = binding.hint?;
    let applies = match hint.when {
        When::In(only) => only.contains(&context),
        _ => binding.contexts.contains(&context),
    };
    applies.then_some(hint)
}

/// The footer's hints in `context`: (keys, label), in footer order.
pub fn footer(context: Context, state: FooterState) -> Vec<(&'static str, &'static str)> {
    footer_ranked(context, state)
        .iter()
        .map(|h| (h.keys, h.label))
        .collect()
}

/// The footer's hints in `context`, in footer order, each with its priority
/// (what a narrow footer drops first).
pub fn footer_ranked(context: Context, state: FooterState) -> Vec<Hint> {
    let mut hints: Vec<Hint> = BINDINGS
        .iter()
        .filter_map(|b| shown(b, context))
        .filter(|h| match h.when {
            When::Rows => state.has_rows,
            When::Filtered => state.filtered,
            When::Attention => state.attention,
            When::Marks => state.marks && !state.filtered,
            When::EndpointDisabled => state.endpoint_disabled,
            When::Always | When::In(_) => true,
        })
        .map(|h| Hint {
            count: state.marked,
            // What the marks are for (`d revoke 2 marked`) stays in a
            // narrow footer as long as `Esc clear marks` does.
            priority: if h.marked.is_some() && state.marked > 0 {
                MARKED_PRIORITY
            } else {
                h.priority
            },
            ..h
        })
        .collect();
    hints.sort_by_key(|h| h.rank);
    hints
}

/// The priority of a hint that acts on the marked keys while some are shown:
/// that of `Esc clear marks`.
const MARKED_PRIORITY: u8 = 1;

/// The hint line on a popup's border, e.g. " y yes · n/Esc no ".
pub fn border(context: Context) -> String {
    let mut hints: Vec<Hint> = BINDINGS
        .iter()
        .filter_map(|b| shown(b, context))
        .filter(|h| h.border.is_some())
        .collect();
    hints.sort_by_key(|h| h.rank);
    let parts: Vec<String> = hints
        .iter()
        .map(|h| format!("{} {}", h.border.unwrap_or(h.keys), h.label))
        .collect();
    format!(" {} ", parts.join(" · "))
}

/// The hint line on a popup's border in `state`, within `width` columns:
/// what does not fit is dropped as a narrow footer drops it (the largest
/// priority first, the last of equals).
pub fn border_within(context: Context, state: FooterState, width: usize) -> String {
    let mut hints: Vec<Hint> = footer_ranked(context, state)
        .into_iter()
        .filter(|h| h.border.is_some())
        .collect();
    let line = |hints: &[Hint]| {
        let parts: Vec<String> = hints
            .iter()
            .map(|h| format!("{} {}", h.border.unwrap_or(h.keys), h.text()))
            .collect();
        format!(" {} ", parts.join(" · "))
    };
    // The closing space may go.
    while hints.len() > 1 && line(&hints).chars().count() > width + 1 {
        let worst = (0..hints.len())
            .max_by_key(|&i| hints[i].priority)
            .unwrap_or(0);
        hints.remove(worst);
    }
    line(&hints)
}

/// The hint of the binding for `command` in `context`: (keys, label).
pub fn hint_for(context: Context, command: Command) -> Option<(&'static str, &'static str)> {
    BINDINGS
        .iter()
        .filter(|b| b.command == command)
        .filter_map(|b| shown(b, context))
        .map(|h| (h.keys, h.label))
        .next()
}

/// The first key bound to `command` in `context`, as help says it
/// (`Space`, `Enter`, `Esc`, `P`): for a sentence that names the key, so
/// that it says the key the keymap binds.
pub fn key_of(context: Context, command: Command) -> Option<String> {
    BINDINGS
        .iter()
        .find(|b| b.command == command && b.contexts.contains(&context))
        .and_then(|b| b.keys.first())
        .map(key_label)
}

/// "30 s", "2 min": an interval as the help says it.
pub fn interval(every: chrono::Duration) -> String {
    use crate::present::SpanUnit::{Minute, Second};
    crate::present::duration(every, Second..=Minute)
}

/// The help screen's content: each section with its (keys, text) lines.
pub fn help_sections(
    refresh_every: chrono::Duration,
) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    help_with(&interval(refresh_every))
}

fn help_with(refresh: &str) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    Section::ALL
        .iter()
        .map(|&section| {
            let lines = BINDINGS
                .iter()
                .filter_map(|b| b.help)
                .filter(|h| h.section == section)
                .map(|h| (h.keys, h.text.replace("{refresh}", refresh)))
                .collect();
            (section.title(), lines)
        })
        .collect()
}

/// The markers around the README's key-binding table.
pub const README_START: &str = "<!-- keymap:start (generated by keymap::markdown_table) -->";
pub const README_END: &str = "<!-- keymap:end -->";

/// The README's key-binding table (between [`README_START`] and [`README_END`]).
pub fn markdown_table() -> String {
    let mut out = String::from("| keys | what they do |\n| --- | --- |\n");
    for (section, lines) in help_with("`--refresh` interval, 30 s by default") {
        out.push_str(&format!("| **{section}** | |\n"));
        for (keys, text) in lines {
            let keys: Vec<String> = keys.split(" / ").map(|k| format!("`{k}`")).collect();
            out.push_str(&format!("| {} | {text} |\n", keys.join(" / ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_c_quits_everywhere_and_c_alone_copies() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for &context in EVERYWHERE {
            assert_eq!(
                command(context, &ctrl_c),
                Some(Command::Quit),
                "{context:?}"
            );
        }
        assert_eq!(
            command(Context::CopyOnce, &char_key('c')),
            Some(Command::Copy)
        );
    }

    #[test]
    fn the_same_key_means_what_its_context_says() {
        let one = char_key('1');
        assert_eq!(command(Context::Table, &one), Some(Command::ShowTab(0)));
        assert_eq!(command(Context::Rotate, &one), Some(Command::Grace(0)));
        assert_eq!(command(Context::Confirm, &one), None);
        let right = KeyEvent::new(KeyCode::Right, KeyModifiers::NONE);
        assert_eq!(command(Context::Rotate, &right), Some(Command::GraceNext));
        assert_eq!(command(Context::Confirm, &right), Some(Command::NextButton));
        assert_eq!(command(Context::Notice, &char_key('y')), None);
    }

    #[test]
    fn border_hints_come_from_the_bindings() {
        assert_eq!(border(Context::Confirm), " y yes · n/Esc no ");
        assert_eq!(border(Context::Notice), " Enter/Esc close ");
        assert_eq!(
            border(Context::Create),
            " Tab move · Space tick · Enter create · Esc cancel "
        );
        assert_eq!(
            border(Context::Audit),
            " j/k scroll · r reload · / filter · Esc back "
        );
        assert_eq!(border(Context::Details), " a audit · Esc back ");
    }

    #[test]
    fn the_attention_tab_footer_offers_revoke_rotate_and_revoke_expired() {
        let table = FooterState {
            has_rows: true,
            ..FooterState::default()
        };
        let attention = FooterState {
            attention: true,
            ..table
        };
        let keys = |state| -> Vec<&str> {
            footer(Context::Table, state)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert!(!keys(table).contains(&"X"));
        let shown = keys(attention);
        let at = |k| shown.iter().position(|s| *s == k).unwrap();
        assert!(at("d") < at("R") && at("R") < at("X"), "{shown:?}");
        assert_eq!(
            command(Context::Table, &char_key('5')),
            Some(Command::ShowTab(4))
        );
    }

    #[test]
    fn footer_and_help_name_the_same_tab_keys_as_the_bindings() {
        use crate::tui::app::Tab;
        let tabs: Vec<char> = BINDINGS
            .iter()
            .filter(|b| matches!(b.command, Command::ShowTab(_)))
            .filter(|b| b.contexts.contains(&Context::Table))
            .flat_map(|b| b.keys)
            .filter_map(|k| match k.code {
                KeyCode::Char(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(tabs.len(), Tab::ALL.len());
        for (i, c) in tabs.iter().enumerate() {
            assert_eq!(
                command(Context::Table, &char_key(*c)),
                Some(Command::ShowTab(u8::try_from(i).unwrap()))
            );
        }
        let range = format!("{}-{}", tabs[0], tabs[tabs.len() - 1]);
        assert_eq!(TAB_KEYS, range);
        let table = FooterState {
            has_rows: true,
            ..FooterState::default()
        };
        assert!(footer(Context::Table, table).contains(&(TAB_KEYS, "tabs")));
        let help = help_with("30 s");
        let (keys, text) = help
            .iter()
            .flat_map(|(_, lines)| lines)
            .find(|(_, text)| text.starts_with("tabs "))
            .unwrap();
        assert_eq!(keys.split(" / ").next(), Some(TAB_KEYS));
        for tab in Tab::ALL {
            assert!(text.contains(tab.label()), "{text}");
        }
    }

    /// Acceptance 4 of issue 21: the palette's commands and the help's
    /// lines come from the same bindings; every key of the table names a
    /// command the palette runs.
    #[test]
    fn every_table_command_is_in_the_palette_and_help_lines_are_the_bindings() {
        let entries = palette();
        let table = || {
            BINDINGS
                .iter()
                .filter(|b| b.contexts.contains(&Context::Table))
        };
        for b in table().filter(|b| !b.keys.is_empty()) {
            // `:` opens the palette; from inside it, that means nothing.
            if b.command == Command::Palette {
                continue;
            }
            assert!(
                entries.iter().any(|e| e.command == b.command),
                "{:?} ({:?}) cannot be run from the palette",
                b.command,
                b.keys
            );
        }
        for b in table() {
            if let (Some(help), true) = (b.help, b.command != Command::Palette) {
                assert!(
                    entries
                        .iter()
                        .any(|e| e.command == b.command && e.about == help.text),
                    "help line {:?} is no palette entry's",
                    help.keys
                );
            }
        }
        let mut names: Vec<&str> = entries.iter().map(|e| e.name).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "palette names are unique");
        // The help shows exactly the bindings' help lines, in their order.
        let shown: Vec<(&str, String)> =
            help_with("30 s").into_iter().flat_map(|(_, l)| l).collect();
        let declared: Vec<&str> = Section::ALL
            .iter()
            .flat_map(|&s| {
                BINDINGS
                    .iter()
                    .filter_map(|b| b.help)
                    .filter(move |h| h.section == s)
            })
            .map(|h| h.keys)
            .collect();
        assert_eq!(shown.iter().map(|(k, _)| *k).collect::<Vec<_>>(), declared);
        assert!(
            shown.iter().any(|(k, _)| *k == ":"),
            "help names the palette"
        );
    }

    #[test]
    fn the_palette_completes_by_prefix_word_and_letters() {
        let first = |typed: &str| complete(typed).first().map(|e| e.name);
        assert_eq!(first("rev"), Some("revoke"));
        assert_eq!(first("q"), Some("quit"));
        assert_eq!(first("rotate"), Some("rotate"));
        assert_eq!(first("created"), Some("sort created"));
        assert_eq!(first("Theme  LIGHT"), Some("theme light"));
        assert_eq!(first("thl"), Some("theme light"));
        assert_eq!(first("zzz"), None);
        let rev: Vec<&str> = complete("rev").iter().map(|e| e.name).collect();
        assert_eq!(rev[..2], ["revoke", "revoke expired"]);
        assert!(rev.contains(&"sort reverse"), "{rev:?}");
        assert_eq!(complete("").len(), palette().len());
        let revoke = &complete("revoke")[0];
        assert_eq!(revoke.keys, "d / Delete");
        assert_eq!(revoke.command, Command::Revoke);
        // `sort …` names the column it sorts by.
        for (i, sort) in crate::tui::app::SortBy::ALL.iter().enumerate() {
            let command = Command::SortBy(u8::try_from(i).unwrap());
            let entry = palette()
                .into_iter()
                .find(|e| e.command == command)
                .unwrap();
            assert_eq!(entry.name, format!("sort {}", sort.label().to_lowercase()));
        }
    }

    /// Every key of the webhooks screens is said by a help line of that
    /// screen's section, in its keys or its text's brackets (`next field
    /// (Shift-Tab / ↑ back)`); Ctrl-C, which quits from anywhere, by the Quit one.
    #[test]
    fn every_key_of_the_webhook_screens_has_a_help_line() {
        for (context, section) in [
            (Context::Webhooks, Section::Webhooks),
            (Context::WebhookDeliveries, Section::WebhookDeliveries),
            (Context::WebhookForm, Section::WebhookForm),
        ] {
            let said: Vec<&str> = BINDINGS
                .iter()
                .filter_map(|b| b.help)
                .filter(|h| h.section == section)
                .flat_map(|h| {
                    let bracket = h.text.split_once('(').map_or("", |(_, b)| b);
                    h.keys.split(" / ").chain(bracket.split([' ', ')']))
                })
                .collect();
            let bound: Vec<&Binding> = BINDINGS
                .iter()
                .filter(|b| b.contexts.contains(&context) && b.contexts != EVERYWHERE)
                .collect();
            assert!(bound.len() >= 4, "{context:?}");
            for b in bound {
                for key in b.keys {
                    let label = key_label(key);
                    assert!(
                        said.contains(&label.as_str()),
                        "{label} ({:?}) on {context:?} has no help line in {:?}: {said:?}",
                        b.command,
                        section.title()
                    );
                }
            }
        }
    }

    #[test]
    fn help_says_the_configured_refresh_interval() {
        let text = |every| {
            help_sections(every)
                .into_iter()
                .flat_map(|(_, lines)| lines)
                .find(|(keys, _)| *keys == "r")
                .unwrap()
                .1
        };
        assert_eq!(
            text(chrono::Duration::seconds(30)),
            "refresh now (also every 30 s)"
        );
        assert_eq!(
            text(chrono::Duration::seconds(120)),
            "refresh now (also every 2 min)"
        );
    }
}

#[cfg(test)]
mod readme {
    /// The README's binding table is what [`super::markdown_table`] makes:
    /// a binding changed here and not there fails this test.
    #[test]
    fn readme_binding_table_is_generated_from_the_keymap() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find(super::README_START)
            .expect("keymap start marker in README.md")
            + super::README_START.len();
        let end = readme
            .find(super::README_END)
            .expect("keymap end marker in README.md");
        let expected = super::markdown_table();
        assert!(
            readme[start..end].trim() == expected.trim(),
            "README.md's key-binding table differs from the keymap; replace it with:\n{expected}"
        );
    }
}
