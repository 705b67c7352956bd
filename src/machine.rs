//! What the machine offers, and the memory budget the relay takes from it by default.
//!
//! The relay runs on 64 MB routers and on 8 GB Raspberry Pis, so no fixed default fits: the
//! budget (`--memory-budget`, see `relay::memory`) is an eighth of the machine's memory
//! (`MemTotal` in `/proc/meminfo`), but at least [`FLOOR`] and at most [`CEILING`].
//!
//! - An eighth: a 64 MB OpenWrt router shows about 57 MB of `MemTotal` and has 20–30 MB free
//!   once dnsmasq, hostapd, uhttpd and the kernel's caches are up; the relay's frames and
//!   uploads must stay well inside that, next to its own few megabytes of code, stacks and
//!   allocator slack. A 128 MB router gets 16 MB, which holds a few phones at full quality.
//! - The floor, 8 MiB, is what a 64 MB router gets: enough for several phones pushing 60 KB
//!   frames, each with a frame kept, one being received and one still being written, and two
//!   frames at the largest default size (a quarter of the budget, see `config`).
//! - The ceiling, 256 MiB, is every one of the default 64 devices holding a 4 MiB frame: more
//!   than that could never be used with the default limits, so a 4 GB Pi gets 256 MiB and
//!   keeps the rest for everything else it runs.
//!
//! Where `/proc/meminfo` cannot be read, the floor is taken: the safe choice on an unknown box.

use std::fmt;

/// Smallest default budget: a 64 MB router's.
pub const FLOOR: usize = 8 * 1024 * 1024;
/// Largest default budget: 64 devices × 4 MiB frames.
pub const CEILING: usize = 256 * 1024 * 1024;
/// The default budget is `MemTotal / DIVISOR`, within the floor and ceiling.
pub const DIVISOR: u64 = 8;

/// Where the budget in force came from, for the start-up log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetOrigin {
    /// `--memory-budget` or its variable.
    Given,
    /// An eighth of this many bytes of `MemTotal`, within the floor and ceiling.
    MemTotal(u64),
    /// `/proc/meminfo` could not be read: the floor.
    Unknown,
}

impl fmt::Display for BudgetOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetOrigin::Given => f.write_str("set by --memory-budget"),
            BudgetOrigin::MemTotal(bytes) => write!(
                f,
                "1/{DIVISOR} of MemTotal {} MiB, within {} to {} MiB",
                bytes / (1024 * 1024),
                FLOOR / (1024 * 1024),
                CEILING / (1024 * 1024)
            ),
            BudgetOrigin::Unknown => f.write_str("MemTotal unknown: the 8 MiB floor"),
        }
    }
}

/// The default budget for a machine with `mem_total` bytes (`None`: unknown).
pub fn default_budget(mem_total: Option<u64>) -> (usize, BudgetOrigin) {
    match mem_total {
        Some(total) => {
            let share = usize::try_from(total / DIVISOR).unwrap_or(usize::MAX);
            (share.clamp(FLOOR, CEILING), BudgetOrigin::MemTotal(total))
        }
        None => (FLOOR, BudgetOrigin::Unknown),
    }
}

/// `MemTotal` of this machine in bytes, from `/proc/meminfo`.
pub fn mem_total() -> Option<u64> {
    parse_mem_total(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// Reads `MemTotal:  57012 kB` from the text of `/proc/meminfo`.
fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?;
    let kib = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn routers_and_pis_get_a_budget_they_can_afford() {
        // MemTotal as such machines report it: the kernel keeps some of the RAM.
        let budget = |mem_total_mib: u64| default_budget(Some(mem_total_mib * MIB)).0 as u64 / MIB;
        assert_eq!(budget(57), 8, "64 MB router");
        assert_eq!(budget(121), 15, "128 MB router");
        assert_eq!(budget(249), 31, "256 MB router");
        assert_eq!(budget(925), 115, "1 GB Pi");
        assert_eq!(budget(3_790), 256, "4 GB Pi");
        assert_eq!(budget(7_810), 256, "8 GB Pi");
        assert_eq!(default_budget(None), (FLOOR, BudgetOrigin::Unknown));
    }

    #[test]
    fn mem_total_is_read_from_meminfo() {
        let meminfo = "MemTotal:          57012 kB\nMemFree:            9000 kB\n";
        assert_eq!(parse_mem_total(meminfo), Some(57_012 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(parse_mem_total("MemTotal: lots\n"), None);
        assert!(mem_total().is_some_and(|total| total > 16 * MIB));
    }
}
