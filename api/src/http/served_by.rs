//! `X-Served-By`: which replica answered, for debugging a balanced deployment.

use poem::http::HeaderValue;

/// The header's name.
pub const X_SERVED_BY: &str = "x-served-by";

/// The most characters of a replica's name the header carries.
const MAX_LEN: usize = 128;

/// `name` as a header value, computed once at start: a header value must be visible ASCII, so
/// every other character (spaces, controls, anything beyond ASCII) becomes `_`.
pub fn header_value(name: &str) -> HeaderValue {
    let visible: String = name
        .chars()
        .take(MAX_LEN)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    let visible = if visible.is_empty() {
        "unnamed".to_string()
    } else {
        visible
    };
    HeaderValue::from_str(&visible).expect("visible ASCII is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::header_value;

    #[test]
    fn a_plain_host_name_is_sent_as_it_is() {
        assert_eq!(header_value("api-7f9c.local"), "api-7f9c.local");
    }

    #[test]
    fn anything_but_visible_ascii_is_replaced() {
        assert_eq!(header_value("a b\tc\r\nd\u{7f}é"), "a_b_c__d__");
        assert_eq!(header_value(""), "unnamed");
        assert_eq!(header_value(&"x".repeat(500)).len(), 128);
    }
}
