//! The scheduler: a min-heap of `(next slot, job)` loaded at start and kept current by the
//! service's change messages (no polling). A slot is claimed in the database a little ahead
//! of its time (compare-and-swap + unique run row), then the child starts on the dot.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use cronstack_cron::Trigger;
use cronstack_exec::Gate;
use tokio::sync::{mpsc, oneshot};

use super::preference::{Preference, STANDBY_MS};
use super::release::ReleaseClock;
use super::runner::Runner;
use super::{EngineSettings, Launch};
use crate::domain::{
    EpochMs, EventKind, Missed, Run, RunStatus, ScheduleConfig, SlotPolicy, Stack, TriggerKind, now_ms,
};
use crate::events::Event;
use crate::store::{Claim, ClaimOutcome, SlotMove, Store};

/// How to compute a job's slots after the current one.
#[derive(Debug, Clone)]
pub(super) struct SlotRule {
    pub trigger: Arc<Trigger>,
    /// One-time: the job disables itself when the slot is claimed.
    pub once: bool,
    pub missed: Missed,
    /// Window and jitter.
    pub policy: SlotPolicy,
}

pub(super) enum SchedMsg {
    /// A job's next slot changed (None: no longer scheduled).
    JobChanged {
        job_id: i64,
        next: Option<EpochMs>,
        rule: Option<Arc<SlotRule>>,
    },
    /// Another node changed a job: read it from the database.
    Reload(i64),
    /// Other nodes' committed claims: jobs moved from a slot to the next (PostgreSQL).
    Claimed(Vec<SlotMove>),
    /// Rebuild everything from the database (the safety net behind notifications).
    Resync,
    Shutdown,
}

/// A scheduled job: 16 bytes, a million of them in a few tens of MiB. Jobs that share a
/// schedule and its policies share one rule (see `resync`).
struct Entry {
    slot: EpochMs,
    rule: Arc<SlotRule>,
}

impl Entry {
    /// When the slot fires: the slot plus its jitter. The heap is ordered by this.
    fn due(&self) -> EpochMs {
        self.rule.policy.due(self.slot)
    }
}

/// At most this many slots are claimed in one transaction.
const CLAIM_BATCH: usize = 512;

pub(super) struct Scheduler {
    store: Store,
    runner: Arc<Runner>,
    settings: EngineSettings,
    node_id: Arc<str>,
    /// The live nodes: which slots this node claims as soon as they are due.
    preference: Arc<Preference>,
    rx: mpsc::UnboundedReceiver<SchedMsg>,
    heap: BinaryHeap<Reverse<(EpochMs, i64)>>,
    /// Slots another live node is preferred for, as `(when to try, job, slot)`: this node
    /// claims them only if still unclaimed [`STANDBY_MS`] after they were due. An entry whose
    /// job has moved to another slot meanwhile is dropped.
    standby: BinaryHeap<Reverse<(EpochMs, i64, EpochMs)>>,
    /// The authoritative slot per job; heap entries that disagree are stale and dropped.
    /// A B-tree built from the ids in order: its nodes full, a million entries take about
    /// 25 MiB where a hash map's table takes twice that.
    jobs: BTreeMap<i64, Entry>,
    /// Per job, the end of its latest missed-slot (catch-up) run: catch-up runs go one after
    /// another, in slot order, instead of all at once (where `forbid` would skip all but one).
    catching_up: HashMap<i64, oneshot::Receiver<super::RunResult>>,
    /// Per instant still ahead, its group's intake: runs claimed for it by later batches join
    /// the same group, which is released as one.
    groups: HashMap<EpochMs, mpsc::UnboundedSender<Vec<Due>>>,
    /// The groups' tasks: shutdown waits for them to release what was claimed.
    group_tasks: tokio_util::task::TaskTracker,
    /// Starts each group at its instant (see `release`).
    release: Arc<ReleaseClock>,
    /// When this node first knew the live set (see `run`).
    joined_at: EpochMs,
}

/// A claimed run due at an instant, with its job and (when loaded with the batch) stack.
type Due = (Run, crate::domain::Job, Option<Stack>);

