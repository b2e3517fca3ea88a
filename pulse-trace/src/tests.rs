//! Golden bytes for both versions and decoding errors with exact offsets.

use crate::event::SpawnLocation;
use crate::*;
use std::panic::Location;

const HEADER_V5: [u8; 12] = *b"TOKIOTRC\x05\x00\x00\x00";
const HEADER_V6: [u8; 12] = *b"TOKIOTRC\x06\x00\x00\x00";

fn encode_all(
    version: FormatVersion,
    metadata: TraceMetadata,
    events: &[RecordedEvent],
) -> Vec<u8> {
    let mut encoder = Encoder::new(version, metadata);
    let mut out = Vec::new();
    encoder.begin_file(0, &mut out);
    for event in events {
        encoder.encode(event, &mut out);
    }
    out
}

/// Every event until the end or the first error, and that error.
fn read_all(bytes: &[u8]) -> (Vec<TraceEvent>, Option<TraceError>) {
    let mut reader = match TraceReader::from_reader(bytes, "trace.bin") {
        Ok(reader) => reader,
        Err(err) => return (Vec::new(), Some(err)),
    };
    let mut events = Vec::new();
    loop {
        match reader.next_event() {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return (events, None),
            Err(err) => {
                // The reader stays stopped after an error.
                assert!(matches!(reader.next_event(), Ok(None)));
                assert!(reader.next().is_none());
                return (events, Some(err));
            }
        }
    }
}

fn read_ok(bytes: &[u8]) -> Vec<TraceEvent> {
    let (events, err) = read_all(bytes);
    assert!(
        err.is_none(),
        "unexpected error: {}",
        err.map(|e| e.to_string()).unwrap_or_default()
    );
    events
}

/// The error reading `bytes` gives, as `(offset, message)`.
fn read_err(bytes: &[u8]) -> (u64, String) {
    let (_, err) = read_all(bytes);
    let err = err.expect("expected an error");
    (err.offset(), err.to_string())
}

fn v5(records: &[&[u8]]) -> Vec<u8> {
    let mut out = HEADER_V5.to_vec();
    for record in records {
        out.extend_from_slice(record);
    }
    out
}

/// The caller's location, like a `tokio::spawn` call site.
#[track_caller]
fn location() -> SpawnLocation {
    SpawnLocation(Location::caller())
}

mod v5_golden {
    use super::*;

    fn encode_one(event: RecordedEvent) -> Vec<u8> {
        let bytes = encode_all(FormatVersion::V5, TraceMetadata::default(), &[event]);
        assert_eq!(bytes[..12], HEADER_V5);
        bytes[12..].to_vec()
    }

    #[test]
    fn header_is_magic_and_little_endian_version() {
        let bytes = encode_all(FormatVersion::V5, TraceMetadata::default(), &[]);
        assert_eq!(bytes, HEADER_V5);
        let (events, err) = read_all(&bytes);
        assert!(events.is_empty() && err.is_none());
    }

    #[test]
    fn poll_records_are_six_bytes_with_an_empty_local_queue() {
        let start = RecordedEvent::PollStart {
            timestamp_nanos: 1_234_567,
            worker: 3,
            local_queue: 0,
            task_id: Some(99),
            spawned_at: location(),
        };
        assert_eq!(encode_one(start), [0, 0xD2, 0x04, 0, 0, 3]);
        let end = RecordedEvent::PollEnd {
            timestamp_nanos: 0x0102_0304 * 1_000 + 999,
            worker: 0,
            local_queue: 0,
        };
        assert_eq!(encode_one(end), [1, 0x04, 0x03, 0x02, 0x01, 0]);
    }

    #[test]
    fn poll_records_are_seven_bytes_with_a_local_queue() {
        let start = RecordedEvent::PollStart {
            timestamp_nanos: 2_000,
            worker: 1,
            local_queue: 5,
            task_id: Some(1),
            spawned_at: location(),
        };
        assert_eq!(encode_one(start), [5, 2, 0, 0, 0, 1, 5]);
        let end = RecordedEvent::PollEnd {
            timestamp_nanos: 2_000,
            worker: 1,
            local_queue: 255,
        };
        assert_eq!(encode_one(end), [6, 2, 0, 0, 0, 1, 255]);
    }

