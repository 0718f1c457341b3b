//! The API's HTTP request path: raw bytes as a client would send them on the socket, served
//! by the real server (hyper, routing, content negotiation, body limits, handlers) over a
//! real store, as root. Any input must get an answer or a closed connection, never a panic
//! or a hang.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use berth::server::{ApiServer, Identity, ServerConfig};
use berth::store::{Store, StoreOptions};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct World {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    server: Arc<ApiServer>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    _tx: tokio::sync::watch::Sender<bool>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = StoreOptions {
            map_size: 1 << 30,
            ..StoreOptions::default()
        };
        let store = Arc::new(Store::open(dir.path(), opts).expect("store"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let server = ApiServer::new(store, ServerConfig::default(), Default::default());
        let (tx, shutdown) = tokio::sync::watch::channel(false);
        World {
            _dir: dir,
            rt,
            server,
            shutdown,
            _tx: tx,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let identity = Arc::new(Identity {
        uid: 0,
        gid: 0,
        pid: None,
        can_write: true,
    });
    w.rt.block_on(async {
        let (mut client, server_side) = tokio::io::duplex(1 << 16);
        let conn = tokio::spawn(w.server.clone().serve_connection(
            server_side,
            identity,
            w.shutdown.clone(),
        ));
        let exchange = async {
            let _ = client.write_all(data).await;
            let _ = client.shutdown().await;
            let mut answer = Vec::new();
            let _ = client.read_to_end(&mut answer).await;
            answer
        };
        // A watch would stream for ever: what matters is the first answer.
        let _ = tokio::time::timeout(Duration::from_secs(2), exchange).await;
        conn.abort();
        let _ = conn.await;
    });
});
