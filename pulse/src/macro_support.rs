//! The run-time half of `#[pulse::main]`: what its expansion calls. Not a
//! public API; only the macro's output uses it (through `pulse::__private`).

/// Items `#[pulse::main]` expansions call. Not a public API: it may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    use crate::config::Config;
    use crate::error::Error;
    use crate::record::{Recorder, RecordingGuard};
    use std::ffi::OsString;
    use std::future::Future;
    use std::io::Write;
    use tokio::runtime::{Builder, LocalOptions, LocalRuntime, Runtime};

    /// Expansions reach Tokio through pulse, so a program needs only
    /// `pulse` and `tokio` as dependencies (and `tokio` without `macros`).
    pub use tokio;

    /// What `#[pulse::bench]` and `pulse::bench_main!` expansions call.
    #[cfg(feature = "bench")]
    pub use crate::bench::harness as bench;

    /// The runtime a `#[pulse::main]` function runs on, and its recording.
    #[derive(Debug)]
    pub struct Main {
        // Fields drop in declaration order: the runtime first, so its
        // workers hand over their last events as they stop, then the guard,
        // whose drop is the final flush. That order holds on a normal
        // return, on an `Err` return and when the body panics and unwinds
        // through `main`.
        runtime: AnyRuntime,
        _guard: Option<RecordingGuard>,
    }

    /// The two kinds of runtime the attribute can build.
    #[derive(Debug)]
    enum AnyRuntime {
        /// `flavor = "multi_thread"` or `"current_thread"`.
        Runtime(Runtime),
        /// `flavor = "local"`.
        Local(LocalRuntime),
    }

    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Runtime,
        Local,
    }

    impl Kind {
        fn build(self, mut builder: Builder) -> AnyRuntime {
            // As `#[tokio::main]` does: a runtime that cannot be built is
            // not something the program can run without.
            match self {
                Kind::Runtime => {
                    AnyRuntime::Runtime(builder.build().expect("Failed building the Runtime"))
                }
                Kind::Local => AnyRuntime::Local(
                    builder
                        .build_local(LocalOptions::default())
                        .expect("Failed building the Runtime"),
                ),
            }
        }

        fn build_traced(
            self,
            builder: Builder,
            config: &Config,
        ) -> Result<(AnyRuntime, RecordingGuard), Error> {
            Ok(match self {
                Kind::Runtime => {
                    let (runtime, guard) = Recorder::from_config(builder, config)?;
                    (AnyRuntime::Runtime(runtime), guard)
                }
                Kind::Local => {
                    let (runtime, guard) =
                        Recorder::from_config_local(builder, config, LocalOptions::default())?;
                    (AnyRuntime::Local(runtime), guard)
                }
            })
        }
    }

    impl Main {
        /// Applies the `PULSE_*` environment variables to `config` and
        /// builds the runtime through [`Recorder::from_config`], as a
        /// library user would. If anything about the recording is wrong, it
        /// prints one line on stderr and builds the same runtime untraced:
        /// recording never stops the program.
        ///
        /// `builder` makes the Tokio builder with the attribute's settings;
        /// it is called a second time for the untraced fallback.
        pub fn start(builder: impl Fn() -> Builder, config: Config) -> Main {
            warn_misspelled(&mut std::io::stderr());
            Main::start_with(
                Kind::Runtime,
                builder,
                config,
                |name| std::env::var_os(name),
                &mut std::io::stderr(),
            )
        }

        /// [`Main::start`] for `flavor = "local"`: a [`LocalRuntime`].
        pub fn start_local(builder: impl Fn() -> Builder, config: Config) -> Main {
            warn_misspelled(&mut std::io::stderr());
            Main::start_with(
                Kind::Local,
                builder,
                config,
                |name| std::env::var_os(name),
                &mut std::io::stderr(),
            )
        }

        fn start_with(
            kind: Kind,
            builder: impl Fn() -> Builder,
            config: Config,
            mut lookup: impl FnMut(&str) -> Option<OsString>,
            stderr: &mut dyn Write,
        ) -> Main {
            // Where the trace path came from, for the fix an error suggests.
            let path_from_env = lookup("PULSE_PATH").is_some();
            let config = match crate::config::env::apply_with(config, lookup) {
                Ok(config) => config,
                Err(err) => {
                    not_recording(stderr, &err, "fix or unset the variable");
                    return Main::untraced(kind, builder());
                }
            };
            if !config.enabled {
                return Main::untraced(kind, builder());
            }
            match kind.build_traced(builder(), &config) {
                Ok((runtime, guard)) => {
                    if !config.quiet {
                        let _ = writeln!(stderr, "pulse: {}", start_line(&config));
                    }
                    Main {
                        runtime,
                        _guard: Some(guard),
                    }
                }
                Err(err) => {
                    let fix = match &err {
                        Error::InvalidConfig { .. } => {
                            "fix it in `#[pulse::main]`, its config function or the PULSE_* \
                             variable that sets it"
                        }
                        Error::TraceFile { .. } if path_from_env => {
                            "point PULSE_PATH (which gave this path) at a writable file, or set \
                             PULSE=off"
                        }
                        Error::TraceFile { .. } => {
                            "change `path` in `#[pulse::main]` (or its config function) to a \
                             writable place, or set PULSE_PATH, or PULSE=off"
                        }
                        Error::Runtime(_)
                        | Error::FlushThread(_)
                        | Error::Write(_)
                        | Error::Dump { .. } => "set PULSE=off to run without pulse",
                    };
                    not_recording(stderr, &err, fix);
                    Main::untraced(kind, builder())
                }
            }
        }

        fn untraced(kind: Kind, builder: Builder) -> Main {
            Main {
                runtime: kind.build(builder),
                _guard: None,
            }
        }

        /// Runs the function's body to completion on the calling thread
        /// (so it need not be `Send`), returning its output unchanged.
        pub fn block_on<F: Future>(&self, future: F) -> F::Output {
            match &self.runtime {
                AnyRuntime::Runtime(runtime) => runtime.block_on(future),
                AnyRuntime::Local(runtime) => runtime.block_on(future),
            }
        }
    }

    /// What the line printed at start says (after `pulse: `).
    fn start_line(config: &Config) -> String {
        let mut line = config.writer.describe_destination();
        if let (crate::WriterConfig::Memory { .. }, Some(signal)) =
            (&config.writer, config.dump_signal)
        {
            line.push_str(&format!(
                "; dump with kill -{signal} {}",
                std::process::id()
            ));
        }
        line.push_str("; PULSE=off to disable");
        line
    }

    /// One line per `PULSE_*` variable that looks like a misspelling of
    /// one of pulse's (it is ignored; the run is recorded).
    fn warn_misspelled(stderr: &mut dyn Write) {
        let names = std::env::vars_os().map(|(name, _)| name);
        for (name, meant) in crate::config::env::misspelled(names) {
            let _ = writeln!(
                stderr,
                "pulse: {name} is not one of pulse's variables, so it is ignored; did you mean {meant}?"
            );
        }
    }

    /// The one line printed when a run cannot be recorded.
    fn not_recording(stderr: &mut dyn Write, what: &dyn std::fmt::Display, fix: &str) {
        // Nothing to do if stderr is closed; the program runs on regardless.
        let _ = writeln!(
            stderr,
            "pulse: not recording this run: {what}; {fix} (the program runs without a trace)"
        );
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::config::WriterConfig;

        fn current_thread() -> Builder {
            let mut builder = Builder::new_current_thread();
            builder.enable_all();
            builder
        }

        fn start(config: Config, vars: &[(&str, &str)]) -> (Main, String) {
            let mut stderr = Vec::new();
            let lookup = |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| OsString::from(v))
            };
            let main = Main::start_with(Kind::Runtime, current_thread, config, lookup, &mut stderr);
            (main, String::from_utf8(stderr).unwrap())
        }

        #[test]
        fn records_through_from_config() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.bin");
            let (main, stderr) = start(Config::new().writer(WriterConfig::file(&path)), &[]);
            assert!(main._guard.is_some());
            let absolute = std::path::absolute(&path).unwrap();
            assert_eq!(
                stderr,
                format!(
                    "pulse: recording to {}; PULSE=off to disable\n",
                    absolute.display()
                )
            );
            assert_eq!(main.block_on(async { 7 }), 7);
            drop(main);
            assert!(std::fs::metadata(&path).unwrap().len() > 0);
        }

        #[test]
        fn start_line_names_the_rotating_set_and_quiet_silences_it() {
            let dir = tempfile::tempdir().unwrap();
            let base = dir.path().join("run.bin");
            let rotating = Config::new().writer(WriterConfig::rotating(&base, 1 << 20, 512 << 20));
            let (main, stderr) = start(rotating.clone(), &[]);
            let pattern = dir.path().join("run.*.bin");
            assert_eq!(
                stderr,
                format!(
                    "pulse: recording to {} (rotating, 512 MiB max); PULSE=off to disable\n",
                    pattern.display()
                )
            );
            drop(main);
            let (main, stderr) = start(rotating.clone().quiet(true), &[]);
            assert!(main._guard.is_some());
            assert_eq!(stderr, "");
            drop(main);
            let (_main, stderr) = start(rotating, &[("PULSE_QUIET", "1")]);
            assert_eq!(stderr, "");
        }

        #[test]
        fn disabled_runs_untraced_and_quietly() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.bin");
            let file = Config::new().writer(WriterConfig::file(&path));
            for (config, vars) in [
                (file.clone().enabled(false), &[][..]),
                (file.clone(), &[("PULSE", "off")][..]),
            ] {
                let (main, stderr) = start(config, vars);
                assert!(main._guard.is_none());
                assert_eq!(stderr, "");
                assert_eq!(main.block_on(async { "ran" }), "ran");
            }
            assert!(!path.exists(), "nothing written");
            let (main, _) = start(file.enabled(false), &[("PULSE", "on")]);
            assert!(main._guard.is_some(), "PULSE=on overrides enabled = false");
        }

        #[test]
        fn bad_environment_prints_one_line_and_runs_untraced() {
            let (main, stderr) = start(
                Config::new().writer(WriterConfig::Null),
                &[("PULSE_FLUSH_MS", "soon"), ("PULSE_FORMAT", "v9")],
            );
            assert!(main._guard.is_none());
            assert_eq!(main.block_on(async { 1 }), 1);
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(
                stderr.starts_with("pulse: not recording this run: PULSE_FLUSH_MS=\"soon\""),
                "{stderr}"
            );
            assert!(
                stderr.contains("PULSE_FORMAT=\"v9\": expected v5 or v6"),
                "{stderr}"
            );
            assert!(stderr.contains("fix or unset the variable"), "{stderr}");
        }

        #[test]
        fn unwritable_trace_prints_one_line_naming_where_the_path_came_from() {
            let dir = tempfile::tempdir().unwrap();
            // A directory cannot be made inside a regular file.
            std::fs::write(dir.path().join("a-file"), "").unwrap();
            let path = dir.path().join("a-file").join("t.bin");
            let (main, stderr) = start(Config::new().writer(WriterConfig::file(&path)), &[]);
            assert!(main._guard.is_none());
            assert_eq!(main.block_on(async { 2 }), 2);
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains("a-file"), "{stderr}");
            assert!(
                stderr.contains("change `path` in `#[pulse::main]`"),
                "the path came from the attribute: {stderr}"
            );
            let env_path = path.to_str().unwrap();
            let (main, stderr) = start(
                Config::new().writer(WriterConfig::file("elsewhere.bin")),
                &[("PULSE_PATH", env_path)],
            );
            assert!(main._guard.is_none());
            assert!(
                stderr.contains("point PULSE_PATH (which gave this path) at a writable file"),
                "{stderr}"
            );
        }

        #[test]
        fn missing_directories_of_the_trace_path_are_created() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("traces").join("today").join("api.bin");
            let (main, stderr) = start(
                Config::new().writer(WriterConfig::rotating(&path, 1 << 20, 4 << 20)),
                &[("PULSE_QUIET", "on")],
            );
            assert!(main._guard.is_some(), "{stderr}");
            assert_eq!(stderr, "");
            drop(main);
            assert!(pulse_trace::rotated_path(&path, 0).is_file());
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(dir.path().join("traces"))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o700, "created directories are private");
            }
        }

        #[test]
        fn invalid_setting_prints_one_line_and_runs_untraced() {
            let (main, stderr) = start(
                Config::new().writer(WriterConfig::Null),
                &[("PULSE_BUFFER_EVENTS", "100000000")],
            );
            assert!(main._guard.is_none());
            assert!(stderr.contains("`buffer_events`"), "{stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
    }
}
