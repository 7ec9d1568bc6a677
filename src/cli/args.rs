//! The command line: every command and flag, as clap definitions.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand};

use crate::key::webhook::DebugUrl;
use crate::key::KeyStatus;
use crate::key::{Plan, Role};

/// An optional URL in a `Debug` print, redacted as [`DebugUrl`] shows it.
fn debug_url(url: &Option<String>) -> Option<DebugUrl<'_>> {
    url.as_deref().map(DebugUrl)
}

// `Debug` shows `--url` redacted: a service URL may carry credentials.
// (Not a doc comment: clap would show it in --help.)
#[derive(Parser)]
#[command(
    name = "keydeck",
    version,
    about = "Manage your organisation's API keys from the terminal, and run the key service behind them",
    after_help = "Without a command, keydeck opens the terminal UI: on the service at --url (or the\n\
      profile's), else on an embedded service over the SQLite database in the data dir.\n\n\
      Examples:\n  \
      keydeck                                         # the terminal UI, embedded service\n  \
      keydeck --url https://keys.example.com          # the terminal UI on a remote service\n  \
      keydeck serve                                   # the key service on 127.0.0.1:8080\n  \
      keydeck serve --database-url postgres://db/keys # several replicas on one PostgreSQL\n  \
      keydeck admin users add --org default --email ops@example.com --role admin\n  \
      keydeck login --url https://keys.example.com    # save a service and its token as a profile\n  \
      keydeck keys list --status active\n  \
      SECRET=$(keydeck keys create --name \"CI deploy\" --scope sessions:read --expires 90d)\n\n\
      Exit codes of the client commands (keys, audit, policy, login): 0 ok; 1 usage or invalid input;\n\
      2 token refused, free plan or not an admin; 3 key service unreachable or not configured."
)]
pub struct Cli {
    /// Directory for the embedded/served SQLite database, the bootstrap admin token and the UI's log [default: the user's data dir, e.g. ~/.local/share/keydeck].
    #[arg(
        long,
        env = "KEYDECK_DATA_DIR",
        global = true,
        help_heading = "Global options"
    )]
    pub data_dir: Option<PathBuf>,
    /// URL of the key service for the terminal UI and the client commands, e.g. https://keys.example.com [default: the profile's].
    #[arg(
        long,
        env = "KEYDECK_URL",
        global = true,
        value_name = "URL",
        help_heading = "Global options"
    )]
    pub url: Option<String>,
    /// Profile of the config file to use (see `keydeck login`) [default: the file's default_profile, else "default"].
    #[arg(
        long,
        env = "KEYDECK_PROFILE",
        global = true,
        value_name = "NAME",
        help_heading = "Global options"
    )]
    pub profile: Option<String>,
    /// Send the access token over plain http:// to hosts other than localhost and loopback addresses (with a warning). Without it such URLs are refused: use https://.
    #[arg(
        long,
        env = "KEYDECK_ALLOW_INSECURE_HTTP",
        value_parser = clap::builder::BoolishValueParser::new(),
        global = true,
        help_heading = "Global options"
    )]
    pub allow_insecure_http: bool,
    /// Seconds between the terminal UI's automatic refreshes of the key table (2-3600).
    #[arg(
        long,
        env = "KEYDECK_REFRESH",
        default_value_t = 30,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u32).range(2..=3600),
        help_heading = "Terminal UI"
    )]
    pub refresh: u32,
    /// Colours of the terminal UI [default: the config file's `theme`, else dark]. NO_COLOR still turns colour off.
    #[arg(
        long,
        env = "KEYDECK_THEME",
        value_enum,
        value_name = "THEME",
        help_heading = "Terminal UI"
    )]
    pub theme: Option<crate::present::Palette>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Every field named, so a new one is a compile error until shown here.
        let Self {
            data_dir,
            url,
            profile,
            allow_insecure_http,
            refresh,
            theme,
            command,
        } = self;
        f.debug_struct("Cli")
            .field("data_dir", data_dir)
            .field("url", &debug_url(url))
            .field("profile", profile)
            .field("allow_insecure_http", allow_insecure_http)
            .field("refresh", refresh)
            .field("theme", theme)
            .field("command", command)
            .finish()
    }
}

