//! Process hardening for the memory that holds secrets (invariants 1 and 3).
//!
//! [`harden_process`] runs once, first thing in `breakglassd init` and
//! `breakglassd serve`, before R, S, A's key, a share or an ephemeral key
//! exists. It does three things and reports what it could and could not do;
//! the binary logs the [`HardeningReport`] once and carries on, because an
//! outage is the wrong moment for a daemon that refuses to start.
//!
//! 1. **No core dumps**: `RLIMIT_CORE` soft and hard limits set to 0. The hard
//!    limit cannot be raised again without `CAP_SYS_RESOURCE`.
//! 2. **Not dumpable**: `prctl(PR_SET_DUMPABLE, 0)`. The kernel then writes no
//!    core dump (unless `fs.suid_dumpable = 2`, which the report flags), and
//!    `/proc/PID/mem`, `ptrace` attach and `process_vm_readv` are refused to
//!    every process without `CAP_SYS_PTRACE`, including processes of the
//!    daemon's own user. Root with `CAP_SYS_PTRACE` can still read memory:
//!    a root attacker on the host is out of scope (see the crate docs).
//! 3. **No swapping**: `mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)`, so
//!    no page that ever held a secret is written to swap. `MCL_ONFAULT` locks
//!    pages as they are touched instead of populating every mapping up front,
//!    so resident memory stays what it would be without locking (reserved
//!    thread stacks and allocator arenas are not faulted in). Kernels older
//!    than 4.4 lack it and get `MCL_CURRENT | MCL_FUTURE`.
//!
//! Memory is locked only when locking cannot make the daemon fail later: when
//! it holds `CAP_IPC_LOCK` or its `RLIMIT_MEMLOCK` is unlimited (a soft limit
//! is raised to an unlimited hard limit first). With a finite limit and no
//! capability, nothing is locked, on purpose:
//! - `MCL_FUTURE` charges every later mapping against the limit at its full
//!   size, not just what is touched: one 64 MiB allocator arena reservation
//!   or a 2 MiB thread stack past the limit makes `mmap`/`brk` fail, which in
//!   Rust is an abort on allocation failure or a failed thread spawn: a crash
//!   in the middle of an unlock.
//! - `MCL_CURRENT` alone fails outright when the mapped address space is
//!   larger than the limit (it usually is), and where it succeeds it only
//!   locks mappings that exist before the runtime starts: the secrets live on
//!   worker-thread stacks and in allocator arenas created later, so it would
//!   protect almost nothing, while a locked main-thread stack that grows at
//!   the limit is a SIGSEGV.
//!
//! The report then names the fix: `LimitMEMLOCK=infinity` or
//! `AmbientCapabilities=CAP_IPC_LOCK` in the systemd unit, or
//! `--cap-add IPC_LOCK` / `--ulimit memlock=-1` for a container. Locked
//! memory counts against a cgroup's memory limit like any other and cannot be
//! reclaimed, so set `MemoryMax` with the daemon's targets in mind.
//!
//! Everything here goes through rustix's safe wrappers; the crate keeps
//! `unsafe_code = "forbid"`. On systems other than Linux, [`harden_process`]
//! does nothing and says so.

use std::fmt;

/// How one hardening step went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Applied; the text says what exactly.
    Done(String),
    /// Deliberately not applied; the text says why and how to enable it.
    Skipped(String),
    /// Tried and refused by the system; the text has the error and the fix.
    Failed(String),
}

impl Step {
    /// True if the step was applied.
    pub fn is_done(&self) -> bool {
        matches!(self, Step::Done(_))
    }

    fn text(&self) -> &str {
        match self {
            Step::Done(t) | Step::Skipped(t) | Step::Failed(t) => t,
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Step::Done(_) => "ok",
            Step::Skipped(_) => "skipped",
            Step::Failed(_) => "FAILED",
        }
    }
}

/// What [`harden_process`] could and could not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardeningReport {
    /// `RLIMIT_CORE = 0`.
    pub core_limit: Step,
    /// `PR_SET_DUMPABLE = 0`.
    pub not_dumpable: Step,
    /// `mlockall`.
    pub memory_locked: Step,
    /// Things the process cannot change but an operator should know, such as
    /// `fs.suid_dumpable = 2`.
    pub notes: Vec<String>,
}

impl HardeningReport {
    /// True if every step was applied and there is nothing to note.
    pub fn complete(&self) -> bool {
        self.core_limit.is_done()
            && self.not_dumpable.is_done()
            && self.memory_locked.is_done()
            && self.notes.is_empty()
    }

    /// Logs the report as one event: `info` if complete, `warn` otherwise.
    pub fn log(&self) {
        if self.complete() {
            tracing::info!(report = %self, "memory hardening applied");
        } else {
            tracing::warn!(report = %self, "memory hardening incomplete: secrets may reach swap or a core dump; see the report for the fix");
        }
    }
}

impl fmt::Display for HardeningReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, step) in [
            ("core dumps", &self.core_limit),
            ("dumpable", &self.not_dumpable),
            ("memory lock", &self.memory_locked),
        ] {
            write!(f, "{name}: {} ({}); ", step.label(), step.text())?;
        }
        for n in &self.notes {
            write!(f, "note: {n}; ")?;
        }
        Ok(())
    }
}

/// Disables core dumps, makes the process non-dumpable and locks its memory
/// where that is safe (see the module docs). Call once, at the very start of
/// a command that handles secrets, before any thread is spawned.
pub fn harden_process() -> HardeningReport {
    imp::harden()
}

