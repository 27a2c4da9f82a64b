//! A process's memory as Linux reports it in `/proc/<pid>/status`: the resident set now
//! (`VmRSS`) and its peak since the process started (`VmHWM`, the high-water mark), which the
//! flood and memory benches and the flood test read for every node process.
//!
//! Guarantees: values are in KiB as the kernel prints them; a missing process or field is an
//! error naming the pid, never a zero.

use std::fmt;

/// Why a process's memory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// `/proc/<pid>/status` could not be read (the process is gone, or not Linux).
    #[error("cannot read /proc/{pid}/status: {source}")]
    Read {
        /// The process.
        pid: u32,
        /// Why.
        source: std::io::Error,
    },
    /// A field is missing or malformed.
    #[error("/proc/{pid}/status has no readable {field}")]
    Field {
        /// The process.
        pid: u32,
        /// `VmRSS` or `VmHWM`.
        field: &'static str,
    },
}

/// Resident memory of one process, KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident since start (`VmHWM`).
    pub peak_kib: u64,
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.1} MiB now, {:.1} MiB peak",
            self.rss_kib as f64 / 1024.0,
            self.peak_kib as f64 / 1024.0
        )
    }
}

/// The `kB` value of `field` in a `/proc/<pid>/status` text.
fn field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Parses a `/proc/<pid>/status` text.
pub fn parse(pid: u32, status: &str) -> Result<Memory, MemoryError> {
    let get =
        |name: &'static str| field(status, name).ok_or(MemoryError::Field { pid, field: name });
    Ok(Memory {
        rss_kib: get("VmRSS")?,
        peak_kib: get("VmHWM")?,
    })
}

/// Reads process `pid`'s memory.
pub fn of(pid: u32) -> Result<Memory, MemoryError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|source| MemoryError::Read { pid, source })?;
    parse(pid, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_peak_and_refuses_what_is_missing() {
        let text =
            "Name:\tseedfed\nVmPeak:\t  900000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   70000 kB\n";
        assert_eq!(
            parse(7, text).unwrap(),
            Memory {
                rss_kib: 70000,
                peak_kib: 81234
            }
        );
        assert!(matches!(
            parse(7, "VmRSS:\t 1 kB\n"),
            Err(MemoryError::Field { field: "VmHWM", .. })
        ));
        // Our own process has both.
        let me = of(std::process::id()).unwrap();
        assert!(me.peak_kib >= me.rss_kib && me.rss_kib > 0);
    }
}
