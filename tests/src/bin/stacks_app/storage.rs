//! A storage layer that blocks its thread (the bug the test finds).

#[inline(never)]
pub fn lookup(key: u64) -> u64 {
    read_disk(key) * 2
}

#[inline(never)]
pub fn read_disk(key: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(100)); // BLOCKING CALL
    std::hint::black_box(key)
}
