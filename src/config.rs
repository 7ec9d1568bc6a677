//! The client's configuration: named profiles (URL and access token) in a TOML
//! file that only its owner may read, and the environment variables that override them.
//!
//! ```toml
//! default_profile = "work"
//!
//! theme = "light"                # the terminal UI's colours: dark, light, high-contrast
//!
//! [profiles.work]
//! url = "https://keys.example.com"
//! token = "kdt_..."
//!
//! [profiles.ci]
//! url = "https://keys.example.com"
//! token_command = "pass show keydeck/ci"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::key::Secret;

/// Overrides the config file's path (for tests and unusual setups).
pub const CONFIG_ENV: &str = "KEYDECK_CONFIG";
/// Overrides the profile's URL (also read by clap for `--url`).
pub const URL_ENV: &str = "KEYDECK_URL";
/// Overrides the profile's token.
pub const TOKEN_ENV: &str = "KEYDECK_TOKEN";
/// Selects a profile (also read by clap for `--profile`).
pub const PROFILE_ENV: &str = "KEYDECK_PROFILE";
/// The profile used when none is named and the file names no default.
pub const DEFAULT_PROFILE: &str = "default";

/// Where a key service is, and the token to use there.
#[derive(Debug, Clone)]
pub struct Remote {
    pub url: String,
    pub token: Secret,
    /// The profile that supplied the URL or token, if one did.
    pub profile: Option<String>,
}

/// The config file's contents.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The profile used without `--profile` / `KEYDECK_PROFILE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    /// The terminal UI's palette (`--theme` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<crate::present::Palette>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// One key service and how to authenticate to it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An access token, stored as is (the file is readable by its owner only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// A shell command that prints the token, e.g. `pass show keydeck/work`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_command: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid config file: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// Group or others may read the file: it holds tokens, so it is not used.
    #[error(
        "warning: {path} can be read by other users (mode {mode:04o}), and it holds access tokens; \
         refusing to use it. Fix it with: chmod 600 '{path}'",
        path = path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no profile {name:?} in {}: run `keydeck login --profile {name}` to add it",
        path.display()
    )]
    UnknownProfile { name: String, path: PathBuf },
    #[error(
        "no access token for {url}: run `keydeck login` or set {TOKEN_ENV}{}",
        other_url_note(other_url_profile)
    )]
    NoToken {
        url: String,
        /// A profile that has a token, but for another URL.
        other_url_profile: Option<(String, String)>,
    },
    #[error("the token_command of profile {profile:?} failed: {message}")]
    TokenCommand { profile: String, message: String },
}

/// Why a profile's token was not used for this URL, if one was there.
fn other_url_note(other_url_profile: &Option<(String, String)>) -> String {
    match other_url_profile {
        Some((profile, profile_url)) => {
            format!(" (profile {profile:?}'s token is only sent to its own URL, {profile_url})")
        }
        None => String::new(),
    }
}

/// `$KEYDECK_CONFIG`, else `keydeck/config.toml` in the user's config dir
/// (`$XDG_CONFIG_HOME`, by default `~/.config`, on Linux).
pub fn config_path() -> PathBuf {
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("keydeck")
        .join("config.toml")
}

/// A non-empty environment variable.
fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl ConfigFile {
    /// Reads the file at `path`; a missing file is an empty configuration.
    /// A file that group or others can read is refused.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        check_private(path)?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses the file's text; the error is a message without the path.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e: toml::de::Error| e.message().to_owned())
    }

    /// Writes the file readable by its owner only (0600), creating its
    /// directory (0700) if needed, and replacing the old file atomically.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let write_error = |source| ConfigError::Write {
            path: path.to_owned(),
            source,
        };
        let text =
            Zeroizing::new(toml::to_string(self).map_err(|e| {
                write_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            })?);
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        crate::fs::create_private_dir(dir).map_err(write_error)?;
        crate::fs::replace_private(path, &[text.as_bytes()]).map_err(write_error)
    }

    /// The profile to use: the one named, else the file's default, else `default`.
    pub fn profile_name(&self, named: Option<&str>) -> String {
        named
            .filter(|n| !n.is_empty())
            .or(self.default_profile.as_deref())
            .unwrap_or(DEFAULT_PROFILE)
            .to_owned()
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), ConfigError> {
    Ok(())
}

/// The terminal UI's palette: `--theme` (or `KEYDECK_THEME`), else the config
/// file's `theme`, else dark.
pub fn resolve_theme(
    flag: Option<crate::present::Palette>,
) -> Result<crate::present::Palette, ConfigError> {
    match flag {
        Some(palette) => Ok(palette),
        None => Ok(ConfigFile::load(&config_path())?.theme.unwrap_or_default()),
    }
}