impl Cli {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the key service (HTTP API, forward-auth for gateways).
    #[command(after_help = "Examples:\n  \
        keydeck serve --listen 0.0.0.0:8080 --data-dir /var/lib/keydeck\n  \
        keydeck serve --database-url postgres://keydeck@db/keydeck --trusted-proxy 127.0.0.1\n  \
        keydeck serve --ssh-listen 0.0.0.0:2222          # also the UI and commands over SSH\n\n\
        On first start with an empty database, organisation 'default' (paid plan) and an admin\n\
        are created; the admin's access token is written to DATA_DIR/admin-token (mode 0600).")]
    Serve(Box<ServeArgs>),
    /// Operator commands on the service's database: organisations, users, demo data.
    #[command(after_help = "Examples:\n  \
        keydeck admin orgs add acme --plan paid\n  \
        keydeck admin users add --org acme --email ops@acme.test --role admin\n  \
        keydeck admin --database-url postgres://keydeck@db/keydeck orgs list")]
    Admin(AdminArgs),
    /// Manage the organisation's API keys from scripts: list, create, show, rotate, revoke.
    #[command(after_help = "Examples:\n  \
        keydeck keys list\n  \
        SECRET=$(keydeck keys create --name \"Nightly export\" --scope resources:read --expires 30d)\n  \
        keydeck keys revoke eg_live_1a2B --yes\n\n\
        The key service and token come from --url / KEYDECK_URL, KEYDECK_TOKEN and the\n\
        profile saved by `keydeck login` (--profile / KEYDECK_PROFILE).")]
    Keys(KeysArgs),
    /// The organisation's audit log: keys created, revoked and rotated, by whom, when, from where.
    #[command(after_help = "Examples:\n  \
        keydeck audit\n  \
        keydeck audit --limit 1000 --json > audit.json")]
    Audit(AuditArgs),
    /// The organisation's key policy: show it, or (admins) set its rules and badge thresholds.
    #[command(after_help = "Examples:\n  \
        keydeck policy show\n  \
        keydeck policy set --max-lifetime 90d --require-description --dry-run\n  \
        keydeck policy set --max-lifetime none --no-require-expiry\n\n\
        New keys and rotations follow the policy; existing keys are never changed or blocked.")]
    Policy(PolicyArgs),
    /// The organisation's key checks over a window by outcome, and its most used and most refused keys.
    #[command(after_help = "Examples:\n  \
        keydeck usage\n  \
        keydeck usage --window 7d --json")]
    Usage(UsageArgs),
    /// The organisation's webhook endpoints (admins): add, list, remove, test, deliveries.
    #[command(after_help = "Examples:\n  \
        SECRET=$(keydeck webhooks add https://hooks.example.com/keydeck --events api_key.expiring,api_key.revoked)\n  \
        keydeck webhooks list\n  \
        keydeck webhooks test whk_1a2B3c\n  \
        keydeck webhooks deliveries whk_1a2B3c --json\n\n\
        Each request is signed as Standard Webhooks say (webhook-id, webhook-timestamp,\n\
        webhook-signature) with the endpoint's secret, printed once by `add` and `rotate-secret`.")]
    Webhooks(WebhooksArgs),
    /// Save a key service's URL and an access token as a profile, after checking them.
    #[command(after_help = "Examples:\n  \
        keydeck login                                    # asks for the URL and the token (not echoed)\n  \
        keydeck login --profile staging --url https://keys.staging.example.com\n  \
        keydeck login --url http://localhost:8080 --token-stdin < ~/.local/share/keydeck/admin-token\n\n\
        The profile is saved in ~/.config/keydeck/config.toml (KEYDECK_CONFIG overrides), mode 0600.\n\
        Nothing is saved unless the service accepts the token.")]
    Login(LoginArgs),
    /// Forget a profile: its URL and its token.
    #[command(after_help = "Examples:\n  \
        keydeck logout\n  \
        keydeck logout --profile staging")]
    Logout,
    /// Find this deployment's keys in files, offline: their place and prefix, never the secret.
    #[command(after_help = "Examples:\n  \
        keydeck scan                                # this directory, recursively, honouring .gitignore\n  \
        keydeck scan --staged                       # a pre-commit hook: what the next commit holds\n  \
        kubectl logs deploy/api | keydeck scan -    # standard input\n  \
        keydeck scan --format sarif src > keys.sarif\n  \
        keydeck scan --report                       # also tell the key service (SHA-256 digests only)\n\n\
        A key is the prefix, 38 base62 characters and a valid checksum: no database is asked,\n\
        and look-alikes are not reported. Binary files (a NUL in their first 8 KiB) are skipped.\n\
        Columns count characters. Exit codes: 0 no key found; 1 keys found; 2 usage error,\n\
        unreadable path or failed report.")]
    Scan(ScanArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        keydeck completions bash > ~/.local/share/bash-completion/completions/keydeck\n  \
        keydeck completions zsh > \"${fpath[1]}/_keydeck\"\n  \
        keydeck completions fish > ~/.config/fish/completions/keydeck.fish")]
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a directory.
    #[command(after_help = "Examples:\n  \
        keydeck man | man -l -\n  \
        keydeck man --dir /usr/local/share/man/man1")]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct WebhooksArgs {
    #[command(subcommand)]
    pub command: WebhooksCommand,
}

// `Debug` shows the endpoint's URL redacted (a token in its query or
// userinfo never reaches a log), as the store's and the API's types do.
#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Add an endpoint; its signing secret (whsec_…) goes to standard output, this once.
    #[command(after_help = "Examples:\n  \
        keydeck webhooks add https://hooks.example.com/keydeck --events api_key.expiring,api_key.revoked\n  \
        keydeck webhooks add https://hooks.example.com/digest --events digest.daily --json")]
    Add {
        /// https://… (http:// only to loopback, with `serve --webhooks-allow-private`).
        #[arg(value_name = "URL")]
        endpoint: String,
        /// The event types it is sent, comma-separated: api_key.created, api_key.revoked,
        /// api_key.rotated, api_key.expiring, api_key.expired, api_key.exposed,
        /// api_key.secret_issued, policy.updated, user.added, user.removed, digest.daily.
        #[arg(long, value_delimiter = ',', required = true, value_name = "TYPES")]
        events: Vec<String>,
        /// The whole answer (endpoint and secret) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The endpoints, with their health (healthy, failing, disabled).
    #[command(after_help = "Examples:\n  \
        keydeck webhooks list\n  \
        keydeck webhooks list --json")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an endpoint and its deliveries.
    #[command(after_help = "Examples:\n  keydeck webhooks remove whk_1a2B3c")]
    Remove { id: String },
    /// Send a webhook.test event to the endpoint.
    #[command(after_help = "Examples:\n  keydeck webhooks test whk_1a2B3c")]
    Test { id: String },
    /// The endpoint's deliveries, newest first: status, attempts, next try, last answer.
    #[command(after_help = "Examples:\n  \
        keydeck webhooks deliveries whk_1a2B3c\n  \
        keydeck webhooks deliveries whk_1a2B3c --limit 5000 --json > deliveries.json\n\n\
        Read from the service up to 500 at a time, following its pages, as `keydeck audit` is.")]
    Deliveries {
        id: String,
        /// At most this many deliveries, newest first.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
        /// A JSON array of the deliveries (the API's objects) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A new signing secret (printed once); the old one keeps signing for --overlap-seconds.
    #[command(after_help = "Examples:\n  \
        keydeck webhooks rotate-secret whk_1a2B3c\n  \
        keydeck webhooks rotate-secret whk_1a2B3c --overlap-seconds 0")]
    RotateSecret {
        id: String,
        /// Seconds the previous secret signs too, 0-604800 [default: 86400].
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(0..=604_800))]
        overlap_seconds: Option<u32>,
    },
    /// Enable an endpoint disabled after a day of failures: what waited is sent.
    #[command(after_help = "Examples:\n  keydeck webhooks enable whk_1a2B3c")]
    Enable { id: String },
}

