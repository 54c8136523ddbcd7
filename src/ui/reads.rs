//! What the pages show, gathered from the same store reads the API handlers use
//! (`store::tasks` for the v1 protocol, `store::v2::reads` for v2) into small view
//! rows. Both protocols' builds appear in one list (D33, D34).

use std::collections::BTreeMap;

use crate::store::ReadSnapshot;
use uuid::Uuid;

use super::counts_cache::{Counts, CountsCache};

use crate::store::identity;
use crate::store::tasks;
use crate::store::v2::reads as v2reads;
use crate::store::v2::schema::Snapshot;
use crate::store::StoreError;

/// Which SDK protocol reported a build.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    V1,
    V2,
}

/// A build as the builds list shows it.
#[derive(Clone, Debug)]
pub struct BuildView {
    pub protocol: Protocol,
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub commit: Option<String>,
    pub status: &'static str,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    /// The email of the user who set the status by hand (v1 overrides).
    pub set_by: Option<String>,
    /// "Started by": the user's email, or None for API keys.
    pub user_email: Option<String>,
    /// Newest-first order: v1 by creation, v2 by last activity.
    sort_at: i64,
}

fn email_of(tx: &ReadSnapshot, user: Option<Uuid>) -> Result<Option<String>, StoreError> {
    Ok(match user {
        Some(u) => identity::user(tx, u)?.map(|u| u.email),
        None => None,
    })
}

