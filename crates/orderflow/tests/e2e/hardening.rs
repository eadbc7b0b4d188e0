//! The edges an outsider probes: metric labels a client can choose, connections that never
//! finish their headers, ids with any bytes, arithmetic at its limits, echoed input, cross-site
//! forms, floods of writes, and the headers that keep the pages from being framed.

use crate::support::{ADMIN_KEY, TestApp, test_http};
use orderflow::config::{HttpConfig, SimulationConfig};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn host(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let app = TestApp::spawn().await;
    for i in 0..200 {
        let method =
            reqwest::Method::from_bytes(format!("M{i}{}", "X".repeat(2_000)).as_bytes()).unwrap();
        let response = app.http.request(method, app.url("/api/products")).send().await.unwrap();
        assert_eq!(response.status(), 405);
    }
    // The page is the whole process's (other tests' apps add their series meanwhile), so what
    // is checked is what a client controls: the `method` label takes a bounded set of values.
    let (_, page) = app.get_text("/metrics").await;
    let known = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];
    let methods: std::collections::BTreeSet<&str> = page
        .match_indices(r#"method=""#)
        .filter_map(|(at, m)| page[at + m.len()..].split('"').next())
        .collect();
    assert!(methods.contains("other"), "made-up methods are counted as other: {methods:?}");
    assert!(
        methods.iter().all(|m| *m == "other" || known.contains(m)),
        "a raw method became a label: {methods:?}"
    );
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    let http = HttpConfig { header_read_timeout: Duration::from_millis(500), ..test_http() };
    let app = TestApp::spawn_configured(SimulationConfig::default(), http).await;
    let mut half_sent = TcpStream::connect(host(&app)).await.unwrap();
    half_sent.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let mut idle = TcpStream::connect(host(&app)).await.unwrap();
    for stream in [&mut half_sent, &mut idle] {
        let mut buffer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buffer)).await;
        assert!(read.is_ok(), "the server still holds the connection open after 5 s");
    }
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let http = HttpConfig { http_max_connections: 2, ..test_http() };
    let app = TestApp::spawn_configured(SimulationConfig::default(), http).await;
    let first = TcpStream::connect(host(&app)).await.unwrap();
    let _second = TcpStream::connect(host(&app)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = reqwest::Client::new()
        .get(app.url("/api/products"))
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(third.is_err(), "a third connection was served beyond the limit of 2");
    drop(first);
    let fourth = reqwest::Client::new()
        .get(app.url("/api/products"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert_eq!(fourth.unwrap().status(), 200, "served once a connection closed");
}

#[tokio::test]
async fn ids_with_any_bytes_are_unknown_not_errors() {
    let app = TestApp::spawn().await;
    // Not UTF-8 at all is a malformed URL (400); every other id that no product can have is
    // simply unknown (404). Never a 500, and no query runs with it.
    for (id, expected) in
        [("a%00b", 404), ("%FF%FE", 400), ("x%0Ay", 404), (&"p".repeat(10_000), 404)]
    {
        let (code, body) = app.get_text(&format!("/api/products/{id}")).await;
        assert_eq!(code, expected, "{id}: {body}");
        let response = app
            .http
            .post(app.url(&format!("/api/products/{id}/restock")))
            .header("X-API-Key", ADMIN_KEY)
            .json(&json!({"quantity": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "restock {id}");
    }
    let (code, body) = app.get_text("/api/orders/status?workflow_id=order-%00").await;
    assert_eq!(code, 404, "{body}");
    let response = app.http.get(app.url("/api/orders/%FF")).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn echoed_input_is_cut_short() {
    let app = TestApp::spawn().await;
    let long = "z".repeat(10_000);
    for path in [
        format!("/api/orders/status?workflow_id={long}"),
        format!("/api/orders/{long}"),
        format!("/api/products/{long}"),
    ] {
        let (code, body) = app.get_text(&path).await;
        assert_eq!(code, 404);
        assert!(body.len() < 600, "{} bytes of answer to {}…", body.len(), &path[..30]);
    }
    let response = app
        .http
        .get(app.url("/health"))
        .header("X-Request-Id", "r".repeat(60_000))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(id.len() <= 128, "a 60 KB request id was kept");
    let response =
        app.http.get(app.url("/health")).header("X-Request-Id", "trace-42").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42", "a sensible one is kept");
}

#[tokio::test]
async fn stock_and_totals_beyond_their_limits_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.execute("UPDATE products SET available = 999999999 WHERE id = 'prod-002'").await;
    let before = app.stock("prod-002").await;
    let response = app
        .http
        .post(app.url("/api/products/prod-002/restock"))
        .header("X-API-Key", ADMIN_KEY)
        .json(&json!({"quantity": 1_000_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(app.stock("prod-002").await, before);

    // A price near the largest amount × 1000 units: refused at the door, not stuck later.
    app.add_product("gold", "999999999.00", 5000).await;
    let order = json!({"customer_id": "c-1", "items": [{"product_id": "gold", "name": "Gold", "quantity": 1000, "price": "999999999.00"}]});
    let response = app.post_order(&order).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "total_too_large", "{problem}");
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
}

#[tokio::test]
async fn another_sites_forms_cannot_place_or_cancel_orders() {
    let simulation =
        SimulationConfig { payment_delay: Duration::from_secs(2), ..SimulationConfig::default() };
    let app = TestApp::spawn_with(simulation).await;
    let order = app.place(&crate::support::readme_order()).await;
    let cancel = app.url(&format!("/api/orders/cancel?workflow_id={order}"));
    let forged = [
        app.http
            .post(&cancel)
            .header("Origin", "https://evil.example")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("a=b"),
        app.http.post(&cancel).header("Sec-Fetch-Site", "cross-site"),
        app.http.post(&cancel).header("Content-Type", "text/plain").body("{}"),
        app.http
            .post(app.url("/api/orders"))
            .header("Content-Type", "text/plain")
            .body(crate::support::readme_order().to_string()),
    ];
    for request in forged {
        let status = request.send().await.unwrap().status().as_u16();
        assert!(status == 403 || status == 415, "a cross-site request got {status}");
    }
    assert_eq!(
        app.outcome(order).await.status.as_str(),
        "completed",
        "the order was not cancelled"
    );
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1, "no order was placed");
}

#[tokio::test]
async fn a_client_that_floods_writes_gets_429_with_retry_after() {
    let mut http = test_http();
    (http.auth.writes_per_second, http.auth.writes_burst) = (1, 3);
    let app = TestApp::spawn_configured(SimulationConfig::default(), http).await;
    // Ten at once. The limiter refills one write a second, so how many pass depends on how long
    // the requests took to arrive: the burst, plus one per second elapsed, at most.
    let started = std::time::Instant::now();
    let order = crate::support::readme_order();
    let responses = futures::future::join_all((0..10).map(|_| app.post_order(&order))).await;
    let refilled = started.elapsed().as_secs() as usize;
    let mut statuses = Vec::new();
    for response in responses {
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let retry_after = response.headers()["retry-after"].to_str().unwrap().parse::<u32>();
            assert!(retry_after.is_ok_and(|s| s >= 1));
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["code"], "rate_limited");
        }
    }
    let accepted = statuses.iter().filter(|s| **s == 201).count();
    assert!((3..=3 + refilled).contains(&accepted), "{statuses:?} in {refilled} s");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 10 - accepted, "{statuses:?}");
    // Reads are not limited.
    for _ in 0..20 {
        assert_eq!(app.get_text("/api/products").await.0, 200);
    }
}

#[tokio::test]
async fn pages_cannot_be_framed_or_sniffed() {
    let app = TestApp::spawn().await;
    for path in ["/dashboard", "/docs/", "/dashboard/main.js", "/api/products"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    }
    let (_, page) = app.get_text("/dashboard").await;
    assert!(!page.contains("<script>"), "no inline script: the CSP forbids it");
    assert!(page.contains(r#"data-auth-mode="off""#));
}

/// One client's slow sockets (headers never finished) cannot fill the listener: beyond its
/// share (`HTTP_MAX_CONNECTIONS_PER_CLIENT`) they are closed as they arrive, and another
/// client is served meanwhile. The p99 this leaves others is a figure of `make bench`, not of
/// this test.
#[tokio::test]
async fn one_clients_slow_sockets_leave_others_served() {
    let http = HttpConfig { http_max_connections_per_client: 16, ..test_http() };
    let app = TestApp::spawn_configured(SimulationConfig::default(), http).await;
    let server: std::net::SocketAddr = host(&app).parse().unwrap();
    let mut slow = Vec::new();
    for _ in 0..200 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut stream = socket.connect(server).await.unwrap();
        let _ = stream.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
        slow.push(stream);
    }
    for _ in 0..20 {
        assert_eq!(app.get_text("/live").await.0, 200, "another client is served");
    }
    // The server has closed every socket beyond the share: they read as ended at once.
    let mut open = 0;
    for stream in &mut slow {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut byte)).await;
        if read.is_err() {
            open += 1;
        }
    }
    assert!(open <= 16, "{open} of the slow client's 200 sockets held open");
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(metrics.contains(r#"orderflow_http_connections_refused_total{reason="per_client"}"#));
}

/// Webhooks come from anyone: a flood from one address is cut off (429, problem+json,
/// Retry-After) before any signature is checked.
#[tokio::test]
async fn a_webhook_flood_from_one_address_gets_429() {
    let mut http = test_http();
    http.auth.webhook_requests_per_second = 1;
    let app = TestApp::spawn_configured(SimulationConfig::default(), http).await;
    let started = std::time::Instant::now();
    let post = || {
        app.http
            .post(app.url("/api/webhooks/payments"))
            .header("Payment-Signature", "t=1,v1=00")
            .body("{}")
            .send()
    };
    let responses = futures::future::join_all((0..10).map(|_| post())).await;
    let refilled = started.elapsed().as_secs() as usize;
    let limited: Vec<_> =
        responses.into_iter().map(Result::unwrap).filter(|r| r.status() == 429).collect();
    // A burst of twice the rate passes (then refused for being forged, or unconfigured here).
    assert!(limited.len() >= 10 - (2 + refilled), "{} limited in {refilled} s", limited.len());
    for response in limited {
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
}

/// Errors made outside the handlers (a body over the limit, the request timeout) are
/// problem+json with the security headers, like every other.
#[tokio::test]
async fn every_error_is_a_problem_with_the_security_headers() {
    let http = HttpConfig { request_timeout: Duration::from_millis(500), ..test_http() };
    let app = TestApp::spawn_configured(SimulationConfig::default(), http).await;
    let big = "x".repeat(70 * 1024);
    let too_large =
        app.http.post(app.url("/api/webhooks/payments")).body(big).send().await.unwrap();
    assert_eq!(too_large.status(), 413);
    assert_problem_with_headers(too_large.headers());

    // A body that never arrives: the request times out.
    let mut stream = TcpStream::connect(host(&app)).await.unwrap();
    stream
        .write_all(
            b"POST /api/webhooks/payments HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).await.unwrap_or(0);
            answer.extend_from_slice(&buffer[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a request whose body never came");
    let head = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("content-type: application/problem+json"), "{head}");
    assert!(head.contains("content-security-policy:") && head.contains("x-frame-options: deny"));
}

/// An answer given before a request's body is read (here 415: the body is not declared JSON)
/// leaves the keep-alive connection usable: the server reads the body, answers, and answers
/// the next request on the same connection.
#[tokio::test]
async fn a_refused_body_leaves_the_connection_usable() {
    let app = TestApp::spawn_without_worker(SimulationConfig::default()).await;
    let mut stream = TcpStream::connect(host(&app)).await.unwrap();
    let body = format!(r#"{{"customer_id":"{}"}}"#, "x".repeat(5_000));
    let head = format!(
        "POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    // The headers first, the body once the answer could have been given without it.
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut answers = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).await.unwrap_or(0);
            answers.extend_from_slice(&buffer[..n]);
            if n == 0 || String::from_utf8_lossy(&answers).contains("HTTP/1.1 200") {
                break;
            }
        }
    })
    .await;
    let answers = String::from_utf8_lossy(&answers);
    assert!(answers.starts_with("HTTP/1.1 415"), "{answers}");
    assert!(answers.contains("HTTP/1.1 200"), "the second request got no answer: {answers}");
}

/// A body declared larger than the limit is refused at once (413, the connection closed), not
/// after waiting for bytes that may never come.
#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_at_once() {
    let app = TestApp::spawn_without_worker(SimulationConfig::default()).await;
    let mut stream = TcpStream::connect(host(&app)).await.unwrap();
    let head = "POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 10000000000\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "no answer within 5 s");
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.contains("content-type: application/problem+json"), "{answer}");
}

fn assert_problem_with_headers(headers: &reqwest::header::HeaderMap) {
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(headers.contains_key("content-security-policy"), "{headers:?}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
}

/// A body of the wrong shape is refused in the client's terms, without the service's internal
/// type names; and the API's answers are kept out of caches.
#[tokio::test]
async fn answers_name_no_internal_types_and_are_not_cached() {
    let app = TestApp::spawn().await;
    let response = app.post_order(&json!("an order, please")).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(!detail.contains("CreateOrderRequest") && !detail.contains("struct"), "{detail}");
    assert!(detail.contains("an object"), "{detail}");
    for path in ["/api/orders", "/api/products", "/api/orders/status?workflow_id=x"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
}

/// Tokens that live longer than `JWT_MAX_TTL` (24 h by default) are refused, as are subjects
/// with control characters (they are logged and shown).
#[tokio::test]
async fn long_lived_tokens_and_unprintable_subjects_are_refused() {
    use orderflow_api::auth::{NewToken, mint_hs256};
    let app = TestApp::spawn_jwt().await;
    let secret = crate::support::JWT_SECRET.into();
    let call = |token: String| app.http.get(app.url("/api/orders")).bearer_auth(token).send();
    let hour = Duration::from_secs(3600);
    let ok = mint_hs256(&secret, &NewToken::new("customer-a", &[], hour));
    assert_eq!(call(ok).await.unwrap().status(), 200);
    let two_days = mint_hs256(&secret, &NewToken::new("customer-a", &[], 48 * hour));
    let refused = call(two_days).await.unwrap();
    assert_eq!(refused.status(), 401);
    let problem: Value = refused.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("JWT_MAX_TTL"), "{problem}");
    let bell = mint_hs256(&secret, &NewToken::new("on-call\u{7}", &["operator"], hour));
    assert_eq!(call(bell).await.unwrap().status(), 401);
}
