//! The command line: every command and flag, as clap definitions.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::service::store::{Plan, Role};

#[derive(Debug, Parser)]
#[command(
    name = "keydeck",
    version,
    about = "Manage your organisation's API keys from the terminal, and run the key service behind them",
    after_help = "Examples:\n  \
      keydeck serve                                   # the key service on 127.0.0.1:8080\n  \
      keydeck serve --database-url postgres://db/keys # several replicas on one PostgreSQL\n  \
      keydeck admin users add --org default --email ops@example.com --role admin"
)]
pub struct Cli {
    /// Directory for the embedded/served SQLite database, the bootstrap admin token and the UI's log [default: the user's data dir, e.g. ~/.local/share/keydeck].
    #[arg(long, env = "KEYDECK_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
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
        keydeck serve --database-url postgres://keydeck@db/keydeck --trusted-proxy 127.0.0.1\n\n\
        On first start with an empty database, organisation 'default' (paid plan) and an admin\n\
        are created; the admin's access token is written to DATA_DIR/admin-token (mode 0600).")]
    Serve(ServeArgs),
    /// Operator commands on the service's database: organisations, users, demo data.
    Admin(AdminArgs),
}

/// Which database the service uses (the data dir is the global `--data-dir`).
#[derive(Debug, Clone, Args)]
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

impl StorageArgs {
    pub fn database_url(&self, data_dir: &std::path::Path) -> String {
        crate::service::database_url(self.database_url.as_deref(), data_dir)
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
    /// Failed key checks per client address per minute before answering 429 (0: no limit).
    #[arg(long, env = "KEYDECK_MAX_FAILED_AUTH", default_value_t = 20)]
    pub max_failed_auth: u32,
    /// A proxy whose X-Real-IP / X-Forwarded-For is believed (repeatable), e.g. nginx on 127.0.0.1.
    #[arg(
        long = "trusted-proxy",
        env = "KEYDECK_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpAddr>,
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
    #[command(subcommand)]
    Orgs(OrgCommand),
    /// Users, their roles and access tokens.
    #[command(subcommand)]
    Users(UserCommand),
    /// Fill an organisation with demo keys in every status (for screenshots and benchmarks).
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
    List {
        #[arg(long)]
        org: Option<String>,
    },
    /// Replace a user's access token; the new one is printed once and the old one stops working.
    ResetToken { email: String },
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
}
