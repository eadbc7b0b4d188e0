//! Drives load: closed loop (a fixed number of clients, each waiting for its order to finish
//! before placing the next) or open loop (a fixed arrival rate, whatever the latency), against
//! OrderFlow over HTTP or against the baseline workflow directly.
//!
//! An order's latency is `orders.completed_at` (written by the step that completes it) minus the
//! moment its POST was sent; the clocks are the same machine's. A poller reads completions for
//! the orders in flight from PostgreSQL every few milliseconds, so the service itself is not
//! asked anything extra.

use super::baseline::BaselineHost;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Closed { concurrency: usize },
    Open { rate: f64 },
}

/// One unit of work: the API's response time, and create → terminal.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub response: Duration,
    pub latency: Duration,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub samples: Vec<Sample>,
    pub errors: usize,
    pub sent: usize,
}

/// Something that can run one order (or one baseline workflow) to its end.
pub trait Target: Send + Sync + 'static {
    /// Returns (response time, latency).
    fn run_one(&self) -> impl Future<Output = anyhow::Result<(Duration, Duration)>> + Send;
}

/// Runs `target` in `mode` for `duration`, printing a progress line every second.
pub async fn drive<T: Target>(
    target: Arc<T>,
    mode: Mode,
    duration: Duration,
    label: &str,
) -> Outcome {
    let started = Instant::now();
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let one = {
        let (outcome, in_flight, done) = (outcome.clone(), in_flight.clone(), done.clone());
        move |target: Arc<T>| {
            let (outcome, in_flight, done) = (outcome.clone(), in_flight.clone(), done.clone());
            async move {
                in_flight.fetch_add(1, Ordering::Relaxed);
                let result = target.run_one().await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
                let mut outcome = outcome.lock().expect("lock");
                outcome.sent += 1;
                match result {
                    Ok((response, latency)) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        outcome.samples.push(Sample { response, latency })
                    }
                    Err(_) => outcome.errors += 1,
                }
            }
        }
    };
    let progress = {
        let (in_flight, done, outcome, label) =
            (in_flight.clone(), done.clone(), outcome.clone(), label.to_owned());
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = done.load(Ordering::Relaxed);
                let errors = outcome.lock().expect("lock").errors;
                eprint!(
                    "\r  {label}: {:>4.0}s  {:>6.1}/s  in flight {:>4}  errors {errors}   ",
                    started.elapsed().as_secs_f64(),
                    (now - last) as f64,
                    in_flight.load(Ordering::Relaxed)
                );
                last = now;
            }
        })
    };

    let mut tasks = tokio::task::JoinSet::new();
    match mode {
        Mode::Closed { concurrency } => {
            for _ in 0..concurrency {
                let (target, one) = (target.clone(), one.clone());
                tasks.spawn(async move {
                    while started.elapsed() < duration {
                        one(target.clone()).await;
                    }
                });
            }
        }
        Mode::Open { rate } => {
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while started.elapsed() < duration {
                ticker.tick().await;
                tasks.spawn(one(target.clone()));
            }
        }
    }
    tasks.join_all().await;
    progress.abort();
    eprintln!();
    std::mem::take(&mut *outcome.lock().expect("lock"))
}

/// OrderFlow over HTTP.
pub struct OrderTarget {
    http: reqwest::Client,
    url: String,
    products: Vec<(String, String)>,
    next: AtomicUsize,
    completions: Completions,
}

type Completions = Arc<Mutex<HashMap<Uuid, (SystemTime, oneshot::Sender<SystemTime>)>>>;

impl OrderTarget {
    /// `pool` is the service's database, read for completions only.
    pub fn new(url: String, products: Vec<(String, String)>, pool: sqlx::PgPool) -> Arc<Self> {
        let completions: Completions = Arc::default();
        tokio::spawn(poll_completions(pool, completions.clone()));
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Arc::new(Self { http, url, products, next: AtomicUsize::new(0), completions })
    }
}

impl Target for OrderTarget {
    async fn run_one(&self) -> anyhow::Result<(Duration, Duration)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let (product, price) = &self.products[n % self.products.len()];
        let body = json!({
            "customer_id": format!("bench-{}", n % 1000),
            "items": [{"product_id": product, "name": product, "quantity": 1, "price": price}]
        });
        let sent = SystemTime::now();
        let clock = Instant::now();
        let response =
            self.http.post(format!("{}/api/orders", self.url)).json(&body).send().await?;
        let response_time = clock.elapsed();
        anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
        let accepted: serde_json::Value = response.json().await?;
        let order_id: Uuid = accepted["order_id"].as_str().unwrap_or_default().parse()?;
        let (done_tx, done_rx) = oneshot::channel();
        self.completions.lock().expect("lock").insert(order_id, (sent, done_tx));
        let completed_at = tokio::time::timeout(Duration::from_secs(60), done_rx).await??;
        Ok((response_time, completed_at.duration_since(sent).unwrap_or_default()))
    }
}

async fn poll_completions(pool: sqlx::PgPool, completions: Completions) {
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let ids: Vec<Uuid> = completions.lock().expect("lock").keys().copied().collect();
        if ids.is_empty() {
            continue;
        }
        let done: Vec<(Uuid, DateTime<Utc>)> = match sqlx::query_as(
            "SELECT id, completed_at FROM orders WHERE id = ANY($1) AND completed_at IS NOT NULL",
        )
        .bind(&ids)
        .fetch_all(&pool)
        .await
        {
            Ok(rows) => rows,
            Err(_) => continue,
        };
        let mut completions = completions.lock().expect("lock");
        for (id, completed_at) in done {
            if let Some((_, tx)) = completions.remove(&id) {
                let _ = tx.send(SystemTime::from(completed_at));
            }
        }
    }
}

/// The baseline workflow, started directly.
pub struct BaselineTarget {
    pub host: BaselineHost,
    pub prefix: String,
    pub next: AtomicUsize,
}

impl Target for BaselineTarget {
    async fn run_one(&self) -> anyhow::Result<(Duration, Duration)> {
        let id = format!("{}-{}", self.prefix, self.next.fetch_add(1, Ordering::Relaxed));
        let clock = Instant::now();
        self.host.run_one(id).await?;
        let latency = clock.elapsed();
        Ok((Duration::ZERO, latency))
    }
}

/// `GET /api/orders/status` of random existing orders.
pub struct StatusTarget {
    pub http: reqwest::Client,
    pub url: String,
    pub workflow_ids: Vec<String>,
    pub next: AtomicUsize,
}

impl Target for StatusTarget {
    async fn run_one(&self) -> anyhow::Result<(Duration, Duration)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = &self.workflow_ids[n.wrapping_mul(7919) % self.workflow_ids.len()];
        let clock = Instant::now();
        let response = self
            .http
            .get(format!("{}/api/orders/status?workflow_id={id}", self.url))
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
        response.bytes().await?;
        let elapsed = clock.elapsed();
        Ok((elapsed, elapsed))
    }
}
