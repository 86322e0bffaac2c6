//! The return type of every operation: its success response or an [`ErrorResponse`].
//!
//! poem-openapi's own `Result<T, E>` hands malformed parameters (an out-of-range `limit`, say)
//! to `T`, or answers them with a plain-text 400 of its own. `Reply` sends them to
//! [`ApiError::InvalidParameter`] instead (and a missing admin token to
//! [`ApiError::Unauthorized`]), so that every error has the same JSON shape and is
//! mapped in one place. Each success type names the error statuses its operation can answer
//! ([`Outcome`]), so that the documentation of an operation lists only those.

use poem::{IntoResponse, Response};
use poem_openapi::error::AuthorizationError;
use poem_openapi::registry::{MetaResponses, Registry};
use poem_openapi::ApiResponse;

use super::error::{ApiError, ErrorResponse};

/// The success response of an operation, and the error statuses that operation can answer.
pub trait Outcome: ApiResponse {
    const ERROR_STATUSES: &'static [u16];
}

pub enum Reply<T> {
    Ok(T),
    Err(ErrorResponse),
}

impl<T> From<Result<T, ApiError>> for Reply<T> {
    fn from(result: Result<T, ApiError>) -> Self {
        match result {
            Ok(value) => Reply::Ok(value),
            Err(error) => Reply::Err(error.into()),
        }
    }
}

impl<T: Outcome> ApiResponse for Reply<T> {
    const BAD_REQUEST_HANDLER: bool = true;

    fn meta() -> MetaResponses {
        let mut meta = T::meta();
        let errors = ErrorResponse::meta().responses.into_iter();
        // Every path answers a method it does not have with 405, whatever the operation.
        meta.responses.extend(errors.filter(|r| {
            r.status
                .is_some_and(|status| status == 405 || T::ERROR_STATUSES.contains(&status))
        }));
        meta
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
        ErrorResponse::register(registry);
    }

    fn from_parse_request_error(error: poem::Error) -> Self {
        // A missing or malformed `Authorization` header fails the security scheme's extraction.
        if error.is::<AuthorizationError>() {
            return Reply::Err(ApiError::Unauthorized.into());
        }
        Reply::Err(ApiError::InvalidParameter(error.to_string()).into())
    }
}

impl<T: IntoResponse> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        match self {
            Reply::Ok(value) => value.into_response(),
            Reply::Err(error) => error.into_response(),
        }
    }
}