/// A v1 build's task counts: its members' global states (D18).
fn v1_counts(tx: &ReadSnapshot, env: Uuid, build: Uuid) -> Result<Counts, StoreError> {
    let mut counts = Counts::new();
    if let Some(members) = tasks::build_tasks(tx, env, build)? {
        for (_, st) in &members {
            *counts.entry(st.global.status.as_str()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// A v2 build's task counts: its active plan's member counts.
fn v2_counts(
    s: &Snapshot,
    env: Uuid,
    row: &crate::store::v2::schema::BuildRow,
) -> Result<Counts, StoreError> {
    let mut counts = Counts::new();
    if let Some(plan) = row.active_plan {
        if let Some(d) = v2reads::plan_detail(s, env.as_u128(), plan)? {
            counts.extend(d.member_counts.into_iter().filter(|(_, v)| *v > 0));
        }
    }
    Ok(counts)
}

/// A v1 build's view.
pub fn v1_view(tx: &ReadSnapshot, row: &tasks::BuildRow) -> Result<BuildView, StoreError> {
    let set_by = match row.state.triggered_by_user_id.as_deref() {
        Some(ext) => identity::user_by_external(tx, ext)?.map(|u| u.email),
        None => None,
    };
    Ok(BuildView {
        protocol: Protocol::V1,
        id: row.id,
        name: row.name.clone(),
        description: row.description.clone(),
        commit: row.commit_hash.clone(),
        status: row.state.status.as_str(),
        created_at: row.created_at,
        started_at: row.state.started_at,
        completed_at: row.state.completed_at,
        set_by,
        user_email: email_of(tx, row.user_id)?,
        sort_at: row.created_at,
    })
}

/// A v2 build's view.
pub fn v2_view(
    tx: &ReadSnapshot,
    id: u128,
    row: &crate::store::v2::schema::BuildRow,
) -> Result<BuildView, StoreError> {
    Ok(BuildView {
        protocol: Protocol::V2,
        id: Uuid::from_u128(id),
        name: row.name.clone(),
        description: row.description.clone(),
        commit: None,
        status: row.status.as_str(),
        created_at: row.created_at,
        started_at: Some(row.created_at),
        completed_at: row.completed_at,
        set_by: None,
        user_email: email_of(tx, row.user_id.map(Uuid::from_u128))?,
        sort_at: row.last_active_at,
    })
}

/// The builds list's filter (ui.md P4): a status, and a case-insensitive substring of
/// the name, commit or id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildFilter {
    pub status: Option<String>,
    pub text: Option<String>,
}

impl BuildFilter {
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.text.is_none()
    }

    fn text_matches(&self, name: &str, commit: Option<&str>, id: Uuid) -> bool {
        let Some(t) = &self.text else { return true };
        let t = t.to_lowercase();
        name.to_lowercase().contains(&t)
            || commit.is_some_and(|c| c.to_lowercase().contains(&t))
            || id.to_string().contains(&t)
    }
}

/// A filtered list stops scanning after this many builds per protocol (newest first);
/// its counts then say "at least".
pub const FILTER_SCAN_CAP: usize = 10_000;

/// A build as a list page first sees it: its stored row, before any task is read.
pub enum Head {
    V1(tasks::BuildRow),
    V2(u128, crate::store::v2::schema::BuildRow),
}

impl Head {
    pub fn id(&self) -> Uuid {
        match self {
            Head::V1(r) => r.id,
            Head::V2(id, _) => Uuid::from_u128(*id),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Head::V1(r) => &r.name,
            Head::V2(_, r) => &r.name,
        }
    }

    pub fn status(&self) -> &'static str {
        match self {
            Head::V1(r) => r.state.status.as_str(),
            Head::V2(_, r) => r.status.as_str(),
        }
    }

    fn sort_key(&self) -> (i64, Uuid) {
        match self {
            Head::V1(r) => (r.created_at, r.id),
            Head::V2(id, r) => (r.last_active_at, Uuid::from_u128(*id)),
        }
    }

    fn text_matches(&self, f: &BuildFilter) -> bool {
        match self {
            Head::V1(r) => f.text_matches(&r.name, r.commit_hash.as_deref(), r.id),
            Head::V2(id, r) => f.text_matches(&r.name, None, Uuid::from_u128(*id)),
        }
    }
}

/// One page of heads of the environment's builds of both protocols, newest first.
pub struct HeadPage {
    pub heads: Vec<Head>,
    /// Builds matching the filter.
    pub total: u64,
    /// Per status: builds matching the filter's text (not its status), for the
    /// counters. Empty when no filter asked for a scan.
    pub by_status: BTreeMap<&'static str, u64>,
    /// The scan stopped at [`FILTER_SCAN_CAP`]: totals are lower bounds.
    pub capped: bool,
}

/// The page of heads at `offset`. Without a filter or `by_status` this merges the two
/// protocols' newest-first heads (reading `offset + limit` rows of each) and takes the
/// total from the stored counts; otherwise it scans up to [`FILTER_SCAN_CAP`] builds
/// per protocol (v1 builds have no status index) and counts them by status.
pub fn build_heads(
    tx: &ReadSnapshot,
    env: Uuid,
    filter: &BuildFilter,
    (offset, limit): (usize, usize),
    by_status: bool,
) -> Result<HeadPage, StoreError> {
    let scan = by_status || !filter.is_empty();
    let want = if scan {
        FILTER_SCAN_CAP
    } else {
        offset + limit
    };
    let (v1_rows, v1_total) = tasks::list_builds(tx, env, 0, want)?;
    let s = Snapshot::new(tx);
    let (v2_page, v2_total) = v2reads::list_builds(&s, env.as_u128(), None, None, want, None)?;
    let capped = scan && (v1_total > v1_rows.len() as u64 || v2_page.next.is_some());
    let mut heads: Vec<Head> = v1_rows
        .into_iter()
        .map(Head::V1)
        .chain(v2_page.rows.into_iter().map(|(id, r)| Head::V2(id, r)))
        .collect();
    let mut by_status = BTreeMap::new();
    let total = if scan {
        heads.retain(|h| h.text_matches(filter));
        for h in &heads {
            *by_status.entry(h.status()).or_insert(0) += 1;
        }
        if let Some(st) = &filter.status {
            heads.retain(|h| h.status() == st);
        }
        heads.len() as u64
    } else {
        v1_total + v2_total
    };
    heads.sort_by_key(|h| std::cmp::Reverse(h.sort_key()));
    let heads = heads.into_iter().skip(offset).take(limit).collect();
    Ok(HeadPage {
        heads,
        total,
        by_status,
        capped,
    })
}

/// The views of a page of heads, each with its task counts by status (from the cache,
/// else from its tasks: v1 its members' global states, D18; v2 its active plan's
/// member counts). Only the builds list shows counts.
pub fn views(
    tx: &ReadSnapshot,
    cache: &CountsCache,
    env: Uuid,
    heads: &[Head],
) -> Result<Vec<(BuildView, Counts)>, StoreError> {
    let s = Snapshot::new(tx);
    let mut out = Vec::with_capacity(heads.len());
    for head in heads {
        out.push(match head {
            Head::V1(r) => {
                let id = r.id.as_u128();
                let counts =
                    cache.get_or_compute(tx, env.as_u128(), id, || v1_counts(tx, env, r.id))?;
                (v1_view(tx, r)?, counts)
            }
            Head::V2(id, r) => {
                let counts =
                    cache.get_or_compute(tx, env.as_u128(), *id, || v2_counts(&s, env, r))?;
                (v2_view(tx, *id, r)?, counts)
            }
        });
    }
    debug_assert!(out.windows(2).all(|w| w[0].0.sort_at >= w[1].0.sort_at));
    Ok(out)
}

/// Whether a build of either protocol is in the environment (no row decoded for v1).
pub fn build_exists(tx: &ReadSnapshot, env: Uuid, id: Uuid) -> Result<bool, StoreError> {
    if tasks::build_exists(tx, env.as_u128(), id.as_u128())? {
        return Ok(true);
    }
    let s = Snapshot::new(tx);
    Ok(crate::store::v2::build(&s, env.as_u128(), id.as_u128())?.is_some())
}

/// Finds a build of either protocol.
pub fn build_view(tx: &ReadSnapshot, env: Uuid, id: Uuid) -> Result<Option<BuildView>, StoreError> {
    if let Some(row) = tasks::build(tx, env, id)? {
        return Ok(Some(v1_view(tx, &row)?));
    }
    let s = Snapshot::new(tx);
    match crate::store::v2::build(&s, env.as_u128(), id.as_u128())? {
        Some(row) => Ok(Some(v2_view(tx, id.as_u128(), &row)?)),
        None => Ok(None),
    }
}

/// A task of a build graph, as the build page shows it.
#[derive(Clone, Debug)]
pub struct NodeView {
    pub task_id: String,
    pub name: String,
    pub namespace: String,
    pub status: &'static str,
    /// The build whose event decided the status, when it is another build (v1).
    pub status_build: Option<Uuid>,
    pub waiting_for_lock: bool,
    pub asset_count: u64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub error: Option<String>,
}

/// A build's tasks (graph nodes, in task creation / member order) and its edges as
/// `(upstream, downstream)` indices.
pub struct GraphView {
    pub nodes: Vec<NodeView>,
    pub edges: Vec<(usize, usize)>,
}

/// The v1 build graph (`store::tasks::build_graph`, as `GET /builds/{b}/graph`).
pub fn v1_graph(
    tx: &ReadSnapshot,
    env: Uuid,
    build: Uuid,
) -> Result<Option<GraphView>, StoreError> {
    let Some((members, edges)) = tasks::build_graph(tx, env, build)? else {
        return Ok(None);
    };
    let index: std::collections::HashMap<Uuid, usize> = members
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (t.id, i))
        .collect();
    let nodes = members
        .iter()
        .map(|(t, s)| {
            let g = &s.global;
            NodeView {
                task_id: t.task_id.clone(),
                name: t.task_name.clone(),
                namespace: t.task_namespace.clone(),
                status: g.status.as_str(),
                status_build: g
                    .status_build_id
                    .map(Uuid::from_u128)
                    .filter(|b| *b != build),
                waiting_for_lock: g.waiting_for_lock,
                asset_count: s.asset_count,
                started_at: g.started_at,
                completed_at: g.completed_at,
                error: g.error_message.clone(),
            }
        })
        .collect();
    let edges = edges
        .iter()
        .filter_map(|(up, down)| Some((*index.get(up)?, *index.get(down)?)))
        .collect();
    Ok(Some(GraphView { nodes, edges }))
}

