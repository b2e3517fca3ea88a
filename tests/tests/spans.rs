//! `tracing` spans and `pulse::mark!` on the timeline (issue 19): what the
//! layer records on real runtimes, read back from real trace files.

use pulse::trace::{SpanId, TraceEvent, TraceReader};
use pulse::{Config, Recorder, SimpleBinaryWriter};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Once;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

/// Worker threads need the subscriber too: it is global, set once for this
/// test binary (the layer keeps no state; each test has its own
/// recording, which the worker threads' buffers belong to).
fn install_subscriber() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(pulse::tracing_layer().with_events(tracing::Level::WARN))
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// Events of a trace file with span and mark texts resolved.
#[derive(Debug)]
struct Read {
    events: Vec<TraceEvent>,
    /// Span enter: (name, fields).
    texts: HashMap<(u64, SpanId), (String, String)>,
    marks: Vec<(u32, String, Option<u64>)>,
}

fn read(path: &Path) -> Read {
    let mut reader = TraceReader::open(path).unwrap();
    let mut read = Read {
        events: Vec::new(),
        texts: HashMap::new(),
        marks: Vec::new(),
    };
    while let Some(event) = reader.next_event().unwrap() {
        match event {
            TraceEvent::SpanEnter {
                timestamp_nanos,
                span,
                name,
                fields,
                ..
            } => {
                let text = |id| reader.text(id).expect("defined").to_owned();
                read.texts
                    .insert((timestamp_nanos, span), (text(name), text(fields)));
            }
            TraceEvent::Mark {
                worker,
                name,
                value,
                ..
            } => {
                read.marks
                    .push((worker, reader.text(name).unwrap().to_owned(), value));
            }
            _ => {}
        }
        read.events.push(event);
    }
    read
}

fn record(
    config: &Config,
    workers: usize,
    body: impl FnOnce(&tokio::runtime::Runtime, &pulse::RecordingHandle),
) -> Read {
    install_subscriber();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers).enable_all();
    let (runtime, guard) = Recorder::build_with_config(
        builder,
        Box::new(SimpleBinaryWriter::new(&path).unwrap()),
        config,
    )
    .unwrap();
    let handle = guard.handle();
    body(&runtime, &handle);
    drop(runtime);
    guard.finish().unwrap();
    read(&path)
}

#[tracing::instrument]
async fn get(key: String) -> usize {
    tokio::task::yield_now().await;
    key.len()
}

/// Enter and exit records pair up, carry the span's name and fields, and
/// fall inside polls of the task that entered them.
#[test]
fn instrumented_tasks_record_named_spans_inside_their_polls() {
    let read = record(&Config::new(), 2, |runtime, _| {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..20)
                .map(|i| tokio::spawn(get(format!("user:{i}"))))
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
    });
    let mut keys: Vec<String> = read
        .texts
        .values()
        .filter(|(name, _)| name == "get")
        .map(|(_, fields)| fields.clone())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 20, "{keys:?}");
    assert!(keys.contains(&"key=\"user:7\"".to_owned()));
    // Each `get` is polled twice (it yields once): two enters and two
    // exits per span, and every enter falls inside a poll on its worker.
    let mut open: HashMap<u32, Option<u64>> = HashMap::new();
    let (mut enters, mut exits) = (0, 0);
    // Each worker's records are in order in the file.
    for event in &read.events {
        match *event {
            TraceEvent::PollStart {
                worker, task_id, ..
            } => {
                open.insert(worker, task_id);
            }
            TraceEvent::PollEnd { worker, .. } => {
                open.insert(worker, None);
            }
            TraceEvent::SpanEnter { worker, .. } => {
                enters += 1;
                assert!(
                    open.get(&worker).copied().flatten().is_some(),
                    "enter outside a poll"
                );
            }
            TraceEvent::SpanExit { worker, .. } => {
                exits += 1;
                assert!(
                    open.get(&worker).copied().flatten().is_some(),
                    "exit outside a poll"
                );
            }
            _ => {}
        }
    }
    assert!(
        enters >= 40 && enters == exits,
        "{enters} enters, {exits} exits"
    );
}