impl std::fmt::Debug for WebhooksCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Add {
                endpoint,
                events,
                json,
            } => f
                .debug_struct("Add")
                .field("endpoint", &DebugUrl(endpoint))
                .field("events", events)
                .field("json", json)
                .finish(),
            Self::List { json } => f.debug_struct("List").field("json", json).finish(),
            Self::Remove { id } => f.debug_struct("Remove").field("id", id).finish(),
            Self::Test { id } => f.debug_struct("Test").field("id", id).finish(),
            Self::Deliveries { id, limit, json } => f
                .debug_struct("Deliveries")
                .field("id", id)
                .field("limit", limit)
                .field("json", json)
                .finish(),
            Self::RotateSecret {
                id,
                overlap_seconds,
            } => f
                .debug_struct("RotateSecret")
                .field("id", id)
                .field("overlap_seconds", overlap_seconds)
                .finish(),
            Self::Enable { id } => f.debug_struct("Enable").field("id", id).finish(),
        }
    }
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show the policy: the rules new keys follow and the health badge thresholds.
    #[command(after_help = "Examples:\n  \
        keydeck policy show\n  \
        keydeck policy show --json")]
    Show {
        /// The policy as the API's JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Change the policy (admins only); flags left out keep their value.
    #[command(after_help = "Examples:\n  \
        keydeck policy set --max-lifetime 90d --require-expiry          # asks first\n  \
        keydeck policy set --require-description --dry-run   # which keys would not comply\n  \
        keydeck policy set --rotate-after 180d --unused-after 60d --yes # from a script\n\n\
        Without --yes, set shows each field that changes (old → new), asks on the terminal,\n\
        and refuses when standard input is not one (so over SSH too).\n\
        Days are written as 90d (or 90). Existing keys are never changed or blocked: those\n\
        that do not comply get the `policy` badge.")]
    Set(PolicySetArgs),
}

#[derive(Debug, Args)]
pub struct PolicySetArgs {
    /// Longest lifetime of a new key (1d-3650d), or `none` for no limit.
    #[arg(long, value_name = "DAYS|none", value_parser = parse_max_lifetime)]
    pub max_lifetime: Option<MaxLifetime>,
    /// New keys must have an expiry date.
    #[arg(long, conflicts_with = "no_require_expiry")]
    pub require_expiry: bool,
    /// New keys may have no expiry date (unless --max-lifetime is set).
    #[arg(long)]
    pub no_require_expiry: bool,
    /// New keys must have a description.
    #[arg(long, conflicts_with = "no_require_description")]
    pub require_description: bool,
    /// New keys may have an empty description.
    #[arg(long)]
    pub no_require_description: bool,
    /// Badge `rotate`: active keys created more than this long ago.
    #[arg(long, value_name = "DAYS", value_parser = parse_policy_days)]
    pub rotate_after: Option<u32>,
    /// Badge `expiring`: active keys that expire within this long.
    #[arg(long, value_name = "DAYS", value_parser = parse_policy_days)]
    pub expiring_within: Option<u32>,
    /// Badge `unused`: active keys older than this and unused for this long.
    #[arg(long, value_name = "DAYS", value_parser = parse_policy_days)]
    pub unused_after: Option<u32>,
    /// What a leak report does to the key it names: revoke it at once, rotate it (a successor;
    /// the leaked key stops after --leak-grace), or only flag it (badge `exposed`).
    #[arg(long, value_name = "revoke|rotate|flag")]
    pub on_leak: Option<crate::key::policy::OnLeak>,
    /// With --on-leak rotate: how long the leaked key keeps working beside its successor
    /// (0, 1h, 24h, or e.g. 90m, 2h; at most 24h).
    #[arg(long, value_name = "SPAN", value_parser = parse_grace)]
    pub leak_grace: Option<u32>,
    /// List the existing keys that would not comply (name, prefix, why) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (needed when standard input is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the new policy as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--max-lifetime`: a number of days, or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxLifetime {
    Days(u32),
    Unlimited,
}

fn parse_max_lifetime(s: &str) -> Result<MaxLifetime, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        Ok(MaxLifetime::Unlimited)
    } else {
        parse_policy_days(s).map(MaxLifetime::Days)
    }
}

/// `90d` or `90`: a number of days within the policy's limits.
pub fn parse_policy_days(s: &str) -> Result<u32, String> {
    let max = crate::key::policy::MAX_POLICY_DAYS;
    let digits = s.trim().strip_suffix('d').unwrap_or(s.trim());
    match digits.parse::<u32>() {
        Ok(days) if (1..=max).contains(&days) => Ok(days),
        _ => Err(format!(
            "expected a number of days from 1d to {max}d, like 90d"
        )),
    }
}

