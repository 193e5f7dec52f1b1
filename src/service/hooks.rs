//! Inbound hooks (Kragle): a stack run by an HTTP call, its request document on stdin, its
//! stdout as the answer.
//!
//! The runs are recorded under the stack's **hook job**: one job per stack (kind `hook`),
//! created on the first hook or exec call, never scheduled, not listed among the stack's jobs
//! and not changeable through the job endpoints, but readable like any job
//! (`GET /jobs/byid/<id>`, `/jobs/byid/<id>/runs`, `/runs/<id>/log`). It always runs the
//! stack's command, with the stack's environment and working directory, stopped after the hook
//! timeout.

use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use super::{Caller, Entity, Service, ServiceError, ServiceResult};
use crate::domain::{
    HookAccess, HookMethod, RunStatus, Scope, Stack, TriggerKind, new_uid, now_ms, parse_output,
};
use crate::engine::{Launch, RunResult};
use crate::rate_limit::Quota;

/// Request headers never passed to the command: they are credentials.
const HIDDEN_HEADERS: [&str; 3] = ["authorization", "cookie", HOOK_TOKEN_HEADER];

/// Where a `token` hook's token may come instead of `?token=`.
pub const HOOK_TOKEN_HEADER: &str = "x-cronstack-hook-token";

/// Who calls a hook, and how: what [`Service::admit_hook`] decides on.
pub struct HookCall<'a> {
    pub method: HookMethod,
    /// The hook token given (`?token=` or the header).
    pub token: Option<&'a str>,
    /// The caller the request's credentials stand for, if any.
    pub caller: Option<&'a Caller>,
}

/// A hook call that passed [`Service::admit_hook`]: only it makes one.
pub struct AdmittedHook {
    stack: Stack,
    access: HookAccess,
    /// The hook rate limit's window after this call.
    pub quota: Quota,
}

impl AdmittedHook {
    /// The method the stack's hook takes.
    pub fn stack_method(&self) -> HookMethod {
        self.stack.webhook_method
    }
}

/// What the HTTP layer read from a hook (or exec) call, as Kragle's request document has it:
/// query parameters, form fields, the JSON body (`{}` when none) and headers, each a list of
/// pairs in order.
pub struct HookRequest {
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub json: Value,
    pub headers: Vec<(String, String)>,
}

impl HookRequest {
    /// Kragle's request document: `{"GET": {...}, "POST": {...}, "JSON": <body or {}>,
    /// "HEADERS": {...}}`. A parameter (or header) given more than once becomes an array of
    /// its values, in order. Credential headers are left out, and a token hook's `token`
    /// parameter.
    fn document(self, drop_token: bool) -> Value {
        let get = multi_map(self.query.into_iter().filter(|(k, _)| !(drop_token && k == "token")));
        let headers =
            multi_map(self.headers.into_iter().filter(|(name, _)| !HIDDEN_HEADERS.contains(&name.as_str())));
        json!({ "GET": get, "POST": multi_map(self.form), "JSON": self.json, "HEADERS": headers })
    }
}

/// Single values as strings; repeated keys as arrays.
fn multi_map(pairs: impl IntoIterator<Item = (String, String)>) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in pairs {
        match map.get_mut(&key) {
            None => {
                map.insert(key, Value::String(value));
            }
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(first) => {
                let first = first.take();
                map.insert(key, Value::Array(vec![first, Value::String(value)]));
            }
        }
    }
    map
}

/// `token` access: the stack's hook token, compared in constant time.
fn check_hook_token(stack: &Stack, given: Option<&str>) -> ServiceResult<()> {
    let (Some(expected), Some(given)) = (stack.webhook_token.as_deref(), given) else {
        return Err(ServiceError::Unauthenticated);
    };
    if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        Ok(())
    } else {
        Err(ServiceError::Unauthenticated)
    }
}

/// How a hook's (or exec's) run ended.
#[derive(Debug, Clone)]
pub struct HookAnswer {
    pub run_id: i64,
    pub job_id: i64,
    /// stdout, parsed as JSON when it is JSON; else the error message.
    pub result: Result<Value, String>,
}

