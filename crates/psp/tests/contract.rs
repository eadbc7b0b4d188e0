//! The simulator's vocabulary (its rules: `orderflow_psp::payment_intent`) and OrderFlow's
//! reading of it (`orderflow_providers::payment_provider`) are two sets of types on purpose: a
//! provider's API is not OrderFlow's code, and a client that shared the simulator's types could
//! never disagree with it in a test. This holds them together: every state the simulator can
//! put an intent in, as its API writes it, reads as the same state in the client, with its
//! amounts; and the client knows no state the simulator lacks.

use orderflow_domain::Money;
use orderflow_providers::payment_provider::{IntentStatus as Read, IntentView};
use orderflow_psp::Intent;
use orderflow_psp::payment_intent::{IntentStatus as Written, PaymentIntent};
use rust_decimal::Decimal;
use strum::IntoEnumIterator;

fn money(cents: i64) -> Money {
    Money::parse("amount", Decimal::new(cents, 2)).unwrap()
}

#[test]
fn every_state_the_provider_writes_reads_the_same_in_the_client() {
    for status in Written::iter() {
        let intent = Intent {
            id: "pi_0193c2a8f1e07c3a9b51d2f4e6a8c0b2".into(),
            order_id: "0193c2a8-f1e0-7c3a-9b51-d2f4e6a8c0b2".into(),
            currency: "eur".into(),
            state: PaymentIntent {
                status,
                amount: money(99_999),
                captured: money(99_999),
                refunded: money(1_000),
                failure_reason: Some("card expired".into()),
            },
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        let json = serde_json::to_value(&intent).unwrap();
        let read: IntentView = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("the client cannot read {json}: {e}"));
        assert_eq!(<&str>::from(read.status), status.as_str(), "{json}");
        assert_eq!((read.id, read.order_id), (intent.id, intent.order_id));
        assert_eq!(
            (read.amount, read.captured, read.refunded),
            (money(99_999), money(99_999), money(1_000))
        );
        assert_eq!(
            (read.currency.as_str(), read.failure_reason.as_deref()),
            ("eur", Some("card expired"))
        );
    }
    let written: Vec<&str> = Written::iter().map(|s| s.as_str()).collect();
    let read: Vec<&str> = Read::iter().map(<&str>::from).collect();
    assert_eq!(read, written, "the client knows exactly the simulator's states");
}
