//! The v2 wire (`v2-registry.md` §3, §4): request bodies as the SDK sends them
//! (unknown keys refused, as upstream), their field limits (422), and the response
//! objects built from store rows. Stored JSON text is embedded as is.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::super::wire::raw;
use crate::clock::{format_micros, parse_rfc3339_micros};
use crate::domain::limits::{OUTPUT_URI_CHARS, TASK_ID_CHARS, TASK_NAME_CHARS, TASK_VERSION_CHARS};
use crate::domain::v2::{Code, Refusal};
use crate::http::request::string_too_long;
use crate::http::response::{ApiError, ValidationItem};
use crate::store::v2::claims::Transition;
use crate::store::v2::reads::{FrontierMember, PlanDetail};
use crate::store::v2::registration::Item;
use crate::store::v2::schema::*;

pub fn ts(micros: i64) -> String {
    format_micros(micros)
}

pub fn ts_opt(micros: Option<i64>) -> Option<String> {
    micros.map(format_micros)
}

pub fn uuid(id: u128) -> Uuid {
    Uuid::from_u128(id)
}

fn raw_opt(text: &Option<String>) -> Result<Option<&RawValue>, ApiError> {
    text.as_deref().map(raw).transpose()
}

/// A 422 item for one body field, pydantic-shaped.
pub fn invalid(loc: &[&str], kind: &str, msg: impl Into<String>, input: Value) -> ApiError {
    let mut l = vec![json!("body")];
    l.extend(loc.iter().map(|s| json!(s)));
    ApiError::Validation(vec![ValidationItem::new(kind, l, msg, input)])
}

/// `min..=max` characters, or pydantic's `string_too_short` / `string_too_long` (the
/// latter from the shared helper, which echoes a bounded prefix).
pub fn check_str(loc: &[&str], value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    if value.chars().count() < min {
        return Err(invalid(
            loc,
            "string_too_short",
            format!(
                "String should have at least {min} character{}",
                if min == 1 { "" } else { "s" }
            ),
            json!(value),
        ));
    }
    let mut at = vec![json!("body")];
    at.extend(loc.iter().map(|s| json!(s)));
    match string_too_long(at, value, max) {
        Some(item) => Err(ApiError::Validation(vec![item])),
        None => Ok(()),
    }
}

pub fn check_opt(loc: &[&str], value: &Option<String>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) => check_str(loc, v, 0, max),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------
// Request bodies

/// One registration item (§3.1).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::wire::ItemBody)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    task_id: String,
    #[serde(default)]
    task_namespace: String,
    task_name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    output_uri: Option<String>,
    instance_hash: String,
    #[schema(value_type = Object)]
    body: Map<String, Value>,
    #[serde(default)]
    declared_upstreams: Option<Vec<String>>,
    #[serde(default)]
    observed_complete: bool,
    observed_at: String,
}

impl ItemBody {
    /// Checks the field limits; `at` is the item's location (`["items", "3"]`).
    pub fn into_item(self, at: &[&str]) -> Result<Item, ApiError> {
        let loc = |f: &'static str| -> Vec<&str> { at.iter().copied().chain([f]).collect() };
        check_str(&loc("task_id"), &self.task_id, 1, TASK_ID_CHARS)?;
        check_str(
            &loc("task_namespace"),
            &self.task_namespace,
            0,
            TASK_NAME_CHARS,
        )?;
        check_str(&loc("task_name"), &self.task_name, 1, TASK_NAME_CHARS)?;
        check_opt(&loc("version"), &self.version, TASK_VERSION_CHARS)?;
        check_opt(&loc("output_uri"), &self.output_uri, OUTPUT_URI_CHARS)?;
        check_str(&loc("instance_hash"), &self.instance_hash, 1, TASK_ID_CHARS)?;
        let observed_at = observed_at(&self.observed_at, &loc("observed_at"))?;
        Ok(Item {
            task_id: self.task_id,
            identity: Identity {
                namespace: self.task_namespace,
                name: self.task_name,
                version: self.version,
                output_uri: self.output_uri,
            },
            instance_hash: self.instance_hash,
            body: Value::Object(self.body).to_string(),
            declared_upstreams: self.declared_upstreams,
            observed_complete: self.observed_complete,
            observed_at,
        })
    }
}

