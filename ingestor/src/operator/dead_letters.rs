//! `ingestor dead-letters list` and `ingestor dead-letters replay ID...`; `dismiss` is in
//! `dead_letters/dismiss.rs`.

mod dismiss;

use std::io::Write;
use std::process::ExitCode;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use orders::db::{list_dead_letters, replay_dead_letter, DeadLetter, DeadLetterQuery, Replay};
use serde::Serialize;
use sqlx::{Connection, PgConnection};

use self::dismiss::DismissIds;
use super::terminal::{escape, preview, to_safe_json};
use super::OperatorSettings;

/// How much of a payload the text listing shows.
const PREVIEW_CHARS: usize = 80;

#[derive(Debug, Subcommand)]
pub enum DeadLetters {
    /// List dead letters, newest first: id, when received, channel and sequence, rule, reason and
    /// the start of the payload (control characters escaped).
    List(List),
    /// Validate dead letters again with today's rules and store those that are valid orders now, as
    /// the ingestor would have; they are then marked resolved. The others stay as they are, and
    /// their current reason is printed. Exits with 1 unless every one is resolved.
    Replay(ReplayIds),
    /// Mark dead letters resolved without storing them, e.g. because the corrected order came
    /// another way, with the reason and the time. One that is resolved already is left as it is.
    /// Exits with 1 unless every one is dismissed.
    Dismiss(DismissIds),
}

#[derive(Debug, Args)]
pub struct List {
    #[command(flatten)]
    settings: OperatorSettings,

    /// Only those that broke this rule, e.g. `malformed_json`.
    #[arg(long, value_name = "RULE")]
    rule: Option<String>,

    /// Resolved ones too, not only those that wait for a person.
    #[arg(long)]
    all: bool,

    /// How many to list at most.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
    limit: i64,

    /// Only those with an id below this one: the last id of the previous page.
    #[arg(long, value_name = "ID")]
    before_id: Option<i64>,

    /// One JSON object a line, with the whole payload, instead of text for people.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ReplayIds {
    #[command(flatten)]
    settings: OperatorSettings,

    /// The ids of the dead letters, as `list` shows them.
    #[arg(value_name = "ID", required = true, num_args = 1..)]
    ids: Vec<i64>,
}

impl DeadLetters {
    pub fn settings(&self) -> &OperatorSettings {
        match self {
            DeadLetters::List(list) => &list.settings,
            DeadLetters::Replay(replay) => &replay.settings,
            DeadLetters::Dismiss(dismiss) => &dismiss.settings,
        }
    }

    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let mut db = super::connect(&self.settings().database).await?;
        let mut out = std::io::stdout().lock();
        let result = match self {
            DeadLetters::List(list) => list.run(&mut db, &mut out).await,
            DeadLetters::Replay(replay) => replay.run(&mut db, &mut out).await,
            DeadLetters::Dismiss(dismiss) => dismiss.run(&mut db, &mut out).await,
        };
        let _ = db.close().await;
        result
    }
}