/// A span entered on one worker and exited on another (a guard held
/// across an `.await`, the task moved): both records are kept, each on the
/// worker that made it.
#[test]
fn spans_move_between_workers() {
    let read = record(&Config::new(), 2, |runtime, _| {
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..40 {
                tasks.push(tokio::spawn(async move {
                    let span = tracing::info_span!("moving", i);
                    #[allow(clippy::let_underscore_future)]
                    let entered = span.enter();
                    // Keep both workers busy so the task is stolen.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    std::thread::sleep(Duration::from_micros(200));
                    drop(entered);
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        });
    });
    // A file keeps each worker's records in order, not all of them: order
    // by time (an exit is never earlier than its enter).
    let mut events = read.events.clone();
    events.sort_by_key(|e| e.timestamp_nanos());
    let mut entered_on: HashMap<SpanId, u32> = HashMap::new();
    let mut moved = 0;
    let mut exits = 0;
    for event in &events {
        match *event {
            TraceEvent::SpanEnter { worker, span, .. } => {
                entered_on.insert(span, worker);
            }
            TraceEvent::SpanExit { worker, span, .. } => {
                exits += 1;
                let from = entered_on.get(&span).expect("exit after its enter");
                if *from != worker {
                    moved += 1;
                }
            }
            _ => {}
        }
    }
    assert_eq!(exits, 40);
    assert!(moved >= 1, "no span moved between workers in 40 tries");
}

/// Disabled recording records no span or mark, and toggling it keeps
/// enters and exits paired.
#[test]
fn the_layer_with_recording_disabled_records_nothing() {
    let read = record(&Config::new().enabled(false), 2, |runtime, _| {
        runtime.block_on(async {
            tokio::spawn(async {
                pulse::mark!("while disabled");
                get("k".into()).await
            })
            .await
            .unwrap();
        });
    });
    let recorded: Vec<_> = read
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                TraceEvent::SpanEnter { .. }
                    | TraceEvent::SpanExit { .. }
                    | TraceEvent::SpanClose { .. }
                    | TraceEvent::Mark { .. }
            )
        })
        .collect();
    assert!(recorded.is_empty(), "{recorded:?}");

    // Disabled between an enter and its exit: the exit is still recorded.
    let read = record(&Config::new(), 1, |runtime, handle| {
        runtime.block_on(async {
            let handle = handle.clone();
            tokio::spawn(async move {
                let span = tracing::info_span!("toggled");
                let entered = span.enter();
                handle.disable();
                drop(entered);
                let span = tracing::info_span!("not recorded");
                let _entered = span.enter();
            })
            .await
            .unwrap();
        });
    });
    let names: Vec<&str> = read.texts.values().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["toggled"]);
    let exits = read
        .events
        .iter()
        .filter(|e| matches!(e, TraceEvent::SpanExit { .. }))
        .count();
    assert_eq!(exits, 1);
}

/// A 1 MB field is truncated, not stored: the trace holds at most
/// `MAX_TEXT_LEN` bytes of it and says it was cut.
#[test]
fn a_one_megabyte_field_is_truncated() {
    let huge = "x".repeat(1 << 20);
    let read = record(&Config::new(), 1, |runtime, _| {
        runtime.block_on(async {
            tokio::spawn(async move {
                let span = tracing::info_span!("big", payload = %huge);
                let _entered = span.enter();
            })
            .await
            .unwrap();
        });
    });
    let (_, fields) = read
        .texts
        .values()
        .find(|(name, _)| name == "big")
        .expect("the span was recorded");
    let max = pulse::trace::span::MAX_TEXT_LEN + pulse::trace::span::TRUNCATED_SUFFIX.len();
    assert!(fields.len() <= max, "{} bytes kept", fields.len());
    assert!(fields.starts_with("payload=xxx"));
    assert!(fields.ends_with(pulse::trace::span::TRUNCATED_SUFFIX));
}

