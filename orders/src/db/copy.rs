//! `COPY … FROM STDIN (FORMAT binary)`: rows encoded in Postgres's binary copy format, and the two
//! round trips that send them.
//!
//! The format: a fixed header; per row the number of fields, then each field as its length and its
//! bytes in the type's binary form (text as UTF-8, integers big-endian, `timestamptz` as
//! microseconds since 2000-01-01 UTC); a trailer. Postgres reads each field with the type's
//! receive function, the one that reads a bound parameter, so a value is checked exactly as an
//! `INSERT` would check it: a NUL byte, a `json` that does not parse, a `char(3)` too long are
//! refused with the same SQLSTATE, and the message is dead-lettered the same way.

use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::PgConnection;

/// The signature, the flags (none) and the length of the header extension (none).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The field count `-1` that ends the data.
const TRAILER: [u8; 2] = (-1i16).to_be_bytes();
/// Microseconds from the Unix epoch to Postgres's, 2000-01-01 00:00:00 UTC.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The rows of one `COPY`, written field by field in the order of its column list.
pub(super) struct CopyRows {
    buf: Vec<u8>,
    rows: usize,
    /// Fields the current row still expects: a row written short or long is a bug that Postgres
    /// would report as bad data, so it is caught in debug builds where it is written.
    fields_left: i16,
}

impl CopyRows {
    /// Rows expected to take about `bytes` bytes.
    pub(super) fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER.len() + bytes + TRAILER.len());
        buf.extend_from_slice(HEADER);
        CopyRows {
            buf,
            rows: 0,
            fields_left: 0,
        }
    }

    /// Starts a row of `fields` fields, each to be written next, in the statement's order.
    pub(super) fn row(&mut self, fields: i16) -> &mut Self {
        debug_assert_eq!(self.fields_left, 0, "the previous row is incomplete");
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self.rows += 1;
        self.fields_left = fields;
        self
    }

    pub(super) fn text(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    /// A field given as its bytes: `text`, `json` and `char(n)` take UTF-8.
    pub(super) fn bytes(&mut self, value: &[u8]) -> &mut Self {
        // Messages are at most 1 MiB (`MAX_MESSAGE_BYTES`), far below a field's 1 GiB.
        let len = i32::try_from(value.len()).expect("a field is shorter than 2 GiB");
        self.field(&len.to_be_bytes());
        self.buf.extend_from_slice(value);
        self
    }

    pub(super) fn int8(&mut self, value: i64) -> &mut Self {
        self.field(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(super) fn int4(&mut self, value: i32) -> &mut Self {
        self.field(&4i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(super) fn int2(&mut self, value: i16) -> &mut Self {
        self.field(&2i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(super) fn timestamptz(&mut self, value: DateTime<Utc>) -> &mut Self {
        // chrono's times are all within ±2^63 µs of 2000, so this cannot overflow; Postgres
        // refuses those outside its own range (4713 BC to 294276 AD) with SQLSTATE 22008.
        self.int8(value.timestamp_micros() - POSTGRES_EPOCH_MICROS)
    }

    /// Writes a field's length prefix.
    fn field(&mut self, length: &[u8; 4]) {
        debug_assert!(self.fields_left > 0, "more fields than the row declared");
        self.fields_left -= 1;
        self.buf.extend_from_slice(length);
    }

    fn finish(mut self) -> Vec<u8> {
        debug_assert_eq!(self.fields_left, 0, "the last row is incomplete");
        self.buf.extend_from_slice(&TRAILER);
        self.buf
    }
}

/// Runs `statement`, a `COPY … FROM STDIN (FORMAT binary)`, with `rows` as its data: one round
/// trip to start the copy, one to send the rows and end it. Returns how many rows Postgres took;
/// with no rows, sends nothing.
pub(super) async fn copy_in(
    tx: &mut PgConnection,
    statement: &str,
    rows: CopyRows,
) -> sqlx::Result<u64> {
    if rows.rows == 0 {
        return Ok(0);
    }
    let mut copy = tx.copy_in_raw(statement).await?;
    // If sending fails, dropping `copy` tells the server that the copy failed.
    copy.send(rows.finish()).await?;
    copy.finish().await
}

/// A value that does not fit its column's type. Counted as the message's fault, like a value
/// Postgres refuses (see `ingestor::writer::is_content_error`).
pub(super) fn out_of_range(field: &str, value: i64) -> sqlx::Error {
    let error: BoxDynError = format!("{field} {value} is out of range for its column").into();
    sqlx::Error::Encode(error)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn rows_are_framed_by_the_header_and_the_trailer() {
        let mut rows = CopyRows::with_capacity(0);
        rows.row(2).text("ab").int2(-2);
        let bytes = rows.finish();

        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&[0, 2, 0, 0, 0, 2, b'a', b'b', 0, 0, 0, 2, 0xff, 0xfe]);
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn a_time_is_written_as_microseconds_since_2000() {
        let at = |t| {
            let mut rows = CopyRows::with_capacity(0);
            rows.row(1).timestamptz(t);
            rows.finish()[HEADER.len() + 6..HEADER.len() + 14].to_vec()
        };
        let millennium = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        let a_second_before = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();

        assert_eq!(at(millennium), 0i64.to_be_bytes());
        assert_eq!(at(a_second_before), (-1_000_000i64).to_be_bytes());
    }
}
