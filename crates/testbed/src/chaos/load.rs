//! Customers: many concurrent clients placing a seeded mix of orders, retrying the way a careful
//! client does (only with an Idempotency-Key), sending duplicates, and cancelling at random
//! moments. They are 97 customers, each with a token of its own (`AUTH_MODE=jwt`), and some are
//! nosy: they try to read and cancel an order of someone else, which must look as if it did not
//! exist. Everything a client was told is recorded for the checker.

use super::{LUXURY, PLENTIFUL, SCARCE};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Normal,
    Scarce,
    Declined,
}

/// What happened to one order, from the client's side.
#[derive(Debug, Clone)]
pub struct OrderAttempt {
    pub kind: Kind,
    pub idempotency_key: Option<String>,
    /// Every 2xx answer's workflow id (several when the request was repeated).
    pub acknowledged: Vec<String>,
    /// Requests sent, including retries and duplicates.
    pub requests: usize,
    /// Whether its customer asked to cancel it.
    pub cancel_requested: bool,
    /// The final answer to that cancellation request, if one came.
    pub cancel: Option<u16>,
    /// The customer whose token placed it.
    pub customer: String,
    /// Answers to this customer's attempts on someone else's order (status read, cancel): each
    /// must be a 404, or a 5xx / no answer while a fault is on.
    pub snooped: Vec<u16>,
}

impl OrderAttempt {
    pub fn workflow_id(&self) -> Option<&str> {
        self.acknowledged.first().map(String::as_str)
    }

    /// Counts the requests an answer took, and keeps the workflow id of a 2xx.
    fn record(&mut self, requests: usize, answer: Answer) {
        self.requests += requests;
        if let Some((code, body)) = answer
            && (200..300).contains(&code)
        {
            self.acknowledged.push(body["workflow_id"].as_str().unwrap_or_default().to_owned());
        }
    }
}

pub struct Load {
    pub api_urls: Vec<String>,
    pub orders: usize,
    pub concurrency: usize,
    pub seed: u64,
    /// The service's `JWT_HS256_SECRET`: customers sign their own tokens with it.
    pub jwt_secret: String,
}

/// How many customers share the orders.
const CUSTOMERS: usize = 97;

/// Orders acknowledged so far and whose they are: what a nosy customer aims at.
type Seen = Arc<std::sync::Mutex<Vec<(String, String)>>>;

impl Load {
    pub async fn run(self, progress: Arc<AtomicUsize>) -> Vec<OrderAttempt> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .pool_max_idle_per_host(self.concurrency)
            .build()
            .expect("an HTTP client");
        let urls = Arc::new(self.api_urls);
        let seen = Seen::default();
        let day = Duration::from_secs(24 * 3600);
        let tokens: Arc<Vec<String>> = Arc::new(
            (0..CUSTOMERS)
                .map(|i| crate::identity::customer_token(&self.jwt_secret, &customer(i), day))
                .collect(),
        );
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..self.orders {
            let permit = permits.clone().acquire_owned().await.expect("semaphore open");
            let (http, urls, progress) = (http.clone(), urls.clone(), progress.clone());
            let (seen, token) = (seen.clone(), tokens[index % CUSTOMERS].clone());
            let seed = self.seed;
            tasks.spawn(async move {
                let attempt = Customer { http, urls, seed, index, token, seen }.order().await;
                progress.fetch_add(1, Ordering::Relaxed);
                drop(permit);
                (index, attempt)
            });
        }
        let mut attempts: Vec<(usize, OrderAttempt)> = tasks.join_all().await;
        attempts.sort_by_key(|(i, _)| *i);
        attempts.into_iter().map(|(_, a)| a).collect()
    }
}

fn customer(index: usize) -> String {
    format!("chaos-customer-{}", index % CUSTOMERS)
}

struct Customer {
    http: reqwest::Client,
    urls: Arc<Vec<String>>,
    seed: u64,
    index: usize,
    /// This customer's bearer token.
    token: String,
    seen: Seen,
}

/// A response the client could act on: the status and the body.
type Answer = Option<(u16, Value)>;

impl Customer {
    async fn order(self) -> OrderAttempt {
        // One stream per order: the same seed makes the same decisions for order n, whatever
        // the timing of the others.
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.index as u64,
        );
        let (kind, body) = self.choose_order(&mut rng);
        let key =
            rng.random_bool(0.35).then(|| format!("chaos-{}-{}", self.index, rng.random::<u32>()));
        let duplicate = key.is_some() && rng.random_bool(0.4);
        // Half of the cancellations come at once (while the order is still in its first steps),
        // half at any moment in the next 1.5 s (mostly too late: 409).
        let cancel_after = rng.random_bool(0.2).then(|| {
            let window = if rng.random_bool(0.5) { 60 } else { 1500 };
            Duration::from_millis(rng.random_range(0..window))
        });
        let nosy = rng.random_bool(0.1);
        let mut attempt = OrderAttempt {
            kind,
            idempotency_key: key.clone(),
            acknowledged: Vec::new(),
            requests: 0,
            cancel_requested: false,
            cancel: None,
            customer: customer(self.index),
            snooped: Vec::new(),
        };

