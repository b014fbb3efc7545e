//! The one place the CLI draws progress: bars for counted work, a spinner for streams, and the
//! training observer. Hidden with `--quiet`; everything goes to stderr.

use indicatif::{ProgressBar, ProgressStyle};
use prixfixe::train::{EpochRecord, TrainObserver};

/// A bar over `len` items: `what [=====>   ] pos/len · rate · ETA`; hidden under `-q`.
pub fn bar(len: usize, what: &str) -> ProgressBar {
    styled(
        ProgressBar::new(len as u64),
        &format!("{what} [{{bar:30}}] {{pos}}/{{len}} · {{per_sec}} · ETA {{eta}}"),
    )
}

/// A counter for a stream of unknown length: `what N unit · rate`; hidden under `-q`.
pub fn spinner(what: &str, unit: &str) -> ProgressBar {
    styled(
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

fn styled(b: ProgressBar, template: &str) -> ProgressBar {
    if super::log::quiet() {
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
    /// When the first epoch this process runs started (a resumed run starts later).
    started: Option<std::time::Instant>,
    estimated: bool,
}

impl TrainProgress {
    pub fn new() -> Self {
        Self {
            quiet: super::log::quiet(),
            bar: ProgressBar::hidden(),
            started: None,
            estimated: false,
        }
    }
}

/// After the first epoch this process trained, which took `seconds`: the time the `epochs −
/// epoch` left would take at that rate (an upper bound where early stopping may end sooner).
pub fn training_estimate(seconds: f64, epoch: usize, epochs: usize) -> Option<String> {
    let left = epochs.checked_sub(epoch).filter(|&n| n > 0)?;
    Some(format!(
        "{left} more epoch(s), about {} at {} per epoch (sooner where early stopping ends the run)",
        duration(seconds * left as f64),
        duration(seconds)
    ))
}

impl TrainObserver for TrainProgress {
    fn epoch_started(&mut self, epoch: usize, epochs: usize, batches: usize) {
        self.started.get_or_insert_with(std::time::Instant::now);
        self.bar = styled(
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
        if !self.estimated
            && let Some(t0) = self.started
        {
            self.estimated = true;
            if let Some(e) = training_estimate(t0.elapsed().as_secs_f64(), r.epoch, epochs) {
                tracing::info!("{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_estimate_counts_the_epochs_left() {
        let e = super::training_estimate(120.0, 1, 80).unwrap();
        assert!(
            e.starts_with("79 more epoch(s), about 2.6 h at 2 min per epoch"),
            "{e}"
        );
        assert_eq!(super::training_estimate(5.0, 3, 3), None);
        assert_eq!(super::training_estimate(5.0, 4, 3), None);
    }
}