/// A retention: `48h`, `7d`, `2w` (a bare number is days), from 1 hour to 365 days.
pub fn parse_retention(s: &str) -> Result<chrono::Duration, String> {
    use crate::key::expiry::{parse_span, SpanUnit};
    let invalid = || {
        format!(
            "{:?} is not a retention: use hours, days or weeks from 1h to 365d, like 7d",
            s.chars().take(20).collect::<String>()
        )
    };
    let span = parse_span(s.trim(), Some(SpanUnit::Day)).ok_or_else(invalid)?;
    if span.unit < SpanUnit::Hour {
        return Err(invalid());
    }
    match span.seconds() {
        Some(secs) if (3600..=365 * 86_400).contains(&secs) => {
            Ok(chrono::Duration::seconds(secs as i64))
        }
        _ => Err(invalid()),
    }
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the organisation's keys: a table for people, JSON with --json.
    #[command(after_help = "Examples:\n  \
        keydeck keys list\n  \
        keydeck keys list --status expired\n  \
        keydeck keys list --attention        # what needs attention, worst first\n  \
        keydeck keys list --json > keys.json\n\n\
        Status is shown as a word with a symbol (● Active, ◷ Expired, ✕ Revoked), coloured\n\
        only on a terminal and when NO_COLOR is not set. SCOPES lists the ids (what --scope\n\
        takes), LABELS the service's names for them (GET /v1/scopes). HEALTH has the terminal\n\
        UI's badges (expiring, rotate, unused, no expiry, policy, rotating), from the\n\
        organisation's policy; --json has them as ids in each key's \"health\". On a terminal\n\
        the table fits its width ($COLUMNS), dropping the least needed columns first (--wide\n\
        keeps them all); piped, it has every column.")]
    List(ListArgs),
    /// Create a key; its secret alone goes to standard output, shown this once.
    #[command(after_help = "Examples:\n  \
        SECRET=$(keydeck keys create --name \"CI/CD Pipeline\" --scope sessions:read --expires 90d)\n  \
        keydeck keys create --name Exporter --scope resources:read,audit_logs:read --expires 2027-01-31\n  \
        keydeck keys create --name \"Deploy bot\" --scope full_access --json > deploy-bot.json\n\n\
        Scopes: sessions:read, sessions:write, resources:read, audit_logs:read, full_access;\n\
        leaks:report only alone (a key for a scanner or CI that can only report leaked keys).")]
    Create(CreateArgs),
    /// Show one key.
    #[command(after_help = "Examples:\n  \
        keydeck keys show eg_live_1a2B\n  \
        keydeck keys show key_3Xk9fQ2mZ8pL1vN7 --json")]
    Show(ShowArgs),
    /// Revoke a key: every request with it is refused from then on.
    #[command(after_help = "Examples:\n  \
        keydeck keys revoke eg_live_1a2B          # asks first\n  \
        keydeck keys revoke eg_live_1a2B... --yes # from a script\n\n\
        Without --yes, revoke asks on the terminal, and refuses when standard input is not one.\n\
        A prefix that matches several keys lists them and changes nothing.")]
    Revoke(TargetArgs),
    /// Replace a key by a new one with the same name, scopes and expiry; the new secret alone goes to standard output.
    #[command(after_help = "Examples:\n  \
        NEW_SECRET=$(keydeck keys rotate eg_live_1a2B --grace 1h --yes)\n  \
        keydeck keys rotate key_3Xk9fQ2mZ8pL1vN7 --json --yes\n\n\
        The old key is revoked at once (--grace 0, the default) or keeps working for the grace\n\
        period (at most 24h) so that its users can switch.")]
    Rotate(RotateArgs),
    /// Issue the secret of a key made without one (the `rotate` leak policy's successor), once; it alone goes to standard output.
    #[command(after_help = "Examples:\n  \
        SECRET=$(keydeck keys issue key_3Xk9fQ2mZ8pL1vN7)\n  \
        keydeck keys issue key_3Xk9fQ2mZ8pL1vN7 --json\n\n\
        A leak report under `on_leak = rotate` makes a successor without a secret (no one is\n\
        there to be shown one): `keys show` of the leaked key names it. Its secret is issued\n\
        once; a second issue is refused (409), as for a key that has its secret.")]
    Issue(IssueArgs),
    /// A key's checks by outcome over a window, and the client addresses it was used from.
    #[command(after_help = "Examples:\n  \
        keydeck keys usage eg_live_1a2B\n  \
        keydeck keys usage key_3Xk9fQ2mZ8pL1vN7 --window 30d --json\n\n\
        Windows: 1h (minutes), 24h (hours), 7d (hours), 30d and 90d (days, UTC). Counts are\n\
        written by the service about every second.")]
    Usage(KeyUsageArgs),
}

/// A usage window: `1h`, `24h`, `7d`, `30d` or `90d`.
fn usage_window() -> impl clap::builder::TypedValueParser<Value = crate::api::UsageWindow> {
    clap::builder::PossibleValuesParser::new(["1h", "24h", "7d", "30d", "90d"]).map(|s| {
        s.parse::<crate::api::UsageWindow>()
            .expect("a possible value")
    })
}

