//! The dashboard's overview: every job of the caller in one filtered, paged table, the jobs
//! needing attention first, each with its stack, its schedule and the outcomes of its last
//! runs — one request per page instead of one per job.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::{Caller, PageRequest, Service, ServiceError, ServiceResult};
use crate::domain::{Health, Job, RunStatus, Schedule, Stack};

/// How many recent outcomes each row carries (the dashboard's strip).
pub const RECENT_RUNS: i64 = 20;

/// The most rows a page may have.
pub const MAX_PER_PAGE: i64 = 200;

/// What to show: a name filter (case-insensitive substring), a stack, a page.
#[derive(Debug, Clone, Default)]
pub struct OverviewQuery {
    pub name: Option<String>,
    pub stack_id: Option<i64>,
    pub page: PageRequest,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { page: 1, per_page: 50 }
    }
}

pub struct OverviewRow {
    pub job: Job,
    pub stack: Option<Stack>,
    pub schedule: Option<Schedule>,
    /// Newest first, at most [`RECENT_RUNS`].
    pub recent: Vec<RunStatus>,
}

pub struct Overview {
    /// Jobs matching the filters (all pages).
    pub total: i64,
    pub rows: Vec<OverviewRow>,
    /// Every stack of the caller, by name (for the stack filter).
    pub stacks: Vec<Stack>,
}

/// Jobs needing attention first: failing, stuck, late; then healthy ones; paused ones last.
fn attention_rank(h: Health) -> u8 {
    match h {
        Health::Failing => 0,
        Health::Stuck => 1,
        Health::Late => 2,
        Health::Ok => 3,
        Health::Paused => 4,
    }
}

impl Service {
    pub async fn overview(&self, caller: &Caller, q: OverviewQuery) -> ServiceResult<Overview> {
        let PageRequest { page, per_page } = q.page;
        if page < 1 {
            return Err(ServiceError::invalid("page", "must be an integer of 1 or more"));
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(ServiceError::invalid("per_page", format!("must be between 1 and {MAX_PER_PAGE}")));
        }
        let mut stacks = self.store.list_stacks(caller.user_id, i64::MAX, 0).await?.items;
        stacks.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.id.cmp(&b.id)));
        if let Some(id) = q.stack_id
            && !stacks.iter().any(|s| s.id == id)
        {
            return Err(ServiceError::invalid("stack", format!("no stack of yours has id {id}")));
        }
        // The health of every job decides the order, so all of the caller's jobs are read
        // (from the page cache when nothing changed); rows are built for one page only.
        let jobs = self.store.list_jobs(caller.user_id, i64::MAX, 0).await?;
        let needle = q.name.as_deref().map(str::to_lowercase).filter(|n| !n.is_empty());
        let mut matching: Vec<&Job> = jobs
            .items
            .iter()
            .filter(|j| q.stack_id.is_none_or(|s| j.stack_id == s))
            .filter(|j| needle.as_ref().is_none_or(|n| j.display_name().to_lowercase().contains(n)))
            .collect();
        matching.sort_by_cached_key(|j| (attention_rank(j.health()), j.display_name().to_lowercase(), j.id));
        let total = matching.len() as i64;
        let start = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX);
        let shown: Vec<Job> = matching.into_iter().skip(start).take(per_page as usize).cloned().collect();

        let ids: Vec<i64> = shown.iter().map(|j| j.id).collect();
        let mut recent = self.store.recent_outcomes(&ids, RECENT_RUNS).await?;
        let by_id: HashMap<i64, &Stack> = stacks.iter().map(|s| (s.id, s)).collect();
        let mut schedules: HashMap<i64, Option<Schedule>> = HashMap::new();
        for j in &shown {
            if let Entry::Vacant(slot) = schedules.entry(j.schedule_id) {
                slot.insert(self.store.schedule(j.schedule_id).await?);
            }
        }
        let rows = shown
            .into_iter()
            .map(|job| OverviewRow {
                stack: by_id.get(&job.stack_id).map(|s| (*s).clone()),
                schedule: schedules.get(&job.schedule_id).cloned().flatten(),
                recent: recent.remove(&job.id).unwrap_or_default(),
                job,
            })
            .collect();
        Ok(Overview { total, rows, stacks })
    }
}
