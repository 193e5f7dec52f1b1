//! Email channels: their recipients (the mail a message becomes is `message::email_shape`, sent
//! by `smtp`).
//!
//! An email channel is a subscription like the others: its deliveries are queued, claimed and
//! retried by the same worker; the worker hands them to SMTP instead of POSTing them. The
//! recipients are kept as the subscription's destination URI, `mailto:a@x.org,b@y.org`
//! (RFC 6068), so the queue and its claims need nothing new. A node without SMTP settings
//! claims no mail (`Store::claim_deliveries`), so in a cluster only the nodes that can send
//! it do.

use lettre::Address;

/// The most recipients one channel has.
pub const MAX_RECIPIENTS: usize = 20;
const MAILTO: &str = "mailto:";

/// The channel's destination URI for these (validated) recipients.
pub fn mailto(to: &[String]) -> String {
    format!("{MAILTO}{}", to.join(","))
}

/// The recipients of an email channel's destination URI (`None`: not a `mailto:` URI).
pub fn recipients(url: &str) -> Option<Vec<String>> {
    let list = url.strip_prefix(MAILTO)?;
    Some(list.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect())
}

/// Checks and normalises a channel's `to`: 1 to [`MAX_RECIPIENTS`] plain addresses
/// (`ops@example.com`), duplicates dropped. The error says what is wrong with which.
pub fn validate_recipients(to: &[String]) -> Result<Vec<String>, String> {
    if to.is_empty() || to.len() > MAX_RECIPIENTS {
        return Err(format!("must list 1 to {MAX_RECIPIENTS} email addresses"));
    }
    let mut out: Vec<String> = Vec::with_capacity(to.len());
    for raw in to {
        let address = raw.trim();
        // `,` separates them in the mailto: URI; `?` and `%` would start its query or an escape.
        let parsed = address.parse::<Address>().ok().filter(|_| {
            address.len() <= 254
                && !address.contains([',', '?', '%'])
                && !address.contains(char::is_whitespace)
        });
        let Some(parsed) = parsed else {
            let shown: String = address.chars().take(100).collect();
            return Err(format!("{shown:?} is not an email address like ops@example.com"));
        };
        let address = parsed.to_string();
        if !out.contains(&address) {
            out.push(address);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_round_trip_through_the_mailto_uri() {
        let to = validate_recipients(&[
            " ops@example.com".into(),
            "b@example.org".into(),
            "ops@example.com".into(),
        ])
        .unwrap();
        assert_eq!(to, ["ops@example.com", "b@example.org"]);
        assert_eq!(recipients(&mailto(&to)).unwrap(), to);
        assert_eq!(recipients("https://x"), None);
        for bad in ["", "nobody", "a@b,c@d", "a b@c.d", "x?y@z.org"] {
            assert!(validate_recipients(&[bad.to_string()]).is_err(), "{bad}");
        }
        assert!(validate_recipients(&[]).is_err());
    }
}