#[derive(Debug, Args)]
pub struct KeyUsageArgs {
    /// The key's id (key_...) or its prefix as shown in the table.
    #[arg(value_name = "ID|PREFIX")]
    pub key: String,
    /// The span shown.
    #[arg(long, default_value = "7d", value_parser = usage_window())]
    pub window: crate::api::UsageWindow,
    /// The API's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// The span shown.
    #[arg(long, default_value = "24h", value_parser = usage_window())]
    pub window: crate::api::UsageWindow,
    /// The API's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only keys with this status.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["active", "expired", "revoked"])
        .map(|s| s.parse::<KeyStatus>().expect("a possible value")))]
    pub status: Option<KeyStatus>,
    /// Only the keys that need attention, worst first: the terminal UI's Attention tab.
    #[arg(long)]
    pub attention: bool,
    /// Every column, however narrow the terminal (piped output always has every column).
    #[arg(long)]
    pub wide: bool,
    /// A JSON array of the keys (the API's objects, each with its `health` badges) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Display name, 1-100 characters.
    #[arg(long)]
    pub name: String,
    /// A scope the key grants (repeatable, or comma-separated): its id (sessions:read), label (Sessions (Read)) or short label (Sessions:R), any case.
    #[arg(
        long = "scope",
        value_name = "SCOPE",
        required = true,
        value_delimiter = ','
    )]
    pub scopes: Vec<String>,
    /// When the key stops working: a date (valid through that whole local day), or a span such as 12h, 7d, 30d, 2w, 1y [default: never].
    #[arg(long, value_name = "DATE|SPAN")]
    pub expires: Option<String>,
    /// What the key is for, up to 500 characters.
    #[arg(long)]
    pub description: Option<String>,
    /// Print the whole answer (the key and its secret) as JSON instead of the secret alone.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The key's id (key_...), its prefix as shown in the table (eg_live_1a2B..., at least eg_live_ and one more character), or its exact name (several keys of that name are listed, exit 1).
    #[arg(value_name = "ID|PREFIX|NAME")]
    pub key: String,
    /// The key as JSON (the API's object).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The key's id (key_...) or its prefix as shown in the table (eg_live_1a2B..., at least eg_live_ and one more character).
    #[arg(value_name = "ID|PREFIX")]
    pub key: String,
    /// Do not ask for confirmation (needed when standard input is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the answer as JSON: the revoked key; for rotate, the new key, its secret and the old key.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The key's id (key_...): a key waiting for its secret has no prefix of its own yet.
    #[arg(value_name = "ID")]
    pub key: String,
    /// Print the answer (the key and its secret) as JSON instead of the secret alone.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How long the old key keeps working: 0 (revoked now), 1h or 24h (the TUI's choices), or any span up to 24h, like 30m or 2h.
    #[arg(long, value_name = "SPAN", default_value = "0", value_parser = parse_grace)]
    pub grace: u32,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// At most this many entries, newest first.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: u32,
    /// A JSON array of the entries (the API's objects) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only this key's entries (its id, `key_…`): its whole history.
    #[arg(long, value_name = "ID")]
    pub key: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Read the access token from standard input (for scripts) instead of asking for it.
    #[arg(long)]
    pub token_stdin: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files and directories to scan (directories recursively, honouring .gitignore); `-` is standard input [default: .].
    #[arg(value_name = "PATH", conflicts_with = "staged")]
    pub paths: Vec<PathBuf>,
    /// Scan the files staged in git (the blobs of the next commit) instead of paths: a pre-commit hook.
    #[arg(long)]
    pub staged: bool,
    /// The deployment's key prefix (serve's --key-prefix).
    #[arg(
        long,
        env = "KEYDECK_KEY_PREFIX",
        default_value = crate::key::secret::DEFAULT_KEY_PREFIX,
        value_name = "PREFIX",
        value_parser = parse_key_format
    )]
    pub prefix: crate::key::SecretFormat,
    /// What to print on standard output: `path:line:column: prefix` lines, a JSON array, or SARIF 2.1.0.
    #[arg(long, value_enum, default_value_t = ScanFormat::Text)]
    pub format: ScanFormat,
    /// Send the SHA-256 digests of the keys found (never the keys) to the key service, and print its answer.
    #[arg(long)]
    pub report: bool,
    /// Skip files larger than this many MiB (with a note on standard error).
    #[arg(long, value_name = "MIB", default_value_t = 50,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_file_size: u64,
}

/// `keydeck scan --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanFormat {
    Text,
    Json,
    Sarif,
}

