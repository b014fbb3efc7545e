//! Where results leave: every file prixfixe writes goes through here.
//!
//! A result is written to a temporary file in its own directory (`.NAME.tmp-PID`), synced, and
//! renamed over its path only once it is complete. A reader never sees a partial file, a kill
//! or a full disk never leaves a truncated file that looks complete, and a run that fails
//! never destroys the file that was there before. A failed write removes its temporary file;
//! temporaries of a killed process are hidden and are cleared by the next run on a directory.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Temporary files being written by this process, removed if it is interrupted.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Output directories this process created, removed if it is interrupted while they are
/// still empty.
static CREATED_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn created_dirs() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    CREATED_DIRS.lock().unwrap_or_else(|e| e.into_inner())
}

/// On Ctrl-C, SIGTERM or SIGHUP: remove the temporary files of unfinished outputs and exit
/// with code 130, so that an interrupted command leaves nothing behind. (A training run is
/// resumable from its last committed epoch whatever stops it; SIGKILL cannot be caught, and
/// its temporaries, hidden, are cleared by the next run in that directory.)
pub fn clean_up_on_interrupt() {
    let _ = ctrlc::set_handler(|| {
        for p in live().drain(..) {
            let _ = fs::remove_file(p);
        }
        // Innermost first; `remove_dir` leaves any directory that holds something.
        for d in created_dirs().drain(..).rev() {
            let _ = fs::remove_dir(d);
        }
        eprintln!("interrupted: unfinished outputs removed");
        std::process::exit(130);
    });
}

/// The temporary name of a file being written to `path`.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Whether a file name is one of [`temporary_path`]'s.
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Write `bytes` to `path` and sync them to disk (no rename: for files inside a directory
/// that is committed as a whole).
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Sync a directory, so that renames and new files in it survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(d)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(d, e))
}

/// Write a whole file atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.commit()
}

/// Files that appear together or not at all (a command's figures): each is written to its
/// temporary file when put, and all are renamed into place by [`Staged::commit`]. Dropped
/// without a commit (an error on the way) or interrupted, none appears and the files that were
/// there stay as they were.
#[derive(Default)]
pub struct Staged {
    /// (temporary, final) paths.
    files: Vec<(PathBuf, PathBuf)>,
}

impl Staged {
    /// Write `bytes` for `path` (its directory must exist), to appear on commit.
    pub fn put(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = temporary_path(path);
        live().push(tmp.clone());
        self.files.push((tmp.clone(), path.to_path_buf()));
        write_synced(&tmp, bytes)
    }

    /// Rename every file into place.
    pub fn commit(mut self) -> Result<()> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (tmp, path) in std::mem::take(&mut self.files) {
            fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
            live().retain(|p| p != &tmp);
            if let Some(d) = path.parent().filter(|d| !dirs.iter().any(|x| x == d)) {
                dirs.push(d.to_path_buf());
            }
        }
        dirs.iter().try_for_each(|d| sync_dir(d))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (tmp, _) in self.files.drain(..) {
            let _ = fs::remove_file(&tmp);
            live().retain(|p| p != &tmp);
        }
    }
}

/// A file being written: bytes go to a temporary file beside `path`; [`AtomicFile::commit`]
/// syncs it and renames it over `path`. Dropped without a commit (an error on the way), the
/// temporary file is removed and `path` is left as it was.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Start writing `path`. Its directory must exist.
    pub fn create(path: &Path) -> Result<Self> {
        let tmp = temporary_path(path);
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        live().push(tmp.clone());
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            out: Some(BufWriter::with_capacity(1 << 16, file)),
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write all of `bytes`; an error names the file.
    pub fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.write_all(bytes).map_err(|e| Error::io(&self.path, e))
    }

    /// Sync the data and rename the file into place.
    pub fn commit(mut self) -> Result<()> {
        let out = self.out.take().expect("not committed twice");
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        live().retain(|p| p != &self.tmp);
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.as_mut().expect("open").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.as_mut().expect("open").flush()
    }
}

impl std::io::Seek for AtomicFile {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.out.as_mut().expect("open").seek(pos)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
            live().retain(|p| p != &self.tmp);
        }
    }
}

