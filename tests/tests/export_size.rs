//! The Chrome export of a busy server's trace stays within 10 times the
//! trace's size (short polls merged, see `pulse_cli::export::ChromeWriter`),
//! where writing every poll as its own slice costs about 30 times.
//!
//! The server is real: a Tokio TCP echo server on the loopback address,
//! traced by pulse, with 64 client connections sending small requests and
//! reading the answers (a bounded number each).

use pulse::{Config, Recorder, WriterConfig};
use pulse_cli::analysis::{AnalysisOptions, TraceSet};
use pulse_cli::export::{trace_to_chrome, trace_to_chrome_with};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLIENTS: usize = 64;
const REQUESTS: usize = 1_500;

/// Records the server into `path`; returns the number of requests served.
fn record_server(path: &std::path::Path) -> usize {
    let config = Config::new().writer(WriterConfig::file(path));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(4).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, &config).expect("traced runtime");
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                // One spawn site serves every connection, as in a real server.
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                tokio::spawn(async move {
                    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let mut buf = [0u8; 64];
                    for _ in 0..REQUESTS {
                        stream.write_all(&[7u8; 64]).await.unwrap();
                        stream.read_exact(&mut buf).await.unwrap();
                    }
                    REQUESTS
                })
            })
            .collect();
        let mut served = 0;
        for client in clients {
            served += client.await.unwrap();
        }
        served
    });
    drop(runtime);
    guard.finish().expect("the trace is written");
    served
}

#[test]
fn chrome_export_of_a_busy_server_is_within_ten_times_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.bin");
    let served = record_server(&path);
    let trace = std::fs::metadata(&path).unwrap().len();
    let set = TraceSet::open(&path).unwrap();
    let mut merged = Vec::new();
    let analysis = trace_to_chrome(
        &set,
        &mut merged,
        "memory",
        &AnalysisOptions::default(),
        |_, _| {},
    )
    .unwrap();
    let mut every = Vec::new();
    trace_to_chrome_with(
        &set,
        &mut every,
        "memory",
        &AnalysisOptions::default(),
        Duration::ZERO,
        |_, _| {},
    )
    .unwrap();
    let ratio = merged.len() as f64 / trace as f64;
    let unmerged = every.len() as f64 / trace as f64;
    let seconds = analysis.trace.duration_ns as f64 / 1e9;
    eprintln!(
        "server trace: {served} requests in {seconds:.2} s ({:.0}/s), {} events, {:.1} MB; \
         chrome: {:.1} MB merged ({ratio:.1}x), {:.1} MB with every poll ({unmerged:.1}x)",
        served as f64 / seconds,
        analysis.trace.events,
        trace as f64 / 1e6,
        merged.len() as f64 / 1e6,
        every.len() as f64 / 1e6,
    );
    assert!(
        ratio <= 10.0,
        "the Chrome export is {ratio:.1} times the trace"
    );
    assert!(unmerged > ratio, "merging makes it smaller");
    // Both are valid JSON.
    serde_json::from_slice::<serde_json::Value>(&merged).expect("valid JSON");
}
