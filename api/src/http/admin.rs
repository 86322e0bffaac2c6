//! Who may use the operations that show personal data: a caller with the admin token.

use std::fmt;

use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;
use subtle::ConstantTimeEq;

/// The shortest admin token accepted.
const MIN_TOKEN_CHARS: usize = 16;

/// The secret that opens the admin operations. Never printed: its `Debug` shows no characters.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn new(token: &str) -> Result<AdminToken, String> {
        let token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
        if token.chars().count() < MIN_TOKEN_CHARS {
            return Err(format!("is shorter than {MIN_TOKEN_CHARS} characters"));
        }
        if !token.trim_end_matches('=').chars().all(token68) {
            return Err("may hold only A-Z a-z 0-9 - . _ ~ + / (and = at the end)".to_string());
        }
        Ok(AdminToken(token.to_string()))
    }

    /// Whether `presented` is this token. The time taken does not depend on where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(…)")
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
