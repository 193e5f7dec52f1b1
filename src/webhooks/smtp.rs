//! The SMTP server email channels are sent through (`serve --smtp-url …`): its settings,
//! checked at startup, and the sending of one delivery (see `email` for what is sent).

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message as Mail};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::Value;

/// How the connection to the SMTP server is secured.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, required (the default for `smtp://`; port 587).
    Starttls,
    /// TLS from the first byte (the default for `smtps://`; port 465).
    Tls,
    /// No encryption: only for a relay on this machine or a private network (port 25).
    None,
}

/// `serve`'s SMTP flags. The password is never a flag (command lines are visible to every
/// user of the machine): it comes from a file or `CRONSTACK_SMTP_PASSWORD`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SmtpArgs {
    /// The SMTP server email channels send through: `smtp://HOST[:PORT]` (STARTTLS) or
    /// `smtps://HOST[:PORT]` (TLS). Without it, email channels are refused.
    #[arg(long, env = "CRONSTACK_SMTP_URL", value_name = "URL")]
    pub smtp_url: Option<String>,
    /// Overrides the URL's security: starttls, tls, or none (plain, for a local relay).
    #[arg(long, env = "CRONSTACK_SMTP_TLS", value_enum)]
    pub smtp_tls: Option<SmtpTls>,
    /// The sender of notification mail: `cron@example.com` or `cronstack <cron@example.com>`.
    #[arg(long, env = "CRONSTACK_SMTP_FROM", value_name = "ADDRESS")]
    pub smtp_from: Option<String>,
    /// SMTP AUTH user name; its password comes from `--smtp-password-file` or the
    /// `CRONSTACK_SMTP_PASSWORD` environment variable.
    #[arg(long, env = "CRONSTACK_SMTP_USERNAME", value_name = "NAME")]
    pub smtp_username: Option<String>,
    /// A file whose first line is the SMTP password.
    #[arg(long, env = "CRONSTACK_SMTP_PASSWORD_FILE", value_name = "PATH")]
    pub smtp_password_file: Option<PathBuf>,
}

/// The SMTP server mail goes through. Its `Debug` names the server, never the credentials.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("server", &self.server).field("from", &self.from.to_string()).finish()
    }
}

impl Mailer {
    /// The mailer `args` describe (`None` without `--smtp-url`); `timeout` bounds each send.
    pub fn from_args(args: &SmtpArgs, timeout: Duration) -> anyhow::Result<Option<Mailer>> {
        let password_env = std::env::var("CRONSTACK_SMTP_PASSWORD").ok().filter(|p| !p.is_empty());
        Self::build(args, password_env, timeout)
    }