/// An `observed_at`: RFC 3339 with an offset; a naive time is 400 `observed_at_naive`
/// (D33), anything else not a datetime 422.
fn observed_at(raw: &str, loc: &[&str]) -> Result<i64, ApiError> {
    if let Some(m) = parse_rfc3339_micros(raw) {
        return Ok(m);
    }
    let naive = time::PrimitiveDateTime::parse(
        raw,
        &time::format_description::well_known::Iso8601::DEFAULT,
    )
    .is_ok();
    if naive {
        return Err(
            Refusal::new(Code::ObservedAtNaive, "observed_at must carry a timezone").into(),
        );
    }
    Err(invalid(
        loc,
        "datetime_from_date_parsing",
        "Input should be a valid datetime",
        json!(raw),
    ))
}

/// Items of a chunk, each checked, with its location in errors.
pub fn items(bodies: Vec<ItemBody>, field: &str) -> Result<Vec<Item>, ApiError> {
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, b)| b.into_item(&[field, &i.to_string()]))
        .collect()
}

// ---------------------------------------------------------------------------------
// Responses

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::wire::BuildOut)]
pub struct BuildOut<'a> {
    id: Uuid,
    name: &'a str,
    description: Option<&'a str>,
    status: &'static str,
    root_task_ids: &'a [String],
    created_at: String,
    started_at: String,
    completed_at: Option<String>,
    last_active_at: String,
    is_resumed: bool,
    #[schema(value_type = Option<Object>)]
    executor_metadata: Option<&'a RawValue>,
    reactive_app_name: Option<&'a str>,
    #[schema(value_type = Option<Object>)]
    reactive_tick_kwargs: Option<&'a RawValue>,
    error_message: Option<&'a str>,
    status_triggered_by_user_id: Option<Uuid>,
}

pub fn build_out(id: u128, b: &BuildRow) -> Result<BuildOut<'_>, ApiError> {
    Ok(BuildOut {
        id: uuid(id),
        name: &b.name,
        description: b.description.as_deref(),
        status: b.status.as_str(),
        root_task_ids: &b.root_task_ids,
        created_at: ts(b.created_at),
        started_at: ts(b.created_at),
        completed_at: ts_opt(b.completed_at),
        last_active_at: ts(b.last_active_at),
        is_resumed: b.is_resumed,
        executor_metadata: raw_opt(&b.executor_metadata)?,
        reactive_app_name: b.reactive_app_name.as_deref(),
        reactive_tick_kwargs: raw_opt(&b.reactive_tick_kwargs)?,
        error_message: b
            .error_message
            .as_deref()
            .filter(|_| b.status == crate::domain::v2::BuildStatus::Failed),
        status_triggered_by_user_id: None,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::wire::PlanOut)]
pub struct PlanOut<'a> {
    id: Uuid,
    build_id: Uuid,
    deployment_id: Uuid,
    settings_hash: &'a str,
    generation: u64,
    created_at: String,
    activated_at: Option<String>,
    sealed_at: Option<String>,
    superseded_at: Option<String>,
    is_active: bool,
    created: bool,
}

pub fn plan_out(id: u128, p: &PlanRow, created: bool) -> PlanOut<'_> {
    PlanOut {
        id: uuid(id),
        build_id: uuid(p.build),
        deployment_id: uuid(p.deployment),
        settings_hash: &p.settings_hash,
        generation: p.generation,
        created_at: ts(p.created_at),
        activated_at: ts_opt(p.activated_at),
        sealed_at: ts_opt(p.sealed_at),
        superseded_at: ts_opt(p.superseded_at),
        is_active: p.active(),
        created,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::wire::PlanDetailOut)]
pub struct PlanDetailOut<'a> {
    #[serde(flatten)]
    plan: PlanOut<'a>,
    deployment: Option<DeploymentOut<'a>>,
    member_count: u64,
    root_count: u64,
    excluded_count: u64,
    member_counts: &'a std::collections::BTreeMap<&'static str, u64>,
}

