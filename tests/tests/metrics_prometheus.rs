//! The live metrics through the `metrics` facade (tokio-pulse's `metrics`
//! feature) into a real exporter: `metrics-exporter-prometheus` serves
//! them over HTTP on 127.0.0.1, the test scrapes the text it serves and
//! checks every worker's values against the `handle.metrics()` snapshot
//! that was published, across three publications (while tasks run, after
//! more work, after the runtime stopped).
//!
//! It installs the process-wide recorder, so it is alone in this file.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use pulse::metrics::MetricsSnapshot;
use pulse::metrics_facade::{self, MetricsPublisher};
use pulse::{Config, Recorder, WriterConfig};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET /metrics over HTTP/1.0 (no chunking): the body.
fn scrape(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(addr) {
            Ok(mut stream) => {
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                stream
                    .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                    .unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).unwrap();
                let (head, body) = response
                    .split_once("\r\n\r\n")
                    .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
                assert!(head.starts_with("HTTP/1."), "{head}");
                assert!(head.contains(" 200 "), "{head}");
                return body.to_owned();
            }
            // The exporter's listener starts on its own thread.
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => panic!("the exporter never listened on {addr}: {err}"),
        }
    }
}

/// `name{labels} value` lines: (name, labels, value).
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap();
                let labels = rest
                    .split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap();
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), BTreeMap::new()),
        };
        out.push((name, labels, value));
    }
    out
}

/// The served values agree with `snapshot`, worker by worker.
fn check(text: &str, snapshot: &MetricsSnapshot) {
    let samples = samples(text);
    let value = |name: &str, worker: usize| -> f64 {
        let found: Vec<f64> = samples
            .iter()
            .filter(|(n, labels, _)| {
                n == name && labels.get("worker").map(String::as_str) == Some(&worker.to_string())
            })
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(found.len(), 1, "{name} for worker {worker} in:\n{text}");
        found[0]
    };
    for (i, worker) in snapshot.workers.iter().enumerate() {
        assert_eq!(
            value(metrics_facade::POLLS, i),
            worker.polls as f64,
            "polls, worker {i}"
        );
        assert_eq!(
            value(metrics_facade::BUSY, i),
            worker.busy.as_nanos() as f64,
            "busy, worker {i}"
        );
        assert_eq!(
            value(metrics_facade::PARKS, i),
            worker.parks as f64,
            "parks, worker {i}"
        );
        assert_eq!(
            value(metrics_facade::NOOP_UNPARKS, i),
            worker.noop_unparks as f64,
            "no-op unparks, worker {i}"
        );
        assert_eq!(
            value(metrics_facade::LOCAL_QUEUE_MAX, i),
            worker.local_queue_max as f64,
            "local queue max, worker {i}"
        );
        // The histogram: cumulative buckets at pulse's bounds, and the count.
        let bucket_name = format!("{}_bucket", metrics_facade::POLL_DURATION);
        let mut cumulative = 0u64;
        for (bucket, count) in worker.poll_histogram.iter().enumerate() {
            cumulative += count;
            let (_, high) = snapshot.layout.bucket_range(bucket);
            let le = high.map_or(f64::INFINITY, |h| h as f64 / 1e9);
            let served: Vec<f64> = samples
                .iter()
                .filter(|(n, labels, _)| {
                    *n == bucket_name
                        && labels.get("worker").map(String::as_str) == Some(&i.to_string())
                        && labels.get("le").is_some_and(|v| {
                            let bound: f64 = if v == "+Inf" {
                                f64::INFINITY
                            } else {
                                v.parse().unwrap()
                            };
                            bound == le || (le.is_finite() && (bound - le).abs() <= le * 1e-9)
                        })
                })
                .map(|(_, _, v)| *v)
                .collect();
            if worker.polls == 0 {
                // No poll, no histogram yet.
                assert!(served.is_empty(), "worker {i}: {served:?}");
                continue;
            }
            assert_eq!(served, [cumulative as f64], "worker {i}, le {le}");
        }
        if worker.polls > 0 {
            let count = value(&format!("{}_count", metrics_facade::POLL_DURATION), i);
            assert_eq!(count, worker.poll_histogram.iter().sum::<u64>() as f64);
        }
    }
}

#[test]
fn prometheus_serves_what_the_handle_says() {
    let layout = pulse::metrics::HistogramLayout::default();
    let bounds: Vec<f64> = (0..layout.buckets())
        .filter_map(|i| layout.bucket_range(i).1)
        .map(|high| high as f64 / 1e9)
        .collect();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full(metrics_facade::POLL_DURATION.to_owned()),
            &bounds,
        )
        .unwrap()
        .install()
        .expect("installs the Prometheus exporter");

    let config = Config::new()
        .writer(WriterConfig::Null)
        .poll_histogram(layout);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, &config).unwrap();
    let mut publisher = MetricsPublisher::new(guard.handle());
    let work = |tasks: u64| {
        runtime.block_on(async move {
            let handles: Vec<_> = (0..tasks)
                .map(|i| {
                    tokio::spawn(async move {
                        tokio::task::yield_now().await;
                        if i % 10 == 0 {
                            // A longer poll, in a higher bucket.
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        })
    };

    work(200);
    let first = publisher.publish();
    check(&scrape(addr), &first);

    work(300);
    let second = publisher.publish();
    assert!(second.total_polls() > first.total_polls());
    check(&scrape(addr), &second);

    drop(runtime); // the workers submit their last counts as they stop
    let last = publisher.publish();
    // Every task was polled at least twice (the yield), on some worker.
    assert!(last.total_polls() >= 1000, "{}", last.total_polls());
    let text = scrape(addr);
    check(&text, &last);
    assert!(
        text.contains(&format!(
            "# TYPE {} histogram",
            metrics_facade::POLL_DURATION
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("# TYPE {} counter", metrics_facade::POLLS)),
        "{text}"
    );
    drop(guard);
}