fn parse_key_format(s: &str) -> Result<crate::key::SecretFormat, String> {
    crate::key::SecretFormat::new(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write keydeck.1 and one page per command (keydeck-keys-create.1, ...) into this directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// A grace period in seconds: the same choices and spans as the TUI's
/// rotate dialog ([`crate::present::parse_grace`]).
pub use crate::present::parse_grace;

/// Which database the service uses (the data dir is the global `--data-dir`).
// `Debug` shows the URL redacted: a PostgreSQL URL may carry a password.
#[derive(Clone, Args)]
pub struct StorageArgs {
    /// `sqlite://PATH` or `postgres://USER@HOST/DB` [default: sqlite://DATA_DIR/keydeck.db].
    #[arg(
        long,
        env = "KEYDECK_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

impl std::fmt::Debug for StorageArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { database_url } = self;
        f.debug_struct("StorageArgs")
            .field("database_url", &debug_url(database_url))
            .finish()
    }
}

impl StorageArgs {
    pub fn database_url(&self, data_dir: &std::path::Path) -> String {
        crate::fs::database_url(self.database_url.as_deref(), data_dir)
    }
}

/// `~/.local/share/keydeck` on Linux (XDG), the platform's equivalent elsewhere.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("keydeck")
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "KEYDECK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Literal prefix of new API keys: 2-16 characters of a-z, 0-9 and _, ending in _.
    #[arg(long, env = "KEYDECK_KEY_PREFIX", default_value = "eg_live_")]
    pub key_prefix: String,
    /// Failed key checks per client (IPv4 address or IPv6 /64) per minute before answering 429,
    /// in total over all replicas on PostgreSQL (0: no limit).
    #[arg(long, env = "KEYDECK_MAX_FAILED_AUTH", default_value_t = 20)]
    pub max_failed_auth: u32,
    /// Answer key checks from memory while nothing changed (revocations and plan changes
    /// still count at once; on SQLite, other processes' writes within 1 s); false looks
    /// every key up in the database.
    #[arg(long, env = "KEYDECK_KEY_CACHE", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub key_cache: bool,
    /// Let webhook endpoints be private, loopback or link-local addresses (and plain http://
    /// to loopback): for tests and closed networks only [default: refused].
    #[arg(
        long,
        env = "KEYDECK_WEBHOOKS_ALLOW_PRIVATE",
        help_heading = "Webhooks"
    )]
    pub webhooks_allow_private: bool,
    /// The hour (UTC, 0-23) from which each organisation's `digest.daily` webhook is sent.
    #[arg(long, env = "KEYDECK_WEBHOOK_DIGEST_HOUR", default_value_t = 8, value_name = "HOUR",
        value_parser = clap::value_parser!(u32).range(0..=23), help_heading = "Webhooks")]
    pub webhook_digest_hour: u32,
    /// How long delivered (or given-up) webhook events and their deliveries are kept, e.g. 7d,
    /// 48h, 2w (1h to 365d); events still being retried are never pruned.
    #[arg(long, env = "KEYDECK_WEBHOOK_RETENTION", default_value = "7d", value_name = "SPAN",
        value_parser = parse_retention, help_heading = "Webhooks")]
    pub webhook_retention: chrono::Duration,
    /// A proxy whose X-Forwarded-For (or, without one, X-Real-IP) is believed (repeatable), e.g.
    /// nginx on 127.0.0.1. The client is the rightmost X-Forwarded-For entry not a listed proxy.
    #[arg(
        long = "trusted-proxy",
        env = "KEYDECK_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpAddr>,
    /// Hours key usage is kept at minute resolution (then only hourly).
    #[arg(long, env = "KEYDECK_USAGE_MINUTES_HOURS", default_value_t = 48, value_name = "HOURS",
        value_parser = clap::value_parser!(u32).range(1..=24 * 90))]
    pub usage_minutes_hours: u32,
    /// Days key usage is kept at hour resolution (and client addresses).
    #[arg(long, env = "KEYDECK_USAGE_HOURS_DAYS", default_value_t = 90, value_name = "DAYS",
        value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub usage_hours_days: u32,
    /// `api_key.new_address` audit entries at most per key per hour (0: none).
    #[arg(long, env = "KEYDECK_NEW_ADDRESS_AUDITS", default_value_t = 5, value_name = "N",
        value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub new_address_audits: u32,
    /// A TOML file with this deployment's own scope catalogue (`[[scope]]` tables with id, label,
    /// description); Full Access is always added last [default: the built-in catalogue].
    #[arg(long, env = "KEYDECK_SCOPES_FILE", value_name = "PATH")]
    pub scopes_file: Option<PathBuf>,
    /// Leak report requests (POST /v1/leaks, GitLab, GitHub) per reporter per minute before 429.
    #[arg(long, env = "KEYDECK_LEAK_REPORTS_PER_MINUTE", default_value_t = 60, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=100_000), help_heading = "Leak reports")]
    pub leak_reports_per_minute: u32,
    /// A file holding the token GitLab sends to the token revocation API (/v1/revoke_tokens)
    /// [default: that API is off]. KEYDECK_GITLAB_TOKEN gives the token itself instead.
    #[arg(
        long,
        env = "KEYDECK_GITLAB_TOKEN_FILE",
        value_name = "PATH",
        help_heading = "Leak reports"
    )]
    pub gitlab_token_file: Option<PathBuf>,
    /// GitHub's secret-scanning public keys, as GitHub publishes them
    /// ({"public_keys":[{"key_identifier","key","is_current"}]}), for /v1/github/secret-scanning
    /// [default: that endpoint is off].
    #[arg(
        long,
        env = "KEYDECK_GITHUB_KEYS_FILE",
        value_name = "PATH",
        help_heading = "Leak reports"
    )]
    pub github_keys_file: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key) [default: plain HTTP].
    #[arg(
        long,
        env = "KEYDECK_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "KEYDECK_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Seconds a client may take to send a request's headers, from its first byte (or from connecting); slower clients are disconnected.
    #[arg(long, env = "KEYDECK_HEADER_TIMEOUT", default_value_t = 10, value_name = "SECONDS", value_parser = seconds())]
    pub header_timeout: u64,
    /// Seconds a client may take to send a request's body once its headers are in (else 408).
    #[arg(long, env = "KEYDECK_BODY_TIMEOUT", default_value_t = 15, value_name = "SECONDS", value_parser = seconds())]
    pub body_timeout: u64,
    /// Seconds a request may take in all before it is cancelled and answered 503.
    #[arg(long, env = "KEYDECK_REQUEST_TIMEOUT", default_value_t = 30, value_name = "SECONDS", value_parser = seconds())]
    pub request_timeout: u64,
    /// Seconds a kept-alive connection may wait for its next request before it is closed.
    #[arg(long, env = "KEYDECK_IDLE_TIMEOUT", default_value_t = 60, value_name = "SECONDS", value_parser = seconds())]
    pub idle_timeout: u64,
    /// Connections served at once; beyond it new connections are answered 503 and closed.
    #[arg(long, env = "KEYDECK_MAX_CONNECTIONS", default_value_t = 512, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Also serve keydeck over SSH on this address, e.g. 0.0.0.0:2222: the terminal UI and the
    /// client commands, for users whose public key was added with `admin users add-ssh-key` [default: off].
    #[arg(
        long,
        env = "KEYDECK_SSH_LISTEN",
        value_name = "ADDR",
        help_heading = "SSH"
    )]
    pub ssh_listen: Option<SocketAddr>,
    /// The SSH host key (OpenSSH private key, no passphrase); give every replica behind one address the same key [default: DATA_DIR/ssh_host_ed25519_key, made on first start].
    #[arg(
        long,
        env = "KEYDECK_SSH_HOST_KEY",
        value_name = "PATH",
        help_heading = "SSH",
        requires = "ssh_listen"
    )]
    pub ssh_host_key: Option<PathBuf>,
    /// Minutes an SSH session may go without input before it is closed (terminal restored);
    /// a connection without input and no command running, a minute later. Only the user's
    /// input counts, never replies to keepalives.
    #[arg(long, env = "KEYDECK_SSH_IDLE_TIMEOUT", default_value_t = 15, value_name = "MINUTES",
        value_parser = clap::value_parser!(u64).range(1..=1440), help_heading = "SSH")]
    pub ssh_idle_timeout: u64,
    /// SSH sessions (the UI or a command) served at once; the next one is told so and closed.
    #[arg(long, env = "KEYDECK_SSH_MAX_SESSIONS", default_value_t = 32, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=10_000), help_heading = "SSH")]
    pub ssh_max_sessions: u32,
    /// SSH sessions one user may have open at once; the next one is told so and closed.
    #[arg(long, env = "KEYDECK_SSH_MAX_SESSIONS_PER_USER", default_value_t = 4, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=10_000), help_heading = "SSH")]
    pub ssh_max_sessions_per_user: u32,
    /// SSH connections open at once; more are closed at once. With --max-connections it must
    /// fit in the process's open-files limit (RLIMIT_NOFILE, raised to its hard limit at start).
    #[arg(long, env = "KEYDECK_SSH_MAX_CONNECTIONS", default_value_t = 256, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000), help_heading = "SSH")]
    pub ssh_max_connections: u32,
    /// SSH connections not authenticated yet, in all; more are closed at once (OpenSSH's MaxStartups).
    #[arg(long, env = "KEYDECK_SSH_MAX_UNAUTHENTICATED", default_value_t = 100, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000), help_heading = "SSH")]
    pub ssh_max_unauthenticated: u32,
    /// SSH connections not authenticated yet from one address (IPv4 address or IPv6 /64); more
    /// are closed at once (OpenSSH's PerSourceMaxStartups).
    #[arg(long, env = "KEYDECK_SSH_MAX_UNAUTHENTICATED_PER_SOURCE", default_value_t = 10,
        value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000),
        help_heading = "SSH")]
    pub ssh_max_unauthenticated_per_source: u32,
    /// Seconds an SSH connection has to authenticate before it is closed (OpenSSH's LoginGraceTime).
    #[arg(long, env = "KEYDECK_SSH_LOGIN_TIMEOUT", default_value_t = 30, value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=600), help_heading = "SSH")]
    pub ssh_login_timeout: u64,
    /// Seconds a session channel has to ask for a shell or a command before it is closed
    /// (hidden: for tests).
    #[arg(long, env = "KEYDECK_SSH_CHANNEL_REQUEST_TIMEOUT", default_value_t = 10,
        value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600),
        help_heading = "SSH", hide = true)]
    pub ssh_channel_request_timeout: u64,
}