pub fn plan_detail_out(d: &PlanDetail) -> PlanDetailOut<'_> {
    PlanDetailOut {
        plan: plan_out(d.id, &d.plan, false),
        deployment: d
            .deployment
            .as_ref()
            .map(|(row, current)| deployment_out(d.plan.deployment, row, *current, false)),
        member_count: d.member_count,
        root_count: d.root_count,
        excluded_count: d.excluded_count,
        member_counts: &d.member_counts,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::wire::DeploymentOut)]
pub struct DeploymentOut<'a> {
    id: Uuid,
    kind: &'static str,
    app_name: &'a str,
    code_id: &'a str,
    image_id: Option<&'a str>,
    modal_app_id: Option<&'a str>,
    generation: u64,
    deployed_at: String,
    activated_at: Option<String>,
    is_current: bool,
    created: bool,
}

pub fn deployment_out(
    id: u128,
    d: &DeploymentRow,
    current: bool,
    created: bool,
) -> DeploymentOut<'_> {
    DeploymentOut {
        id: uuid(id),
        kind: d.kind.as_str(),
        app_name: &d.app_name,
        code_id: &d.code_id,
        image_id: d.image_id.as_deref(),
        modal_app_id: d.modal_app_id.as_deref(),
        generation: d.generation,
        deployed_at: ts(d.deployed_at),
        activated_at: ts_opt(d.activated_at),
        is_current: current,
        created,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::wire::FrontierMemberOut)]
pub struct FrontierMemberOut<'a> {
    task_id: &'a str,
    instance_id: Uuid,
    instance_hash: &'a str,
    status: &'static str,
    is_root: bool,
    #[schema(value_type = Object)]
    body: &'a RawValue,
    attempts: u64,
    interruptions: u64,
    restart_expected_by: Option<String>,
}

pub fn frontier_members(items: &[FrontierMember]) -> Result<Vec<FrontierMemberOut<'_>>, ApiError> {
    items
        .iter()
        .map(|m| {
            Ok(FrontierMemberOut {
                task_id: &m.task_id,
                instance_id: uuid(m.instance_id),
                instance_hash: &m.instance_hash,
                status: m.status.as_str(),
                is_root: m.is_root,
                body: raw(&m.body)?,
                attempts: m.attempts,
                interruptions: m.interruptions,
                restart_expected_by: ts_opt(m.restart_expected_by),
            })
        })
        .collect()
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::wire::TransitionOut)]
pub struct TransitionOut {
    applied: bool,
    status: &'static str,
    execution_id: Option<Uuid>,
    claim_expires_at: Option<String>,
}

pub fn transition_out(t: &Transition) -> TransitionOut {
    TransitionOut {
        applied: t.applied,
        status: t.status.as_str(),
        execution_id: t.execution.map(uuid),
        claim_expires_at: ts_opt(t.claim_expires_at),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::wire::ExecutionOut)]
pub struct ExecutionOut<'a> {
    id: Uuid,
    task_id: &'a str,
    build_id: Uuid,
    plan_id: Uuid,
    instance_id: Uuid,
    executor: Option<&'a str>,
    executor_ref: Option<&'a str>,
    #[schema(value_type = Option<Object>)]
    executor_metadata: Option<&'a RawValue>,
    in_current_plan: bool,
    started_at: String,
    claim_released_at: Option<String>,
    claim_outcome: Option<&'static str>,
    ended_at: Option<String>,
    outcome: Option<&'static str>,
}

pub fn execution_out(
    id: u128,
    e: &ExecutionRow,
    in_current_plan: bool,
) -> Result<ExecutionOut<'_>, ApiError> {
    Ok(ExecutionOut {
        id: uuid(id),
        task_id: &e.task_id,
        build_id: uuid(e.build),
        plan_id: uuid(e.plan),
        instance_id: uuid(e.instance),
        executor: e.executor.as_deref(),
        executor_ref: e.executor_ref.as_deref(),
        executor_metadata: raw_opt(&e.executor_metadata)?,
        in_current_plan,
        started_at: ts(e.started_at),
        claim_released_at: ts_opt(e.claim_released_at),
        claim_outcome: e.claim_outcome.map(|o| o.as_str()),
        ended_at: ts_opt(e.ended_at),
        outcome: e.outcome.map(|o| o.as_str()),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::wire::TaskOut)]
