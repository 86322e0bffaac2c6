//! The api's ceiling: the same documents, served from a plain `HashMap` by the smallest poem
//! endpoint that can serve them. No cache synchronisation, metrics, headers or OpenAPI layer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use poem::http::StatusCode;
use poem::listener::TcpListener;
use poem::web::{Data, Path};
use poem::{get, handler, EndpointExt, Response, Route, Server};
use sqlx::postgres::PgPoolOptions;

#[derive(clap::Args)]
pub struct Args {
    /// PostgreSQL URL of the orders database to load the documents from.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Address to listen on.
    #[arg(long, env = "CEILING_ADDR", default_value = "127.0.0.1:18099")]
    addr: SocketAddr,
}

type Documents = Arc<HashMap<Box<str>, Bytes>>;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&args.database_url)
        .await?;
    let mut documents = HashMap::new();
    let mut after = 0;
    loop {
        let page = orders::db::orders_after(&pool, after, 50_000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for stored in page {
            documents.insert(
                stored.order_uid.into_boxed_str(),
                Bytes::from(stored.document),
            );
        }
    }
    pool.close().await;
    println!("serving {} orders on {}", documents.len(), args.addr);
    let app = Route::new()
        .at("/api/v1/orders/:id", get(by_id))
        .data(Arc::new(documents));
    Server::new(TcpListener::bind(args.addr)).run(app).await?;
    Ok(())
}

#[handler]
fn by_id(Path(id): Path<String>, documents: Data<&Documents>) -> Response {
    match documents.get(id.as_str()) {
        Some(document) => Response::builder()
            .content_type("application/json")
            .body(document.clone()),
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("application/json")
            .body(r#"{"error":"not_found"}"#),
    }
}
