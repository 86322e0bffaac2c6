//! A hot standby of a private Postgres server: what it shows of the primary's rows, and when.

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use testkit::{PrivatePostgres, PrivateStandby};

/// How long a standby on the same machine may take to receive or replay a few rows.
const REPLAY_LIMIT: Duration = Duration::from_secs(30);

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// A primary with the table `notes`, and a standby made after the table.
async fn primary_and_standby() -> (PrivatePostgres, PrivateStandby, PgConnection) {
    let primary = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .expect("start the primary");
    let mut conn = connect(&primary.url()).await;
    sqlx::query("CREATE TABLE notes (body text NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("create the table on the primary");
    let (primary, standby) = tokio::task::spawn_blocking(move || {
        let standby = primary.standby();
        (primary, standby)
    })
    .await
    .expect("start the standby");
    (primary, standby, conn)
}

async fn write(conn: &mut PgConnection, body: &str) {
    sqlx::query("INSERT INTO notes (body) VALUES ($1)")
        .bind(body)
        .execute(conn)
        .await
        .expect("insert on the primary");
}

/// The bodies of the table's rows, in order.
async fn notes(url: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT body FROM notes ORDER BY body")
        .fetch_all(&mut connect(url).await)
        .await
        .unwrap_or_else(|e| panic!("read the notes at {url}: {e}"))
}

#[tokio::test]
async fn a_row_written_on_the_primary_is_read_on_the_standby_once_replayed() {
    let (_primary, standby, mut conn) = primary_and_standby().await;
    write(&mut conn, "first").await;

    standby.wait_replayed(REPLAY_LIMIT).await;
    assert_eq!(notes(&standby.url()).await, ["first"]);

    let refused = sqlx::query("INSERT INTO notes (body) VALUES ('on the standby')")
        .execute(&mut connect(&standby.url()).await)
        .await
        .expect_err("a standby refuses writes");
    assert!(
        refused.to_string().contains("read-only transaction"),
        "{refused}"
    );
}

#[tokio::test]
async fn with_replay_paused_a_new_row_is_on_the_primary_only_and_reaches_the_standby_on_resume() {
    let (primary, standby, mut conn) = primary_and_standby().await;
    write(&mut conn, "before the pause").await;
    standby.wait_replayed(REPLAY_LIMIT).await;

    standby.pause_replay().await;
    write(&mut conn, "during the pause").await;
    // The row's WAL is on the standby, so only the pause keeps it from showing.
    standby.wait_received(REPLAY_LIMIT).await;
    assert_eq!(
        notes(&primary.url()).await,
        ["before the pause", "during the pause"]
    );
    assert_eq!(notes(&standby.url()).await, ["before the pause"]);

    standby.resume_replay().await;
    standby.wait_replayed(REPLAY_LIMIT).await;
    assert_eq!(
        notes(&standby.url()).await,
        ["before the pause", "during the pause"]
    );
}

#[tokio::test]
async fn a_standby_stopped_while_the_primary_writes_catches_up_when_started_again() {
    let (_primary, standby, mut conn) = primary_and_standby().await;
    write(&mut conn, "a").await;
    standby.wait_replayed(REPLAY_LIMIT).await;

    let standby = tokio::task::spawn_blocking(move || {
        standby.stop();
        standby
    })
    .await
    .expect("stop the standby");
    for body in ["b", "c", "d"] {
        write(&mut conn, body).await;
    }
    let standby = tokio::task::spawn_blocking(move || {
        standby.resume();
        standby
    })
    .await
    .expect("start the standby again");

    standby.wait_replayed(REPLAY_LIMIT).await;
    assert_eq!(notes(&standby.url()).await, ["a", "b", "c", "d"]);
}