/// Where the key service is and which token to use there, from (highest first)
/// `--url` / `KEYDECK_URL`, `KEYDECK_TOKEN`, then the profile (`--profile` /
/// `KEYDECK_PROFILE`, else the file's `default_profile`, else `default`).
///
/// `Ok(None)` when no URL is configured anywhere (the terminal UI then starts
/// its embedded service). `url_flag` and `profile_flag` are the parsed flags,
/// which clap already fills from `KEYDECK_URL` and `KEYDECK_PROFILE`; those
/// variables are read here too for callers that pass `None`.
pub fn resolve_remote(
    url_flag: Option<&str>,
    profile_flag: Option<&str>,
) -> Result<Option<Remote>, ConfigError> {
    let path = config_path();
    let file = ConfigFile::load(&path)?;
    let url = url_flag.map(str::to_owned).or_else(|| env_value(URL_ENV));
    let profile = profile_flag
        .map(str::to_owned)
        .or_else(|| env_value(PROFILE_ENV));
    let env_token = env_value(TOKEN_ENV).map(|t| Secret::new(t.trim().to_owned()));
    resolve(
        &file,
        &path,
        url.as_deref(),
        profile.as_deref(),
        env_token,
        run_token_command,
    )
}

/// [`resolve_remote`] on a loaded file, with the environment passed in.
fn resolve(
    file: &ConfigFile,
    path: &Path,
    url_flag: Option<&str>,
    profile_flag: Option<&str>,
    env_token: Option<Secret>,
    token_command: impl Fn(&str, &str) -> Result<Secret, ConfigError>,
) -> Result<Option<Remote>, ConfigError> {
    let url_flag = url_flag.map(str::trim).filter(|u| !u.is_empty());
    let named = profile_flag.filter(|p| !p.is_empty()).is_some() || file.default_profile.is_some();
    let name = file.profile_name(profile_flag);
    let profile = file.profiles.get(&name);
    if profile.is_none() && named {
        return Err(ConfigError::UnknownProfile {
            name,
            path: path.to_owned(),
        });
    }
    let profile_url = profile.and_then(|p| p.url.as_deref());
    let Some(url) = url_flag.or(profile_url) else {
        return Ok(None);
    };
    let url = url.to_owned();
    let used_profile = profile.map(|_| name.clone());
    if let Some(token) = env_token {
        return Ok(Some(Remote {
            url,
            token,
            profile: used_profile,
        }));
    }
    // A profile's token goes only to that profile's URL.
    let same_url = profile_url.is_some_and(|p| same_url(p, &url));
    let token = match profile {
        Some(p) if same_url => match (&p.token, &p.token_command) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(command)) => Some(token_command(&name, command)?),
            (None, None) => None,
        },
        _ => None,
    };
    match token {
        Some(token) => Ok(Some(Remote {
            url,
            token,
            profile: used_profile,
        })),
        None => Err(ConfigError::NoToken {
            other_url_profile: profile
                .filter(|p| !same_url && (p.token.is_some() || p.token_command.is_some()))
                .and_then(|p| Some((name, p.url.clone()?))),
            url,
        }),
    }
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim().trim_end_matches('/') == b.trim().trim_end_matches('/')
}

