//! The process's file descriptor limit, raised as far as allowed and checked against the caps.
//!
//! Every connection costs two descriptors (tiny_http keeps one to read and one to write), so
//! the default `--max-connections 256`, with as many idle connections allowed again, needs
//! about a thousand: exactly where the common soft limit of 1024 sits. Running out makes
//! `accept()` fail, which stops tiny_http's accept loop (`accept_supervisor` rebuilds it), so
//! it is better avoided: like most servers, the relay raises its soft limit to the hard limit
//! the service manager allows, and warns when even that is short of what the caps need.

use std::io;

/// Descriptors needed beyond connections: the listener, logs, `/proc` scans, a spare.
const BASE_DESCRIPTORS: u64 = 64;

/// Descriptors that `max_connections` busy and as many idle connections need at most.
pub fn needed_for(max_connections: usize) -> u64 {
    let connections = (max_connections as u64).saturating_mul(2);
    connections
        .saturating_mul(2)
        .saturating_add(BASE_DESCRIPTORS)
}

/// Idle connections whose descriptors (two each) fill half of what `limit` leaves beyond the
/// base; the other half is kept for busy connections. This keeps idle connections alone from
/// exhausting the limit; busy ones (bounded by `handler_slots`) can still, when the limit is
/// below [`needed_for`], which the relay warns about at start.
pub fn idle_connections_within(limit: u64) -> usize {
    let spare = limit.saturating_sub(BASE_DESCRIPTORS) / 4;
    usize::try_from(spare).unwrap_or(usize::MAX)
}

/// Raises the soft limit to the hard limit; returns the soft limit now in force.
pub fn raise() -> io::Result<u64> {
    // SAFETY: getrlimit and setrlimit read and write only the local struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        Ok(limit.rlim_cur as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_descriptors_per_connection_twice_over_plus_a_base() {
        assert_eq!(needed_for(256), 256 * 4 + 64);
        assert_eq!(needed_for(usize::MAX), u64::MAX);
        assert_eq!(idle_connections_within(needed_for(256)), 256);
        assert_eq!(idle_connections_within(48), 0);
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let before = unsafe {
            let mut limit: libc::rlimit = std::mem::zeroed();
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
            limit.rlim_cur as u64
        };
        assert!(raise().unwrap() >= before);
    }
}