/// The v2 build graph: the members of its active plan (else its newest plan), with
/// their edges, and each task's global status.
pub fn v2_graph(s: &Snapshot, env: Uuid, build: Uuid) -> Result<Option<GraphView>, StoreError> {
    let e = env.as_u128();
    let Some(row) = crate::store::v2::build(s, e, build.as_u128())? else {
        return Ok(None);
    };
    let plan = match row.active_plan {
        Some(p) => Some(p),
        None => v2reads::build_plans(s, e, build.as_u128())?
            .first()
            .map(|d| d.id),
    };
    let Some(plan) = plan else {
        return Ok(Some(GraphView {
            nodes: Vec::new(),
            edges: Vec::new(),
        }));
    };
    let members = crate::store::v2::members(s, e, plan)?;
    let index: std::collections::HashMap<&str, usize> = members
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (t.as_str(), i))
        .collect();
    let mut nodes = Vec::with_capacity(members.len());
    let mut edges = Vec::new();
    for (i, (task_id, m)) in members.iter().enumerate() {
        let t = crate::store::v2::task(s, e, task_id)?;
        let artifacts = v2reads::task_artifacts(s, e, task_id)?.len() as u64;
        nodes.push(match t {
            Some(t) => NodeView {
                task_id: task_id.clone(),
                name: t.name.clone(),
                namespace: t.namespace.clone(),
                status: t.status.as_str(),
                status_build: t.claim_build.map(Uuid::from_u128).filter(|b| *b != build),
                waiting_for_lock: false,
                asset_count: artifacts,
                started_at: None,
                completed_at: t.completed_at,
                error: t.error_message.clone(),
            },
            None => NodeView {
                task_id: task_id.clone(),
                name: task_id.clone(),
                namespace: String::new(),
                status: "pending",
                status_build: None,
                waiting_for_lock: false,
                asset_count: artifacts,
                started_at: None,
                completed_at: None,
                error: None,
            },
        });
        for up in &m.upstreams {
            if let Some(&j) = index.get(up.task_id.as_str()) {
                edges.push((j, i));
            }
        }
    }
    Ok(Some(GraphView { nodes, edges }))
}