    fn build(
        args: &SmtpArgs,
        password_env: Option<String>,
        timeout: Duration,
    ) -> anyhow::Result<Option<Mailer>> {
        use anyhow::{Context as _, bail};
        let Some(raw) = args.smtp_url.as_deref().filter(|u| !u.is_empty()) else {
            if args.smtp_from.is_some() || args.smtp_username.is_some() {
                bail!("--smtp-from and --smtp-username need --smtp-url (the SMTP server)");
            }
            return Ok(None);
        };
        let url = reqwest::Url::parse(raw)
            .map_err(|_| anyhow::anyhow!("--smtp-url: not a URL like smtp://mail.example.com:587"))?;
        let default_tls = match url.scheme() {
            "smtp" => SmtpTls::Starttls,
            "smtps" => SmtpTls::Tls,
            _ => bail!("--smtp-url: use smtp://HOST[:PORT] (STARTTLS) or smtps://HOST[:PORT] (TLS)"),
        };
        if !url.username().is_empty() || url.password().is_some() {
            // A URL is printed in too many places to carry a password.
            bail!(
                "--smtp-url: no credentials in the URL; use --smtp-username with --smtp-password-file or CRONSTACK_SMTP_PASSWORD"
            );
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            bail!("--smtp-url: only smtp[s]://HOST[:PORT], no path or query");
        }
        let host = url.host_str().filter(|h| !h.is_empty()).context("--smtp-url: no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let tls = args.smtp_tls.unwrap_or(default_tls);
        let port = url.port().unwrap_or(match tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        let from_text = args
            .smtp_from
            .as_deref()
            .context("--smtp-from is required with --smtp-url (the sender of notification mail)")?;
        let from: Mailbox = from_text.parse().map_err(|_| {
            anyhow::anyhow!("--smtp-from: {from_text:?} is not an address like cron@example.com")
        })?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .timeout(Some(timeout));
        builder = match tls {
            SmtpTls::None => builder.tls(Tls::None),
            SmtpTls::Starttls => builder.tls(Tls::Required(TlsParameters::new(host.clone())?)),
            SmtpTls::Tls => builder.tls(Tls::Wrapper(TlsParameters::new(host.clone())?)),
        };
        if let Some(user) = &args.smtp_username {
            let password = match &args.smtp_password_file {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("--smtp-password-file {}", path.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                None => password_env.context(
                    "--smtp-username needs a password: --smtp-password-file or CRONSTACK_SMTP_PASSWORD",
                )?,
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        } else if args.smtp_password_file.is_some() {
            bail!("--smtp-password-file needs --smtp-username");
        }
        let tls_name = match tls {
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        };
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
            server: format!("{host}:{port} (tls: {tls_name})"),
        }))
    }

    /// Where mail goes, for the log: `host:port (tls: …)`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends a delivery body (`{"subject", "text"}`, see `message::email_shape`) to `to`. The
    /// error says what the server (or the network) answered.
    pub async fn send(&self, to: &[String], payload: &str) -> Result<(), String> {
        let body: Value = serde_json::from_str(payload).map_err(|e| format!("not a mail body: {e}"))?;
        let subject = body["subject"].as_str().unwrap_or("[cronstack] notification");
        let text = body["text"].as_str().unwrap_or_default().to_string();
        let mut mail =
            Mail::builder().from(self.from.clone()).subject(subject).header(ContentType::TEXT_PLAIN);
        for address in to {
            let mailbox: Mailbox = address.parse().map_err(|_| format!("not an address: {address:?}"))?;
            mail = mail.to(mailbox);
        }
        let mail = mail.body(text).map_err(|e| format!("building the mail: {e}"))?;
        self.transport.send(mail).await.map(|_| ()).map_err(|e| super::with_causes(format!("SMTP: {e}"), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_settings_are_checked_and_never_carry_a_password_in_the_url() {
        let args = |url: &str| SmtpArgs {
            smtp_url: Some(url.into()),
            smtp_from: Some("cron@example.com".into()),
            ..SmtpArgs::default()
        };
        let t = Duration::from_secs(5);
        assert!(Mailer::build(&args("smtp://u:p@mail.example.com"), None, t).is_err());
        assert!(Mailer::build(&args("http://mail.example.com"), None, t).is_err());
        let m = Mailer::build(&args("smtps://mail.example.com"), None, t).unwrap().unwrap();
        assert_eq!(m.server(), "mail.example.com:465 (tls: tls)");
        let m = Mailer::build(&args("smtp://mail.example.com"), None, t).unwrap().unwrap();
        assert_eq!(m.server(), "mail.example.com:587 (tls: starttls)");
        let mut plain = args("smtp://127.0.0.1:2525");
        plain.smtp_tls = Some(SmtpTls::None);
        assert_eq!(Mailer::build(&plain, None, t).unwrap().unwrap().server(), "127.0.0.1:2525 (tls: none)");
        let mut user = args("smtp://mail.example.com");
        user.smtp_username = Some("cron".into());
        assert!(Mailer::build(&user, None, t).is_err(), "a user name without a password");
        let m = Mailer::build(&user, Some("s3cret".into()), t).unwrap().unwrap();
        assert!(!format!("{m:?}").contains("s3cret"));
        let no_from = SmtpArgs { smtp_url: Some("smtp://mail.example.com".into()), ..SmtpArgs::default() };
        assert!(Mailer::build(&no_from, None, t).is_err());
        assert!(Mailer::build(&SmtpArgs::default(), None, t).unwrap().is_none());
    }
}
