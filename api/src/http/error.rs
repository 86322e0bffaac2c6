//! Every way a request can fail, and the one place that turns a failure into a status code and a
//! JSON body.

use poem_openapi::payload::Json;

use super::ALLOWED_METHODS;
use poem_openapi::{ApiResponse, Enum, Object};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The id in the path breaks the rules for order ids.
    #[error("{reason}")]
    InvalidOrderUid { reason: String },
    /// A query parameter is missing, malformed or out of range.
    #[error("{0}")]
    InvalidParameter(String),
    #[error("no order has the id {order_uid:?}")]
    OrderNotFound { order_uid: String },
    /// The cache has not finished loading the stored orders.
    #[error("the service is starting: it is still loading the stored orders; try again shortly")]
    NotReady,
    /// The order is not in memory (the cache is bounded) and no database can be reached to read
    /// it.
    #[error(
        "the order {order_uid:?} is not in memory and the database cannot be reached now; \
         try again shortly"
    )]
    DatabaseUnavailable { order_uid: String },
    /// An admin operation without the admin token, or with another one.
    #[error("this operation needs the admin token: send `Authorization: Bearer <token>`")]
    Unauthorized,
    /// An admin operation while no admin token is configured.
    #[error("this operation is disabled: the api has no admin token configured")]
    Disabled,
    /// A path no route has.
    #[error("there is nothing at this path: the operations are listed at /openapi.json")]
    UnknownPath,
    /// A method the path does not answer.
    #[error("this path answers only {ALLOWED_METHODS}")]
    MethodNotAllowed,
    /// A bug or an unexpected failure. The cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error response.
#[derive(Debug, Object)]
pub struct ErrorBody {
    /// A stable code to branch on.
    pub code: ErrorCode,
    /// What went wrong, in a sentence for a person.
    pub error: String,
    /// The order id asked for, when the request named a valid one.
    #[oai(skip_serializing_if_is_none)]
    pub order_uid: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidOrderUid,
    InvalidParameter,
    OrderNotFound,
    NotReady,
    DatabaseUnavailable,
    Unauthorized,
    Disabled,
    NotFound,
    MethodNotAllowed,
    Internal,
}

/// The error responses of the api.
#[derive(Debug, ApiResponse)]
pub enum ErrorResponse {
    /// The request is malformed: an invalid order id or query parameter. `error` says why.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Without the admin token, or with a wrong one. `WWW-Authenticate` names the scheme.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// Not found: no order has this id (`order_not_found`), the operation is disabled because
    /// no admin token is configured (`disabled`), or no route has the path (`not_found`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The path answers other methods only (`method_not_allowed`), which `Allow` names.
    #[oai(status = 405)]
    MethodNotAllowed(Json<ErrorBody>, #[oai(header = "Allow")] String),
    /// An unexpected error on the server. Nothing about it is disclosed; it is logged.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The service cannot answer now: it has just started and is still loading the stored
    /// orders (`not_ready`), or an order asked for by id is not in memory and the database
    /// cannot be reached (`database_unavailable`). Retry shortly.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl From<ApiError> for ErrorResponse {
    fn from(error: ApiError) -> Self {
        let body = |code, order_uid| {
            Json(ErrorBody {
                code,
                error: error.to_string(),
                order_uid,
            })
        };
        match &error {
            ApiError::InvalidOrderUid { .. } => {
                ErrorResponse::BadRequest(body(ErrorCode::InvalidOrderUid, None))
            }
            ApiError::InvalidParameter(_) => {
                ErrorResponse::BadRequest(body(ErrorCode::InvalidParameter, None))
            }
            ApiError::OrderNotFound { order_uid } => {
                ErrorResponse::NotFound(body(ErrorCode::OrderNotFound, Some(order_uid.clone())))
            }
            ApiError::NotReady => ErrorResponse::Unavailable(body(ErrorCode::NotReady, None)),
            ApiError::DatabaseUnavailable { order_uid } => ErrorResponse::Unavailable(body(
                ErrorCode::DatabaseUnavailable,
                Some(order_uid.clone()),
            )),
            ApiError::Unauthorized => {
                ErrorResponse::Unauthorized(body(ErrorCode::Unauthorized, None), "Bearer".into())
            }
            ApiError::Disabled => ErrorResponse::NotFound(body(ErrorCode::Disabled, None)),
            ApiError::UnknownPath => ErrorResponse::NotFound(body(ErrorCode::NotFound, None)),
            ApiError::MethodNotAllowed => ErrorResponse::MethodNotAllowed(
                body(ErrorCode::MethodNotAllowed, None),
                ALLOWED_METHODS.into(),
            ),
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "request failed");
                ErrorResponse::Internal(body(ErrorCode::Internal, None))
            }
        }
    }
}