/// Gives the memory freed after loading the schedule (the rows and texts read, a few times
/// what the schedule keeps) back to the system: glibc's allocator keeps freed small blocks for
/// the process otherwise, and a million jobs' load would stay in its RSS.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's own to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Scheduler {
    pub(super) async fn load(
        store: Store,
        runner: Arc<Runner>,
        settings: EngineSettings,
        node_id: Arc<str>,
        preference: Arc<Preference>,
        rx: mpsc::UnboundedReceiver<SchedMsg>,
        group_tasks: tokio_util::task::TaskTracker,
    ) -> anyhow::Result<Self> {
        let mut me = Scheduler {
            store,
            runner,
            settings,
            node_id,
            preference,
            rx,
            heap: BinaryHeap::new(),
            standby: BinaryHeap::new(),
            jobs: BTreeMap::new(),
            catching_up: HashMap::new(),
            groups: HashMap::new(),
            group_tasks,
            release: Arc::new(ReleaseClock::start()?),
            joined_at: EpochMs::MIN / 2,
        };
        me.resync().await?;
        Ok(me)
    }

    /// Rebuilds the heap from the database (the source of truth).
    async fn resync(&mut self) -> anyhow::Result<()> {
        let loaded = self.store.scheduled_jobs().await?;
        // Many jobs share a schedule: compile each schedule once — except one using `H`,
        // whose values depend on each job's uid (read for those jobs only).
        let mut compiled: HashMap<i64, Option<(Arc<Trigger>, ScheduleConfig, bool)>> = HashMap::new();
        let mut per_job: Vec<i64> = Vec::new();
        for (id, (config, _)) in &loaded.schedules {
            let parsed = (|| {
                let config = ScheduleConfig::from_json(&serde_json::from_str(config).ok()?).ok()?;
                let hashed = config.per_job();
                Some((Arc::new(config.trigger().ok()?), config, hashed))
            })();
            if parsed.as_ref().is_some_and(|(_, _, hashed)| *hashed) {
                per_job.push(*id);
            }
            compiled.insert(*id, parsed);
        }
        let uids = self.store.job_uids_on_schedules(&per_job).await?;
        self.heap.clear();
        self.standby.clear();
        self.jobs.clear();
        self.heap.reserve(loaded.jobs.len());
        let mut entries = Vec::with_capacity(loaded.jobs.len());
        // One rule per schedule and missed-run policy, shared by its jobs; a job with its own
        // trigger (`H`) or policy (window, jitter) has a rule of its own.
        let mut shared: HashMap<(i64, Missed), Arc<SlotRule>> = HashMap::new();
        for row in loaded.jobs {
            let once = loaded.schedules.get(&row.schedule_id).is_some_and(|(_, once)| *once);
            let policy = loaded.policies.get(&row.job_id).copied();
            let rule = match compiled.get(&row.schedule_id) {
                Some(Some((_, config, true))) => uids
                    .get(&row.job_id)
                    .and_then(|uid| config.trigger_for(crate::domain::job_hash_key(uid)).ok())
                    .map(|trigger| {
                        let policy = policy.unwrap_or_default();
                        Arc::new(SlotRule { trigger: Arc::new(trigger), once, missed: row.missed, policy })
                    }),
                Some(Some((trigger, _, false))) => Some(match policy {
                    Some(policy) => {
                        Arc::new(SlotRule { trigger: trigger.clone(), once, missed: row.missed, policy })
                    }
                    None => shared
                        .entry((row.schedule_id, row.missed))
                        .or_insert_with(|| {
                            let policy = SlotPolicy::default();
                            Arc::new(SlotRule { trigger: trigger.clone(), once, missed: row.missed, policy })
                        })
                        .clone(),
                }),
                _ => None,
            };
            let Some(rule) = rule else {
                tracing::error!(job = row.job_id, "job's schedule does not compile; not scheduled");
                continue;
            };
            let entry = Entry { slot: row.next_run_at, rule };
            self.heap.push(Reverse((entry.due(), row.job_id)));
            entries.push((row.job_id, entry));
        }
        // In id order (as read): the tree is bulk-built.
        self.jobs = BTreeMap::from_iter(entries);
        metrics::gauge!("cronstack_jobs_scheduled").set(self.jobs.len() as f64);
        release_free_memory();
        tracing::info!(jobs = self.jobs.len(), "schedule loaded");
        Ok(())
    }

    fn set(&mut self, job_id: i64, next: Option<EpochMs>, rule: Option<Arc<SlotRule>>) {
        // Every entry has its slot in the heap once: a second copy (the same change heard
        // twice, locally and by NOTIFY) would be claimed twice in one batch and launch one
        // run twice.
        match (next, rule) {
            (Some(slot), Some(rule)) => {
                let entry = Entry { slot, rule };
                let due = entry.due();
                if self.jobs.get(&job_id).is_none_or(|e| e.due() != due) {
                    self.heap.push(Reverse((due, job_id)));
                }
                self.jobs.insert(job_id, entry);
            }
            (Some(slot), None) => {
                if let Some(e) = self.jobs.get_mut(&job_id)
                    && e.slot != slot
                {
                    e.slot = slot;
                    self.heap.push(Reverse((e.due(), job_id)));
                }
            }
            (None, _) => {
                self.jobs.remove(&job_id);
            }
        }
    }

    pub(super) async fn run(mut self) {
        // Claims wait until the node knows who else is live (a few hundred ms on PostgreSQL;
        // at once on SQLite), at most a lookahead and a second: slots due meanwhile are
        // claimed late rather than by every node starting at once.
        let limit = self.settings.lookahead + Duration::from_secs(1);
        self.preference.joined(limit).await;
        self.joined_at = now_ms();
        loop {
            self.drop_stale_top();
            let wake = self.heap.peek().map(|Reverse((slot, _))| *slot - self.lookahead_ms());
            let wake = match (wake, self.standby.peek()) {
                (Some(w), Some(Reverse((at, _, _)))) => Some(w.min(*at)),
                (w, s) => w.or(s.map(|Reverse((at, _, _))| *at)),
            };
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep(ms_until(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(SchedMsg::JobChanged { job_id, next, rule }) => {
                        self.set(job_id, next, rule);
                        metrics::gauge!("cronstack_jobs_scheduled").set(self.jobs.len() as f64);
                    }
                    Some(SchedMsg::Reload(job_id)) => self.reload(job_id).await,
                    Some(SchedMsg::Claimed(moves)) => self.heard_claimed(moves),
                    Some(SchedMsg::Resync) => {
                        if let Err(e) = self.resync().await {
                            tracing::error!(error = %e, "resync from the database");
                        }
                    }
                    Some(SchedMsg::Shutdown) | None => return,
                },
                _ = sleep => self.fire_due().await,
            }
        }
    }

    fn lookahead_ms(&self) -> EpochMs {
        self.settings.lookahead.as_millis() as EpochMs
    }

    fn drop_stale_top(&mut self) {
        while let Some(Reverse((due, job_id))) = self.heap.peek().copied() {
            match self.jobs.get(&job_id) {
                Some(e) if e.due() == due => return,
                _ => {
                    self.heap.pop();
                }
            }
        }
    }

    /// Claims every slot due within the lookahead that this node is preferred for, and those
    /// of other nodes still unclaimed a standby delay after they were due; then starts each
    /// claimed run at its time.
    async fn fire_due(&mut self) {
        // A node claims no more than it starts. While a run it claimed has waited for a
        // process slot (`max_concurrent_runs`) past the missed-run grace, it is behind, and
        // each slot it claimed now would start later still (bench `cluster` at 3,000/s: a
        // queue 30 s long). Left unclaimed, a slot goes to a node with room (after the
        // standby delay) or, claimed late, to its job's missed-run policy.
        if self.runner.behind() > self.settings.missed_grace {
            metrics::counter!("cronstack_claims_deferred_total").increment(1);
            tokio::time::sleep(Duration::from_millis(10)).await;
            return;
        }
        let now = now_ms();
        let horizon = now + self.lookahead_ms();
        let mut claims = Vec::new();
        let mut in_batch = HashSet::new();
        // Other nodes' slots whose standby is over: their node may be frozen or dead. A claim
        // of theirs heard meanwhile made the entry stale (`heard_claimed`); one not heard
        // answers `Lost` without waiting on a lock.
        while claims.len() < CLAIM_BATCH {
            let Some(Reverse((at, job_id, slot))) = self.standby.peek().copied() else {
                break;
            };
            if at > now {
                break;
            }
            self.standby.pop();
            let Some(entry) = self.jobs.get(&job_id).filter(|e| e.slot == slot) else {
                continue;
            };
            if in_batch.insert(job_id) {
                claims.push(self.plan(job_id, slot, &entry.rule, now));
            }
        }
        let live = self.preference.snapshot();
        while claims.len() < CLAIM_BATCH {
            self.drop_stale_top();
            let Some(Reverse((due, job_id))) = self.heap.peek().copied() else {
                break;
            };
            if due > horizon {
                break;
            }
            self.heap.pop();
            let entry = &self.jobs[&job_id];
            // Another live node's slot: left to it for the standby delay (none once it is
            // past, as for a slot put back or missed). Slots already past when this node
            // joined count from the join: every node started together would otherwise claim
            // all of them at once.
            let standby_until = due.max(self.joined_at) + STANDBY_MS;
            if standby_until > now && !live.mine(job_id, entry.slot) {
                self.standby.push(Reverse((standby_until, job_id, entry.slot)));
                continue;
            }
            // Defence in depth against a duplicate heap entry (see `set`).
            if !in_batch.insert(job_id) {
                continue;
            }
            claims.push(self.plan(job_id, entry.slot, &entry.rule, now));
        }
        if claims.is_empty() {
            return;
        }
        if !self.runner.lease_is_current() {
            // Fenced (see `fence`): claim nothing until the lease is proven again.
            self.put_back(&claims);
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        let outcomes = match self.store.claim_slots(&claims, now).await {
            Ok(o) => o,
            Err(e) => {
                // The database is away: put the slots back and try again shortly.
                tracing::error!(error = %e, "claiming slots; retrying");
                self.put_back(&claims);
                tokio::time::sleep(Duration::from_millis(500)).await;
                return;
            }
        };
        // The stacks of the claimed jobs, in one query: a read per run would queue behind
        // the pool and start runs late.
        let stack_ids: Vec<i64> = outcomes
            .iter()
            .filter_map(|o| match o {
                ClaimOutcome::Claimed { job, .. } => Some(job.stack_id),
                _ => None,
            })
            .collect();
        let stacks = match self.store.stacks_by_ids(&stack_ids).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "loading stacks of claimed jobs; loading one by one");
                HashMap::new()
            }
        };
        let mut busy = Vec::new();
        // Runs due at the same instant start together (see `start_group`).
        let mut groups: BTreeMap<EpochMs, Vec<Due>> = BTreeMap::new();
        for (claim, outcome) in claims.into_iter().zip(outcomes) {
            metrics::counter!("cronstack_claims_total", "outcome" => outcome.name()).increment(1);
            match outcome {
                ClaimOutcome::Claimed { run_id, job } => {
                    self.runner.hold(run_id);
                    // The job's own next slot: `None` when this run used up its `max_runs`.
                    self.advance(claim.job_id, job.next_run_at);
                    let fire = claim.fire.unwrap_or(claim.slot);
                    let run = Run {
                        id: run_id,
                        job_id: job.id,
                        owner: job.owner,
                        trigger: TriggerKind::Schedule,
                        scheduled_for: fire,
                        attempt: 1,
                        args: Vec::new(),
                        status: RunStatus::Queued,
                        node_id: Some(self.node_id.to_string()),
                        started_at: None,
                        finished_at: None,
                        exit_code: None,
                        signal: None,
                        log_truncated: false,
                        created_at: now,
                        due_at: (claim.due != fire).then_some(claim.due),
                        chain: None,
                    };
                    let missed = claim.due < now - self.settings.missed_grace.as_millis() as EpochMs;
                    let stack = stacks.get(&job.stack_id).cloned();
                    if missed {
                        self.start_missed(run, job, stack);
                    } else {
                        self.catching_up.remove(&job.id);
                        groups.entry(claim.due).or_default().push((run, job, stack));
                    }
                }
                ClaimOutcome::Advanced => self.advance(claim.job_id, claim.next),
                ClaimOutcome::Deleted { job } => {
                    tracing::info!(job = job.id, "job queued for deletion deleted at its slot");
                    self.runner.events().emit(Event::job(EventKind::JobDeleted, &job));
                    self.jobs.remove(&claim.job_id);
                    let store = self.store.clone();
                    tokio::spawn(async move {
                        if let Err(e) = store.unchain(job.owner, job.id, crate::domain::now_ms()).await {
                            tracing::warn!(job = job.id, error = %e, "taking a deleted job out of chains");
                        }
                        // `DELETE …?schedule=1`: the schedule goes too, unless in use by now.
                        if job.delete_schedule
                            && let Err(e) = store.delete_schedule_of_deleted_job(job.schedule_id).await
                        {
                            tracing::warn!(job = job.id, schedule = job.schedule_id, error = %e, "deleting a deleted job's schedule");
                        }
                    });
                }
                // Another node fired it: the job moved where this node would have moved it.
                // A real change (pause, edit, delete) arrives as a message and overrides this.
                ClaimOutcome::Lost => self.advance(claim.job_id, claim.next),
                ClaimOutcome::Busy => busy.push(claim),
            }
        }
        for (fire, due) in groups {
            self.start_group(fire, due);
        }
        if !busy.is_empty() {
            // Locked rows are usually free again within milliseconds; a slot another node
            // is claiming will then show as Lost.
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.put_back(&busy);
        }
        metrics::gauge!("cronstack_jobs_scheduled").set(self.jobs.len() as f64);
    }

    /// Slots whose claim did not happen (busy rows, the database away, fenced) go back on the
    /// heap, unless the job moved meanwhile.
    fn put_back(&mut self, claims: &[Claim]) {
        for c in claims {
            if let Some(e) = self.jobs.get(&c.job_id).filter(|e| e.slot == c.slot) {
                self.heap.push(Reverse((e.due(), c.job_id)));
            }
        }
    }

    /// Decides what to do with a due slot: run it, or follow the missed-run policy when it is
    /// older than the grace period (the node was down or overloaded).
    fn plan(&self, job_id: i64, slot: EpochMs, rule: &SlotRule, now: EpochMs) -> Claim {
        let trigger = &rule.trigger;
        let policy = &rule.policy;
        let missed = policy.due(slot) < now - self.settings.missed_grace.as_millis() as EpochMs;
        let (fire, next) = if !missed {
            (Some(slot), policy.next_after(trigger, slot))
        } else {
            match rule.missed {
                Missed::Skip => (None, policy.next_after(trigger, now)),
                Missed::RunOnce => {
                    let newest = last_slot_at_or_before(trigger, slot, now);
                    let deadline = self.settings.run_once_deadline.as_millis() as EpochMs;
                    let fire = (now - newest <= deadline).then_some(newest);
                    (fire, policy.next_after(trigger, now))
                }
                Missed::CatchUp => {
                    let first = first_of_last_n(trigger, slot, now, self.settings.catch_up_max);
                    (Some(first), policy.next_after(trigger, first))
                }
            }
        };
        let next = if rule.once && fire.is_some() { None } else { next };
        Claim {
            job_id,
            slot,
            fire,
            due: policy.due(fire.unwrap_or(slot)),
            next,
            dropped: (fire != Some(slot)).then_some(slot),
            disable: next.is_none(),
            node_id: self.node_id.to_string(),
            lease_until: now + self.settings.lease.as_millis() as EpochMs,
        }
    }

    fn advance(&mut self, job_id: i64, next: Option<EpochMs>) {
        match next {
            Some(slot) => self.set(job_id, Some(slot), None),
            None => {
                self.jobs.remove(&job_id);
            }
        }
    }

    /// Another node claimed these slots, committed: each job still at that slot here moves
    /// to where the claim moved it in the database, as a `Lost` claim would have, so its
    /// standby entry goes stale and is dropped without a claim (with 3 nodes, two useless
    /// claims per slot). Only what was claimed is heard: a frozen or dead node's slots are
    /// not, and their standby claims still go. A job that moved or changed meanwhile is left
    /// alone (a change arrives as `Reload`).
    fn heard_claimed(&mut self, moves: Vec<SlotMove>) {
        for (job_id, slot, next) in moves {
            if self.jobs.get(&job_id).is_some_and(|e| e.slot == slot) {
                self.advance(job_id, next);
            }
        }
        metrics::gauge!("cronstack_jobs_scheduled").set(self.jobs.len() as f64);
    }

    /// Another node changed the job: read where it stands now, with its schedule.
    async fn reload(&mut self, job_id: i64) {
        let loaded = async {
            let Some(job) = self.store.job_fresh(job_id).await? else { return Ok(None) };
            let Some(next) = job.next_run_at else { return Ok(None) };
            let Some(schedule) = self.store.schedule(job.schedule_id).await? else { return Ok(None) };
            let trigger = schedule
                .config
                .trigger_for(crate::domain::job_hash_key(&job.uid))
                .map_err(crate::store::StoreError::Corrupt)?;
            let rule = Arc::new(SlotRule {
                trigger: Arc::new(trigger),
                once: schedule.once,
                missed: job.missed,
                policy: SlotPolicy::of(&job),
            });
            Ok::<_, crate::store::StoreError>(Some((next, rule)))
        };
        match loaded.await {
            Ok(Some((next, rule))) => self.set(job_id, Some(next), Some(rule)),
            Ok(None) => {
                self.jobs.remove(&job_id);
            }
            Err(e) => tracing::error!(job = job_id, error = %e, "reloading a changed job"),
        }
    }

    /// Starts the runs claimed for one instant together: their processes are spawned as they
    /// are claimed, held at one gate, and the runner releases the whole group at the instant
    /// with a single write. Runs for the same instant claimed by a later batch join the group.
    fn start_group(&mut self, fire: EpochMs, due: Vec<Due>) {
        self.groups.retain(|at, intake| *at >= now_ms() && !intake.is_closed());
        let due = match self.groups.get(&fire) {
            Some(intake) => match intake.send(due) {
                Ok(()) => return,
                Err(mpsc::error::SendError(due)) => due,
            },
            None => due,
        };
        let (intake, mut arrivals) = mpsc::unbounded_channel();
        let _ = intake.send(due);
        self.groups.insert(fire, intake);
        let store = self.store.clone();
        let runner = self.runner.clone();
        let release = self.release.clone();
        self.group_tasks.spawn(async move {
            // The release clock takes the group whole at its instant, whatever the runtime's
            // workers are doing then; a run that arrives later starts on its own right after.
            let group = Arc::new(Forming::new(runner.gate()));
            let released = release.at(fire, {
                let (group, runner) = (group.clone(), runner.clone());
                move || {
                    if let Some((launches, gate)) = group.take() {
                        runner.start_group(launches, gate);
                    }
                }
            });
            tokio::pin!(released);
            let launch_of = async |(run, job, stack): Due| {
                let stack = stack_of(&store, &job, stack).await?;
                Some(Launch::new(run, job, stack))
            };
            // Runs come in claim batches; their processes are spawned a few at a time, each
            // on a worker of its own (see `SPAWNS_AHEAD`). Each spawn returns its run if the
            // group was released first.
            let mut waiting: VecDeque<Due> = VecDeque::new();
            let mut spawning = tokio::task::JoinSet::new();
            let mut late = Vec::new();
            let mut arriving = true;
            let cutoff = fire - SPAWN_CUTOFF_MS;
            loop {
                if spawning.len() < SPAWNS_AHEAD
                    && now_ms() < cutoff
                    && let Some(due) = waiting.pop_front()
                {
                    if let Some(launch) = launch_of(due).await {
                        let (group, runner) = (group.clone(), runner.clone());
                        spawning.spawn(async move { group.add(&runner, launch) });
                    }
                    continue;
                }
                tokio::select! {
                    biased;
                    () = &mut released => break,
                    Some(spawned) = spawning.join_next() => late.extend(returned(spawned)),
                    due = arrivals.recv(), if arriving => match due {
                        Some(due) => waiting.extend(due),
                        None => arriving = false,
                    },
                }
            }
            // Closing first makes any later send fail, so the scheduler starts a new group.
            arrivals.close();
            while let Some(spawned) = spawning.join_next().await {
                late.extend(returned(spawned));
            }
            while let Ok(due) = arrivals.try_recv() {
                waiting.extend(due);
            }
            for due in waiting {
                late.extend(launch_of(due).await);
            }
            if !late.is_empty() {
                runner.start_group(late, None);
            }
        });
    }

    /// Starts the run of a missed slot (catch-up) once the job's previous catch-up run has
    /// ended: catch-up runs go one after another.
    fn start_missed(&mut self, run: Run, job: crate::domain::Job, stack: Option<Stack>) {
        let store = self.store.clone();
        let runner = self.runner.clone();
        let (tx, rx) = oneshot::channel();
        let previous = self.catching_up.insert(job.id, rx);
        tokio::spawn(async move {
            if let Some(previous) = previous {
                // Ends with that run, or at once if it was never launched (sender dropped).
                let _ = previous.await;
            }
            if let Some(stack) = stack_of(&store, &job, stack).await {
                let mut launch = Launch::new(run, job, stack);
                launch.done = Some(tx);
                runner.spawn_launch(launch);
            }
        });
    }
}