/// Refuse an output path that names one of the inputs (the same file, by device and inode,
/// or the same path when the output does not exist yet).
pub fn refuse_overwriting_input(output: &Path, inputs: &[&Path]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let out_meta = fs::metadata(output).ok();
    for input in inputs {
        let same = match (&out_meta, fs::metadata(input).ok()) {
            (Some(o), Some(i)) => o.dev() == i.dev() && o.ino() == i.ino(),
            _ => false,
        };
        if same {
            return Err(Error::Config(format!(
                "the output {} is the input {}: refusing to overwrite the input; name another \
                 output file",
                output.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// Create an output directory; the caller removes it again with [`remove_if_created`] when
/// the work fails, so that a failure leaves no empty directory behind.
pub fn create_dir(dir: &Path) -> Result<bool> {
    let existed = dir.exists();
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if !existed {
        // An interrupt before anything lands in it removes it too.
        created_dirs().push(dir.to_path_buf());
    }
    Ok(!existed)
}

/// Remove `dir` if this process created it and it is empty.
pub fn remove_if_created(dir: &Path, created: bool) {
    if created {
        let _ = fs::remove_dir(dir);
    }
}

/// A `.npy` (format 1.0) header for a little-endian `f32` array of `shape`, C order, padded to
/// 128 bytes.
pub fn npy_f32_header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}{}), }}",
        dims.join(", "),
        if shape.len() == 1 { "," } else { "" }
    );
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    let pad = 128 - 10 - dict.len() - 1;
    h.extend_from_slice(&(118u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.extend(std::iter::repeat_n(b' ', pad));
    h.push(b'\n');
    h
}

/// A `.npz` file (what `numpy.savez` writes) holding one little-endian `f32` array `arr_0`
/// of a shape known up front, written as it comes, without compression: `np.load(f)["arr_0"]`
/// and TF-MoDISco's `-s`/`-a` read it. Atomic like [`AtomicFile`]; [`NpzWriter::commit`]
/// refuses an array short of its shape.
pub struct NpzWriter {
    zip: zip::ZipWriter<AtomicFile>,
    path: PathBuf,
    left: usize,
}

impl NpzWriter {
    /// Start `path` with an array of `shape`.
    pub fn create(path: &Path, shape: &[usize]) -> Result<Self> {
        let zerr = |e: zip::result::ZipError| Error::Other(format!("{}: {e}", path.display()));
        let mut zip = zip::ZipWriter::new(AtomicFile::create(path)?);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        zip.start_file("arr_0.npy", opts).map_err(zerr)?;
        zip.write_all(&npy_f32_header(shape))
            .map_err(|e| Error::io(path, e))?;
        Ok(NpzWriter {
            zip,
            path: path.to_path_buf(),
            left: shape.iter().product(),
        })
    }

    /// Append values, in C order.
    pub fn put(&mut self, values: &[f32]) -> Result<()> {
        if values.len() > self.left {
            return Err(Error::Other(format!(
                "{}: more values than the array's shape holds",
                self.path.display()
            )));
        }
        self.left -= values.len();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.zip
            .write_all(&bytes)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Close the archive and move it into place.
    pub fn commit(self) -> Result<()> {
        if self.left != 0 {
            return Err(Error::Other(format!(
                "{}: {} values short of the array's shape; nothing was written",
                self.path.display(),
                self.left
            )));
        }
        let path = self.path;
        let file = self
            .zip
            .finish()
            .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
        file.commit()
    }
}

/// Read back an `f32` array written by [`NpzWriter`] (or `numpy.savez` with `<f4` C-order
/// arrays): its shape and values.
pub fn read_npz_f32(path: &Path, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
    use std::io::Read;
    let bad = |what: String| Error::Other(format!("{}: {what}", path.display()));
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let mut entry = zip
        .by_name(&format!("{name}.npy"))
        .map_err(|e| bad(format!("no array {name}: {e}")))?;
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad(format!("{name} is not a .npy array")));
    }
    let hlen = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).map_err(|e| bad(e.to_string()))?;
    if !header.contains("'descr': '<f4'") || !header.contains("'fortran_order': False") {
        return Err(bad(format!(
            "{name} is not a C-order float32 array: {header}"
        )));
    }
    let dims = header
        .split("'shape': (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| bad(format!("{name}: no shape in {header}")))?;
    let shape: Vec<usize> = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.parse()
                .map_err(|_| bad(format!("{name}: bad shape {dims}")))
        })
        .collect::<Result<_>>()?;
    let data = &bytes[10 + hlen..];
    if data.len() != 4 * shape.iter().product::<usize>() {
        return Err(bad(format!(
            "{name}: {} bytes for shape {shape:?}",
            data.len()
        )));
    }
    let values = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((shape, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Staged files appear together on commit; dropped uncommitted, none appears, the file
    /// that was there stays, and no temporary is left or still listed for an interrupt.
    #[test]
    fn staged_files_appear_together_or_not_at_all() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.svg"), d.path().join("b.png"));
        fs::write(&a, b"old").unwrap();
        let mut staged = Staged::default();
        staged.put(&a, b"new a").unwrap();
        staged.put(&b, b"new b").unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"old");
        assert!(!b.exists());
        drop(staged);
        assert_eq!(fs::read(&a).unwrap(), b"old");
        assert!(!b.exists());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1, "no temporaries");
        let mut staged = Staged::default();
        staged.put(&a, b"new a").unwrap();
        staged.put(&b, b"new b").unwrap();
        let tmp = temporary_path(&b);
        assert!(
            live().contains(&tmp),
            "removed by an interrupt until committed"
        );
        staged.commit().unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"new a");
        assert_eq!(fs::read(&b).unwrap(), b"new b");
        assert!(!live().contains(&tmp));
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.tsv");
        fs::write(&p, "old\n").unwrap();
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.write_all(b"new, but the run fails").unwrap();
            // dropped without commit
        }
        assert_eq!(fs::read_to_string(&p).unwrap(), "old\n");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new\n").unwrap();
        // Before the commit a reader still sees the old file.
        assert_eq!(fs::read_to_string(&p).unwrap(), "old\n");
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new\n");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.txt");
        fs::write(&p, "x").unwrap();
        let link = d.path().join("link.txt");
        fs::hard_link(&p, &link).unwrap();
        assert!(refuse_overwriting_input(&link, &[&p]).is_err());
        assert!(refuse_overwriting_input(&d.path().join("new.tsv"), &[&p]).is_ok());
    }
}