impl List {
    async fn run(self, db: &mut PgConnection, out: &mut impl Write) -> anyhow::Result<ExitCode> {
        let query = DeadLetterQuery {
            rule: self.rule,
            include_resolved: self.all,
            before_id: self.before_id,
            limit: self.limit,
        };
        let letters = list_dead_letters(&mut *db, &query).await?;
        for letter in &letters {
            if self.json {
                writeln!(out, "{}", to_safe_json(&Listed::from(letter))?)?;
            } else {
                write_text(out, letter)?;
            }
        }
        if !self.json {
            match letters.last() {
                None => writeln!(out, "no dead letters")?,
                Some(last) if letters.len() as i64 == query.limit => {
                    writeln!(out, "more may follow: --before-id {}", last.id)?;
                }
                Some(_) => {}
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Three lines for a person. Everything that came from the channel is escaped.
fn write_text(out: &mut impl Write, letter: &DeadLetter) -> std::io::Result<()> {
    write!(
        out,
        "#{}  received {}  channel {}  sequence {}  {}",
        letter.id,
        time(letter.received_at),
        escape(&letter.channel),
        letter.stan_sequence,
        escape(&letter.rule),
    )?;
    if let (Some(at), Some(resolution)) = (letter.resolved_at, &letter.resolution) {
        write!(
            out,
            "  resolved {} ({})",
            time(at),
            resolution_text(resolution, letter.resolution_reason.as_deref())
        )?;
    }
    writeln!(out)?;
    writeln!(out, "    reason:  {}", escape(&letter.reason))?;
    writeln!(
        out,
        "    payload: {} ({} bytes)",
        preview(&letter.payload, PREVIEW_CHARS),
        letter.payload.len()
    )
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How a dead letter was resolved, with the reason when it has one (`dismissed: came by mail`),
/// escaped: the reason is a person's text, and the same care costs nothing.
fn resolution_text(resolution: &str, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("{}: {}", escape(resolution), escape(reason)),
        None => escape(resolution),
    }
}

/// The line for a dead letter that was resolved before, so `what` did not happen.
fn already_resolved(
    resolved_at: DateTime<Utc>,
    resolution: &str,
    reason: Option<&str>,
    what: &str,
) -> String {
    format!(
        "already resolved {} ({}), {what}",
        time(resolved_at),
        resolution_text(resolution, reason)
    )
}

/// A dead letter in the `--json` listing: the fields of the api's listing.
#[derive(Serialize)]
struct Listed<'a> {
    id: i64,
    received_at: DateTime<Utc>,
    channel: &'a str,
    stan_sequence: i64,
    published_at: DateTime<Utc>,
    rule: &'a str,
    reason: &'a str,
    /// The payload when it is UTF-8 text, else `null`.
    payload: Option<&'a str>,
    /// The payload in base64 when it is not UTF-8, else `null`.
    payload_base64: Option<String>,
    payload_bytes: usize,
    resolved_at: Option<DateTime<Utc>>,
    resolution: Option<&'a str>,
    /// Why it was dismissed, in the operator's words; `null` unless it was.
    resolution_reason: Option<&'a str>,
}

impl<'a> From<&'a DeadLetter> for Listed<'a> {
    fn from(letter: &'a DeadLetter) -> Self {
        let text = std::str::from_utf8(&letter.payload).ok();
        Listed {
            id: letter.id,
            received_at: letter.received_at,
            channel: &letter.channel,
            stan_sequence: letter.stan_sequence,
            published_at: letter.published_at,
            rule: &letter.rule,
            reason: &letter.reason,
            payload: text,
            payload_base64: text
                .is_none()
                .then(|| base64::engine::general_purpose::STANDARD.encode(&letter.payload)),
            payload_bytes: letter.payload.len(),
            resolved_at: letter.resolved_at,
            resolution: letter.resolution.as_deref(),
            resolution_reason: letter.resolution_reason.as_deref(),
        }
    }
}

impl ReplayIds {
    async fn run(self, db: &mut PgConnection, out: &mut impl Write) -> anyhow::Result<ExitCode> {
        each_id(
            db,
            out,
            self.ids,
            async |db, id| replay_dead_letter(db, id).await,
            |replay| {
                matches!(
                    replay,
                    Replay::Stored { .. }
                        | Replay::Duplicate { .. }
                        | Replay::Conflict { .. }
                        | Replay::AlreadyResolved { .. }
                )
            },
            describe,
        )
        .await
    }
}

/// Does `act` to each of `ids` in turn, one line each on `out` (`#ID: ` and what `describe` says,
/// or the error); an id that fails does not stop the others. Success when every outcome is `done`.
async fn each_id<T>(
    db: &mut PgConnection,
    out: &mut impl Write,
    ids: Vec<i64>,
    mut act: impl AsyncFnMut(&mut PgConnection, i64) -> sqlx::Result<T>,
    done: impl Fn(&T) -> bool,
    describe: impl Fn(&T) -> String,
) -> anyhow::Result<ExitCode> {
    let mut all_done = true;
    for id in ids {
        let line = match act(&mut *db, id).await {
            Ok(outcome) => {
                all_done &= done(&outcome);
                describe(&outcome)
            }
            Err(e) => {
                all_done = false;
                format!("failed, nothing changed: {}", escape(&e.to_string()))
            }
        };
        writeln!(out, "#{id}: {line}")?;
    }
    Ok(if all_done {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn describe(replay: &Replay) -> String {
    match replay {
        Replay::Stored { order_uid } => format!("stored order {}", escape(order_uid)),
        Replay::Duplicate { order_uid } => {
            format!("order {} was already stored the same", escape(order_uid))
        }
        Replay::Conflict { order_uid } => format!(
            "another version of order {} is stored; this one is recorded in order_conflicts",
            escape(order_uid)
        ),
        Replay::StillRejected(rejection) => format!(
            "still rejected, nothing changed: {} [{}]",
            escape(&rejection.reason),
            rejection.rule.code()
        ),
        Replay::AlreadyResolved {
            resolved_at,
            resolution,
            resolution_reason,
        } => already_resolved(
            *resolved_at,
            resolution,
            resolution_reason.as_deref(),
            "nothing changed",
        ),
        Replay::NotFound => "no dead letter has this id".to_string(),
    }
}