/// Processes spawned ahead for one group at once, at most: a spawn waits for its child's
/// `exec`, mostly for a CPU on a busy machine, and one spawn after another then fell behind.
/// With two CPU-bound processes beside one node starting 1,000 runs due together every
/// second, spawns took ~1.5 ms each one at a time, and half of each group was still waiting
/// at its instant (bench `cluster` under load). A few: each holds a runtime worker.
const SPAWNS_AHEAD: usize = 4;

/// No process is spawned ahead later than this before its instant: the release waits for the
/// spawns under way (see [`Forming`]), and one still under way at the instant waits for a CPU
/// behind the processes every other node releases then. With three nodes starting 333 runs
/// each a second beside two busy loops, such a spawn held its whole group 18–69 ms (bench
/// `cluster`, loaded). A run not spawned by then starts on its own right after the release.
const SPAWN_CUTOFF_MS: EpochMs = 20;

/// A group of runs due at one instant and their gate, until the release clock takes them.
/// Each spawn ahead holds the group shared while it spawns and adds its run; the release
/// takes it exclusively, so it waits for the spawns under way (a few, each brief) and no
/// process is ever spawned at a gate already opened.
struct Forming {
    state: std::sync::RwLock<Option<FormingGroup>>,
}

struct FormingGroup {
    launches: std::sync::Mutex<Vec<Launch>>,
    gate: Option<Gate>,
}

