//! Who may use the operations that show personal data: a caller with the admin token.

use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;
use service_kit::settings::{ExposeSecret, Secret};
use subtle::ConstantTimeEq;

/// The shortest admin token accepted.
const MIN_TOKEN_CHARS: usize = 16;

/// The secret that opens the admin operations. Never printed: it is a [`Secret`].
#[derive(Debug, Clone)]
pub struct AdminToken(Secret);

impl AdminToken {
    pub fn new(token: &str) -> Result<AdminToken, String> {
        let token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
        if token.chars().count() < MIN_TOKEN_CHARS {
            return Err(format!("is shorter than {MIN_TOKEN_CHARS} characters"));
        }
        if !token.trim_end_matches('=').chars().all(token68) {
            return Err("may hold only A-Z a-z 0-9 - . _ ~ + / (and = at the end)".to_string());
        }
        Ok(AdminToken(token.into()))
    }

    /// Whether `presented` is this token. The time taken does not depend on where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        self.0
            .expose_secret()
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }
}

/// The admin token, sent as `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(rename = "admin_token", ty = "bearer")]
pub struct AdminBearer(Bearer);

impl AdminBearer {
    pub fn token(&self) -> &str {
        &self.0.token
    }
}
