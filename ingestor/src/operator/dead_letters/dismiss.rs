//! `ingestor dead-letters dismiss ID... --reason TEXT`: resolve dead letters without storing them.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use orders::db::{dismiss_dead_letter, Dismissal, DismissalReason};
use service_kit::settings::Setting;
use sqlx::PgConnection;

use super::{already_resolved, each_id};
use crate::operator::OperatorSettings;

#[derive(Debug, Args)]
pub struct DismissIds {
    #[command(flatten)]
    pub(super) settings: OperatorSettings,

    /// The ids of the dead letters, as `list` shows them.
    #[arg(value_name = "ID", required = true, num_args = 1..)]
    ids: Vec<i64>,

    /// Why they are dismissed, for whoever reads the listing later, e.g. "the corrected order came
    /// by mail". One line, not blank, without control characters; it is stored without the
    /// blanks around it.
    #[arg(long, value_name = "TEXT", value_parser = reason())]
    reason: DismissalReason,
}

/// `--reason`, checked before anything connects: a wrong one is one line naming the flag.
fn reason() -> Setting<DismissalReason> {
    Setting::new(|text| DismissalReason::parse(text).map_err(|e| e.to_string()))
}

impl DismissIds {
    /// One line per id, in the order given, as `replay` prints them. An id that is refused does not
    /// stop the others.
    pub(super) async fn run(
        self,
        db: &mut PgConnection,
        out: &mut impl Write,
    ) -> anyhow::Result<ExitCode> {
        let reason = &self.reason;
        each_id(
            db,
            out,
            self.ids,
            async |db, id| dismiss_dead_letter(db, id, reason).await,
            |dismissal| matches!(dismissal, Dismissal::Dismissed { .. }),
            describe,
        )
        .await
    }
}

fn describe(dismissal: &Dismissal) -> String {
    match dismissal {
        Dismissal::Dismissed { .. } => "dismissed".to_string(),
        Dismissal::AlreadyResolved {
            resolved_at,
            resolution,
            resolution_reason,
        } => already_resolved(
            *resolved_at,
            resolution,
            resolution_reason.as_deref(),
            "not dismissed",
        ),
        Dismissal::NotFound => "no dead letter has this id".to_string(),
    }
}
