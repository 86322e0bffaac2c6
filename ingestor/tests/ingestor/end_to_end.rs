use std::time::Duration;

use testkit::wait_until;
use tokio::sync::oneshot;

use crate::helpers::{TestBed, PATIENCE};

/// An api running in this process on the test's database.
struct Api {
    address: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Api {
    async fn start(database_url: &str) -> Api {
        let settings = api::Settings {
            database: database_url.parse().unwrap(),
            api_addr: "127.0.0.1:0".parse().unwrap(),
            log_format: Default::default(),
            // Only notifications can bring new orders in time.
            catch_up_interval: Duration::from_secs(3600),
            shutdown_grace: Duration::from_secs(5),
        };
        let app = api::Application::build(settings)
            .await
            .expect("build the api");
        let address = format!("http://{}", app.address());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let api = Api {
            address,
            stop,
            task,
        };
        wait_until("the api to be ready", PATIENCE, || async {
            api.status("/readyz").await == 200
        })
        .await;
        api
    }

    async fn status(&self, path: &str) -> u16 {
        match reqwest::get(format!("{}{path}", self.address)).await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    async fn order(&self, uid: &str) -> serde_json::Value {
        reqwest::get(format!("{}/api/v1/orders/{uid}", self.address))
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_published_order_is_served_by_a_running_api_as_it_was_published_and_after_an_api_restart()
{
    let bed = TestBed::new().await;
    let ingestor = bed.start_ingestor("e2e").await;
    let api = Api::start(&bed.db.url).await;
    assert_eq!(api.status("/api/v1/orders/b563feb7b2b84b6test").await, 404);

    bed.publisher.publish(testkit::sample_order()).await;
    wait_until("the api to serve the published order", PATIENCE, || async {
        api.status("/api/v1/orders/b563feb7b2b84b6test").await == 200
    })
    .await;
    let sample: serde_json::Value = serde_json::from_slice(testkit::sample_order()).unwrap();
    assert_eq!(api.order("b563feb7b2b84b6test").await, sample);
    api.stop().await;

    let restarted = Api::start(&bed.db.url).await;
    assert_eq!(restarted.order("b563feb7b2b84b6test").await, sample);
    restarted.stop().await;
    ingestor.stop().await;
}