impl Service {
    /// Admits a call of stack `id`'s hook, in Kragle's order: the stack has a hook (else
    /// "not found": anyone may ask), the method is the stack's `webhook_method`, the caller
    /// passes its access mode (`public`; `token`: the stack's hook token, compared in constant
    /// time; `user`: the owner's own credentials, anyone else's answered as "not found"), and
    /// the stack's hook rate limit is not spent. The body is read only once admitted.
    pub async fn admit_hook(&self, id: i64, call: HookCall<'_>) -> ServiceResult<AdmittedHook> {
        let stack = self.store.stack(id).await?.ok_or(ServiceError::NotFound(Entity::Stack))?;
        let access = stack.webhook.ok_or(ServiceError::NotFound(Entity::Stack))?;
        if call.method != stack.webhook_method {
            return Err(ServiceError::HookMethod(stack.webhook_method));
        }
        match access {
            HookAccess::Public => {}
            HookAccess::Token => check_hook_token(&stack, call.token)?,
            HookAccess::User => {
                let caller = call.caller.ok_or(ServiceError::Unauthenticated)?;
                if caller.user_id != stack.owner {
                    return Err(ServiceError::NotFound(Entity::Stack));
                }
                caller.require(Scope::Public)?;
            }
        }
        let quota = self.hit(&self.limits().hooks, &format!("hook:{}", stack.id)).await?;
        Ok(AdmittedHook { stack, access, quota })
    }

    /// Runs an admitted hook call: the stack's command with Kragle's request document on stdin.
    pub async fn call_hook(&self, hook: &AdmittedHook, request: HookRequest) -> ServiceResult<HookAnswer> {
        let document = request.document(hook.access == HookAccess::Token);
        self.run_stack(&hook.stack, &document, TriggerKind::Webhook).await
    }

    /// Kragle's `exec`: the owner runs the stack by hand, hook or no hook.
    pub async fn exec_stack(
        &self,
        caller: &Caller,
        id: i64,
        request: HookRequest,
    ) -> ServiceResult<HookAnswer> {
        caller.require(Scope::Public)?;
        let stack = self.stack(caller, id).await?;
        self.run_stack(&stack, &request.document(false), TriggerKind::RunNow).await
    }

    /// Replaces the stack's hook token (Kragle's `token_refresh`); the old one stops working.
    pub async fn refresh_hook_token(&self, caller: &Caller, id: i64) -> ServiceResult<String> {
        caller.require(Scope::Jobs)?;
        let stack = self.stack(caller, id).await?;
        let token = new_uid();
        self.store.set_webhook_token(stack.id, &token, now_ms()).await?;
        Ok(token)
    }

    /// Records a run of the stack's hook job, runs it and waits for its end.
    async fn run_stack(
        &self,
        stack: &Stack,
        document: &Value,
        trigger: TriggerKind,
    ) -> ServiceResult<HookAnswer> {
        let job = self.store.hook_job(stack, now_ms()).await?;
        let run = self.new_run(&job, trigger, Vec::new()).await?;
        let mut runs_as = job.clone();
        runs_as.command = None;
        runs_as.timeout_s = Some(self.settings.hook_timeout_s.max(1) as i64);
        let (done, ended) = oneshot::channel();
        let mut launch = Launch::new(run.clone(), runs_as, stack.clone());
        launch.stdin = Some(serde_json::to_vec(document).expect("JSON serializes"));
        launch.capture_stdout = true;
        launch.done = Some(done);
        self.engine.launch(launch)?;
        let ended = ended
            .await
            .map_err(|_| ServiceError::Unavailable("the node stopped before the run ended".into()))?;
        Ok(HookAnswer { run_id: run.id, job_id: job.id, result: self.hook_result(&ended) })
    }

    fn hook_result(&self, r: &RunResult) -> Result<Value, String> {
        let run = r.run_id;
        match (r.status, r.exit_code) {
            (RunStatus::Succeeded, _) => Ok(parse_output(r.stdout.as_deref().unwrap_or(""))),
            (RunStatus::TimedOut, _) => Err(format!(
                "the command timed out after {} s (run {run})",
                self.settings.hook_timeout_s.max(1)
            )),
            (RunStatus::Failed, Some(code)) => {
                Err(format!("the command failed with exit code {code} (run {run})"))
            }
            // Never started: the log holds why (the node is shutting down, a bad workdir…).
            (RunStatus::Failed, None) if r.stdout.is_none() => Err(format!("{} (run {run})", r.log.trim())),
            (RunStatus::Failed, None) => Err(format!("the command was ended by a signal (run {run})")),
            (status, _) => Err(format!("the run ended {status} (run {run})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::multi_map;
    use serde_json::json;

    #[test]
    fn repeated_keys_become_arrays() {
        let pairs =
            [("a", "1"), ("b", "2"), ("a", "3"), ("a", "4")].map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(serde_json::Value::Object(multi_map(pairs)), json!({"a": ["1", "3", "4"], "b": "2"}));
    }
}
