//! Outbound webhook subscriptions: which events of which jobs go where, and their deliveries.

use super::owned::{Owned, owned};
use super::{Caller, Entity, PageRequest, Service, ServiceError, ServiceResult, paged};
use crate::domain::{ChannelKind, Delivery, EventKind, Scope, Webhook, now_ms};
use crate::store::{NewWebhook, Page};
use crate::webhooks::email;

/// Subscription fields from a request; `None` leaves a field unchanged (or unset on create).
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<EventKind>>,
    pub secret: Option<String>,
    pub stack_id: Option<Option<i64>>,
    pub job_id: Option<Option<i64>>,
    pub kind: Option<ChannelKind>,
    /// `Some(None)`: no name.
    pub name: Option<Option<String>>,
    pub monitor_id: Option<Option<i64>>,
    /// An email channel's recipients (kept as its `mailto:` URL).
    pub to: Option<Vec<String>>,
}

/// A signing secret: `whsec_` + 64 hex characters (32 random bytes).
pub fn generate_secret() -> String {
    format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()))
}

fn validate_url(url: &str) -> ServiceResult<()> {
    let bad = |why: &str| Err(ServiceError::invalid("url", why));
    if url.len() > 2000 {
        return bad("must be at most 2000 characters");
    }
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return bad("must be an absolute http:// or https:// URL");
    };
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return bad("must be an absolute http:// or https:// URL");
    }
    Ok(())
}

fn validate_secret(secret: &str) -> ServiceResult<()> {
    let n = secret.chars().count();
    if !(16..=200).contains(&n) || secret.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ServiceError::invalid(
            "secret",
            "must be 16 to 200 characters without spaces (or leave it out to get a generated one)",
        ));
    }
    Ok(())
}

impl Service {
    /// Creates a subscription; the secret (given or generated) is returned here and never again.
    pub async fn create_webhook(
        &self,
        caller: &Caller,
        patch: WebhookPatch,
    ) -> ServiceResult<(Webhook, String)> {
        caller.require(Scope::Jobs)?;
        // Required of every kind but email (`apply_webhook_patch`).
        let url = patch.url.clone().unwrap_or_default();
        if patch.events.is_none() {
            return Err(ServiceError::invalid(
                "events",
                format!("is required: a list of {}", EventKind::choices()),
            ));
        }
        let mut fields = NewWebhook {
            url,
            events: Vec::new(),
            secret: patch.secret.clone().unwrap_or_else(generate_secret),
            stack_id: None,
            job_id: None,
            kind: ChannelKind::Webhook,
            name: None,
            monitor_id: None,
        };
        self.apply_webhook_patch(caller, &patch, &mut fields).await?;
        let id = self.store.insert_webhook(caller.user_id, &fields, now_ms()).await?;
        let secret = fields.secret;
        Ok((self.webhook(caller, id).await?.into_inner(), secret))
    }

    pub async fn update_webhook(
        &self,
        caller: &Caller,
        id: i64,
        patch: WebhookPatch,
    ) -> ServiceResult<Webhook> {
        caller.require(Scope::Jobs)?;
        let current = self.webhook(caller, id).await?.into_inner();
        let mut fields = NewWebhook {
            url: patch.url.clone().unwrap_or(current.url),
            events: current.events,
            secret: patch.secret.clone().unwrap_or(current.secret),
            stack_id: current.stack_id,
            job_id: current.job_id,
            kind: current.kind,
            name: current.name,
            monitor_id: current.monitor_id,
        };
        self.apply_webhook_patch(caller, &patch, &mut fields).await?;
        self.store.update_webhook(id, &fields, now_ms()).await?;
        self.webhook(caller, id).await.map(Owned::into_inner)
    }

    /// Validates the patch onto `fields` (url, secret and scope references included).
    async fn apply_webhook_patch(
        &self,
        caller: &Caller,
        patch: &WebhookPatch,
        fields: &mut NewWebhook,
    ) -> ServiceResult<()> {
        if let Some(kind) = patch.kind {
            fields.kind = kind;
        }
        if let Some(name) = &patch.name {
            if let Some(name) = name {
                super::validate_name("name", name)?;
            }
            fields.name = name.clone();
        }
        self.apply_destination(patch, fields)?;
        validate_secret(&fields.secret)?;
        if let Some(events) = &patch.events {
            let mut events = events.clone();
            events.sort_by_key(|e| e.as_str());
            events.dedup();
            if events.is_empty() {
                return Err(ServiceError::invalid(
                    "events",
                    format!("must name at least one of {}", EventKind::choices()),
                ));
            }
            fields.events = events;
        }
        if let Some(stack_id) = patch.stack_id {
            if let Some(id) = stack_id {
                self.owned_stack_ref(caller, id).await?;
            }
            fields.stack_id = stack_id;
        }
        if let Some(job_id) = patch.job_id {
            if let Some(id) = job_id {
                self.job(caller, id).await.map_err(|_| ServiceError::BadReference(Entity::Job))?;
            }
            fields.job_id = job_id;
        }
        if let Some(monitor_id) = patch.monitor_id {
            if let Some(id) = monitor_id {
                self.monitor(caller, id).await.map_err(|e| e.into_reference(Entity::Monitor))?;
            }
            fields.monitor_id = monitor_id;
        }
        Ok(())
    }

    /// Where deliveries go: a chat or webhook URL, or an email channel's recipients (`to`,
    /// kept as a `mailto:` URL), which only a server with SMTP settings accepts.
    fn apply_destination(&self, patch: &WebhookPatch, fields: &mut NewWebhook) -> ServiceResult<()> {
        if fields.kind != ChannelKind::Email {
            if patch.to.is_some() {
                return Err(ServiceError::invalid("to", "is only for channels of kind \"email\""));
            }
            if fields.url.is_empty() {
                return Err(ServiceError::invalid("url", "is required"));
            }
            return validate_url(&fields.url);
        }
        if !self.settings.email {
            return Err(ServiceError::invalid(
                "kind",
                "email channels need the server's SMTP settings (serve --smtp-url and --smtp-from), \
                 and this server has none",
            ));
        }
        if patch.url.is_some() {
            return Err(ServiceError::invalid(
                "url",
                "an email channel has no url: list its recipients in \"to\"",
            ));
        }
        match &patch.to {
            Some(to) => {
                let to = email::validate_recipients(to).map_err(|m| ServiceError::invalid("to", m))?;
                fields.url = email::mailto(&to);
            }
            None if email::recipients(&fields.url).is_none() => {
                return Err(ServiceError::invalid(
                    "to",
                    "is required for an email channel: one address or a list of them",
                ));
            }
            None => {}
        }
        Ok(())
    }

    pub async fn delete_webhook(&self, caller: &Caller, id: i64) -> ServiceResult<()> {
        caller.require(Scope::Jobs)?;
        self.webhook(caller, id).await?;
        self.store.delete_webhook(id).await?;
        Ok(())
    }

    /// The caller's subscription by id; someone else's is "not found".
    pub async fn webhook(&self, caller: &Caller, id: i64) -> ServiceResult<Owned<Webhook>> {
        owned(caller, self.store.webhook(id).await?)
    }

    pub async fn list_webhooks(&self, caller: &Caller, req: PageRequest) -> ServiceResult<Page<Webhook>> {
        paged(req, |limit, offset| self.store.list_webhooks(caller.user_id, limit, offset)).await
    }

    /// A subscription's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        webhook: &Webhook,
        req: PageRequest,
    ) -> ServiceResult<Page<Delivery>> {
        paged(req, |limit, offset| self.store.list_deliveries(webhook.id, limit, offset)).await
    }
}
