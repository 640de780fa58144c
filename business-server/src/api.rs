//! HTTP API: tokens, room policy and notices, gift catalogue, flash sales, metrics.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::{admin_key_matches, valid_name, Claims, Role, ANY_ROOM};
use crate::gift::{self, LEADERBOARD_SIZE};
use crate::protocol::{ErrorCode, Event, ProtoError};
use crate::sale::{Outcome, Phase, SaleSpec, SaleState, MAX_TEXT};
use crate::server::{now_ms, now_secs, AppState};
use crate::session;
use crate::store::StoreError;

/// Longest token lifetime, in seconds (7 days).
pub const MAX_TTL_SECS: u64 = 7 * 24 * 3600;
/// Most units in one sale.
pub const MAX_STOCK: u64 = 100_000_000;

/// An HTTP error with a stable code: `{"error":{"code":..,"message":..}}`.
#[derive(Debug)]
pub struct ApiError(pub ProtoError);

impl ApiError {
    /// Builds an error from a code and a reason.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ProtoError::new(code, message))
    }

    fn status(&self) -> StatusCode {
        match self.0.code {
            ErrorCode::Unauthorized
            | ErrorCode::TokenMissing
            | ErrorCode::TokenInvalid
            | ErrorCode::TokenExpired => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::TokenRoomMismatch | ErrorCode::ReadOnly => {
                StatusCode::FORBIDDEN
            }
            ErrorCode::UnknownSale => StatusCode::NOT_FOUND,
            ErrorCode::SaleExists => StatusCode::CONFLICT,
            ErrorCode::TooManyConnections | ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::MessageTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::StoreUnavailable | ErrorCode::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::SaleExists(id) => {
                ApiError::new(ErrorCode::SaleExists, format!("sale `{id}` already exists"))
            }
            StoreError::Unavailable(why) => ApiError::new(ErrorCode::StoreUnavailable, why),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.0.code.as_str(), "message": self.0.message }
        });
        (self.status(), Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// All routes, including `/ws`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ws", get(session::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/api/v1/gifts", get(|| async { Json(gift::CATALOGUE) }))
        .route("/api/v1/tokens", post(issue_token))
        .route("/api/v1/rooms/{room}", get(room_info))
        .route("/api/v1/rooms/{room}/policy", put(set_policy))
        .route("/api/v1/rooms/{room}/notices", post(post_notice))
        .route("/api/v1/sales", post(create_sale))
        .route("/api/v1/sales/{id}", get(get_sale))
        .route("/api/v1/sales/{id}/purchase", post(purchase))
        .merge(crate::web::router(&state.config))
        .with_state(state)
}

fn require_admin(app: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let offered = headers
        .get("x-admin-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if offered.is_empty() || !admin_key_matches(offered, &app.config.admin_key) {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "a valid `x-admin-key` header is required",
        ));
    }
    Ok(())
}

/// Parses a JSON body, naming unknown fields, syntax errors and bad values apart.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        let code = if msg.starts_with("unknown field") {
            ErrorCode::UnknownField
        } else if e.is_syntax() || e.is_eof() {
            ErrorCode::BadJson
        } else {
            ErrorCode::InvalidField
        };
        ApiError::new(code, msg)
    })
}

fn room_name(room: &str) -> ApiResult<()> {
    if valid_name(room) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidRoom,
            "room must be 1-64 characters of [A-Za-z0-9_-]",
        ))
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(app.store.backend()),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user: String,
    #[serde(default = "any_room")]
    room: String,
    #[serde(default = "viewer")]
    role: Role,
    #[serde(default = "default_ttl")]
    ttl_secs: u64,
}

fn any_room() -> String {
    ANY_ROOM.to_string()
}
fn viewer() -> Role {
    Role::Viewer
}
fn default_ttl() -> u64 {
    3600
}

#[derive(Serialize)]
struct TokenResponse {
    token: String,
    #[serde(flatten)]
    claims: Claims,
}

/// `POST /api/v1/tokens` (admin): signs a token for a user.
async fn issue_token(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<TokenResponse>> {
    require_admin(&app, &headers)?;
    let req: TokenRequest = json_body(&body)?;
    if !valid_name(&req.user) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "user must be 1-64 characters of [A-Za-z0-9_-]",
        ));
    }
    if req.room != ANY_ROOM {
        room_name(&req.room)?;
    }
    if !(1..=MAX_TTL_SECS).contains(&req.ttl_secs) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("ttl_secs must be 1..={MAX_TTL_SECS}"),
        ));
    }
    let claims = Claims {
        user: req.user,
        room: req.room,
        role: req.role,
        exp: now_secs() + req.ttl_secs,
    };
    Ok(Json(TokenResponse {
        token: app.signer.issue(&claims),
        claims,
    }))
}