/// Runs a profile's `token_command` with `sh -c`; its trimmed standard output is the token.
fn run_token_command(profile: &str, command: &str) -> Result<Secret, ConfigError> {
    let fail = |message: String| ConfigError::TokenCommand {
        profile: profile.to_owned(),
        message,
    };
    let output = std::process::Command::new("sh")
        .args(["-c", command])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| fail(e.to_string()))?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        return Err(fail(format!("it exited with {}", output.status)));
    }
    let text = std::str::from_utf8(&stdout).map_err(|_| fail("its output is not UTF-8".into()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(fail("it printed nothing".into()));
    }
    Ok(Secret::new(token.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> ConfigFile {
        toml::from_str(text).unwrap()
    }

    fn no_command(_: &str, _: &str) -> Result<Secret, ConfigError> {
        panic!("token_command must not run")
    }

    fn resolve_with(
        f: &ConfigFile,
        url: Option<&str>,
        profile: Option<&str>,
        env_token: Option<&str>,
    ) -> Result<Option<Remote>, ConfigError> {
        resolve(
            f,
            Path::new("/cfg.toml"),
            url,
            profile,
            env_token.map(|t| Secret::new(t.into())),
            no_command,
        )
    }

    const TWO: &str = r#"
        default_profile = "a"
        [profiles.a]
        url = "http://a.test"
        token = "kdt_a"
        [profiles.b]
        url = "http://b.test/"
        token = "kdt_b"
    "#;

    #[test]
    fn nothing_configured_means_no_remote() {
        let empty = ConfigFile::default();
        assert!(resolve_with(&empty, None, None, None).unwrap().is_none());
        // A token alone points nowhere.
        assert!(resolve_with(&empty, None, None, Some("kdt_x"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_default_profile_then_the_named_one() {
        let f = file(TWO);
        let r = resolve_with(&f, None, None, None).unwrap().unwrap();
        assert_eq!(
            (r.url.as_str(), r.token.expose(), r.profile.as_deref()),
            ("http://a.test", "kdt_a", Some("a"))
        );
        let r = resolve_with(&f, None, Some("b"), None).unwrap().unwrap();
        assert_eq!(
            (r.url.as_str(), r.token.expose()),
            ("http://b.test/", "kdt_b")
        );
        assert!(matches!(
            resolve_with(&f, None, Some("c"), None),
            Err(ConfigError::UnknownProfile { .. })
        ));
    }

    #[test]
    fn environment_overrides_the_profile() {
        let f = file(TWO);
        let r = resolve_with(&f, Some("http://c.test"), None, Some("kdt_c"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.url.as_str(), r.token.expose()),
            ("http://c.test", "kdt_c")
        );
        let r = resolve_with(&f, None, Some("b"), Some("kdt_env"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.url.as_str(), r.token.expose()),
            ("http://b.test/", "kdt_env")
        );
        // The same URL (give or take a slash) keeps the profile's token.
        let r = resolve_with(&f, Some("http://b.test"), Some("b"), None)
            .unwrap()
            .unwrap();
        assert_eq!(r.token.expose(), "kdt_b");
    }

    #[test]
    fn a_profile_token_is_never_sent_to_another_url() {
        let f = file(TWO);
        let e = resolve_with(&f, Some("http://evil.test"), None, None).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("no access token for http://evil.test"),
            "{text}"
        );
        assert!(
            text.contains("keydeck login") && text.contains(TOKEN_ENV),
            "{text}"
        );
    }

    #[test]
    fn a_url_without_a_token_says_how_to_set_one() {
        let f = file("[profiles.default]\nurl = \"http://a.test\"\n");
        let text = resolve_with(&f, None, None, None).unwrap_err().to_string();
        assert!(
            text.contains("keydeck login") && text.contains(TOKEN_ENV),
            "{text}"
        );
    }

    #[test]
    fn token_command_supplies_the_token() {
        let f =
            file("[profiles.default]\nurl = \"http://a.test\"\ntoken_command = \"echo kdt_cmd\"\n");
        let r = resolve(
            &f,
            Path::new("/cfg.toml"),
            None,
            None,
            None,
            run_token_command,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.token.expose(), "kdt_cmd");
        assert!(matches!(
            run_token_command("p", "exit 3"),
            Err(ConfigError::TokenCommand { .. })
        ));
    }

    #[test]
    fn tokens_never_show_in_debug() {
        let f = file(TWO);
        assert!(!format!("{f:?}").contains("kdt_a"));
    }

    #[cfg(unix)]
    #[test]
    fn saved_private_and_refused_when_exposed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        file(TWO).save(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let loaded = ConfigFile::load(&path).unwrap();
        assert_eq!(
            loaded.profiles["b"].token.as_ref().unwrap().expose(),
            "kdt_b"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = ConfigFile::load(&path).unwrap_err().to_string();
        assert!(
            text.contains("chmod 600") && text.contains("0644"),
            "{text}"
        );
        assert!(!text.contains("kdt_"), "{text}");
    }

    #[test]
    fn saving_replaces_a_planted_link_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "precious").unwrap();
        let path = dir.path().join("config.toml");
        std::os::unix::fs::symlink(&outside, &path).unwrap();
        file(TWO).save(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert!(ConfigFile::load(&path).unwrap().profiles.contains_key("b"));
        // Nothing left behind but the two files.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn the_theme_key_names_a_palette_and_survives_a_save() {
        use crate::present::Palette;
        let f = file("theme = \"high-contrast\"\n[profiles.a]\nurl = \"http://localhost:1\"\n");
        assert_eq!(f.theme, Some(Palette::HighContrast));
        assert_eq!(file("").theme, None);
        let error = ConfigFile::parse("theme = \"neon\"").unwrap_err();
        assert!(
            error.contains("dark") && error.contains("light") && error.contains("high-contrast"),
            "{error}"
        );
        let text = toml::to_string(&f).unwrap();
        assert_eq!(
            ConfigFile::parse(&text).unwrap().theme,
            Some(Palette::HighContrast)
        );
        assert_eq!(resolve_theme(Some(Palette::Light)).unwrap(), Palette::Light);
    }
}