pub struct TaskOut<'a> {
    task_id: &'a str,
    task_namespace: &'a str,
    task_name: &'a str,
    version: Option<&'a str>,
    output_uri: Option<&'a str>,
    status: &'static str,
    status_at: String,
    started_at: Option<String>,
    completed_at: Option<String>,
    error_message: Option<&'a str>,
    claim_expires_at: Option<String>,
    claim_plan_id: Option<Uuid>,
    claim_build_id: Option<Uuid>,
    execution_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instances: Option<Vec<InstanceOut<'a>>>,
}

/// A task; `started_at` is its current execution's start.
pub fn task_out<'a>(id: &'a str, t: &'a TaskRow, started_at: Option<i64>) -> TaskOut<'a> {
    let running = t.status == crate::domain::v2::TaskStatus::Running;
    TaskOut {
        task_id: id,
        task_namespace: &t.namespace,
        task_name: &t.name,
        version: t.version.as_deref(),
        output_uri: t.output_uri.as_deref(),
        status: t.status.as_str(),
        status_at: ts(t.status_at),
        started_at: ts_opt(started_at),
        completed_at: ts_opt(t.completed_at),
        error_message: t.error_message.as_deref(),
        claim_expires_at: ts_opt(t.claim_expires_at),
        claim_plan_id: t.claim_plan.filter(|_| running).map(uuid),
        claim_build_id: t.claim_build.filter(|_| running).map(uuid),
        execution_id: t.execution.map(uuid),
        instances: None,
    }
}

impl<'a> TaskOut<'a> {
    pub fn with_instances(mut self, instances: Vec<InstanceOut<'a>>) -> Self {
        self.instances = Some(instances);
        self
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::wire::InstanceOut)]
pub struct InstanceOut<'a> {
    id: Uuid,
    deployment_id: Uuid,
    settings_hash: &'a str,
    instance_hash: &'a str,
    #[schema(value_type = Object)]
    body: &'a RawValue,
    expanded_at: Option<String>,
    created_at: String,
}

pub fn instance_out(id: u128, i: &InstanceRow) -> Result<InstanceOut<'_>, ApiError> {
    Ok(InstanceOut {
        id: uuid(id),
        deployment_id: uuid(i.deployment),
        settings_hash: &i.settings_hash,
        instance_hash: &i.instance_hash,
        body: raw(&i.body)?,
        expanded_at: ts_opt(i.expanded_at),
        created_at: ts(i.created_at),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::wire::EventOut)]
pub struct EventOut<'a> {
    id: Uuid,
    event_type: &'static str,
    created_at: String,
    build_id: Option<Uuid>,
    plan_id: Option<Uuid>,
    execution_id: Option<Uuid>,
    task_id: Option<&'a str>,
    report_applied: bool,
    error_message: Option<&'a str>,
    #[schema(value_type = Option<Object>)]
    event_metadata: Option<&'a RawValue>,
}

pub fn event_out(e: &EventRow) -> Result<EventOut<'_>, ApiError> {
    Ok(EventOut {
        id: uuid(e.id),
        event_type: e.event_type.as_str(),
        created_at: ts(e.created_at),
        build_id: e.build.map(uuid),
        plan_id: e.plan.map(uuid),
        execution_id: e.execution.map(uuid),
        task_id: e.task_id.as_deref(),
        report_applied: e.applied,
        error_message: e.error_message.as_deref(),
        event_metadata: raw_opt(&e.metadata)?,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::wire::ArtifactOut)]
pub struct ArtifactOut<'a> {
    id: Uuid,
    task_id: &'a str,
    artifact_type: &'a str,
    name: &'a str,
    #[schema(value_type = Object)]
    body: &'a RawValue,
    created_at: String,
}

pub fn artifact_out<'a>(
    task_id: &'a str,
    kind: &'a str,
    name: &'a str,
    a: &'a ArtifactRow,
) -> Result<ArtifactOut<'a>, ApiError> {
    Ok(ArtifactOut {
        id: uuid(a.id),
        task_id,
        artifact_type: kind,
        name,
        body: raw(&a.body)?,
        created_at: ts(a.created_at),
    })
}