/// `GET /api/v1/rooms/{room}`: members on this instance, the leaderboard and the sale
/// announced in the room, if any.
async fn room_info(
    State(app): State<Arc<AppState>>,
    Path(room): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    room_name(&room)?;
    let here = app.hub.room(&room).map_or(0, |r| r.member_count());
    let top = app.store.leaderboard(&room, LEADERBOARD_SIZE).await?;
    let sale = match app.store.room_sale(&room).await? {
        Some(id) => app.store.sale(&id).await?.map(SaleView::new),
        None => None,
    };
    Ok(Json(serde_json::json!({
        "room": room,
        "members_here": here,
        "leaderboard": top,
        "sale": sale,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRequest {
    allow_anonymous: bool,
}

/// `PUT /api/v1/rooms/{room}/policy` (admin): whether anonymous viewers may join.
async fn set_policy(
    State(app): State<Arc<AppState>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    require_admin(&app, &headers)?;
    room_name(&room)?;
    let req: PolicyRequest = json_body(&body)?;
    app.store
        .set_allow_anonymous(&room, req.allow_anonymous)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoticeRequest {
    text: String,
    #[serde(default)]
    level: NoticeLevel,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum NoticeLevel {
    #[default]
    Info,
    Warning,
}

/// `POST /api/v1/rooms/{room}/notices` (admin): a system notice to every member.
async fn post_notice(
    State(app): State<Arc<AppState>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    require_admin(&app, &headers)?;
    room_name(&room)?;
    let req: NoticeRequest = json_body(&body)?;
    let text = req.text.trim();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "text must be 1..=500 characters",
        ));
    }
    let level = match req.level {
        NoticeLevel::Info => "info",
        NoticeLevel::Warning => "warning",
    };
    app.store
        .publish(&room, Event::Notice { text, level }.encode())
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaleRequest {
    id: Option<String>,
    item: String,
    stock: u64,
    start_at_ms: Option<u64>,
    #[serde(default = "one")]
    per_user_limit: u32,
    room: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Serialize)]
struct SaleView {
    #[serde(flatten)]
    state: SaleState,
    phase: Phase,
}

impl SaleView {
    fn new(state: SaleState) -> Self {
        Self {
            phase: state.phase(now_ms()),
            state,
        }
    }
}

/// `POST /api/v1/sales` (admin): creates a flash sale; with `room`, announces it there.
async fn create_sale(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<SaleView>)> {
    require_admin(&app, &headers)?;
    let req: SaleRequest = json_body(&body)?;
    let id = req
        .id
        .unwrap_or_else(|| format!("sale-{:016x}", rand::random::<u64>()));
    let invalid = |m: &str| Err(ApiError::new(ErrorCode::InvalidField, m));
    if !valid_name(&id) {
        return invalid("id must be 1-64 characters of [A-Za-z0-9_-]");
    }
    if req.item.trim().is_empty() || req.item.len() > MAX_TEXT {
        return invalid("item must be 1..=128 bytes");
    }
    if !(1..=MAX_STOCK).contains(&req.stock) {
        return invalid("stock must be 1..=100000000");
    }
    if req.per_user_limit == 0 {
        return invalid("per_user_limit must be at least 1");
    }
    if let Some(room) = &req.room {
        room_name(room)?;
    }
    let spec = SaleSpec {
        id,
        item: req.item,
        stock: req.stock,
        start_at_ms: req.start_at_ms.unwrap_or_else(now_ms),
        per_user_limit: req.per_user_limit,
    };
    app.store.create_sale(&spec).await?;
    let state = app.store.sale(&spec.id).await?.ok_or_else(|| {
        ApiError::new(ErrorCode::StoreUnavailable, "sale vanished after creation")
    })?;
    let view = SaleView::new(state);
    if let Some(room) = &req.room {
        announce(&app, room, &view).await?;
    }
    Ok((StatusCode::CREATED, Json(view)))
}

/// Makes the sale the one `room` shows and tells its members on every instance.
async fn announce(app: &AppState, room: &str, view: &SaleView) -> ApiResult<()> {
    app.store.set_room_sale(room, &view.state.spec.id).await?;
    if let Some(local) = app.hub.room(room) {
        local.show_sale(&view.state);
    }
    let event = Event::Sale {
        sale: &view.state,
        phase: view.phase,
    };
    app.store.publish(room, event.encode()).await?;
    Ok(())
}

async fn find_sale(app: &AppState, id: &str) -> ApiResult<SaleState> {
    if !valid_name(id) {
        return Err(ApiError::new(
            ErrorCode::UnknownSale,
            format!("no sale `{}`", id.chars().take(64).collect::<String>()),
        ));
    }
    app.store
        .sale(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownSale, format!("no sale `{id}`")))
}

/// `GET /api/v1/sales/{id}`: spec, sold, remaining, phase and outcome counts.
async fn get_sale(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<SaleView>> {
    Ok(Json(SaleView::new(find_sale(&app, &id).await?)))
}

#[derive(Serialize)]
struct PurchaseResponse {
    sale: String,
    key: String,
    #[serde(flatten)]
    outcome: Outcome,
}

/// `POST /api/v1/sales/{id}/purchase`: `Authorization: Bearer <token>` and
/// `Idempotency-Key`; a retry with the same key gets the same answer.
async fn purchase(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<PurchaseResponse>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::TokenMissing,
                "an `Authorization: Bearer <token>` header is required",
            )
        })?;
    let claims = app
        .signer
        .verify(token.trim(), now_secs())
        .map_err(ApiError)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= MAX_TEXT)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidField,
                format!("an `Idempotency-Key` header of 1..={MAX_TEXT} bytes is required"),
            )
        })?;
    if !valid_name(&id) {
        return Err(ApiError::new(ErrorCode::UnknownSale, "no such sale"));
    }
    let outcome = app
        .store
        .purchase(&id, &claims.user, key, now_ms())
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownSale, format!("no sale `{id}`")))?;
    app.metrics.purchase(outcome.kind());
    Ok(Json(PurchaseResponse {
        sale: id,
        key: key.to_string(),
        outcome,
    }))
}
