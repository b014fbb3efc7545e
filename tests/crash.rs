//! Crash safety, proven: a training run killed at any point — at every step of an epoch's
//! commit (fault injection) and at increasing delays (a real SIGKILL) — resumes to exactly the
//! bytes of a run that was never interrupted. A run directory in use is locked.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn setup(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(fixture("yeast_demo_train.txt")).unwrap();
    let train = dir.join("train.txt");
    std::fs::write(
        &train,
        text.lines().take(160).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let config = dir.join("run.toml");
    std::fs::write(&config, common::tiny_train_toml(&train, 3)).unwrap();
    config
}

fn train(config: &Path, out: &Path, resume: bool, crash_at: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prixfixe"));
    cmd.args(["train", "--config", config.to_str().unwrap(), "--out"])
        .arg(out)
        .arg("--quiet");
    if resume {
        cmd.arg("--resume");
    }
    cmd.env_remove("PRIXFIXE_CRASH_AT");
    if let Some(p) = crash_at {
        cmd.env("PRIXFIXE_CRASH_AT", p);
    }
    cmd.output().unwrap()
}

/// What must not differ: weights bit for bit, every log line but wall-clock figures.
fn fingerprint(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let strip = |text: String| -> Vec<u8> {
        text.lines()
            .map(|l| {
                let Ok(mut v) = serde_json::from_str::<serde_json::Value>(l) else {
                    return l.to_string();
                };
                if let Some(o) = v.as_object_mut() {
                    o.remove("seconds");
                    o.remove("seqs_per_sec");
                }
                v.to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes()
    };
    let mut out = Vec::new();
    for f in [
        "best.safetensors",
        "last.safetensors",
        "last_optimizer.safetensors",
        "batches.csv",
    ] {
        out.push((
            f.to_string(),
            std::fs::read(dir.join(f)).unwrap_or_default(),
        ));
    }
    let epochs = std::fs::read_to_string(dir.join("epochs.jsonl")).unwrap_or_default();
    out.push(("epochs.jsonl".into(), strip(epochs)));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap()).unwrap();
    let mut state = state;
    // The length of epochs.jsonl depends on the wall-clock figures' digits.
    state.as_object_mut().unwrap().remove("epochs_bytes");
    for r in state["history"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("seconds");
        r.as_object_mut().unwrap().remove("seqs_per_sec");
    }
    out.push(("state.json".into(), state.to_string().into_bytes()));
    out
}

fn assert_same(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)], what: &str) {
    for ((name, x), (_, y)) in a.iter().zip(b) {
        assert!(x == y, "{what}: {name} differs from the uninterrupted run");
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_kill_at_any_step_of_a_commit_resumes_to_the_uninterrupted_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let whole = tmp.path().join("whole");
    let o = train(&config, &whole, false, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = fingerprint(&whole);
    let points = [
        "batches-logged",
        "epoch-logged",
        "checkpoint-dir",
        "model-written",
        "optimizer-written",
        "checkpoint-synced",
        "state-committed",
        "views-linked",
        "pruned",
    ];
    for point in points {
        // The first epoch's commit, and the second's (which replaces a best or a last).
        for hit in [1, 2] {
            let at = format!("{point}:{hit}");
            let out = tmp.path().join(format!("run-{point}-{hit}"));
            let o = train(&config, &out, false, Some(&at));
            assert!(!o.status.success(), "{at}: the fault was not injected");
            let o = train(&config, &out, true, None);
            assert!(
                o.status.success(),
                "{at}: resume failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_same(&want, &fingerprint(&out), &at);
            assert!(leftovers(&out).is_empty(), "{at}: {:?}", leftovers(&out));
        }
    }
}

#[test]
fn sigkill_at_increasing_delays_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let whole = tmp.path().join("whole");
    let started = Instant::now();
    let o = train(&config, &whole, false, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let total = started.elapsed();
    let want = fingerprint(&whole);
    for k in 1..=6 {
        let out = tmp.path().join(format!("killed-{k}"));
        let delay = total.mul_f64(k as f64 / 7.0);
        let mut child = Command::new(env!("CARGO_BIN_EXE_prixfixe"))
            .args(["train", "--config", config.to_str().unwrap(), "--out"])
            .arg(&out)
            .arg("--quiet")
            .env_remove("PRIXFIXE_CRASH_AT")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Killed before its config was written, a run is simply started again.
        let resume = out.join("config.toml").exists();
        let o = train(&config, &out, resume, None);
        assert!(
            o.status.success(),
            "kill after {delay:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_same(&want, &fingerprint(&out), &format!("kill after {delay:?}"));
    }
}

#[test]
fn a_run_directory_in_use_is_refused_with_the_holders_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let out = tmp.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_prixfixe"))
        .args(["train", "--config", config.to_str().unwrap(), "--out"])
        .arg(&out)
        .args(["--quiet", "--epochs", "50"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.join("config.toml").exists() {
        assert!(Instant::now() < deadline, "the first run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    for extra in [
        &["--epochs", "50"][..],
        &["--force"],
        &["--resume", "--epochs", "50"],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_prixfixe"))
            .args(["train", "--config", config.to_str().unwrap(), "--out"])
            .arg(&out)
            .arg("--quiet")
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {err}");
        assert!(
            err.contains("in use by another prixfixe process")
                && err.contains(&format!("pid {}", child.id())),
            "{extra:?}: {err}"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The kill released the lock.
    assert!(prixfixe::train::run_dir::DirLock::acquire(&out).is_ok());
}