#[cfg(target_os = "linux")]
mod imp {
    use rustix::mm::{mlockall, MlockAllFlags};
    use rustix::process::{
        getrlimit, set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit,
    };
    use rustix::thread::{capabilities, CapabilitySet};

    use super::{HardeningReport, Step};

    pub(super) fn harden() -> HardeningReport {
        HardeningReport {
            core_limit: core_limit(),
            not_dumpable: not_dumpable(),
            memory_locked: lock_memory(),
            notes: notes(),
        }
    }

    fn core_limit() -> Step {
        let zero = Rlimit {
            current: Some(0),
            maximum: Some(0),
        };
        match setrlimit(Resource::Core, zero) {
            Ok(()) => Step::Done("RLIMIT_CORE = 0, soft and hard".into()),
            Err(e) => Step::Failed(format!(
                "setrlimit(RLIMIT_CORE, 0) refused: {e}; set LimitCORE=0 in the unit or `ulimit -c 0` before starting"
            )),
        }
    }

    fn not_dumpable() -> Step {
        match set_dumpable_behavior(DumpableBehavior::NotDumpable) {
            Ok(()) => Step::Done(
                "PR_SET_DUMPABLE = 0: no core dump, no ptrace or /proc/PID/mem without CAP_SYS_PTRACE"
                    .into(),
            ),
            Err(e) => Step::Failed(format!(
                "prctl(PR_SET_DUMPABLE, 0) refused: {e}; a seccomp profile may block prctl: allow it for breakglassd"
            )),
        }
    }

    fn has_ipc_lock() -> bool {
        capabilities(None)
            .map(|c| c.effective.contains(CapabilitySet::IPC_LOCK))
            .unwrap_or(false)
    }

    fn show(limit: Option<u64>) -> String {
        limit.map_or_else(|| "unlimited".into(), |l| format!("{l} bytes"))
    }

    fn lock_memory() -> Step {
        let cap = has_ipc_lock();
        let mut lim = getrlimit(Resource::Memlock);
        if !cap && lim.current.is_some() && lim.maximum.is_none() {
            // Raising the soft limit up to the hard one needs no privilege.
            let raised = Rlimit {
                current: None,
                maximum: None,
            };
            if setrlimit(Resource::Memlock, raised).is_ok() {
                lim = getrlimit(Resource::Memlock);
            }
        }
        if !cap && lim.current.is_some() {
            return Step::Skipped(format!(
                "RLIMIT_MEMLOCK is {} (hard {}) and the process lacks CAP_IPC_LOCK; \
                 locking all memory under a finite limit would make later allocations fail, so nothing is locked \
                 and secrets could reach swap; set LimitMEMLOCK=infinity or AmbientCapabilities=CAP_IPC_LOCK \
                 in the systemd unit (containers: --ulimit memlock=-1 or --cap-add IPC_LOCK), or disable swap",
                show(lim.current),
                show(lim.maximum)
            ));
        }
        let why = if cap {
            "CAP_IPC_LOCK"
        } else {
            "RLIMIT_MEMLOCK unlimited"
        };
        let all = MlockAllFlags::CURRENT | MlockAllFlags::FUTURE;
        match mlockall(all | MlockAllFlags::ONFAULT) {
            Ok(()) => Step::Done(format!(
                "mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) with {why}"
            )),
            // EINVAL: a kernel before 4.4 that does not know MCL_ONFAULT.
            Err(rustix::io::Errno::INVAL) => match mlockall(all) {
                Ok(()) => Step::Done(format!("mlockall(MCL_CURRENT | MCL_FUTURE) with {why}")),
                Err(e) => Step::Failed(format!(
                    "mlockall refused: {e}; secrets could reach swap: disable swap on this host"
                )),
            },
            Err(e) => Step::Failed(format!(
                "mlockall refused: {e}; secrets could reach swap: check LimitMEMLOCK and CAP_IPC_LOCK, or disable swap"
            )),
        }
    }

    /// Host settings that weaken the steps above and that only an operator can change.
    fn notes() -> Vec<String> {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
        let mut notes = Vec::new();
        if let (Ok(suid), Ok(pattern)) = (
            read("/proc/sys/fs/suid_dumpable"),
            read("/proc/sys/kernel/core_pattern"),
        ) {
            if suid == "2" && pattern.starts_with('|') {
                notes.push(format!(
                    "fs.suid_dumpable = 2 and core_pattern is the pipe `{pattern}`: on a crash the kernel still hands \
                     this process's memory to that root helper, which may ignore RLIMIT_CORE = 0; \
                     set fs.suid_dumpable = 0 on this host"
                ));
            }
        }
        notes
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::{HardeningReport, Step};

    pub(super) fn harden() -> HardeningReport {
        let skip = || Step::Skipped("not implemented on this operating system".into());
        HardeningReport {
            core_limit: skip(),
            not_dumpable: skip(),
            memory_locked: skip(),
            notes: vec![
                "memory hardening is Linux-only: run breakglassd on Linux in production".into(),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_each_step_and_completeness() {
        let r = HardeningReport {
            core_limit: Step::Done("a".into()),
            not_dumpable: Step::Done("b".into()),
            memory_locked: Step::Skipped("no CAP_IPC_LOCK".into()),
            notes: Vec::new(),
        };
        assert!(!r.complete());
        let s = r.to_string();
        assert!(s.contains("core dumps: ok (a)"), "{s}");
        assert!(s.contains("memory lock: skipped (no CAP_IPC_LOCK)"), "{s}");
        let full = HardeningReport {
            memory_locked: Step::Done("c".into()),
            ..r
        };
        assert!(full.complete());
    }
}