    #[test]
    fn park_and_unpark_are_eleven_bytes() {
        let park = RecordedEvent::WorkerPark {
            timestamp_nanos: 1_000_000_000,
            worker: 7,
            local_queue: 2,
            cpu_nanos: Some(65_536_000),
            run_delay_nanos: Some(123),
        };
        assert_eq!(
            encode_one(park),
            [2, 0x40, 0x42, 0x0F, 0, 7, 2, 0x00, 0x00, 0x01, 0x00]
        );
        let unpark = RecordedEvent::WorkerUnpark {
            timestamp_nanos: 1_000,
            worker: 0,
            local_queue: 0,
            cpu_nanos: Some(1_999),
            run_delay_nanos: Some(0),
        };
        assert_eq!(encode_one(unpark), [3, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn queue_sample_is_six_bytes() {
        let sample = RecordedEvent::QueueSample {
            timestamp_nanos: 3_000,
            global_queue: 17,
        };
        assert_eq!(encode_one(sample), [4, 3, 0, 0, 0, 17]);
    }

    #[test]
    fn every_field_saturates_instead_of_wrapping() {
        let start = RecordedEvent::PollStart {
            timestamp_nanos: u64::MAX,
            worker: 256,
            local_queue: 70_000,
            task_id: Some(1),
            spawned_at: location(),
        };
        assert_eq!(encode_one(start), [5, 0xFF, 0xFF, 0xFF, 0xFF, 255, 255]);
        let park = RecordedEvent::WorkerUnpark {
            // One µs past u32::MAX µs (about 71.6 minutes).
            timestamp_nanos: (u64::from(u32::MAX) + 1) * 1_000,
            worker: u32::MAX,
            local_queue: 1_000,
            cpu_nanos: Some(u64::MAX),
            run_delay_nanos: Some(0),
        };
        assert_eq!(
            encode_one(park),
            [3, 0xFF, 0xFF, 0xFF, 0xFF, 255, 255, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        let sample = RecordedEvent::QueueSample {
            timestamp_nanos: 0,
            global_queue: 256,
        };
        assert_eq!(encode_one(sample), [4, 0, 0, 0, 0, 255]);
    }

    #[test]
    fn events_v5_cannot_carry_are_omitted() {
        let sample = RecordedEvent::WorkerSample {
            timestamp_nanos: 1,
            worker: 0,
            cpu_nanos: 1,
            run_delay_nanos: Some(1),
        };
        let dropped = RecordedEvent::EventsDropped {
            timestamp_nanos: 1,
            count: 5,
        };
        assert_eq!(encode_one(sample), [0u8; 0]);
        assert_eq!(encode_one(dropped), [0u8; 0]);
    }

    #[test]
    fn golden_records_decode() {
        let bytes = v5(&[
            &[0, 0xD2, 0x04, 0, 0, 3],
            &[6, 2, 0, 0, 0, 1, 255],
            &[2, 0x40, 0x42, 0x0F, 0, 7, 2, 0x00, 0x00, 0x01, 0x00],
            &[3, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0],
            &[4, 3, 0, 0, 0, 17],
            &[5, 0xFF, 0xFF, 0xFF, 0xFF, 255, 255],
            &[1, 0, 0, 0, 0, 9],
        ]);
        let expected = [
            TraceEvent::PollStart {
                timestamp_nanos: 1_234_000,
                worker: 3,
                local_queue: 0,
                task_id: None,
                spawned_at: None,
            },
            TraceEvent::PollEnd {
                timestamp_nanos: 2_000,
                worker: 1,
                local_queue: 255,
            },
            TraceEvent::WorkerPark {
                timestamp_nanos: 1_000_000_000,
                worker: 7,
                local_queue: 2,
                cpu_nanos: Some(65_536_000),
                run_delay_nanos: None,
            },
            TraceEvent::WorkerUnpark {
                timestamp_nanos: 1_000,
                worker: 0,
                local_queue: 0,
                cpu_nanos: Some(1_000),
                run_delay_nanos: None,
            },
            TraceEvent::QueueSample {
                timestamp_nanos: 3_000,
                global_queue: 17,
            },
            TraceEvent::PollStart {
                timestamp_nanos: u64::from(u32::MAX) * 1_000,
                worker: 255,
                local_queue: 255,
                task_id: None,
                spawned_at: None,
            },
            TraceEvent::PollEnd {
                timestamp_nanos: 0,
                worker: 9,
                local_queue: 0,
            },
        ];
        let mut reader = TraceReader::from_reader(&bytes[..], "t").unwrap();
        assert_eq!(reader.version(), FormatVersion::V5);
        assert_eq!(reader.metadata(), None);
        let events: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
        assert_eq!(events, expected);
        assert_eq!(reader.offset(), bytes.len() as u64);
    }
}

mod v6_golden {
    use super::*;

    fn metadata() -> TraceMetadata {
        TraceMetadata {
            time_unit_nanos: 10,
            worker_count: 2,
            start_unix_nanos: 0,
            pulse_version: "t".into(),
            has_run_delay: true,
            file_index: 0,
            config: vec![("k".into(), "v".into())],
        }
    }

    /// The metadata record of [`metadata`].
    const METADATA: [u8; 14] = [
        0x80, 12, // tag, payload length
        10, 2, 0, // time unit, workers, start
        1, b't', // version
        1, 0, // flags (has_run_delay), file index
        1, 1, b'k', 1, b'v', // one config pair
    ];

    fn definition(id: u8, location: SpawnLocation) -> Vec<u8> {
        let site = location.0;
        let mut payload = vec![id];
        varint::put_str(&mut payload, site.file());
        varint::put_varint(&mut payload, site.line().into());
        varint::put_varint(&mut payload, site.column().into());
        let mut record = vec![0x81];
        varint::put_varint(&mut record, payload.len() as u64);
        record.extend(payload);
        record
    }

    #[test]
    fn header_and_metadata() {
        let bytes = encode_all(FormatVersion::V6, metadata(), &[]);
        assert_eq!(bytes[..12], HEADER_V6);
        assert_eq!(bytes[12..], METADATA);
        let reader = TraceReader::from_reader(&bytes[..], "t").unwrap();
        assert_eq!(reader.version(), FormatVersion::V6);
        assert_eq!(reader.metadata(), Some(&metadata()));
    }

    #[test]
    fn small_sequence_has_known_bytes_and_decodes() {
        let spawn = location();
        let events = [
            RecordedEvent::PollStart {
                timestamp_nanos: 1_009,
                worker: 1,
                local_queue: 0,
                task_id: Some(5),
                spawned_at: spawn,
            },
            RecordedEvent::PollEnd {
                timestamp_nanos: 1_500,
                worker: 1,
                local_queue: 2,
            },
            RecordedEvent::PollStart {
                timestamp_nanos: 2_000,
                worker: 0,
                local_queue: 40,
                task_id: Some(3),
                spawned_at: spawn,
            },
            RecordedEvent::WorkerPark {
                timestamp_nanos: 2_100,
                worker: 0,
                local_queue: 0,
                cpu_nanos: Some(5_000),
                run_delay_nanos: Some(300),
            },
            // Earlier than worker 1's previous event: needs a set-time.
            RecordedEvent::WorkerUnpark {
                timestamp_nanos: 1_200,
                worker: 1,
                local_queue: 1,
                cpu_nanos: Some(100),
                run_delay_nanos: Some(0),
            },
            RecordedEvent::QueueSample {
                timestamp_nanos: 3_000,
                global_queue: 300,
            },
            RecordedEvent::WorkerSample {
                timestamp_nanos: 3_000,
                worker: 1,
                cpu_nanos: 7,
                run_delay_nanos: Some(8),
            },
            RecordedEvent::EventsDropped {
                timestamp_nanos: 3_000,
                count: 9,
            },
            // Still worker 1: samples do not switch workers.
            RecordedEvent::PollEnd {
                timestamp_nanos: 1_300,
                worker: 1,
                local_queue: 31,
            },
            // Same spawn site as worker 1's previous PollStart.
            RecordedEvent::PollStart {
                timestamp_nanos: 1_400,
                worker: 1,
                local_queue: 30,
                task_id: Some(4),
                spawned_at: spawn,
            },
        ];
        let bytes = encode_all(FormatVersion::V6, metadata(), &events);

        let mut expected = HEADER_V6.to_vec();
        expected.extend(METADATA);
        expected.extend([0x42, 1]); // switch to worker 1
        expected.extend(definition(1, spawn));
        expected.extend([0x30, 100, 10, 1]); // PollStart: new location; dt 100, task +5, location 1
        expected.extend([0x04, 50]); // PollEnd: local queue +2, dt 50
        expected.extend([0x42, 0]); // switch to worker 0
        expected.extend([0x3F, 40, 0xC8, 0x01, 6, 1]); // PollStart: new location, queue 40 (escaped), dt 200, task +3
        expected.extend([0x40, 10, 0, 0x90, 0x4E, 0xD8, 0x04]); // park: cpu +5000, delay +300
        expected.extend([0x42, 1, 0x43, 120]); // back to worker 1, set time 120
        expected.extend([0x41, 0, 1, 0xC8, 0x01, 0]); // unpark: dt 0, queue 1, cpu +100
        expected.extend([0x82, 4, 0xAC, 0x02, 0xAC, 0x02]); // queue sample
        expected.extend([0x83, 5, 0xAC, 0x02, 1, 7, 8]); // worker sample
        expected.extend([0x84, 3, 0xAC, 0x02, 9]); // events dropped
        expected.extend([0x1F, 31, 10]); // PollEnd: queue 31 (escaped), dt 10
        expected.extend([0x21, 10, 1]); // PollStart: same location, queue -1, dt 10, task -1
        assert_eq!(bytes, expected);

        let mut reader = TraceReader::from_reader(&bytes[..], "t").unwrap();
        let decoded: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
        assert_eq!(
            decoded,
            [
                TraceEvent::PollStart {
                    timestamp_nanos: 1_000,
                    worker: 1,
                    local_queue: 0,
                    task_id: Some(5),
                    spawned_at: Some(LocationId(1)),
                },
                TraceEvent::PollEnd {
                    timestamp_nanos: 1_500,
                    worker: 1,
                    local_queue: 2,
                },
                TraceEvent::PollStart {
                    timestamp_nanos: 2_000,
                    worker: 0,
                    local_queue: 40,
                    task_id: Some(3),
                    spawned_at: Some(LocationId(1)),
                },
                TraceEvent::WorkerPark {
                    timestamp_nanos: 2_100,
                    worker: 0,
                    local_queue: 0,
                    cpu_nanos: Some(5_000),
                    run_delay_nanos: Some(300),
                },
                TraceEvent::WorkerUnpark {
                    timestamp_nanos: 1_200,
                    worker: 1,
                    local_queue: 1,
                    cpu_nanos: Some(100),
                    run_delay_nanos: Some(0),
                },
                TraceEvent::QueueSample {
                    timestamp_nanos: 3_000,
                    global_queue: 300,
                },
                TraceEvent::WorkerSample {
                    timestamp_nanos: 3_000,
                    worker: 1,
                    cpu_nanos: 7,
                    run_delay_nanos: Some(8),
                },
                TraceEvent::EventsDropped {
                    timestamp_nanos: 3_000,
                    count: 9,
                },
                TraceEvent::PollEnd {
                    timestamp_nanos: 1_300,
                    worker: 1,
                    local_queue: 31,
                },
                TraceEvent::PollStart {
                    timestamp_nanos: 1_400,
                    worker: 1,
                    local_queue: 30,
                    task_id: Some(4),
                    spawned_at: Some(LocationId(1)),
                },
            ]
        );
        let site = reader.location(LocationId(1)).unwrap();
        assert_eq!(site.file, spawn.0.file());
        assert_eq!((site.line, site.column), (spawn.0.line(), spawn.0.column()));
    }

    #[test]
    fn run_delay_is_none_when_not_recorded() {
        let metadata = TraceMetadata {
            has_run_delay: false,
            ..metadata()
        };
        let park = RecordedEvent::WorkerPark {
            timestamp_nanos: 0,
            worker: 0,
            local_queue: 0,
            cpu_nanos: Some(1),
            run_delay_nanos: Some(0),
        };
        let events = read_ok(&encode_all(FormatVersion::V6, metadata, &[park]));
        assert!(matches!(
            events[..],
            [TraceEvent::WorkerPark {
                run_delay_nanos: None,
                cpu_nanos: Some(1),
                ..
            }]
        ));
    }

    /// A park or unpark without a reading is a three-byte record (tags
    /// 0x44, 0x45) that leaves the worker's CPU and run-queue state alone,
    /// so the next reading's deltas are from the previous reading.
    #[test]
    fn parks_without_a_reading_are_compact_and_keep_the_previous_reading() {
        let park = |t: u64, cpu: Option<u64>, delay: Option<u64>| RecordedEvent::WorkerPark {
            timestamp_nanos: t,
            worker: 3,
            local_queue: 2,
            cpu_nanos: cpu,
            run_delay_nanos: delay,
        };
        let unpark = |t: u64, cpu: Option<u64>, delay: Option<u64>| RecordedEvent::WorkerUnpark {
            timestamp_nanos: t,
            worker: 3,
            local_queue: 1,
            cpu_nanos: cpu,
            run_delay_nanos: delay,
        };
        let events = [
            park(10_000, Some(5_000_000), Some(700)),
            unpark(11_000, None, None),
            park(12_200, None, None),
            unpark(2_000_000, Some(6_000_000), Some(900)),
        ];
        let bytes = encode_all(FormatVersion::V6, metadata(), &events);
        let header = encode_all(FormatVersion::V6, metadata(), &[]).len();
        // Worker switch (2), park with reading, then the two compact records.
        let body = &bytes[header..];
        assert_eq!(&body[..2], &[0x42, 3]);
        let unit = u64::from(metadata().time_unit_nanos);
        let dt = (11_000 / unit - 10_000 / unit) as u8;
        let at = body
            .windows(3)
            .position(|w| w == [0x45, dt, 1])
            .expect("an unpark without a reading is tag 0x45, dt, depth");
        let dt2 = (12_200 / unit - 11_000 / unit) as u8;
        assert_eq!(&body[at + 3..at + 6], &[0x44, dt2, 2]);
        let decoded = read_ok(&bytes);
        let readings: Vec<_> = decoded
            .iter()
            .map(|e| match *e {
                TraceEvent::WorkerPark {
                    cpu_nanos,
                    run_delay_nanos,
                    ..
                }
                | TraceEvent::WorkerUnpark {
                    cpu_nanos,
                    run_delay_nanos,
                    ..
                } => (
                    e.event_type(),
                    e.timestamp_nanos(),
                    cpu_nanos,
                    run_delay_nanos,
                ),
                _ => unreachable!("only parks and unparks were written"),
            })
            .collect();
        assert_eq!(
            readings,
            vec![
                (EventType::WorkerPark, 10_000, Some(5_000_000), Some(700)),
                (EventType::WorkerUnpark, 11_000, None, None),
                (EventType::WorkerPark, 12_200, None, None),
                (
                    EventType::WorkerUnpark,
                    2_000_000,
                    Some(6_000_000),
                    Some(900)
                ),
            ]
        );
        // v5 has no such record: no reading is written as cpu_us 0 and read
        // back as None.
        let v5 = read_ok(&encode_all(FormatVersion::V5, metadata(), &events));
        assert!(matches!(
            v5[1],
            TraceEvent::WorkerUnpark {
                cpu_nanos: None,
                ..
            }
        ));
        assert!(matches!(
            v5[3],
            TraceEvent::WorkerUnpark {
                cpu_nanos: Some(6_000_000),
                ..
            }
        ));
    }

    #[test]
    fn extreme_values_round_trip_exactly() {
        let metadata = TraceMetadata {
            time_unit_nanos: 1,
            ..metadata()
        };
        let spawn = location();
        let events = [
            RecordedEvent::PollStart {
                timestamp_nanos: u64::MAX,
                worker: u32::MAX,
                local_queue: u32::MAX,
                task_id: Some(u64::MAX),
                spawned_at: spawn,
            },
            RecordedEvent::PollStart {
                timestamp_nanos: 0,
                worker: u32::MAX,
                local_queue: 0,
                task_id: None,
                spawned_at: spawn,
            },
            RecordedEvent::WorkerUnpark {
                timestamp_nanos: u64::MAX,
                worker: u32::MAX,
                local_queue: u32::MAX,
                cpu_nanos: Some(u64::MAX),
                run_delay_nanos: Some(u64::MAX),
            },
            RecordedEvent::WorkerPark {
                timestamp_nanos: u64::MAX,
                worker: u32::MAX,
                local_queue: 0,
                cpu_nanos: Some(0),
                run_delay_nanos: Some(0),
            },
            RecordedEvent::QueueSample {
                timestamp_nanos: u64::MAX,
                global_queue: u64::MAX,
            },
        ];
        let decoded = read_ok(&encode_all(FormatVersion::V6, metadata, &events));
        assert_eq!(decoded.len(), events.len());
        for (event, decoded) in events.iter().zip(&decoded) {
            assert_eq!(decoded.timestamp_nanos(), event.timestamp_nanos());
            assert_eq!(decoded.worker(), event.worker());
        }
        assert!(matches!(
            decoded[2],
            TraceEvent::WorkerUnpark {
                cpu_nanos: Some(u64::MAX),
                run_delay_nanos: Some(u64::MAX),
                local_queue: u32::MAX,
                ..
            }
        ));
        assert!(matches!(
            decoded[1],
            TraceEvent::PollStart { task_id: None, .. }
        ));
    }

    /// Issue 18: a PollStart's schedule latency is a `0x8C` record after
    /// it, with the PollStart's time; a reader that does not know the tag
    /// (simulated by renaming it to an unassigned one) reads the same polls.
    #[test]
    fn schedule_latency_follows_its_poll_start_and_old_readers_skip_it() {
        let spawn = location();
        let events = [
            RecordedEvent::PollStart {
                timestamp_nanos: 1_009,
                worker: 1,
                local_queue: 0,
                task_id: Some(5),
                spawned_at: spawn,
            },
            RecordedEvent::ScheduleLatency {
                timestamp_nanos: 1_009,
                worker: 1,
                latency_nanos: 300,
            },
            RecordedEvent::PollEnd {
                timestamp_nanos: 1_500,
                worker: 1,
                local_queue: 0,
            },
        ];
        let bytes = encode_all(FormatVersion::V6, metadata(), &events);
        // tag, length, worker 1, 300 nanoseconds as a varint.
        let record = [0x8C, 3, 1, 0xAC, 0x02];
        let at = bytes
            .windows(record.len())
            .position(|w| w == record)
            .expect("the 0x8C record");
        let decoded = read_ok(&bytes);
        assert_eq!(
            decoded[1],
            TraceEvent::ScheduleLatency {
                timestamp_nanos: 1_000,
                worker: 1,
                latency_nanos: 300,
            }
        );
        assert!(matches!(
            decoded[0],
            TraceEvent::PollStart {
                timestamp_nanos: 1_000,
                ..
            }
        ));
        assert!(matches!(
            decoded[2],
            TraceEvent::PollEnd {
                timestamp_nanos: 1_500,
                ..
            }
        ));
        let mut old = bytes.clone();
        old[at] = 0xC7;
        let without: Vec<_> = decoded
            .iter()
            .filter(|e| !matches!(e, TraceEvent::ScheduleLatency { .. }))
            .copied()
            .collect();
        assert_eq!(read_ok(&old), without);
        // A latency for a worker with no record in the file has no poll.
        let mut orphan = encode_all(FormatVersion::V6, metadata(), &[]);
        orphan.extend([0x8C, 2, 7, 9]);
        assert_eq!(read_ok(&orphan), []);
    }

    #[test]
    fn unknown_length_prefixed_records_and_trailing_fields_are_skipped() {
        let mut bytes = encode_all(FormatVersion::V6, metadata(), &[]);
        bytes.extend([0xC7, 3, 1, 2, 3]); // an unknown record
        bytes.extend([0xFF, 0]); // an empty unknown record
        bytes.extend([0x84, 4, 10, 2, 0xEE, 0xEE]); // EventsDropped + a future field
        let events = read_ok(&bytes);
        assert_eq!(
            events,
            [TraceEvent::EventsDropped {
                timestamp_nanos: 100,
                count: 2,
            }]
        );
    }

    #[test]
    fn zero_time_unit_means_the_default() {
        let metadata = TraceMetadata {
            time_unit_nanos: 0,
            ..metadata()
        };
        let encoder = Encoder::new(FormatVersion::V6, metadata);
        assert_eq!(encoder.metadata().time_unit_nanos, DEFAULT_TIME_UNIT_NANOS);
    }

    #[test]
    fn encoding_before_begin_file_starts_file_zero() {
        let mut encoder = Encoder::new(FormatVersion::V6, metadata());
        let mut bytes = Vec::new();
        let sample = RecordedEvent::QueueSample {
            timestamp_nanos: 10,
            global_queue: 1,
        };
        encoder.encode(&sample, &mut bytes);
        assert_eq!(read_ok(&bytes).len(), 1);
    }

    #[test]
    fn locations_are_redefined_in_each_file_with_stable_ids() {
        let a = location();
        let b = location();
        assert_ne!(a, b);
        let poll = |spawned_at, timestamp_nanos| RecordedEvent::PollStart {
            timestamp_nanos,
            worker: 0,
            local_queue: 0,
            task_id: Some(1),
            spawned_at,
        };
        let mut encoder = Encoder::new(FormatVersion::V6, metadata());
        let mut first = Vec::new();
        encoder.begin_file(0, &mut first);
        encoder.encode(&poll(a, 10), &mut first);
        encoder.encode(&poll(b, 20), &mut first);
        // Rotation as a writer does it: the event that overflowed is
        // truncated away and encoded again into the next file.
        let len = first.len();
        encoder.encode(&poll(a, 30), &mut first);
        first.truncate(len);
        let mut second = Vec::new();
        encoder.begin_file(1, &mut second);
        encoder.encode(&poll(a, 30), &mut second);
        encoder.encode(&poll(b, 40), &mut second);

        let locations = |bytes: &[u8]| -> Vec<Option<LocationId>> {
            read_ok(bytes)
                .into_iter()
                .map(|event| match event {
                    TraceEvent::PollStart {
                        spawned_at: location,
                        ..
                    } => location,
                    _ => None,
                })
                .collect()
        };
        let ids = vec![Some(LocationId(1)), Some(LocationId(2))];
        assert_eq!(locations(&first), ids);
        assert_eq!(locations(&second), ids);
        let reader = TraceReader::from_reader(&second[..], "t").unwrap();
        assert_eq!(reader.metadata().map(|m| m.file_index), Some(1));
    }

    #[test]
    fn oversized_config_is_trimmed_to_fit_the_record_limit() {
        let big = "x".repeat(300_000);
        let metadata = TraceMetadata {
            config: (0..5).map(|i| (format!("k{i}"), big.clone())).collect(),
            ..metadata()
        };
        let bytes = encode_all(FormatVersion::V6, metadata, &[]);
        let reader = TraceReader::from_reader(&bytes[..], "t").unwrap();
        let config = &reader.metadata().unwrap().config;
        assert_eq!(config.len(), 3);
        assert_eq!(config[2].0, "k2");
    }
}

mod errors {
    use super::*;

    /// A v6 file: header, metadata (time unit 10), then `records`.
    fn v6(records: &[&[u8]]) -> Vec<u8> {
        let metadata = TraceMetadata {
            time_unit_nanos: 10,
            pulse_version: String::new(),
            ..TraceMetadata::default()
        };
        let mut out = encode_all(FormatVersion::V6, metadata, &[]);
        assert_eq!(out.len(), V6_START as usize);
        for record in records {
            out.extend_from_slice(record);
        }
        out
    }

    /// Offset of the first record after the metadata in [`v6`] files.
    const V6_START: u64 = 12 + 9;

    #[test]
    fn wrong_magic() {
        assert_eq!(
            read_err(b"TOKIOTRX\x06\x00\x00\x00"),
            (
                0,
                r#"trace.bin: byte 0: not a pulse trace: expected magic "TOKIOTRC", found "TOKIOTRX""#
                    .into()
            )
        );
    }

    #[test]
    fn unknown_version() {
        assert_eq!(
            read_err(b"TOKIOTRC\x07\x00\x00\x00"),
            (
                8,
                "trace.bin: byte 8: unsupported format version 7 (this reader supports versions 5 and 6)"
                    .into()
            )
        );
        let (_, message) = read_err(b"TOKIOTRC\x00\x00\x00\x05");
        assert!(message.contains("version 83886080"), "{message}");
    }

    #[test]
    fn truncated_header() {
        assert_eq!(
            read_err(b"TOKIO"),
            (
                0,
                "trace.bin: byte 0: truncated file header (needs 12 bytes, 5 left)".into()
            )
        );
        assert_eq!(read_err(b"").0, 0);
    }

    #[test]
    fn truncated_v5_records_of_each_kind() {
        let cases: [(&[u8], &str); 5] = [
            (
                &[0, 1, 2],
                "truncated PollStart record (needs 6 bytes, 3 left)",
            ),
            (
                &[6, 1, 2, 3, 4, 5],
                "truncated PollEnd record (needs 7 bytes, 6 left)",
            ),
            (
                &[2, 1, 2],
                "truncated WorkerPark record (needs 11 bytes, 3 left)",
            ),
            (
                &[3, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                "truncated WorkerUnpark record (needs 11 bytes, 10 left)",
            ),
            (&[4], "truncated QueueSample record (needs 6 bytes, 1 left)"),
        ];
        let valid = [1, 0, 0, 0, 0, 0];
        for (record, message) in cases {
            let (events, err) = read_all(&v5(&[&valid, record]));
            let err = err.unwrap();
            assert_eq!(events.len(), 1);
            assert_eq!(err.offset(), 18);
            assert!(err.is_truncation());
            assert_eq!(err.to_string(), format!("trace.bin: byte 18: {message}"));
        }
    }

    #[test]
    fn unknown_v5_code() {
        assert_eq!(
            read_err(&v5(&[&[4, 0, 0, 0, 0, 0], &[7, 0, 0, 0, 0, 0]])),
            (
                18,
                "trace.bin: byte 18: unknown v5 event code 7 (codes are 0 to 6)".into()
            )
        );
    }

    #[test]
    fn v6_header_without_metadata() {
        assert_eq!(
            read_err(&HEADER_V6),
            (
                12,
                "trace.bin: byte 12: truncated Metadata record (needs at least 2 bytes, 0 left)"
                    .into()
            )
        );
        let mut bytes = HEADER_V6.to_vec();
        bytes.extend([0x42, 0]);
        assert_eq!(
            read_err(&bytes),
            (
                12,
                "trace.bin: byte 12: the first record must be Metadata (tag 0x80), found tag 0x42"
                    .into()
            )
        );
    }

    #[test]
    fn truncated_v6_records_of_each_kind() {
        let start = V6_START + 2;
        let cases: [(&[u8], &str); 9] = [
            (
                &[0x30, 0x80],
                "truncated PollStart record (needs at least 5 bytes, 2 left)",
            ),
            (
                &[0x20, 0x80],
                "truncated PollStart record (needs at least 4 bytes, 2 left)",
            ),
            (
                &[0x3F],
                "truncated PollStart record (needs at least 5 bytes, 1 left)",
            ),
            (
                &[0x00],
                "truncated PollEnd record (needs at least 2 bytes, 1 left)",
            ),
            (
                &[0x40, 1, 1],
                "truncated WorkerPark record (needs at least 5 bytes, 3 left)",
            ),
            (
                &[0x41, 1, 1, 1],
                "truncated WorkerUnpark record (needs at least 5 bytes, 4 left)",
            ),
            (
                &[0x43],
                "truncated set-time record (needs at least 2 bytes, 1 left)",
            ),
            (
                &[0x82, 5, 1],
                "truncated QueueSample record (needs 7 bytes, 3 left)",
            ),
            (
                &[0x83, 0x80],
                "truncated WorkerSample record (needs at least 3 bytes, 2 left)",
            ),
        ];
        for (record, message) in cases {
            let (events, err) = read_all(&v6(&[&[0x42, 0], record]));
            let err = err.unwrap();
            assert!(events.is_empty());
            assert!(err.is_truncation(), "{err}");
            assert_eq!(
                err.to_string(),
                format!("trace.bin: byte {start}: {message}")
            );
        }
        let (offset, message) = read_err(&v6(&[&[0x42]]));
        assert_eq!(offset, V6_START);
        assert!(
            message.ends_with("truncated worker switch record (needs at least 2 bytes, 1 left)")
        );
        let (offset, message) = read_err(&v6(&[&[0x81, 10, 1, 5, b'a']]));
        assert_eq!(offset, V6_START);
        assert!(message.ends_with("truncated location definition record (needs 12 bytes, 5 left)"));
    }

    #[test]
    fn unknown_compact_tag() {
        for tag in 0x46..=0x7F {
            assert_eq!(
                read_err(&v6(&[&[0x42, 0], &[tag, 0, 0, 0]])),
                (
                    V6_START + 2,
                    format!(
                        "trace.bin: byte {}: unknown compact record tag 0x{tag:02x}",
                        V6_START + 2
                    )
                )
            );
        }
    }

    #[test]
    fn worker_record_before_a_switch() {
        for (record, name) in [
            (&[0x01, 5][..], "PollEnd record"),
            (&[0x20, 1, 0, 0], "PollStart record"),
            (&[0x40, 1, 0, 0, 0], "WorkerPark record"),
            (&[0x43, 1], "set-time record"),
        ] {
            assert_eq!(
                read_err(&v6(&[record])),
                (
                    V6_START,
                    format!(
                        "trace.bin: byte {V6_START}: {name} before any worker switch (tag 0x42) in this file"
                    )
                )
            );
        }
    }

    #[test]
    fn undefined_location() {
        let definition = [0x81, 5, 2, 1, b'f', 3, 4];
        let events = read_ok(&v6(&[&definition, &[0x42, 0], &[0x30, 1, 0, 2]]));
        assert_eq!(events.len(), 1);
        assert_eq!(
            read_err(&v6(&[&definition, &[0x42, 0], &[0x30, 1, 0, 2], &[0x30, 1, 0, 3]])),
            (
                V6_START + 13,
                format!(
                    "trace.bin: byte {}: spawn location id 3 used before its definition (tag 0x81) in this file",
                    V6_START + 13
                )
            )
        );
        let (_, message) = read_err(&v6(&[
            &[0x42, 0],
            &[0x30, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x10],
        ]));
        assert!(
            message.ends_with(
                "spawn location id 4294967296 used before its definition (tag 0x81) in this file"
            ),
            "{message}"
        );
    }

    #[test]
    fn limits_bound_what_a_file_can_make_the_reader_hold() {
        let mut switches = Vec::new();
        for worker in 0..=MAX_WORKERS_PER_FILE as u64 {
            varint::put_varint(&mut switches, 0x42);
            varint::put_varint(&mut switches, worker);
        }
        let bytes = v6(&[&switches]);
        let (offset, message) = read_err(&bytes);
        assert_eq!(offset, (bytes.len() - 4) as u64);
        assert!(
            message.ends_with("more than 65536 distinct workers in one file"),
            "{message}"
        );
        // Switching back to a known worker is fine at the limit.
        let mut bytes = v6(&[&switches[..switches.len() - 4]]);
        bytes.extend([0x42, 0, 0x00, 1]);
        assert_eq!(read_ok(&bytes).len(), 1);

        let mut definition = vec![0x81, 7];
        varint::put_varint(&mut definition, u64::from(MAX_LOCATIONS) + 1);
        definition.extend([1, b'f', 1, 1]);
        let (_, message) = read_err(&v6(&[&definition]));
        assert!(
            message.ends_with(
                "location definition record: id 1048577 is out of range (at most 1048576)"
            ),
            "{message}"
        );
    }

    #[test]
    fn repeated_location_without_a_previous_one() {
        let definition = [0x81, 5, 2, 1, b'f', 3, 4];
        // Worker 0 repeats its location; worker 1 has none to repeat.
        let bytes = v6(&[
            &definition,
            &[0x42, 0],
            &[0x30, 1, 0, 2],
            &[0x20, 1, 0],
            &[0x42, 1],
            &[0x20, 1, 0],
        ]);
        let (events, err) = read_all(&bytes);
        assert_eq!(events.len(), 2);
        assert!(matches!(
            events[1],
            TraceEvent::PollStart {
                spawned_at: Some(LocationId(2)),
                ..
            }
        ));
        let err = err.unwrap();
        assert_eq!(err.offset(), V6_START + 7 + 2 + 4 + 3 + 2);
        assert!(
            err.to_string().ends_with(
                "PollStart record repeats the previous spawn location, but its worker has none in this file"
            ),
            "{err}"
        );
    }

    #[test]
    fn local_queue_change_below_zero() {
        // PollEnd with local queue change -1 (zigzag 1) from depth 0.
        assert_eq!(
            read_err(&v6(&[&[0x42, 0], &[0x01, 0]])),
            (
                V6_START + 2,
                format!(
                    "trace.bin: byte {}: PollEnd record: local queue change -1 from 0 leaves the u32 range",
                    V6_START + 2
                )
            )
        );
        // Escaped absolute depths, then changes relative to them.
        let events = read_ok(&v6(&[
            &[0x42, 0],
            &[0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0],
            &[0x01, 0],
        ]));
        assert!(matches!(
            events[..],
            [
                TraceEvent::PollEnd {
                    local_queue: u32::MAX,
                    ..
                },
                TraceEvent::PollEnd {
                    local_queue: 0xFFFF_FFFE,
                    ..
                }
            ]
        ));
        let (_, message) = read_err(&v6(&[
            &[0x42, 0],
            &[0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0],
            &[0x02, 0],
        ]));
        assert!(
            message.ends_with("local queue change +1 from 4294967295 leaves the u32 range"),
            "{message}"
        );
    }

    #[test]
    fn locations_from_an_earlier_file_must_be_redefined() {
        let definition = [0x81, 5, 2, 1, b'f', 3, 4];
        let first = v6(&[&definition]);
        let second = v6(&[&[0x42, 0], &[0x30, 1, 0, 2]]);
        let dir = tempfile::tempdir().unwrap();
        let paths = [dir.path().join("a"), dir.path().join("b")];
        std::fs::write(&paths[0], first).unwrap();
        std::fs::write(&paths[1], second).unwrap();
        let mut reader = TraceReader::open_files(&paths).unwrap();
        let err = reader.next_event().unwrap_err();
        assert_eq!(err.path(), paths[1]);
        assert_eq!(err.offset(), V6_START + 2);
        assert!(matches!(
            err.kind(),
            TraceErrorKind::Corrupt(Corruption::UndefinedLocation { id: 2 })
        ));
        // The table still answers for what earlier files defined.
        assert_eq!(
            reader.location(LocationId(2)).map(|s| s.to_string()),
            Some("f:3:4".into())
        );
    }

    #[test]
    fn absurd_length_prefix() {
        let huge = [
            0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
        ];
        assert_eq!(
            read_err(&v6(&[&huge])),
            (
                V6_START,
                format!(
                    "trace.bin: byte {V6_START}: record with unknown tag 0xf0 claims 18446744073709551615 payload bytes, more than the 1048576-byte limit"
                )
            )
        );
        // Within the limit but beyond the data: truncated, nothing allocated
        // up front.
        let (offset, message) = read_err(&v6(&[&[0x82, 0x80, 0x80, 0x40]]));
        assert_eq!(offset, V6_START);
        assert!(
            message.ends_with("truncated QueueSample record (needs 1048580 bytes, 4 left)"),
            "{message}"
        );
    }

    #[test]
    fn bad_varints() {
        let mut long = vec![0x42];
        long.extend([0xFF; 11]);
        assert_eq!(
            read_err(&v6(&[&long])),
            (
                V6_START,
                format!("trace.bin: byte {V6_START}: worker switch record: worker varint is longer than 10 bytes")
            )
        );
        let mut overflow = vec![0x42, 0, 0x00];
        overflow.extend([0xFF; 9]);
        overflow.push(0x02);
        let (_, message) = read_err(&v6(&[&overflow]));
        assert!(
            message.ends_with("PollEnd record: dt varint overflows u64"),
            "{message}"
        );
        let (_, message) = read_err(&v6(&[&[0x42, 0x80, 0x80, 0x80, 0x80, 0x10]]));
        assert!(
            message.ends_with("worker 4294967296 is out of range (at most 4294967295)"),
            "{message}"
        );
    }

    #[test]
    fn bad_strings_and_short_payloads() {
        let (_, message) = read_err(&v6(&[&[0x81, 5, 1, 1, 0xFF, 1, 1]]));
        assert!(
            message.ends_with("location definition record: file is not valid UTF-8"),
            "{message}"
        );
        let (_, message) = read_err(&v6(&[&[0x81, 4, 1, 9, b'a', 1]]));
        assert!(
            message.ends_with("file length 9 runs past the end of the record (2 bytes left)"),
            "{message}"
        );
        let (_, message) = read_err(&v6(&[&[0x81, 3, 1, 1, b'a']]));
        assert!(
            message.ends_with("location definition record ends before its line field"),
            "{message}"
        );
        let (_, message) = read_err(&v6(&[&[0x81, 4, 0, 0, 1, 1]]));
        assert!(
            message.ends_with("location definition record: id is 0"),
            "{message}"
        );
        let (_, message) = read_err(&v6(&[&[0x82, 1, 5]]));
        assert!(
            message.ends_with("QueueSample record ends before its global_queue field"),
            "{message}"
        );
    }

    #[test]
    fn bad_metadata() {
        let mut bytes = HEADER_V6.to_vec();
        bytes.extend([0x80, 7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            read_err(&bytes),
            (
                12,
                "trace.bin: byte 12: Metadata record: time_unit_nanos is 0".into()
            )
        );
        let mut bytes = HEADER_V6.to_vec();
        bytes.extend([0x80, 8, 1, 0, 0, 0, 0, 0, 100, 0]);
        let (_, message) = read_err(&bytes);
        assert!(
            message.ends_with(
                "config count length 100 runs past the end of the record (1 bytes left)"
            ),
            "{message}"
        );
        let mut bytes = HEADER_V6.to_vec();
        bytes.extend([0x80, 3, 1, 0, 0]);
        let (_, message) = read_err(&bytes);
        assert!(
            message.ends_with("Metadata record ends before its pulse_version field"),
            "{message}"
        );
        let metadata_again = v6(&[]).get(12..).unwrap_or_default().to_vec();
        assert_eq!(
            read_err(&v6(&[&metadata_again])),
            (
                V6_START,
                format!("trace.bin: byte {V6_START}: second Metadata record in one file")
            )
        );
    }

    #[test]
    fn timestamp_overflow() {
        let mut bytes = HEADER_V6.to_vec();
        // Time unit u32::MAX.
        bytes.extend([0x80, 11, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0, 0, 0, 0]);
        bytes.extend([0x42, 0, 0x43, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 5]);
        let (offset, message) = read_err(&bytes);
        assert_eq!(offset, 12 + 13 + 2 + 6);
        assert!(
            message.ends_with("PollEnd record: timestamp overflows u64 nanoseconds"),
            "{message}"
        );
    }

    #[test]
    fn skip_file_goes_on_after_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let paths = [
            dir.path().join("0"),
            dir.path().join("1"),
            dir.path().join("2"),
        ];
        let sample = [0x82, 2, 1, 1];
        std::fs::write(&paths[0], v6(&[&sample, &[0x50]])).unwrap();
        std::fs::write(&paths[1], b"garbage").unwrap();
        std::fs::write(&paths[2], v6(&[&sample])).unwrap();
        let mut reader = TraceReader::open_files(&paths).unwrap();
        assert!(reader.next_event().unwrap().is_some());
        let err = reader.next_event().unwrap_err();
        assert_eq!(
            (err.path(), err.offset()),
            (paths[0].as_path(), V6_START + 4)
        );
        assert!(reader.next_event().unwrap().is_none());
        let err = reader.skip_file().unwrap_err();
        assert_eq!(err.path(), paths[1]);
        assert!(err.is_truncation());
        assert!(reader.skip_file().unwrap());
        assert_eq!(reader.path(), paths[2]);
        assert!(reader.next_event().unwrap().is_some());
        assert!(reader.next_event().unwrap().is_none());
        assert!(!reader.skip_file().unwrap());
    }

    #[test]
    fn opening_nothing_or_a_missing_file() {
        let err = TraceReader::open_files(Vec::<std::path::PathBuf>::new()).unwrap_err();
        assert!(matches!(err.kind(), TraceErrorKind::Io(_)));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.bin");
        let err = TraceReader::open(&missing).unwrap_err();
        assert_eq!(err.path(), missing);
        assert!(std::error::Error::source(&err).is_some());
        let err = TraceReader::open_rotated(&missing).unwrap_err();
        assert!(err.to_string().contains("missing.<N>.bin"), "{err}");
    }
}