impl Forming {
    fn new(gate: Option<Gate>) -> Self {
        let group = FormingGroup { launches: std::sync::Mutex::new(Vec::new()), gate };
        Forming { state: std::sync::RwLock::new(Some(group)) }
    }

    /// Spawns the run's process at the gate and adds the run to the group; the run back if
    /// the group was released already (it then starts on its own).
    fn add(&self, runner: &Runner, mut launch: Launch) -> Option<Launch> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let Some(group) = state.as_ref() else { return Some(launch) };
        if let Some(gate) = &group.gate {
            runner.prepare(&mut launch, gate);
        }
        group.launches.lock().unwrap_or_else(|e| e.into_inner()).push(launch);
        None
    }

    /// The group's runs and gate, once: for the release.
    fn take(&self) -> Option<(Vec<Launch>, Option<Gate>)> {
        let group = self.state.write().unwrap_or_else(|e| e.into_inner()).take()?;
        Some((group.launches.into_inner().unwrap_or_else(|e| e.into_inner()), group.gate))
    }
}

/// The run a spawn ahead gave back (the group was released before it), if any.
fn returned(spawned: Result<Option<Launch>, tokio::task::JoinError>) -> Option<Launch> {
    spawned.unwrap_or_else(|e| {
        tracing::error!(error = %e, "spawning a run ahead of its slot failed");
        None
    })
}

