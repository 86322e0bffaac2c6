//! Every stored order served by every replica, byte for byte its stored document, once the
//! replicas are level with the table. A request that fails (no answer, a 5xx) is tried again a
//! few times; a 404 or other bytes are not.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::task::JoinSet;

use super::stored::examples;
use super::Check;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplicaFigures {
    pub replica: usize,
    /// Orders served with the stored bytes.
    pub equal: u64,
    /// Served with other bytes.
    pub different: u64,
    pub not_found: u64,
    /// No 200 or 404 after every try.
    pub failed: u64,
}

const PAGE: i64 = 2000;
const IN_FLIGHT: usize = 16;
const TRIES: usize = 3;

enum Outcome {
    Equal,
    Different,
    NotFound,
    Failed,
}

pub async fn check(
    pool: &PgPool,
    http: &reqwest::Client,
    replica: usize,
    api: &str,
    checks: &mut Vec<Check>,
) -> anyhow::Result<ReplicaFigures> {
    let mut figures = ReplicaFigures {
        replica,
        ..ReplicaFigures::default()
    };
    let mut wrong = Vec::new();
    let mut after = 0i64;
    loop {
        let page: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT seq, order_uid, document::text FROM orders WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(PAGE)
        .fetch_all(pool)
        .await?;
        let Some(last) = page.last() else { break };
        after = last.0;
        for (uid, outcome) in ask_page(http, api, page).await? {
            match outcome {
                Outcome::Equal => figures.equal += 1,
                Outcome::Different => figures.different += 1,
                Outcome::NotFound => figures.not_found += 1,
                Outcome::Failed => figures.failed += 1,
            }
            if !matches!(outcome, Outcome::Equal) && wrong.len() < 5 {
                wrong.push(uid);
            }
        }
    }
    let wrong: Vec<&str> = wrong.iter().map(String::as_str).collect();
    checks.push(Check::new(
        &format!("api-{replica} serves every stored order byte-equal to its document"),
        figures.different == 0 && figures.not_found == 0 && figures.failed == 0,
        format!(
            "{} equal, {} with other bytes, {} not found, {} not answered{}",
            figures.equal,
            figures.different,
            figures.not_found,
            figures.failed,
            examples(&wrong)
        ),
    ));
    Ok(figures)
}

/// Asks the replica for each order of `page`, `IN_FLIGHT` at a time.
async fn ask_page(
    http: &reqwest::Client,
    api: &str,
    page: Vec<(i64, String, String)>,
) -> anyhow::Result<Vec<(String, Outcome)>> {
    let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut asks = JoinSet::new();
    for (_, uid, document) in page {
        let (http, url) = (http.clone(), format!("{api}/api/v1/orders/{uid}"));
        let permit = gate.clone().acquire_owned().await?;
        asks.spawn(async move {
            let outcome = ask(&http, &url, document.as_bytes()).await;
            drop(permit);
            (uid, outcome)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = asks.join_next().await {
        outcomes.push(done?);
    }
    Ok(outcomes)
}

async fn ask(http: &reqwest::Client, url: &str, document: &[u8]) -> Outcome {
    for _ in 0..TRIES {
        if let Ok(response) = http.get(url).send().await {
            let status = response.status().as_u16();
            match (status, response.bytes().await) {
                (200, Ok(body)) if body.as_ref() == document => return Outcome::Equal,
                (200, Ok(_)) => return Outcome::Different,
                (404, _) => return Outcome::NotFound,
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Outcome::Failed
}
