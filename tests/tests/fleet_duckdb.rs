//! The Parquet export proved with a real engine: two real programs
//! (`src/bin/fleet_host_a.rs`, `src/bin/fleet_host_b.rs`, each a Tokio
//! runtime under `#[pulse::main]`) are recorded, exported by the `pulse`
//! binary as two hosts under one directory, and that directory is queried
//! with DuckDB (the Python wheel). The answers must match `pulse analyze
//! --json` of each trace:
//!
//! - top spawn sites by blocked time across hosts (the query in
//!   docs/fleet.md), and
//! - poll counts per host.
//!
//! Without DuckDB (`python3 -c "import duckdb"` fails) the test fails when
//! `PULSE_REQUIRE_DUCKDB` is set (CI sets it), and otherwise prints a
//! visible SKIPPED line and passes.
//!
//! It runs the `pulse` binary next to this test's executable
//! (`target/debug/pulse`), which `cargo test --workspace` builds; for this
//! test alone, build it first with `cargo build -p tokio-pulse-cli --bin
//! pulse`.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HOST_A: &str = env!("CARGO_BIN_EXE_fleet_host_a");
const HOST_B: &str = env!("CARGO_BIN_EXE_fleet_host_b");

/// The `pulse` binary built beside this test.
fn pulse_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/debug/deps/fleet_duckdb-HASH -> target/debug/pulse
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/PROFILE/deps")
        .join(format!("pulse{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "no pulse binary at {}: run `cargo test --workspace`, or build it with \
         `cargo build -p tokio-pulse-cli --bin pulse` before this test",
        bin.display()
    );
    bin
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs one program in `dir` and returns its trace.
fn record(program: &str, dir: &Path, trace: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    run(Command::new(program)
        .current_dir(dir)
        .env_remove("PULSE_PATH"));
    let path = dir.join(trace);
    assert!(path.is_file(), "{program} wrote no {}", path.display());
    path
}

/// Whether DuckDB's Python package is importable; fails or prints a
/// visible skip when it is not.
fn duckdb_available() -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import duckdb; print(duckdb.__version__)"])
        .output();
    match probe {
        Ok(output) if output.status.success() => true,
        probe => {
            let why = match probe {
                Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                Err(err) => format!("python3 did not start: {err}"),
            };
            let required =
                std::env::var_os("PULSE_REQUIRE_DUCKDB").is_some_and(|v| !v.is_empty() && v != "0");
            assert!(
                !required,
                "PULSE_REQUIRE_DUCKDB is set but DuckDB is not importable ({why}); \
                 install it with `python3 -m pip install duckdb`"
            );
            // Written past the test harness' capture, so it shows.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED fleet_duckdb: DuckDB is not importable ({why}); \
                 `python3 -m pip install duckdb` to run it, PULSE_REQUIRE_DUCKDB=1 to require it"
            );
            false
        }
    }
}

/// Runs `sql` in DuckDB and returns the rows as JSON arrays.
fn duckdb(sql: &str) -> Vec<Vec<Value>> {
    let script = "import duckdb, json, sys\n\
                  rows = duckdb.sql(sys.argv[1]).fetchall()\n\
                  print(json.dumps([list(r) for r in rows]))\n";
    let output = run(Command::new("python3").args(["-c", script, sql]));
    serde_json::from_slice::<Vec<Vec<Value>>>(&output.stdout).expect("DuckDB's rows as JSON")
}

fn analyze_json(pulse: &Path, trace: &Path) -> Value {
    let output = run(Command::new(pulse).args(["analyze", "--json"]).arg(trace));
    serde_json::from_slice(&output.stdout).expect("pulse analyze --json prints JSON")
}

