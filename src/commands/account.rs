//! `weft account …`: invites (a printed link), listing, disabling, deleting accounts, password
//! reset links and the signing-key rotation. Each command sends one `AccountsAdmin` message to
//! a one-thread accounts actor on the configured tokenserver database and prints the outcome.

use clap::Subcommand;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use weft_actors::accounts::{AccountError, AdminOp, AdminReply};

use crate::commands::serve::startup;
use crate::config::Settings;

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create a single-use invite for a new account and print its link.
    Invite {
        /// Only this email may use the invite.
        #[arg(long)]
        email: Option<String>,
        /// Lifetime, e.g. 30m, 12h, 7d (default: accounts.invite_ttl_hours).
        #[arg(long, value_parser = parse_duration_ms)]
        expires: Option<i64>,
    },
    /// Show every account.
    List,
    /// Refuse sign-ins and revoke every session of an account (email or uid).
    Disable { account: String },
    /// Allow a disabled account to sign in again.
    Enable { account: String },
    /// Delete an account: its sessions are revoked and its tokenserver user retired, so no
    /// token is issued for it again and the storage purge may remove its synced data.
    Delete { account: String },
    /// Print a single-use link that sets a new password. Sync data encrypted with the old
    /// password cannot be recovered: the account starts over with new keys.
    ResetPasswordLink {
        account: String,
        #[arg(long, value_parser = parse_duration_ms)]
        expires: Option<i64>,
    },
    /// One phase of the signing-key rotation (see `accounts/signing_key.rs`); restart after it.
    RotateSigningKey,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountAdminError {
    #[error(transparent)]
    Startup(#[from] startup::StartupError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Unavailable(#[from] weft_actors::ActorUnavailable),
    #[error(transparent)]
    SigningKey(#[from] crate::accounts::signing_key::SigningKeyError),
}

/// A `--expires` value that is not a positive duration.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0:?} is not a positive duration like 90s, 30m, 12h or 7d")]
pub struct BadDuration(String);

/// `30m`, `12h`, `7d`, `90s` or plain seconds, as milliseconds.
pub(crate) fn parse_duration_ms(text: &str) -> Result<i64, BadDuration> {
    let text = text.trim();
    let bad = || BadDuration(text.to_string());
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let value: i64 = digits.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    match value.checked_mul(unit_ms) {
        Some(ms) if ms > 0 => Ok(ms),
        _ => Err(bad()),
    }
}

fn send(settings: &Settings, op: AdminOp) -> Result<AdminReply, AccountAdminError> {
    let mut plan = startup::plan_accounts(settings)?;
    plan.config.threads = 1;
    // An admin command pushes nothing.
    plan.config.push.enabled = false;
    let pool = startup::tokenserver_pool(settings, settings.run_migrations)?;
    actix::System::new().block_on(async move {
        let actor = plan.start(pool)?;
        Ok(actor.admin(op).await?)
    })
}

fn link(settings: &Settings, param: &str, code: &str, email: Option<&str>) -> String {
    let mut url = format!("{}/?{param}={code}", settings.public_url.trim_end_matches('/'));
    if let Some(email) = email {
        url.push_str("&email=");
        url.extend(utf8_percent_encode(email, NON_ALPHANUMERIC));
    }
    url
}

fn expires_text(ms: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let hours = (ms - now) as f64 / 3_600_000.0;
    format!("expires in {hours:.1} h")
}

pub fn run(settings: &Settings, command: AccountCommand) -> Result<(), AccountAdminError> {
    if !settings.accounts.enabled {
        return Err(AccountAdminError::Invalid(
            "local accounts are off: set accounts.enabled = true (WEFT_ACCOUNTS_ENABLED=true)".into(),
        ));
    }
    let default_ttl = i64::try_from(settings.accounts.invite_ttl_hours).unwrap_or(i64::MAX / 4) * 3_600_000;
    match command {
        AccountCommand::Invite { email, expires } => {
            let op = AdminOp::Invite { email, ttl_ms: expires.unwrap_or(default_ttl) };
            if let AdminReply::Code { code, email, expires_at } = send(settings, op)? {
                println!("{}", link(settings, "invite", &code, email.as_deref()));
                println!(
                    "single use, {}; open it in Firefox to create the account",
                    expires_text(expires_at)
                );
            }
        }
        AccountCommand::ResetPasswordLink { account, expires } => {
            let op = AdminOp::ResetLink { who: account, ttl_ms: expires.unwrap_or(default_ttl) };
            if let AdminReply::Code { code, email, expires_at } = send(settings, op)? {
                println!("{}", link(settings, "reset", &code, email.as_deref()));
                println!(
                    "single use, {}; the new password gets new keys: data synced before is not recoverable",
                    expires_text(expires_at)
                );
            }
        }
        AccountCommand::List => {
            if let AdminReply::Accounts(accounts) = send(settings, AdminOp::List)? {
                if accounts.is_empty() {
                    println!("no accounts");
                }
                for a in accounts {
                    let state = if a.disabled { "disabled" } else { "active" };
                    println!("{}  {:<8}  {}", a.uid, state, a.email);
                }
            }
        }
        AccountCommand::Disable { account } => {
            done(send(settings, AdminOp::Disable { who: account })?, "disabled; sessions revoked")
        }
        AccountCommand::Enable { account } => {
            done(send(settings, AdminOp::Enable { who: account })?, "enabled")
        }
        AccountCommand::Delete { account } => done(
            send(settings, AdminOp::Delete { who: account })?,
            "deleted; sessions revoked, tokenserver user retired (its storage is left to the purge)",
        ),
        AccountCommand::RotateSigningKey => {
            let message = crate::accounts::signing_key::rotate(&settings.accounts_signing_key_file())?;
            println!("{message}");
        }
    }
    Ok(())
}

fn done(reply: AdminReply, what: &str) {
    if let AdminReply::Done { uid } = reply {
        println!("account {uid} {what}");
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("90"), Ok(90_000));
        assert_eq!(parse_duration_ms("30m"), Ok(1_800_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert!(parse_duration_ms("0h").is_err());
        assert!(parse_duration_ms("3w").is_err());
        assert!(parse_duration_ms("h").is_err());
    }
}
