//! One client that holds many connections without ever finishing a request's headers
//! (slowloris): from one loopback address of its own (127.0.0.2), it opens `count` sockets,
//! sends the start of a request on each, and reopens every socket the service closes, until it
//! is aborted. What the benchmark measures beside it is how the other clients fare.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::task::JoinSet;

const ATTACKER: [u8; 4] = [127, 0, 0, 2];

/// Holds `count` slow sockets to `server` until the task is aborted.
pub async fn hold(server: SocketAddr, count: usize) {
    let mut sockets = JoinSet::new();
    for _ in 0..count {
        sockets.spawn(one_slow_socket(server));
    }
    while sockets.join_next().await.is_some() {}
}

/// One socket, reopened whenever the service closes it (or refuses it).
async fn one_slow_socket(server: SocketAddr) {
    loop {
        let Ok(socket) = TcpSocket::new_v4() else { return };
        if socket.bind(SocketAddr::from((ATTACKER, 0))).is_err() {
            return;
        }
        if let Ok(mut stream) = socket.connect(server).await
            && stream.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.is_ok()
        {
            // Held until the service closes it (its header deadline, or beyond this address's
            // share of connections, at once).
            let mut byte = [0u8; 1];
            let _ = stream.read(&mut byte).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
