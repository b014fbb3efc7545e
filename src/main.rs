//! The `prixfixe` command: argument parsing only; all work happens in the library.

mod cli;

fn main() -> std::process::ExitCode {
    quiet_on_closed_pipe();
    keep_freed_memory();
    prixfixe::weights::install_panic_hook();
    prixfixe::output::clean_up_on_interrupt();
    cli::main()
}

/// `prixfixe grid list | head` closes our stdout early: end quietly, as Unix tools do, rather
/// than panic in `println!` (Rust ignores SIGPIPE by default).
fn quiet_on_closed_pipe() {
    // SAFETY: restoring a signal's default disposition at start-up, before any thread runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Training allocates and frees buffers of megabytes at every step. glibc serves those with
/// fresh `mmap`s and returns them on free, so each step pays page faults and kernel zeroing
/// (~7% of a DREAM-CNN training step in perf). Keeping freed memory in the heap avoids that;
/// the peak resident size is what the largest step needs either way.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