#[test]
fn duckdb_answers_fleet_questions_as_pulse_analyze_does() {
    if !duckdb_available() {
        return;
    }
    let pulse = pulse_bin();
    let dir = tempfile::tempdir().unwrap();
    let traces = [
        (
            "host-a",
            record(HOST_A, &dir.path().join("a"), "fleet-a.bin"),
        ),
        (
            "host-b",
            record(HOST_B, &dir.path().join("b"), "fleet-b.bin"),
        ),
    ];
    // Who recorded each trace: the programs set `service = "fleet-test"`.
    for (program, (_, trace)) in ["fleet_host_a", "fleet_host_b"].iter().zip(&traces) {
        let info = run(Command::new(&pulse).arg("info").arg(trace));
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.contains(&format!("recorded by: {program} (pid "))
                && info.contains(", service fleet-test"),
            "{info}"
        );
    }
    let out = dir.path().join("dataset");
    for (host, trace) in &traces {
        // Both ran on this machine: --host makes them two hosts; the
        // service comes from the trace.
        let output = run(Command::new(&pulse)
            .args(["export", "parquet"])
            .arg(trace)
            .arg("--out")
            .arg(&out)
            .args(["--host", host]));
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(
            said.contains(&format!("service=fleet-test host={host}")),
            "{said}"
        );
    }

    // What pulse analyze says about each trace.
    let mut expected_polls = BTreeMap::new();
    // spawn site -> (blocked ns, findings, hosts)
    let mut expected_sites: BTreeMap<String, (u64, u64, Vec<String>)> = BTreeMap::new();
    for (host, trace) in &traces {
        let analysis = analyze_json(&pulse, trace);
        let polls: u64 = analysis["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["polls"].as_u64().unwrap())
            .sum();
        assert!(polls > 0, "{host}: no polls recorded");
        expected_polls.insert(host.to_string(), polls);
        assert_eq!(analysis["findings_omitted"], 0);
        for finding in analysis["findings"].as_array().unwrap() {
            if finding["verdict"] != "blocked_in_poll" {
                continue;
            }
            let site = finding["spawned_at"].as_str().unwrap_or("").to_owned();
            let entry = expected_sites.entry(site).or_default();
            entry.0 += finding["duration_ns"].as_u64().unwrap();
            entry.1 += 1;
            if !entry.2.iter().any(|h| h == host) {
                entry.2.push(host.to_string());
            }
        }
    }
    assert!(
        !expected_sites.is_empty(),
        "pulse analyze found no blocked poll in either program, which block their workers \
         for 80 ms at a time: nothing to compare"
    );
    let mut expected_sites: Vec<(String, u64, u64, String)> = expected_sites
        .into_iter()
        .map(|(site, (ns, n, mut hosts))| {
            hosts.sort();
            (site, ns, n, hosts.join(","))
        })
        .collect();
    expected_sites.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    let table = |name: &str| {
        format!(
            "read_parquet('{}/{name}/**/*.parquet', hive_partitioning = true)",
            out.display()
        )
    };
    // Top spawn sites by blocked time across hosts (docs/fleet.md).
    let sites = duckdb(&format!(
        "SELECT coalesce(spawned_at, ''), sum(duration_ns)::BIGINT AS blocked_ns, count(*), \
                string_agg(DISTINCT host, ',' ORDER BY host) \
         FROM {} WHERE verdict = 'blocked_in_poll' \
         GROUP BY ALL ORDER BY blocked_ns DESC, 1",
        table("findings")
    ));
    let sites: Vec<(String, u64, u64, String)> = sites
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap().to_owned(),
                row[1].as_u64().unwrap(),
                row[2].as_u64().unwrap(),
                row[3].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(sites, expected_sites);
    // The shared site blocked workers on both hosts, and the sum says so.
    let shared = sites
        .iter()
        .find(|(site, ..)| site.contains("fleet/workload.rs"));
    if let Some((site, _, _, hosts)) = shared {
        assert_eq!(hosts, "host-a,host-b", "{site}");
    }

    // Poll counts per host, from the rows and from the runs table.
    let polls = duckdb(&format!(
        "SELECT host, count(*) FROM {} GROUP BY host ORDER BY host",
        table("polls")
    ));
    let polls: BTreeMap<String, u64> = polls
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap().to_owned(),
                row[1].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(polls, expected_polls);
    let runs = duckdb(&format!(
        "SELECT host, polls, service, date::VARCHAR FROM {} ORDER BY host",
        table("runs")
    ));
    assert_eq!(runs.len(), 2, "{runs:?}");
    for row in &runs {
        let host = row[0].as_str().unwrap();
        assert_eq!(
            row[1].as_u64(),
            expected_polls.get(host).copied(),
            "{row:?}"
        );
        assert_eq!(row[2], "fleet-test");
        assert_eq!(row[3].as_str().unwrap().len(), "YYYY-MM-DD".len());
    }
}

/// A trace recorded with stacks (`stacks_app`: two requests block in
/// `storage::read_disk`): its blocked findings name that function, file and
/// line in DuckDB as `pulse analyze` does, with the whole stack as a list.
#[test]
fn duckdb_names_the_code_of_blocked_findings() {
    if !duckdb_available() {
        return;
    }
    let pulse = pulse_bin();
    let dir = tempfile::tempdir().unwrap();
    // It writes a rotated set: `stacks-trace.bin` is the set's base path.
    run(Command::new(env!("CARGO_BIN_EXE_stacks_app"))
        .current_dir(dir.path())
        .env_remove("PULSE_PATH"));
    let trace = dir.path().join("stacks-trace.bin");
    let out = dir.path().join("dataset");
    run(Command::new(&pulse)
        .args(["export", "parquet"])
        .arg(&trace)
        .arg("--out")
        .arg(&out));

    // What pulse analyze says: the blocked findings' user frames.
    let mut expected = Vec::new();
    for finding in analyze_json(&pulse, &trace)["findings"].as_array().unwrap() {
        if finding["verdict"] != "blocked_in_poll" {
            continue;
        }
        let stack = &finding["stack"];
        let frame = &stack["frames"][stack["user_frame"].as_u64().unwrap() as usize];
        expected.push(vec![
            frame["function"].clone(),
            frame["line"].clone(),
            stack["kind"].clone(),
            Value::from(stack["frames"].as_array().unwrap().len()),
        ]);
    }
    assert_eq!(expected.len(), 2, "stacks_app blocks twice: {expected:?}");
    let rows = duckdb(&format!(
        "SELECT code_function, code_line, stack_kind, len(stack) \
         FROM read_parquet('{}/findings/**/*.parquet', hive_partitioning = true) \
         WHERE verdict = 'blocked_in_poll' \
           AND code_file LIKE '%stacks_app/storage.rs' \
           AND list_contains(stack, code_function || ' (' || code_file || ':' || code_line || ')') \
         ORDER BY start_ns",
        out.display()
    ));
    assert_eq!(rows, expected);
    assert_eq!(rows[0][0], "stacks_app::storage::read_disk");
}