/// A time limit in whole seconds, 1 to 3600.
fn seconds() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..=3600)
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Organisations and their plans.
    #[command(
        subcommand,
        after_help = "Examples:\n  keydeck admin orgs add acme --plan free\n  keydeck admin orgs set-plan acme paid"
    )]
    Orgs(OrgCommand),
    /// Users, their roles and access tokens.
    #[command(
        subcommand,
        after_help = "Examples:\n  keydeck admin users add --org acme --email ops@acme.test --role admin\n  keydeck admin users list --org acme\n  keydeck admin users set-role ops@acme.test member\n  keydeck admin users remove ops@acme.test\n\n\
            Every change is written to the organisation's audit log, by $USER@HOST (actor type \"operator\")."
    )]
    Users(UserCommand),
    /// Fill an organisation with demo keys in every status (for screenshots and benchmarks).
    #[command(after_help = "Example:\n  keydeck admin seed --org acme --count 50")]
    Seed {
        /// Organisation name.
        #[arg(long, default_value = "default")]
        org: String,
        /// How many keys to create.
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        count: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Add an organisation.
    #[command(after_help = "Example:\n  keydeck admin orgs add acme --plan paid")]
    Add {
        name: String,
        #[arg(long, default_value = "paid", value_parser = parse_plan)]
        plan: Plan,
    },
    /// List organisations.
    #[command(after_help = "Example:\n  keydeck admin orgs list")]
    List,
    /// Change an organisation's plan.
    #[command(after_help = "Example:\n  keydeck admin orgs set-plan acme free")]
    SetPlan {
        name: String,
        #[arg(value_parser = parse_plan)]
        plan: Plan,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; their access token is printed once, on standard output.
    #[command(
        after_help = "Example:\n  TOKEN=$(keydeck admin users add --org acme --email ops@acme.test --role admin)"
    )]
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "member", value_parser = parse_role)]
        role: Role,
    },
    /// List users (of one organisation with --org).
    #[command(after_help = "Example:\n  keydeck admin users list --org acme")]
    List {
        #[arg(long)]
        org: Option<String>,
    },
    /// Replace a user's access token; the new one is printed once and the old one stops working.
    #[command(after_help = "Example:\n  TOKEN=$(keydeck admin users reset-token ops@acme.test)")]
    ResetToken { email: String },
    /// Take a user's access token away, disabling them: they stay a user, but neither their token nor their SSH keys are accepted until `reset-token`.
    #[command(after_help = "Example:\n  keydeck admin users revoke-token ops@acme.test")]
    RevokeToken { email: String },
    /// Make a user an admin or a member.
    #[command(
        after_help = "Example:\n  keydeck admin users set-role ops@acme.test member\n\n\
        The last admin of an organisation is not demoted without --force."
    )]
    SetRole {
        email: String,
        #[arg(value_parser = parse_role)]
        role: Role,
        /// Demote the organisation's last admin anyway (then nobody can manage its keys).
        #[arg(long)]
        force: bool,
    },
    /// Remove a user: their token stops working at once; the keys they created keep working.
    #[command(
        after_help = "Example:\n  keydeck admin users remove ops@acme.test\n\n\
        The last admin of an organisation is not removed without --force."
    )]
    Remove {
        email: String,
        /// Remove the organisation's last admin anyway (then nobody can manage its keys).
        #[arg(long)]
        force: bool,
    },
    /// Let a user in over SSH (`keydeck serve --ssh-listen`) with this public key.
    #[command(
        after_help = "Examples:\n  keydeck admin users add-ssh-key ops@acme.test ~/.ssh/id_ed25519.pub\n  \
        keydeck admin users add-ssh-key ops@acme.test \"ssh-ed25519 AAAAC3Nz... ops@laptop\"\n  \
        ssh ops@bastion cat .ssh/id_ed25519.pub | keydeck admin users add-ssh-key ops@acme.test -\n\n\
        A key belongs to one user. Ed25519 and ECDSA keys are accepted."
    )]
    AddSshKey {
        email: String,
        /// An OpenSSH public key line, a path to a .pub file, or - to read it from standard input.
        #[arg(value_name = "KEY|PATH|-")]
        key: String,
    },
    /// List SSH keys (of one user if given): fingerprint, comment, added, last used.
    #[command(after_help = "Examples:\n  keydeck admin users list-ssh-keys\n  \
        keydeck admin users list-ssh-keys ops@acme.test")]
    ListSshKeys { email: Option<String> },
    /// Remove a user's SSH key: its next connection is refused (open sessions end at their next request).
    #[command(
        after_help = "Example:\n  keydeck admin users remove-ssh-key ops@acme.test SHA256:3bR0...\n\n\
        The fingerprint is the one list-ssh-keys and `ssh-keygen -l -f KEY.pub` print."
    )]
    RemoveSshKey { email: String, fingerprint: String },
}