/// A dependency of a task as its page lists it.
pub struct Neighbour {
    pub task_id: String,
    pub name: String,
    pub status: &'static str,
}

/// A task's dependencies both ways: at most [`NEIGHBOURS_SHOWN`] of each, and totals.
#[derive(Default)]
pub struct NeighbourView {
    pub depends_on: Vec<Neighbour>,
    pub depends_on_total: u64,
    pub used_by: Vec<Neighbour>,
    pub used_by_total: u64,
    /// v2: the lists come from the task's newest [`V2_PLANS_READ`] plans only.
    pub plans_capped: bool,
}

/// Neighbours listed per direction on a task page.
pub const NEIGHBOURS_SHOWN: usize = 50;
/// v2 dependencies are read from this many of the task's plans at most.
pub const V2_PLANS_READ: usize = 5;

/// A v1 task's upstreams and downstreams (`TASK_EDGES` and its reverse index).
pub fn v1_neighbours(
    tx: &ReadSnapshot,
    env: Uuid,
    hash: &str,
) -> Result<Option<NeighbourView>, StoreError> {
    let Some(n) = tasks::task_neighbours(tx, env, hash, NEIGHBOURS_SHOWN)? else {
        return Ok(None);
    };
    let view = |rows: Vec<(tasks::TaskRow, tasks::TaskStateRow)>| {
        rows.into_iter()
            .map(|(t, s)| Neighbour {
                task_id: t.task_id,
                name: t.task_name,
                status: s.global.status.as_str(),
            })
            .collect()
    };
    Ok(Some(NeighbourView {
        depends_on: view(n.depends_on),
        depends_on_total: n.depends_on_total,
        used_by: view(n.used_by),
        used_by_total: n.used_by_total,
        plans_capped: false,
    }))
}

/// A v2 task's upstreams (its member rows' edges) and downstreams (members listing it
/// as an upstream) in the plans that hold it, newest plan ids last, at most
/// [`V2_PLANS_READ`] plans.
pub fn v2_neighbours(s: &Snapshot, env: Uuid, task_id: &str) -> Result<NeighbourView, StoreError> {
    let e = env.as_u128();
    let plans = crate::store::v2::plans_of(s, e, task_id, usize::MAX)?;
    let plans_capped = plans.len() > V2_PLANS_READ;
    let plans = &plans[plans.len().saturating_sub(V2_PLANS_READ)..];
    let mut up = std::collections::BTreeSet::new();
    let mut down = std::collections::BTreeSet::new();
    for plan in plans {
        for (id, m) in crate::store::v2::members(s, e, *plan)? {
            if id == task_id {
                up.extend(m.upstreams.iter().map(|u| u.task_id.clone()));
            } else if m.upstreams.iter().any(|u| u.task_id == task_id) {
                down.insert(id);
            }
        }
    }
    let view = |ids: &std::collections::BTreeSet<String>| -> Result<Vec<Neighbour>, StoreError> {
        let mut out = Vec::new();
        for id in ids.iter().take(NEIGHBOURS_SHOWN) {
            let t = crate::store::v2::task(s, e, id)?;
            out.push(Neighbour {
                task_id: id.clone(),
                name: t.as_ref().map_or_else(|| id.clone(), |t| t.name.clone()),
                status: t.map_or("pending", |t| t.status.as_str()),
            });
        }
        Ok(out)
    };
    Ok(NeighbourView {
        depends_on: view(&up)?,
        depends_on_total: up.len() as u64,
        used_by: view(&down)?,
        used_by_total: down.len() as u64,
        plans_capped,
    })
}
