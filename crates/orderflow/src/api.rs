//! The HTTP API's context: who may call it, how much it admits, and where orders go. The
//! settings were checked when the configuration was loaded.

use crate::Dependencies;
use crate::config::{AuthConfig, AuthMode, HttpConfig, PaymentConfig, SimulationConfig};
use orderflow_api::{
    AdminKey, Admission, ApiContext, Authenticator, JwtVerifier, Limit, Orchestrator,
    PaymentWebhooks, WriteLimits, latency_target,
};
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;

/// The API's context from the configuration.
pub fn api_context(
    deps: &Dependencies,
    http: &HttpConfig,
    payments: &PaymentConfig,
    task_queue: &str,
) -> anyhow::Result<ApiContext> {
    let gateway = crate::worker::payment_gateway(payments, &SimulationConfig::default())?;
    let admin_key = match &http.admin_api_key {
        None => {
            tracing::info!(
                "no ADMIN_API_KEY: only operators' tokens reach the operators' endpoints"
            );
            None
        }
        Some(key) => Some(AdminKey::new(key.expose_secret()).ok_or_else(|| {
            anyhow::anyhow!("ADMIN_API_KEY must be at least {} characters", AdminKey::MIN_LENGTH)
        })?),
    };
    let auth = &http.auth;
    let mut orchestrator = Orchestrator::new(deps.temporal.clone(), task_queue, deps.database)
        .with_task_timeout(http.workflow_task_timeout);
    if !http.eager_start {
        orchestrator = orchestrator.without_eager_start();
    }
    Ok(ApiContext {
        admin_key,
        temporal_ui_url: http.temporal_ui_url.trim_end_matches('/').to_owned(),
        admission: Admission::new(
            deps.store.clone(),
            Limit::new(http.max_orders_in_flight, latency_target(http.workflow_task_timeout)),
            http.admission_lease,
        ),
        auth: authenticator(auth),
        write_limits: WriteLimits::new(auth.writes_per_second, auth.writes_burst),
        // Bursts of twice the rate: a provider delivers its backlog in batches.
        webhook_limits: WriteLimits::new(
            auth.webhook_requests_per_second,
            auth.webhook_requests_per_second.saturating_mul(2),
        ),
        idempotency_ttl: idempotency_ttl(auth),
        payment_simulator_url: payments
            .provider_url
            .clone()
            .filter(|_| payments.dashboard_simulator),
        webhooks: payments
            .webhook_secret
            .as_ref()
            .map(|secret| PaymentWebhooks { secret: secret.clone(), gateway: gateway.clone() }),
        ..ApiContext::new(deps.store.clone(), orchestrator)
    })
}

/// How long an Idempotency-Key holds.
pub fn idempotency_ttl(auth: &AuthConfig) -> Duration {
    Duration::from_secs(u64::from(auth.idempotency_ttl_hours) * 3600)
}

/// Who may call the API, from `AUTH_MODE` and the JWT settings.
fn authenticator(config: &AuthConfig) -> Authenticator {
    match config.mode {
        AuthMode::Off => {
            tracing::warn!(
                "AUTH_MODE=off: the API is open, nobody is identified and anyone can read and \
                 cancel every order. For local development only; production runs AUTH_MODE=jwt \
                 (docs/security.md)"
            );
            Authenticator::Off
        }
        AuthMode::Jwt => Authenticator::Jwt(Arc::new(JwtVerifier::new(
            config.hs256_secret.as_ref(),
            config.jwks_url.clone(),
            config.claims.issuer.clone(),
            config.claims.audience.clone(),
            config.max_ttl,
        ))),
    }
}
