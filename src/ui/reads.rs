//! What the pages show, gathered from the same store reads the API handlers use
//! (`store::tasks` for the v1 protocol, `store::v2::reads` for v2) into small view
//! rows. Both protocols' builds appear in one list (D33, D34).

use std::collections::BTreeMap;

use crate::store::ReadSnapshot;
use uuid::Uuid;

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
    /// Task counts by status.
    pub counts: BTreeMap<String, u64>,
    /// Newest-first order: v1 by creation, v2 by last activity.
    sort_at: i64,
}

impl BuildView {
    pub fn total_tasks(&self) -> u64 {
        self.counts.values().sum()
    }
}

fn email_of(tx: &ReadSnapshot, user: Option<Uuid>) -> Result<Option<String>, StoreError> {
    Ok(match user {
        Some(u) => identity::user(tx, u)?.map(|u| u.email),
        None => None,
    })
}

/// A v1 build's view; task counts come from its members' global states (D18).
pub fn v1_view(
    tx: &ReadSnapshot,
    env: Uuid,
    row: &tasks::BuildRow,
) -> Result<BuildView, StoreError> {
    let mut counts = BTreeMap::new();
    if let Some(members) = tasks::build_tasks(tx, env, row.id)? {
        for (_, st) in &members {
            *counts
                .entry(st.global.status.as_str().to_owned())
                .or_insert(0) += 1;
        }
    }
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
        counts,
        sort_at: row.created_at,
    })
}

/// A v2 build's view; task counts are its active plan's member counts.
pub fn v2_view(
    tx: &ReadSnapshot,
    s: &Snapshot,
    env: Uuid,
    id: u128,
    row: &crate::store::v2::schema::BuildRow,
) -> Result<BuildView, StoreError> {
    let mut counts = BTreeMap::new();
    if let Some(plan) = row.active_plan {
        if let Some(d) = v2reads::plan_detail(s, env.as_u128(), plan)? {
            for (k, v) in d.member_counts {
                if v > 0 {
                    counts.insert(k.to_owned(), v);
                }
            }
        }
    }
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
        counts,
        sort_at: row.last_active_at,
    })
}

/// One page of the environment's builds of both protocols, newest first, and the total.
pub fn builds_page(
    tx: &ReadSnapshot,
    env: Uuid,
    offset: usize,
    limit: usize,
) -> Result<(Vec<BuildView>, u64), StoreError> {
    let want = offset + limit;
    let (v1_rows, v1_total) = tasks::list_builds(tx, env, 0, want)?;
    let s = Snapshot::new(tx);
    let (v2_page, v2_total) = v2reads::list_builds(&s, env.as_u128(), None, None, want, None)?;
    // Merge the two newest-first heads by their keys, then build views for the page only.
    enum Head<'a> {
        V1(&'a tasks::BuildRow),
        V2(u128, &'a crate::store::v2::schema::BuildRow),
    }
    let mut heads: Vec<(i64, Uuid, Head)> = v1_rows
        .iter()
        .map(|r| (r.created_at, r.id, Head::V1(r)))
        .chain(
            v2_page
                .rows
                .iter()
                .map(|(id, r)| (r.last_active_at, Uuid::from_u128(*id), Head::V2(*id, r))),
        )
        .collect();
    heads.sort_by_key(|h| std::cmp::Reverse((h.0, h.1)));
    let mut out = Vec::new();
    for (_, _, head) in heads.into_iter().skip(offset).take(limit) {
        out.push(match head {
            Head::V1(r) => v1_view(tx, env, r)?,
            Head::V2(id, r) => v2_view(tx, &s, env, id, r)?,
        });
    }
    debug_assert!(out.windows(2).all(|w| w[0].sort_at >= w[1].sort_at));
    Ok((out, v1_total + v2_total))
}

/// Finds a build of either protocol.
pub fn build_view(tx: &ReadSnapshot, env: Uuid, id: Uuid) -> Result<Option<BuildView>, StoreError> {
    if let Some(row) = tasks::build(tx, env, id)? {
        return Ok(Some(v1_view(tx, env, &row)?));
    }
    let s = Snapshot::new(tx);
    match crate::store::v2::build(&s, env.as_u128(), id.as_u128())? {
        Some(row) => Ok(Some(v2_view(tx, &s, env, id.as_u128(), &row)?)),
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
