//! The `signals` mode: the program installs its own SIGUSR1 and SIGPROF
//! handlers without `SA_RESTART` and blocks its workers in raw `read(2)`s
//! of a pipe, so any signal delivered to them would surface as `EINTR`.
//! It prints `eintr=N sigusr1=N sigprof=N reads=N` for the test to check.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static SIGUSR1: AtomicU64 = AtomicU64::new(0);
static SIGPROF: AtomicU64 = AtomicU64::new(0);
static EINTR: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    if signal == libc::SIGUSR1 {
        SIGUSR1.fetch_add(1, Ordering::Relaxed);
    } else {
        SIGPROF.fetch_add(1, Ordering::Relaxed);
    }
}

fn install(signal: libc::c_int) {
    // SAFETY: a zeroed sigaction with a handler that only touches atomics,
    // and no SA_RESTART: interrupted system calls fail with EINTR.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = 0;
        assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
    }
}

/// Blocks the calling worker in `read(2)` until `fd` yields one byte,
/// counting EINTRs.
#[inline(never)]
fn blocking_read(fd: libc::c_int) -> u8 {
    let mut byte = 0u8;
    loop {
        // SAFETY: reading one byte into a valid buffer.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            return byte;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINTR) {
            EINTR.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        panic!("read failed: {err}");
    }
}

pub async fn run() {
    install(libc::SIGUSR1);
    install(libc::SIGPROF);
    const READS: u64 = 6;
    for _ in 0..READS {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let [read_end, write_end] = fds;
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(60));
            // SAFETY: writing one byte from a valid buffer, then closing.
            unsafe {
                assert_eq!(libc::write(write_end, b"x".as_ptr().cast(), 1), 1);
                libc::close(write_end);
            }
        });
        let byte = tokio::spawn(async move { blocking_read(read_end) })
            .await
            .expect("reader task");
        assert_eq!(byte, b'x');
        writer.join().expect("writer");
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(read_end) };
    }
    println!(
        "eintr={} sigusr1={} sigprof={} reads={READS}",
        EINTR.load(Ordering::Relaxed),
        SIGUSR1.load(Ordering::Relaxed),
        SIGPROF.load(Ordering::Relaxed),
    );
}
