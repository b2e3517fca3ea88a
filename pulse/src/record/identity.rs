//! Who is recording: the host, process id and executable, written first in
//! the trace's metadata (with the configured `service` among the
//! configuration pairs) so that traces from many processes stay
//! identifiable. Keys: [`pulse_trace::identity`].

use pulse_trace::identity::{EXECUTABLE, HOSTNAME, PID};

/// The identity pairs of this process; a value that cannot be read is left
/// out rather than guessed.
pub(crate) fn pairs() -> Vec<(String, String)> {
    let mut pairs = Vec::with_capacity(3);
    if let Some(host) = hostname() {
        pairs.push((HOSTNAME.to_owned(), host));
    }
    pairs.push((PID.to_owned(), std::process::id().to_string()));
    if let Some(executable) = executable() {
        pairs.push((EXECUTABLE.to_owned(), executable));
    }
    pairs
}

/// The host's name, from `gethostname(2)`.
#[cfg(unix)]
fn hostname() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the pointer and length describe `buffer`, which outlives the
    // call; gethostname writes at most `len` bytes into it.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return None;
    }
    // POSIX leaves a truncated name unterminated: take it up to the first
    // NUL or the buffer's end.
    let len = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    let name = String::from_utf8_lossy(&buffer[..len]).into_owned();
    (!name.is_empty()).then_some(name)
}

/// The host's name, as Windows names it to programs.
#[cfg(not(unix))]
fn hostname() -> Option<String> {
    std::env::var("COMPUTERNAME")
        .ok()
        .filter(|name| !name.is_empty())
}

/// The running executable's file name (`current_exe`, else `argv[0]`).
fn executable() -> Option<String> {
    let path = std::env::current_exe()
        .ok()
        .or_else(|| std::env::args_os().next().map(Into::into))?;
    let name = path.file_name()?.to_string_lossy().into_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_matches_what_the_system_says() {
        let pairs = pairs();
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get(PID), Some(std::process::id().to_string().as_str()));
        // The kernel's own record of this host's name.
        if let Ok(kernel) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            assert_eq!(get(HOSTNAME), Some(kernel.trim_end()));
        }
        let exe = std::env::current_exe().unwrap();
        assert_eq!(get(EXECUTABLE), exe.file_name().and_then(|n| n.to_str()));
    }
}