/// `pulse::mark!` on a worker is recorded with its value; events at the
/// layer's level become marks; on a blocking-pool thread neither crashes
/// nor is recorded.
#[test]
fn marks_and_events_on_workers_and_off_them() {
    let read = record(&Config::new(), 2, |runtime, _| {
        runtime.block_on(async {
            tokio::spawn(async {
                pulse::mark!("cache miss");
                pulse::mark!("request id", 42u64);
                tracing::warn!("slow downstream");
                tracing::info!("below the layer's level");
            })
            .await
            .unwrap();
            tokio::task::spawn_blocking(|| {
                pulse::mark!("on the blocking pool");
                let span = tracing::info_span!("blocking");
                let _entered = span.enter();
                tracing::warn!("warned on the blocking pool");
            })
            .await
            .unwrap();
        });
        // The `block_on` caller of a multi-thread runtime is no worker.
        pulse::mark!("on the main thread");
    });
    let marks: Vec<(String, Option<u64>)> = read
        .marks
        .iter()
        .map(|(_, name, value)| (name.clone(), *value))
        .collect();
    assert_eq!(
        marks,
        [
            ("cache miss".to_owned(), None),
            ("request id".to_owned(), Some(42)),
            ("slow downstream".to_owned(), None),
        ]
    );
    assert!(!read.texts.values().any(|(name, _)| name == "blocking"));
}

/// A RESP-style key-value server (the protocol Redis speaks: arrays of
/// bulk strings in, simple strings or bulk strings out), instrumented as
/// services are: `#[instrument]` on each command handler.
mod resp {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    pub type Db = Arc<Mutex<HashMap<String, String>>>;

    /// The key whose GET makes a blocking call (a synchronous lookup in
    /// async code, the bug pulse finds).
    pub const SLOW_KEY: &str = "user:42";
    pub const BLOCKING: Duration = Duration::from_millis(80);

    #[tracing::instrument(name = "cmd::get", skip(db), fields(key = %key))]
    async fn get(db: &Db, key: String) -> Option<String> {
        if key == SLOW_KEY {
            pulse::mark!("slow path", 42u64);
            // A blocking call on the worker: the finding must name this span.
            std::thread::sleep(BLOCKING);
        }
        tokio::task::yield_now().await;
        db.lock().unwrap().get(&key).cloned()
    }

    #[tracing::instrument(name = "cmd::set", skip(db, value), fields(key = %key))]
    async fn set(db: &Db, key: String, value: String) {
        tokio::task::yield_now().await;
        db.lock().unwrap().insert(key, value);
    }

    /// Reads one RESP array of bulk strings.
    async fn read_command(
        reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    ) -> Option<Vec<String>> {
        let mut line = String::new();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let count: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
        let mut parts = Vec::with_capacity(count);
        for _ in 0..count {
            line.clear();
            reader.read_line(&mut line).await.ok()?;
            line.clear();
            reader.read_line(&mut line).await.ok()?;
            parts.push(line.trim_end().to_owned());
        }
        Some(parts)
    }

    #[tracing::instrument(name = "connection", skip_all)]
    async fn serve(stream: TcpStream, db: Db) {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        while let Some(command) = read_command(&mut reader).await {
            let reply = match command.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["GET", key] => match get(&db, key.to_owned()).await {
                    Some(value) => format!("${}\r\n{value}\r\n", value.len()),
                    None => "$-1\r\n".to_owned(),
                },
                ["SET", key, value] => {
                    set(&db, key.to_owned(), value.to_owned()).await;
                    "+OK\r\n".to_owned()
                }
                _ => "-ERR unknown command\r\n".to_owned(),
            };
            if write.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    pub async fn listen() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let db = Db::default();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, db.clone()));
            }
        });
        addr
    }

    /// Sends `parts` as a RESP array and reads one reply line (and the
    /// bulk string after it, if any).
    pub async fn call(stream: &mut BufReader<TcpStream>, parts: &[&str]) -> String {
        let mut out = format!("*{}\r\n", parts.len());
        for part in parts {
            out.push_str(&format!("${}\r\n{part}\r\n", part.len()));
        }
        stream.get_mut().write_all(out.as_bytes()).await.unwrap();
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        if line.starts_with('$') && line.trim_end() != "$-1" {
            stream.read_line(&mut line).await.unwrap();
        }
        line
    }
}

