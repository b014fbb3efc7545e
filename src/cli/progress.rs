//! The one place the CLI draws progress: bars for counted work, a spinner for streams, and the
//! training observer. Hidden with `--quiet`; everything goes to stderr.

use indicatif::{ProgressBar, ProgressStyle};
use prixfixe::train::{EpochRecord, TrainObserver};

/// A bar over `len` items: `what [=====>   ] pos/len · rate · ETA`; hidden when `quiet`.
pub fn bar(quiet: bool, len: usize, what: &str) -> ProgressBar {
    styled(
        quiet,
        ProgressBar::new(len as u64),
        &format!("{what} [{{bar:30}}] {{pos}}/{{len}} · {{per_sec}} · ETA {{eta}}"),
    )
}

/// A counter for a stream of unknown length: `what N unit · rate`; hidden when `quiet`.
pub fn spinner(quiet: bool, what: &str, unit: &str) -> ProgressBar {
    styled(
        quiet,
        ProgressBar::new_spinner(),
        &format!("{what} {{pos}} {unit} · {{per_sec}}"),
    )
}

/// `seconds` for people: `45 s`, `12 min`, `3.4 h`.
pub fn duration(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else if seconds < 5400.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

fn styled(quiet: bool, b: ProgressBar, template: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    b.set_style(
        ProgressStyle::with_template(template)
            .expect("template")
            .progress_chars("=> "),
    );
    b
}

/// Training progress: a bar per epoch (batches, running loss, rate) and one line per finished
/// epoch, on stderr; with `quiet`, no bars and the lines on stdout.
pub struct TrainProgress {
    quiet: bool,
    bar: ProgressBar,
}

impl TrainProgress {
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bar: ProgressBar::hidden(),
        }
    }
}

impl TrainObserver for TrainProgress {
    fn epoch_started(&mut self, epoch: usize, epochs: usize, batches: usize) {
        self.bar = styled(
            self.quiet,
            ProgressBar::new(batches as u64),
            &format!(
                "epoch {epoch}/{epochs} [{{bar:30}}] {{pos}}/{{len}} batches · {{msg}} · ETA {{eta}}"
            ),
        );
    }

    fn batch_done(&mut self, mean_loss: f64, seqs_per_sec: f64) {
        self.bar.inc(1);
        self.bar
            .set_message(format!("loss {mean_loss:.4} · {seqs_per_sec:.0} seq/s"));
    }

    fn epoch_done(&mut self, r: &EpochRecord, epochs: usize) {
        self.bar.finish_and_clear();
        let fmt = |v: Option<f64>| v.map_or("undefined".into(), |x| format!("{x:.4}"));
        let line = match (r.val_loss, r.val_jsd) {
            (Some(loss), jsd) => format!(
                "epoch {:>3}/{}  loss {:.4}  val loss {loss:.4}  log-counts Pearson {}  MSE {:.4}  profile median JSD {}  {:.0} seq/s{}",
                r.epoch,
                epochs,
                r.train_loss,
                fmt(r.val_pearson),
                r.val_mse,
                fmt(jsd),
                r.seqs_per_sec,
                if r.best { "  (best)" } else { "" }
            ),
            _ => format!(
                "epoch {:>3}/{}  loss {:.4}  val MSE {:.4}  Pearson {}  Spearman {}  {:.0} seq/s{}",
                r.epoch,
                epochs,
                r.train_loss,
                r.val_mse,
                fmt(r.val_pearson),
                fmt(r.val_spearman),
                r.seqs_per_sec,
                if r.best { "  (best)" } else { "" }
            ),
        };
        if self.quiet {
            println!("{line}");
        } else {
            tracing::info!("{line}");
        }
    }
}
