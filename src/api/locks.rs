//! Locks (v1-tasks §4.5 as changed by D9 and D19; docs/locks.md): acquire, renew and
//! release go through the single writer, which makes each one atomic; reads use a
//! snapshot (the one-key reads in place). Expiry is judged by the server clock, read
//! inside the writer op.

use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::clock::{format_micros, now_micros};
use crate::domain::limits::LOCK_NAME_CHARS;
use crate::http::request::string_too_long;
use crate::http::response::{echo, ok, ApiError, ApiResult, ValidationItem};
use crate::http::{missing_body, AppState, Req};
use crate::store::locks::{self, Acquired, Completion, LockRow};
use crate::store::redo::{LockAcquire, LockRelease, LockRenew};

/// `ttl_seconds` default and range (D19).
const DEFAULT_TTL_SECONDS: i64 = 60;
const MAX_TTL_SECONDS: i64 = 86_400;
const MICROS: i64 = 1_000_000;

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = locks::LockOut)]
pub(crate) struct LockOut<'a> {
    name: &'a str,
    environment_id: Uuid,
    owner_id: Uuid,
    acquired_at: String,
    expires_at: String,
    version: u64,
}

fn lock_out<'a>(name: &'a str, env: Uuid, row: &LockRow) -> LockOut<'a> {
    LockOut {
        name,
        environment_id: env,
        owner_id: row.owner,
        acquired_at: format_micros(row.acquired_at),
        expires_at: format_micros(row.expires_at),
        version: row.version,
    }
}

/// The body fields of the three lock writes, validated as pydantic would (lax mode),
/// every failure collected into one 422.
struct Fields<'a> {
    body: &'a Map<String, Value>,
    errors: Vec<ValidationItem>,
}

impl<'a> Fields<'a> {
    /// The required body: absent → 422 `missing`, not an object → `model_attributes_type`.
    fn of(rq: &'a Req) -> Result<Fields<'a>, ApiError> {
        match &rq.body {
            Some(Value::Object(body)) => Ok(Fields {
                body,
                errors: Vec::new(),
            }),
            Some(other) => Err(ApiError::Validation(vec![ValidationItem::new(
                "model_attributes_type",
                vec![json!("body")],
                "Input should be a valid dictionary or object to extract fields from",
                echo(other),
            )])),
            None => Err(missing_body()),
        }
    }

    fn fail(&mut self, kind: &str, field: &str, msg: &str, input: Value) {
        self.errors.push(ValidationItem::new(
            kind,
            vec![json!("body"), json!(field)],
            msg,
            input,
        ));
    }

    /// A UUID field; `null` passes only when the field is optional.
    fn uuid(&mut self, field: &str, required: bool) -> Option<Uuid> {
        match self.body.get(field) {
            None if required => {
                let body = Value::Object(self.body.clone());
                self.fail("missing", field, "Field required", body);
                None
            }
            None => None,
            Some(Value::Null) if !required => None,
            Some(Value::String(s)) => match Uuid::parse_str(s) {
                Ok(u) => Some(u),
                Err(_) => {
                    let input = json!(s);
                    self.fail("uuid_parsing", field, "Input should be a valid UUID", input);
                    None
                }
            },
            Some(other) => {
                let input = other.clone();
                let msg = "UUID input should be a string, bytes or UUID object";
                self.fail("uuid_type", field, msg, input);
                None
            }
        }
    }

    /// `ttl_seconds`: an integer (integral floats and numeric strings pass, as in
    /// pydantic's lax mode) in 1..=86400 (D19).
    fn ttl(&mut self, field: &str) -> i64 {
        let Some(v) = self.body.get(field) else {
            return DEFAULT_TTL_SECONDS;
        };
        let n = match v {
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Some(i),
                (None, Some(_), _) => Some(i64::MAX),
                (None, None, Some(f)) if f.fract() == 0.0 => Some(f.clamp(-1e18, 1e18) as i64),
                _ => {
                    let msg =
                        "Input should be a valid integer, got a number with a fractional part";
                    self.fail("int_from_float", field, msg, v.clone());
                    return DEFAULT_TTL_SECONDS;
                }
            },
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(i) => Some(i),
                Err(_) => {
                    let msg =
                        "Input should be a valid integer, unable to parse string as an integer";
                    self.fail("int_parsing", field, msg, v.clone());
                    return DEFAULT_TTL_SECONDS;
                }
            },
            _ => None,
        };
        match n {
            None => self.fail(
                "int_type",
                field,
                "Input should be a valid integer",
                v.clone(),
            ),
            Some(n) if n < 1 => self.fail(
                "greater_than_equal",
                field,
                "Input should be greater than or equal to 1",
                v.clone(),
            ),
            Some(n) if n > MAX_TTL_SECONDS => self.fail(
                "less_than_equal",
                field,
                &format!("Input should be less than or equal to {MAX_TTL_SECONDS}"),
                v.clone(),
            ),
            Some(n) => return n,
        }
        DEFAULT_TTL_SECONDS
    }

    /// A boolean as pydantic's lax mode reads it.
    fn flag(&mut self, field: &str, default: bool) -> bool {
        let Some(v) = self.body.get(field) else {
            return default;
        };
        let parsed = match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) if n.as_i64() == Some(0) => Some(false),
            Value::Number(n) if n.as_i64() == Some(1) => Some(true),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
                "0" | "false" | "f" | "no" | "n" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        };
        parsed.unwrap_or_else(|| {
            let (kind, msg) = match v {
                Value::String(_) | Value::Number(_) => (
                    "bool_parsing",
                    "Input should be a valid boolean, unable to interpret input",
                ),
                _ => ("bool_type", "Input should be a valid boolean"),
            };
            self.fail(kind, field, msg, v.clone());
            default
        })
    }

    /// The collected 422, if any field failed.
    fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// A required field that validated (its absence is already in the 422).