fn parse_plan(s: &str) -> Result<Plan, String> {
    s.parse()
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_examples() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            if !help.contains("Example") {
                missing.push(path.clone());
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no examples in --help of: {missing:?}");
    }

    #[test]
    fn grace_periods() {
        assert_eq!(parse_grace("0"), Ok(0));
        assert_eq!(parse_grace("90"), Ok(90));
        assert_eq!(parse_grace("30m"), Ok(1800));
        assert_eq!(parse_grace("1h"), Ok(3600));
        assert_eq!(parse_grace("24h"), Ok(86_400));
        assert_eq!(parse_grace("1d"), Ok(86_400));
        assert!(parse_grace("25h").unwrap_err().contains("at most 24h"));
        assert!(parse_grace("2x").is_err());
        assert!(parse_grace("-1h").is_err());
        assert!(parse_grace("soon").is_err());
    }

    #[test]
    fn a_webhook_retention_is_hours_days_or_weeks_within_a_year() {
        let d = chrono::Duration::days;
        assert_eq!(parse_retention("7d"), Ok(d(7)));
        assert_eq!(parse_retention("7"), Ok(d(7)));
        assert_eq!(parse_retention("2w"), Ok(d(14)));
        assert_eq!(parse_retention("48h"), Ok(chrono::Duration::hours(48)));
        assert_eq!(parse_retention("365d"), Ok(d(365)));
        for bad in ["0d", "30m", "59m", "366d", "1y", "", "soon", "-1d"] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_a_urls_credentials() {
        let token = "tok3n-s3cret";
        let service = format!("https://ops:{token}@keys.example.test/?access_token={token}");
        let database = format!("postgres://keydeck:{token}@db/keydeck?password={token}");
        let endpoint = format!("https://hook:{token}@hooks.example.test/k?token={token}");
        let serve = [
            "keydeck",
            "--url",
            &service,
            "serve",
            "--database-url",
            &database,
        ];
        let add = [
            "keydeck",
            "webhooks",
            "add",
            &endpoint,
            "--events",
            "api_key.created",
        ];
        for (argv, shown_urls) in [
            (
                &serve[..],
                &[
                    "https://REDACTED@keys.example.test/?access_token=REDACTED",
                    "postgres://REDACTED@db/keydeck?password=REDACTED",
                ][..],
            ),
            (
                &add[..],
                &["https://REDACTED@hooks.example.test/k?token=REDACTED"][..],
            ),
        ] {
            let cli = Cli::try_parse_from(argv).unwrap();
            let shown = format!("{cli:?}");
            assert!(!shown.contains(token), "{shown}");
            for url in shown_urls {
                assert!(shown.contains(url), "{url} in {shown}");
            }
        }
    }
}