        let answers = if duplicate {
            // The same request twice at once, as a client whose first try timed out might.
            let (mut first, mut second) =
                (ChaCha8Rng::seed_from_u64(rng.random()), ChaCha8Rng::seed_from_u64(rng.random()));
            let (a, b) = tokio::join!(
                self.place(&mut first, &body, key.as_deref()),
                self.place(&mut second, &body, key.as_deref())
            );
            vec![a, b]
        } else {
            vec![self.place(&mut rng, &body, key.as_deref()).await]
        };
        for (requests, answer) in answers {
            attempt.record(requests, answer);
        }
        if duplicate && !attempt.acknowledged.is_empty() {
            // And once more later, as a client retrying after a lost reply.
            let (requests, answer) = self.place(&mut rng, &body, key.as_deref()).await;
            attempt.record(requests, answer);
        }
        if let Some(workflow_id) = attempt.workflow_id() {
            let mine = (attempt.customer.clone(), workflow_id.to_owned());
            self.seen.lock().expect("seen lock").push(mine);
        }
        if nosy {
            attempt.snooped = self.snoop(&mut rng, &attempt.customer).await;
        }
        if let (Some(delay), Some(workflow_id)) =
            (cancel_after, attempt.workflow_id().map(str::to_owned))
        {
            tokio::time::sleep(delay).await;
            attempt.cancel_requested = true;
            attempt.cancel = self.cancel(&mut rng, &workflow_id).await;
        }
        attempt
    }

    fn choose_order(&self, rng: &mut ChaCha8Rng) -> (Kind, Value) {
        let roll: f64 = rng.random();
        let (kind, lines): (Kind, Vec<(&str, &str, u32)>) = if roll < 0.15 {
            let (id, price, _) = *SCARCE.choose(rng).expect("scarce products");
            (Kind::Scarce, vec![(id, price, rng.random_range(1..=2))])
        } else if roll < 0.25 {
            (Kind::Declined, vec![(LUXURY.0, LUXURY.1, 2)])
        } else {
            let count = rng.random_range(1..=4);
            let products: Vec<_> = PLENTIFUL.choose_multiple(rng, count).collect();
            (
                Kind::Normal,
                products
                    .into_iter()
                    .map(|(id, price)| (*id, *price, rng.random_range(1..=3)))
                    .collect(),
            )
        };
        let items: Vec<Value> = lines
            .into_iter()
            .map(|(id, price, quantity)| json!({"product_id": id, "name": id, "quantity": quantity, "price": price}))
            .collect();
        (kind, json!({"customer_id": customer(self.index), "items": items}))
    }

    /// Places the order. A client with an Idempotency-Key retries (on another API instance)
    /// until it gets an answer; one without may not, since a retry could order twice.
    async fn place(
        &self,
        rng: &mut ChaCha8Rng,
        body: &Value,
        key: Option<&str>,
    ) -> (usize, Answer) {
        let tries = if key.is_some() { 30 } else { 1 };
        let mut requests = 0;
        for attempt in 0..tries {
            let url = format!("{}/api/orders", self.api(rng));
            let mut request = self.http.post(url).bearer_auth(&self.token).json(body);
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            requests += 1;
            match answer(request.send().await).await {
                Some((code, body)) if code < 500 => return (requests, Some((code, body))),
                other if attempt + 1 == tries => return (requests, other),
                _ => back_off(rng, attempt).await,
            }
        }
        (requests, None)
    }

    /// Cancels; retried on errors (asking twice is harmless). Returns the last status received.
    async fn cancel(&self, rng: &mut ChaCha8Rng, workflow_id: &str) -> Option<u16> {
        let mut last = None;
        for attempt in 0..30 {
            let url = format!("{}/api/orders/cancel?workflow_id={workflow_id}", self.api(rng));
            match answer(self.http.post(url).bearer_auth(&self.token).send().await).await {
                Some((code, _)) if code < 500 => return Some(code),
                Some((code, _)) => last = Some(code),
                None => {}
            }
            back_off(rng, attempt).await;
        }
        last
    }

    /// Reads and tries to cancel the latest order of another customer; returns the answers.
    async fn snoop(&self, rng: &mut ChaCha8Rng, me: &str) -> Vec<u16> {
        let target = {
            let seen = self.seen.lock().expect("seen lock");
            seen.iter().rev().find(|(owner, _)| owner != me).map(|(_, id)| id.clone())
        };
        let Some(workflow_id) = target else { return Vec::new() };
        let status = format!("{}/api/orders/status?workflow_id={workflow_id}", self.api(rng));
        let cancel = format!("{}/api/orders/cancel?workflow_id={workflow_id}", self.api(rng));
        let read = self.http.get(status).bearer_auth(&self.token).send().await;
        let write = self.http.post(cancel).bearer_auth(&self.token).send().await;
        let mut codes = Vec::new();
        for response in [read, write] {
            codes.extend(answer(response).await.map(|(code, _)| code));
        }
        codes
    }

    fn api(&self, rng: &mut ChaCha8Rng) -> String {
        self.urls.choose(rng).expect("at least one API").clone()
    }
}

async fn back_off(rng: &mut ChaCha8Rng, attempt: usize) {
    let ms = (100u64 << attempt.min(4)).min(2_000) + rng.random_range(0..100);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

async fn answer(response: Result<reqwest::Response, reqwest::Error>) -> Answer {
    let response = response.ok()?;
    let code = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Some((code, body))
}
