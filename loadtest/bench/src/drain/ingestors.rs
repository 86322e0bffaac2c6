//! The ingestors' own counters, read from their `/metrics`: how many orders they stored while a
//! drain lasts, and at its end what each did.

use serde::{Deserialize, Serialize};

/// What one ingestor's counters say at the end of a drain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestorFigures {
    pub metrics_url: String,
    /// Orders it stored for the first time.
    pub stored: u64,
    /// Orders it found stored already: redeliveries.
    pub duplicates: u64,
    /// Its write transactions, committed.
    pub commits: u64,
    /// The seconds those took, from `BEGIN` (which waits for the write lock) to the commit.
    pub commit_seconds: f64,
}

impl IngestorFigures {
    pub async fn read(http: &reqwest::Client, url: &str) -> anyhow::Result<IngestorFigures> {
        let text = scrape(http, url).await?;
        let value =
            |name: &str| sample(&text, name).ok_or_else(|| anyhow::anyhow!("no {name} in {url}"));
        Ok(IngestorFigures {
            metrics_url: url.to_string(),
            stored: value("ingestor_messages_stored_total")? as u64,
            duplicates: value("ingestor_messages_duplicate_total")? as u64,
            commits: value("ingestor_commit_duration_seconds_count")? as u64,
            commit_seconds: value("ingestor_commit_duration_seconds_sum")?,
        })
    }
}

/// `ingestor_messages_stored_total` summed over the ingestors at `urls`; one that does not answer
/// (yet) counts for nothing.
pub async fn stored_total(http: &reqwest::Client, urls: &[String]) -> u64 {
    let mut total = 0;
    for url in urls {
        if let Ok(text) = scrape(http, url).await {
            total += sample(&text, "ingestor_messages_stored_total").unwrap_or(0.0) as u64;
        }
    }
    total
}

async fn scrape(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// The value of the series named exactly `name` (without labels).
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