/// The job's stack: the one loaded with the batch, or read now.
async fn stack_of(store: &Store, job: &crate::domain::Job, loaded: Option<Stack>) -> Option<Stack> {
    let stack = match loaded {
        Some(stack) => Ok(Some(stack)),
        None => store.stack(job.stack_id).await,
    };
    match stack {
        Ok(Some(stack)) => Some(stack),
        other => {
            tracing::error!(job = job.id, ?other, "stack of a due job not found");
            None
        }
    }
}

fn ms_until(at: EpochMs) -> Duration {
    Duration::from_millis((at - now_ms()).max(0) as u64)
}

/// Bound on slot walks after downtime (an every-second job down for a day is 86,400 steps).
const MAX_WALK: usize = 10_000_000;

/// The newest slot at or before `now`, walking from `slot` (itself at or before `now`).
fn last_slot_at_or_before(trigger: &Trigger, slot: EpochMs, now: EpochMs) -> EpochMs {
    let mut last = slot;
    for _ in 0..MAX_WALK {
        match trigger.next_after(last) {
            Some(n) if n <= now => last = n,
            _ => break,
        }
    }
    last
}

/// The first of the newest `n` slots between `slot` and `now`.
fn first_of_last_n(trigger: &Trigger, slot: EpochMs, now: EpochMs, n: usize) -> EpochMs {
    let mut window = std::collections::VecDeque::with_capacity(n.max(1));
    let mut s = slot;
    window.push_back(s);
    for _ in 0..MAX_WALK {
        match trigger.next_after(s) {
            Some(next) if next <= now => {
                s = next;
                if window.len() == n.max(1) {
                    window.pop_front();
                }
                window.push_back(s);
            }
            _ => break,
        }
    }
    window[0]
}
