//! `keydeck login` and `keydeck logout`: save a key service URL and a checked
//! access token as a profile of the config file, and forget it again.

use super::{client_for, prompt, refuse_plain_http, CliError, Target};
use crate::api::KeyListQuery;
use crate::cli::LoginArgs;
use crate::config::{self, ConfigFile, Profile};
use crate::key::Secret;

pub async fn login(args: LoginArgs, target: Target<'_>) -> Result<(), CliError> {
    let path = config::config_path();
    let mut file = ConfigFile::load(&path)?;
    let name = file.profile_name(target.profile);
    let known_url = file.profiles.get(&name).and_then(|p| p.url.clone());
    let url = match target.url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => url.to_owned(),
        None if prompt::interactive() && !args.token_stdin => {
            let question = match &known_url {
                Some(url) => format!("URL [{url}]: "),
                None => "URL: ".to_owned(),
            };
            let answer = prompt::ask(&question)?;
            match (answer.trim(), known_url) {
                ("", Some(url)) => url,
                ("", None) => return Err(CliError::usage("a URL is required")),
                (answer, _) => answer.to_owned(),
            }
        }
        None => {
            return Err(CliError::usage(
                "--url is required when the URL cannot be asked for (standard input is not a terminal, or is the token)",
            ))
        }
    };
    let url = url.trim_end_matches('/').to_owned();
    refuse_plain_http(&url, target)?;
    let token = if args.token_stdin {
        prompt::read_stdin_secret()?
    } else if prompt::interactive() {
        prompt::ask_hidden("Token: ")?
    } else {
        return Err(CliError::usage(
            "pass --token-stdin to read the token from standard input (it is not a terminal)",
        ));
    };
    if token.expose().is_empty() {
        return Err(CliError::usage("the token is empty"));
    }
    check(&url, token.clone()).await?;
    let first = file.profiles.is_empty();
    file.profiles.insert(
        name.clone(),
        Profile {
            url: Some(url.clone()),
            token: Some(token),
            token_command: None,
        },
    );
    if first && file.default_profile.is_none() && name != config::DEFAULT_PROFILE {
        file.default_profile = Some(name.clone());
    }
    file.save(&path)?;
    eprintln!(
        "Logged in to {url}; saved as profile {name:?} in {}.",
        path.display()
    );
    Ok(())
}

/// The token works at `url` as an admin's of a paid organisation: it may list keys.
async fn check(url: &str, token: Secret) -> Result<(), CliError> {
    let client = client_for(url, token)?;
    let query = KeyListQuery {
        limit: Some(1),
        ..KeyListQuery::default()
    };
    client.list_keys(&query).await.map_err(|e| {
        let mut e = CliError::from(e);
        e.message.push_str("\nNothing was saved.");
        e
    })?;
    Ok(())
}

pub fn logout(target: Target<'_>) -> Result<(), CliError> {
    let path = config::config_path();
    let mut file = ConfigFile::load(&path)?;
    let name = file.profile_name(target.profile);
    if file.profiles.remove(&name).is_none() {
        eprintln!(
            "Not logged in: there is no profile {name:?} in {}.",
            path.display()
        );
        return Ok(());
    }
    if file.default_profile.as_deref() == Some(name.as_str()) {
        file.default_profile = None;
    }
    file.save(&path)?;
    eprintln!(
        "Logged out: removed profile {name:?} from {}.",
        path.display()
    );
    Ok(())
}