fn validated<T>(v: Option<T>) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::Internal("validated field missing".into()))
}

/// `POST /locks/{name}/acquire`.
pub async fn acquire(state: &AppState, rq: Req, name: &str) -> ApiResult {
    let scope = rq.caller.sdk()?;
    let mut f = Fields::of(&rq)?;
    let owner = f.uuid("owner_id", true);
    let ttl = f.ttl("ttl_seconds");
    let check = f.flag("check_task_completion", true);
    let loc = vec![json!("path"), json!("lock_name")];
    f.errors.extend(string_too_long(loc, name, LOCK_NAME_CHARS));
    f.finish()?;
    let owner = validated(owner)?;
    let (ws, env) = (scope.workspace_id, scope.environment_id);
    let outcome = state
        .store
        .write_logged(LockAcquire {
            workspace: ws,
            env,
            name: name.to_owned(),
            owner,
            ttl_micros: ttl * MICROS,
            check_completion: check,
            now: now_micros(),
        })
        .await?;
    Ok(match outcome {
        Acquired::Acquired(row) => ok(&json!({
            "status": "acquired",
            "acquired": true,
            "lock": lock_out(name, env, &row),
            "error_message": null,
        })),
        Acquired::AlreadyCompleted => ok(&json!({
            "status": "already_completed",
            "acquired": false,
            "lock": null,
            "error_message": null,
        })),
    })
}

/// `POST /locks/{name}/renew`.
pub async fn renew(state: &AppState, rq: Req, name: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let mut f = Fields::of(&rq)?;
    let owner = f.uuid("owner_id", true);
    let ttl = f.ttl("ttl_seconds");
    f.finish()?;
    let owner = validated(owner)?;
    state
        .store
        .write_logged(LockRenew {
            env,
            name: name.to_owned(),
            owner,
            ttl_micros: ttl * MICROS,
            now: now_micros(),
        })
        .await?;
    Ok(ok(&json!({"renewed": true})))
}

/// `POST /locks/{name}/release`.
pub async fn release(state: &AppState, rq: Req, name: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let mut f = Fields::of(&rq)?;
    let owner = f.uuid("owner_id", true);
    let completion = Completion {
        task_completed: f.flag("task_completed", false),
        build: f.uuid("build_id", false),
    };
    f.finish()?;
    let owner = validated(owner)?;
    state
        .store
        .write_logged(LockRelease {
            env,
            name: name.to_owned(),
            owner,
            completion,
            now: now_micros(),
        })
        .await?;
    Ok(ok(&json!({"released": true})))
}

/// `GET /locks?include_expired=`: the environment's locks, newest acquisition first.
pub async fn list(state: &AppState, rq: Req) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let include_expired = rq.query.bool_or("include_expired", false)?;
    let now = now_micros();
    let rows = state
        .store
        .read(move |tx| locks::list(tx, env, now, include_expired).map_err(ApiError::from))
        .await?;
    let out: Vec<LockOut> = rows
        .iter()
        .map(|l| lock_out(&l.name, env, &l.row))
        .collect();
    Ok(ok(&json!({"count": out.len(), "locks": out})))
}

/// `GET /locks/{name}`: expired locks included; another environment's is not found (D9).
pub async fn get(state: &AppState, rq: Req, name: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let row = state
        .store
        .read_inline(|tx| locks::get(tx, env, name).map_err(ApiError::from))?
        .ok_or_else(|| ApiError::not_found("Lock not found"))?;
    Ok(ok(&lock_out(name, env, &row)))
}

/// `GET /locks/tasks/{task_id}/completion-status`: never 404.
pub async fn completion_status(state: &AppState, rq: Req, task: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let done = state
        .store
        .read_inline(|tx| locks::is_completed(tx, env, task).map_err(ApiError::from))?;
    Ok(ok(&json!({"task_id": task, "is_completed": done})))
}
