//! `GET /api/v1/dead-letters`: the messages that were not valid orders, for a person with the admin
//! token. Read straight from Postgres (the cache holds orders only), with the api's read-only role.

use chrono::{DateTime, Utc};
use orders::db::{list_dead_letters, DeadLetter, DeadLetterQuery};
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::types::Base64;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sqlx::PgPool;

use super::admin::{AdminBearer, AdminToken};
use super::error::ApiError;
use super::reply::{Outcome, Reply};

/// Where the listing is, under the API's prefix.
pub const PATH: &str = "/dead-letters";

#[derive(Tags)]
enum Tag {
    /// Messages that were not valid orders. Needs the admin token.
    DeadLetters,
}

pub struct DeadLettersApi {
    pub reads: PgPool,
    /// `None`: the listing is disabled.
    pub admin_token: Option<AdminToken>,
}

#[derive(ApiResponse)]
pub enum DeadLettersFound {
    /// Dead letters, newest first.
    #[oai(status = 200)]
    Ok(Json<DeadLetterPage>),
}

impl Outcome for DeadLettersFound {
    const ERROR_STATUSES: &'static [u16] = &[400, 401, 404, 500];
}

/// A page of dead letters.
#[derive(Object)]
pub struct DeadLetterPage {
    /// Newest first.
    pub dead_letters: Vec<DeadLetterView>,
    /// The `before_id` of the next page; `null` on the last page.
    #[oai(nullable)]
    pub next_before_id: Option<i64>,
}

/// A message that was not a valid order, kept whole.
#[derive(Object)]
#[oai(rename = "DeadLetter")]
pub struct DeadLetterView {
    pub id: i64,
    /// When the ingestor stored it.
    pub received_at: DateTime<Utc>,
    /// The channel, sequence and publish time the broker gave the message.
    pub channel: String,
    pub stan_sequence: i64,
    pub published_at: DateTime<Utc>,
    /// A stable code, such as `malformed_json` or `amount_mismatch`.
    pub rule: String,
    /// Why the message is not a valid order, in a sentence for a person.
    pub reason: String,
    /// The message as text when it is valid UTF-8; otherwise `null`, and `payload_base64` holds it.
    #[oai(nullable)]
    pub payload: Option<String>,
    /// The message in base64 when it is not valid UTF-8; otherwise `null`.
    #[oai(nullable)]
    pub payload_base64: Option<Base64<Vec<u8>>>,
    /// The size of the message in bytes.
    pub payload_bytes: u64,
    /// When a person dealt with it; `null` while it waits.
    #[oai(nullable)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// How: `replayed: stored`, `replayed: duplicate`, `replayed: conflict` (stored, or recognised,
    /// after all) or `dismissed` (resolved without storing it); `null` while it waits.
    #[oai(nullable)]
    pub resolution: Option<String>,
    /// Why it was dismissed, in the words of the person who did; `null` unless `resolution` is
    /// `dismissed`.
    #[oai(nullable)]
    pub resolution_reason: Option<String>,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(letter: DeadLetter) -> Self {
        let payload_bytes = u64::try_from(letter.payload.len()).unwrap_or(u64::MAX);
        let (payload, payload_base64) = match String::from_utf8(letter.payload) {
            Ok(text) => (Some(text), None),
            Err(e) => (None, Some(Base64(e.into_bytes()))),
        };
        DeadLetterView {
            id: letter.id,
            received_at: letter.received_at,
            channel: letter.channel,
            stan_sequence: letter.stan_sequence,
            published_at: letter.published_at,
            rule: letter.rule,
            reason: letter.reason,
            payload,
            payload_base64,
            payload_bytes,
            resolved_at: letter.resolved_at,
            resolution: letter.resolution,
            resolution_reason: letter.resolution_reason,
        }
    }
}

fn default_limit() -> u32 {
    20
}

#[OpenApi(tag = "Tag::DeadLetters")]
impl DeadLettersApi {
    /// List dead letters
    ///
    /// The messages that were not valid orders, newest first, with the rule each one broke, why,
    /// and the message itself. They can hold personal data, so the admin token is required
    /// (`Authorization: Bearer <token>`; 401 without it). The listing is disabled, and answers 404,
    /// when the api runs without an admin token (`ADMIN_TOKEN`). To replay a dead letter once it
    /// has been fixed upstream, use `ingestor dead-letters replay ID`; to resolve one without
    /// storing it, `ingestor dead-letters dismiss ID --reason TEXT`.
    #[oai(
        path = "/dead-letters",
        method = "get",
        operation_id = "list_dead_letters"
    )]
    async fn list_dead_letters(
        &self,
        // Extracted first: a caller without the token learns nothing about the other parameters.
        auth: AdminBearer,
        /// How many dead letters to return, at most.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u32>,
        /// Only those with an id below this one: the `next_before_id` of the previous page.
        before_id: Query<Option<i64>>,
        /// Only those that broke this rule, e.g. `malformed_json`. Without U+0000, which Postgres
        /// text cannot hold.
        #[oai(validator(pattern = "^[^\\x00]*$"))]
        rule: Query<Option<String>>,
        /// Resolved ones too, not only those that wait for a person.
        #[oai(default)]
        include_resolved: Query<bool>,
    ) -> Reply<DeadLettersFound> {
        let query = DeadLetterQuery {
            rule: rule.0,
            include_resolved: include_resolved.0,
            before_id: before_id.0,
            limit: i64::from(limit.0),
        };
        self.list(&auth, query).await.into()
    }
}

impl DeadLettersApi {
    async fn list(
        &self,
        auth: &AdminBearer,
        query: DeadLetterQuery,
    ) -> Result<DeadLettersFound, ApiError> {
        let token = self.admin_token.as_ref().ok_or(ApiError::Disabled)?;
        if !token.matches(auth.token()) {
            return Err(ApiError::Unauthorized);
        }
        let letters = list_dead_letters(&self.reads, &query).await.map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context("listing dead letters"))
        })?;
        let full_page = i64::try_from(letters.len()).is_ok_and(|n| n == query.limit);
        let next_before_id = letters.last().filter(|_| full_page).map(|l| l.id);
        Ok(DeadLettersFound::Ok(Json(DeadLetterPage {
            dead_letters: letters.into_iter().map(DeadLetterView::from).collect(),
            next_before_id,
        })))
    }
}
