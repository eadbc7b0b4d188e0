//! OrderFlow's side of a payment provider reached over HTTP (docs/payments.md): the calls the
//! saga makes, each safe to retry (the order id is the payment's idempotency key, refunds carry
//! their own). Written against the simulated provider (`orderflow psp`), which speaks like a
//! real one; swapping in a real provider means writing this adapter for its API.

use crate::payment::{Authorization, AuthorizationOutcome, PaymentGateway, ProviderError};
use async_trait::async_trait;
use orderflow_domain::Money;
use serde::Deserialize;
use std::time::Duration;

/// The shop's currency: every payment is asked for in it, and a payment in another is not
/// the order's.
pub const CURRENCY: &str = "eur";

/// A payment intent's status as the provider's API reports it: OrderFlow's own reading of the
/// provider's vocabulary. (The simulator keeps its rules in `orderflow_psp::payment_intent`; a
/// contract test, `crates/psp/tests/contract.rs`, holds the two to the same states.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::EnumIter, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum IntentStatus {
    /// Created; nothing asked of the customer's bank yet.
    RequiresAuthorization,
    /// The customer must confirm (3-D Secure, a bank app); the outcome comes by webhook.
    RequiresAction,
    /// The money is held on the customer's account.
    Authorized,
    Captured,
    /// The authorization was released; no money moved.
    Voided,
    /// Captured, then given back in full.
    Refunded,
    /// Declined, or the customer did not confirm.
    Failed,
}

/// A payment intent as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IntentView {
    pub id: String,
    pub order_id: String,
    pub currency: String,
    pub status: IntentStatus,
    pub amount: Money,
    pub captured: Money,
    pub refunded: Money,
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PaymentProvider {
    base: String,
    http: reqwest::Client,
}

impl PaymentProvider {
    /// `base_url` is the provider's root, e.g. `http://localhost:8090` (`PAYMENT_PROVIDER_URL`).
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let base = format!("{}/v1/payment_intents", base_url.trim_end_matches('/'));
        Ok(Self { base, http })
    }

    /// The payment of `order_id` (created at the first call, the same one after).
    #[tracing::instrument(name = "payment_provider.create", skip(self), fields(otel.kind = "client"))]
    pub async fn create(&self, order_id: &str, amount: Money) -> Result<IntentView, ProviderError> {
        let body =
            serde_json::json!({"order_id": order_id, "amount": amount, "currency": CURRENCY});
        self.send(self.http.post(&self.base).json(&body)).await
    }

    #[tracing::instrument(name = "payment_provider.authorize_intent", skip(self), fields(otel.kind = "client"))]
    pub async fn authorize_intent(&self, id: &str) -> Result<IntentView, ProviderError> {
        self.call(id, "authorize").await
    }

    #[tracing::instrument(name = "payment_provider.capture_intent", skip(self), fields(otel.kind = "client"))]
    pub async fn capture_intent(&self, id: &str) -> Result<IntentView, ProviderError> {
        self.call(id, "capture").await
    }

    #[tracing::instrument(name = "payment_provider.void_intent", skip(self), fields(otel.kind = "client"))]
    pub async fn void_intent(&self, id: &str) -> Result<IntentView, ProviderError> {
        self.call(id, "void").await
    }

    /// Refunds all that is left; `key` makes a retried refund the same refund.
    #[tracing::instrument(name = "payment_provider.refund_intent", skip(self, key), fields(otel.kind = "client"))]
    pub async fn refund_intent(&self, id: &str, key: &str) -> Result<IntentView, ProviderError> {
        let request =
            self.http.post(format!("{}/{id}/refund", self.base)).header("Idempotency-Key", key);
        self.send(request.json(&serde_json::json!({}))).await
    }

    #[tracing::instrument(name = "payment_provider.get", skip(self), fields(otel.kind = "client"))]
    pub async fn get(&self, id: &str) -> Result<IntentView, ProviderError> {
        self.send(self.http.get(format!("{}/{id}", self.base))).await
    }

    async fn call(&self, id: &str, action: &str) -> Result<IntentView, ProviderError> {
        self.send(self.http.post(format!("{}/{id}/{action}", self.base))).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<IntentView, ProviderError> {
        let response =
            request.send().await.map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|e| ProviderError::Unavailable(format!("unreadable answer: {e}")));
        }
        let message = response
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|body| body["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| status.to_string());
        Err(match status.as_u16() {
            409 => ProviderError::Refused(message),
            400..=499 if status.as_u16() != 408 && status.as_u16() != 429 => {
                ProviderError::Rejected(message)
            }
            _ => ProviderError::Unavailable(message),
        })
    }
}

/// The saga's calls, on payment intents: the order id is the intent's idempotency key.
#[async_trait]
impl PaymentGateway for PaymentProvider {
    async fn authorize(
        &self,
        order_id: &str,
        amount: Money,
    ) -> Result<Authorization, ProviderError> {
        let mut intent = self.create(order_id, amount).await?;
        if intent.status == IntentStatus::RequiresAuthorization {
            intent = self.authorize_intent(&intent.id).await?;
        }
        let outcome = match intent.status {
            IntentStatus::Authorized | IntentStatus::Captured => AuthorizationOutcome::Authorized,
            IntentStatus::RequiresAction => AuthorizationOutcome::ActionRequired,
            IntentStatus::Failed => AuthorizationOutcome::Declined(
                intent.failure_reason.unwrap_or_else(|| "declined by the provider".into()),
            ),
            // Voided or refunded: the order was given up meanwhile (the caller's fence says so).
            other => {
                return Err(ProviderError::Refused(format!(
                    "payment {} is {other:?} and cannot be authorized",
                    intent.id
                )));
            }
        };
        Ok(Authorization { payment_id: intent.id, outcome })
    }

    async fn capture(&self, payment_id: &str) -> Result<(), ProviderError> {
        self.capture_intent(payment_id).await.map(drop)
    }

    async fn void(&self, payment_id: &str) -> Result<(), ProviderError> {
        self.void_intent(payment_id).await.map(drop)
    }

    /// The refund's reference is its idempotency key (the provider keeps no other id for it).
    async fn refund(&self, payment_id: &str, key: &str) -> Result<String, ProviderError> {
        self.refund_intent(payment_id, key).await.map(|_| key.to_owned())
    }

    async fn lookup(&self, payment_id: &str) -> Result<IntentView, ProviderError> {
        self.get(payment_id).await
    }

    async fn payment_of(&self, order_id: &str) -> Result<Option<String>, ProviderError> {
        let request = self.http.get(&self.base).query(&[("order_id", order_id)]);
        let response =
            request.send().await.map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(ProviderError::Unavailable(format!("HTTP {}", response.status())));
        }
        let page: IntentPage = response
            .json()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("unreadable answer: {e}")))?;
        Ok(page.data.into_iter().next().map(|intent| intent.id))
    }
}

/// A page of the provider's list of intents.
#[derive(Deserialize)]
struct IntentPage {
    data: Vec<IntentView>,
}
