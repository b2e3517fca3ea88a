//! A CPU-bound computation run inside a poll (the other bug).

#[inline(never)]
pub fn checksum(rounds: u64) -> u64 {
    let mut acc = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..rounds {
        // CPU LOOP: the next line is where the time goes.
        acc = std::hint::black_box(acc.rotate_left(5) ^ i).wrapping_mul(0x100_0000_01b3);
    }
    acc
}
