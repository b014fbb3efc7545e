//! Log lines: `tracing` events to stderr at the level `-v`/`-q` set, written plainly
//! (`warning: …`, `error: …`, info as it is). Results go to stdout or to files, never here.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

static QUIET: AtomicBool = AtomicBool::new(false);

/// Whether `-q` was given: no progress bars, no info lines.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// The level `-v` (debug; `-vv` trace) and `-q` (warnings and errors; `-qq` errors) leave:
/// info by default.
pub fn level(verbose: u8, quiet: u8) -> Level {
    match (verbose, quiet) {
        (0, 0) => Level::INFO,
        (1, 0) => Level::DEBUG,
        (_, 0) => Level::TRACE,
        (_, 1) => Level::WARN,
        _ => Level::ERROR,
    }
}

/// Send log lines to stderr from now on.
pub fn init(verbose: u8, quiet: u8) {
    QUIET.store(quiet > 0, Ordering::Relaxed);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level(verbose, quiet))
        .with_writer(std::io::stderr)
        .event_format(Plain)
        .try_init();
}

/// A line per event, prefixed by its level except for info.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        match *event.metadata().level() {
            Level::ERROR => write!(w, "error: ")?,
            Level::WARN => write!(w, "warning: ")?,
            Level::INFO => {}
            Level::DEBUG => write!(w, "debug: ")?,
            Level::TRACE => write!(w, "trace: ")?,
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}