/// Issue 19, item 5: the finding for a blocking call inside an
/// `#[instrument]`ed handler names that handler's span and its fields,
/// groups by it, and the per-span statistics show it.
#[test]
fn a_blocking_handler_is_named_by_its_span() {
    use pulse_cli::analysis::{analyze_trace, render_text, AnalysisOptions, Verdict};
    use tokio::io::BufReader;

    install_subscriber();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let (runtime, guard) = Recorder::build_with_config(
        builder,
        Box::new(SimpleBinaryWriter::new(&path).unwrap()),
        &Config::new(),
    )
    .unwrap();
    runtime.block_on(async {
        let addr = resp::listen().await;
        let mut clients = Vec::new();
        for c in 0..4 {
            clients.push(tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                let mut stream = BufReader::new(stream);
                for i in 0..50 {
                    let key = format!("user:{c}{i:02}");
                    assert_eq!(
                        resp::call(&mut stream, &["SET", &key, "v"]).await,
                        "+OK\r\n"
                    );
                    resp::call(&mut stream, &["GET", &key]).await;
                }
                if c == 0 {
                    pulse::mark!("slow request sent");
                    resp::call(&mut stream, &["GET", resp::SLOW_KEY]).await;
                }
            }));
        }
        for client in clients {
            client.await.unwrap();
        }
    });
    drop(runtime);
    guard.finish().unwrap();

    let analysis = analyze_trace(&path, &AnalysisOptions::default()).unwrap();
    let report = render_text(&analysis, 10);
    let blocked: Vec<_> = analysis
        .findings
        .iter()
        .filter(|f| f.verdict == Verdict::BlockedInPoll)
        .collect();
    assert_eq!(
        blocked.len(),
        1,
        "one blocking call, one finding:\n{report}"
    );
    let finding = blocked[0];
    assert!(finding.duration_ns >= resp::BLOCKING.as_nanos() as u64);
    let innermost = finding.spans.first().expect("the finding names spans");
    assert_eq!(innermost.name, "cmd::get", "{report}");
    assert_eq!(innermost.fields, format!("key={}", resp::SLOW_KEY));
    assert!(
        finding.spans.iter().any(|s| s.name == "connection"),
        "the outer span too: {:?}",
        finding.spans
    );
    assert!(
        report.contains(&format!(
            "inside cmd::get{{key={}}} (in connection)",
            resp::SLOW_KEY
        )),
        "{report}"
    );
    // The mark made inside the blocking handler is in the finding's
    // window (the client's, made on another worker just before it sent
    // the command, may be too: the server can read the command in the
    // poll that answered the previous one).
    let marks: Vec<(&str, Option<u64>)> = finding
        .marks
        .iter()
        .map(|m| (m.name.as_str(), m.value))
        .collect();
    assert!(marks.contains(&("slow path", Some(42))), "{report}");
    assert!(
        marks
            .iter()
            .all(|m| *m == ("slow path", Some(42)) || *m == ("slow request sent", None)),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|line| line.trim_start().starts_with("marks: ")
                && line.contains("slow path=42 at ")),
        "{report}"
    );
    let group = analysis
        .span_groups
        .iter()
        .find(|g| g.name == "cmd::get")
        .expect("grouped by span");
    if group.findings > 1 {
        eprintln!("{report}");
    }
    assert!(
        group.verdicts.contains(&"blocked_in_poll".to_owned()),
        "{report}"
    );
    assert!(group.findings >= 1);
    let get = analysis
        .spans
        .iter()
        .find(|s| s.name == "cmd::get")
        .unwrap();
    let set = analysis
        .spans
        .iter()
        .find(|s| s.name == "cmd::set")
        .unwrap();
    // 201 GETs and 200 SETs, each polled twice (one yield), and entered
    // once more when dropped (`tracing`'s `Instrumented` does so).
    assert!((2 * 201..=3 * 201).contains(&get.enters), "{get:?}");
    assert!((2 * 200..=3 * 200).contains(&set.enters), "{set:?}");
    // Polls, counted once per name: a GET's two halves are two polls, but
    // the slow GET follows a GET directly, and the server may read it in
    // the poll that finished the one before (counted once).
    assert!(
        get.polls >= 2 * 201 - 1 && set.polls >= 2 * 200,
        "{get:?} {set:?}\n{report}"
    );
    assert!(get.longest_poll_ns >= resp::BLOCKING.as_nanos() as u64);
    assert!(set.longest_poll_ns < resp::BLOCKING.as_nanos() as u64);
    assert!(report.contains("Spans (polls that ran inside each span name)"));
    // `pulse analyze --json` carries the same.
    let json = serde_json::to_value(&analysis).unwrap();
    let stats = json["spans"].as_array().unwrap();
    let get_json = stats.iter().find(|s| s["name"] == "cmd::get").unwrap();
    assert_eq!(get_json["longest_poll_ns"], get.longest_poll_ns);
    assert_eq!(get_json["polls"], get.polls);
    let blocked_json = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["verdict"] == "blocked_in_poll")
        .unwrap();
    assert_eq!(blocked_json["spans"][0]["name"], "cmd::get");
    assert_eq!(json["span_groups"][0]["name"], "cmd::get");
    if std::env::var_os("PULSE_SHOW_REPORT").is_some() {
        println!("{report}");
    }

    // The exports carry them: the Chrome export's span slices and the
    // finding's arguments, the JSON Lines' span records.
    let set = pulse_cli::analysis::TraceSet::open(&path).unwrap();
    let mut chrome = Vec::new();
    pulse_cli::export::trace_to_chrome_with(
        &set,
        &mut chrome,
        "memory",
        &AnalysisOptions::default(),
        Duration::from_micros(100),
        |_, _| {},
    )
    .unwrap();
    let chrome: serde_json::Value = serde_json::from_slice(&chrome).unwrap();
    let events = chrome["traceEvents"].as_array().unwrap();
    let slow = format!("cmd::get{{key={}}}", resp::SLOW_KEY);
    let slice = events
        .iter()
        .find(|e| e["cat"] == "span" && e["name"] == slow.as_str())
        .expect("the slow GET's span slice");
    assert!(slice["dur"].as_f64().unwrap() >= resp::BLOCKING.as_micros() as f64);
    let finding = events
        .iter()
        .find(|e| e["cat"] == "finding" && e["args"]["verdict"] == "blocked_in_poll")
        .unwrap();
    assert_eq!(finding["args"]["spans"][0], slow.as_str());
    let mut jsonl = Vec::new();
    pulse_cli::export::trace_to_jsonl(&set, &mut jsonl, "memory", |_, _| {}).unwrap();
    let jsonl = String::from_utf8(jsonl).unwrap();
    assert!(jsonl.contains(&format!(
        "\"name\":\"cmd::get\",\"fields\":\"key={}\"",
        resp::SLOW_KEY
    )));
    assert!(jsonl.contains("\"type\":\"Mark\""));

    // And the Parquet export: the blocked finding's and the long poll's
    // span columns, read back by DuckDB.
    let out = dir.path().join("parquet");
    let options = pulse_cli::export::parquet::ParquetOptions::new()
        .service("resp")
        .host("test")
        .run("r1");
    let export =
        pulse_cli::export::parquet::export_parquet(&set, &out, &options, |_, _| {}).unwrap();
    let files: HashMap<&str, String> = export
        .files
        .iter()
        .map(|f| (f.table, f.path.display().to_string()))
        .collect();
    let Some(rows) = duckdb(&format!(
        "select f.span, f.span_fields, f.spans, \
         (select count(*) from read_parquet('{polls}') p \
          where p.span = 'cmd::get' and p.span_fields = f.span_fields and p.duration_ns = f.duration_ns) \
         from read_parquet('{findings}') f where f.verdict = 'blocked_in_poll'",
        polls = files["polls"],
        findings = files["findings"],
    )) else {
        return;
    };
    assert_eq!(
        rows,
        serde_json::json!([[
            "cmd::get",
            format!("key={}", resp::SLOW_KEY),
            [slow.as_str(), "connection"],
            1
        ]])
    );
}

/// Rows of a DuckDB query as JSON, or `None` (a visible skip) when DuckDB
/// is not importable and `PULSE_REQUIRE_DUCKDB` is unset.
fn duckdb(sql: &str) -> Option<serde_json::Value> {
    let script = "import duckdb, json, sys\n\
                  rows = duckdb.sql(sys.argv[1]).fetchall()\n\
                  print(json.dumps([list(r) for r in rows], default=str))";
    let output = match std::process::Command::new("python3")
        .args(["-c", script, sql])
        .output()
    {
        Ok(output) if output.status.success() => output,
        other => {
            let why = match other {
                Ok(output) => String::from_utf8_lossy(&output.stderr).into_owned(),
                Err(err) => err.to_string(),
            };
            assert!(
                std::env::var_os("PULSE_REQUIRE_DUCKDB").is_none(),
                "DuckDB query failed: {why}"
            );
            eprintln!("SKIPPED the Parquet check: DuckDB did not run ({why})");
            return None;
        }
    };
    Some(serde_json::from_slice(&output.stdout).expect("DuckDB's rows as JSON"))
}
