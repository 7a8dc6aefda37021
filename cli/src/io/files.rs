//! Opening the files named on the command line: [`read_input`] and [`write_output`], used by
//! every command, so that every file argument takes `-` (standard input or output), a
//! directory is a clear error, and no input is read past [`MAX_INPUT_BYTES`]; and
//! [`files_under`], the one directory walk (`bench`, `remat`).

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use crate::Failure;
use crate::output;

/// The most bytes read from one input file or from standard input: 4 GiB. Larger inputs are
/// an error rather than an unbounded allocation; the largest real PyTorch snapshots we have
/// seen are a few hundred MiB.
pub const MAX_INPUT_BYTES: u64 = 4 << 30;

/// The name standard input is reported under.
pub const STDIN_NAME: &str = "<stdin>";

/// True when `path` is `-`, standard input or output.
pub fn is_std(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Reads the whole input `path`, or standard input when it is `-`. Returns the name to report
/// the input under (the path as given, or [`STDIN_NAME`]) and its bytes.
///
/// # Errors
/// [`Failure::Input`]: the file cannot be opened or read, is a directory, or is larger than
/// [`MAX_INPUT_BYTES`]; for `-`, standard input is a terminal ("pipe a file in") or empty.
pub fn read_input(path: &Path) -> Result<(String, Vec<u8>), Failure> {
    read_input_limited(path, MAX_INPUT_BYTES)
}

/// [`read_input`] with another size limit (for tests).
///
/// # Errors
/// As [`read_input`].
pub fn read_input_limited(path: &Path, limit: u64) -> Result<(String, Vec<u8>), Failure> {
    if is_std(path) {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Err(Failure::Input(format!(
                "{STDIN_NAME}: reading from a terminal; pipe a file in (`memplan ... - < FILE`) \
                 or name the file"
            )));
        }
        let data = read_limited(STDIN_NAME, stdin.lock(), limit)?;
        if data.is_empty() {
            return Err(Failure::Input(format!(
                "{STDIN_NAME}: nothing on standard input (`-` reads the input from a pipe)"
            )));
        }
        return Ok((STDIN_NAME.to_owned(), data));
    }
    let name = path.display().to_string();
    if path.is_dir() {
        return Err(Failure::Input(format!(
            "{name}: is a directory; give a file"
        )));
    }
    let file = File::open(path).map_err(|e| Failure::Input(format!("{name}: cannot read: {e}")))?;
    let data = read_limited(&name, file, limit)?;
    Ok((name, data))
}

/// Reads all of `r`, failing past `limit` bytes.
fn read_limited(name: &str, r: impl Read, limit: u64) -> Result<Vec<u8>, Failure> {
    let mut data = Vec::new();
    r.take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| Failure::Input(format!("{name}: cannot read: {e}")))?;
    if data.len() as u64 > limit {
        return Err(Failure::Input(format!(
            "{name}: larger than {limit} bytes, the most memplan reads from one input"
        )));
    }
    Ok(data)
}

/// Writes `bytes` to the file `path`, or to standard output when it is `-`.
///
/// # Errors
/// [`Failure::Input`] when the file cannot be written (or is a directory);
/// [`Failure::Closed`] when standard output was closed.
pub fn write_output(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), Failure> {
    if is_std(path) {
        return output::out(bytes);
    }
    if path.is_dir() {
        return Err(Failure::Input(format!(
            "{}: is a directory; give a file name",
            path.display()
        )));
    }
    std::fs::write(path, bytes)
        .map_err(|e| Failure::Input(format!("{}: cannot write: {e}", path.display())))
}

/// Checks that at most one of `outputs` (option name, path) is `-`, and says whether one is:
/// then the command's report goes to standard error, leaving standard output to that file.
///
/// # Errors
/// [`Failure::Input`] when two outputs are `-`.
pub fn stdout_taken(outputs: &[(&str, Option<&Path>)]) -> Result<bool, Failure> {
    let dashes: Vec<&str> = outputs
        .iter()
        .filter(|(_, p)| p.is_some_and(is_std))
        .map(|(name, _)| *name)
        .collect();
    match dashes.as_slice() {
        [] => Ok(false),
        [_] => Ok(true),
        many => Err(Failure::Input(format!(
            "{} all name `-`: only one output can go to standard output",
            many.join(", ")
        ))),
    }
}

/// What [`files_under`] found.
#[derive(Debug, Default)]
pub struct Walk {
    /// The files, sorted by path, each with its name relative to the root walked.
    pub files: Vec<(PathBuf, String)>,
    /// Entries skipped, each with why (a link loop, an unreadable folder).
    pub skipped: Vec<String>,
}

/// The files under `root` whose extension is `ext` (ASCII case-insensitive), sorted by path,
/// each with its name relative to `root` (the path itself when `root` is a file, which is
/// returned whatever its extension). `recursive: false` looks only at `root`'s own entries.
///
/// The walk is `walkdir`'s: symbolic links are followed, and a link back to a folder being
/// walked (a loop) is skipped and reported in the second list rather than walked forever;
/// unreadable entries are reported there too.
///
/// # Errors
/// [`Failure::Input`] when `root` does not exist.
pub fn files_under(root: &Path, ext: &str, recursive: bool) -> Result<Walk, Failure> {
    if is_std(root) {
        return Ok(Walk {
            files: vec![(root.to_path_buf(), STDIN_NAME.to_owned())],
            skipped: Vec::new(),
        });
    }
    if !root.exists() {
        return Err(Failure::Input(format!(
            "{}: no such file or directory",
            root.display()
        )));
    }
    if !root.is_dir() {
        return Ok(Walk {
            files: vec![(root.to_path_buf(), root.display().to_string())],
            skipped: Vec::new(),
        });
    }
    let mut walk = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name();
    if !recursive {
        walk = walk.max_depth(1);
    }
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for entry in walk {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                let p = e.path();
                if p.extension()
                    .is_some_and(|x| x.to_string_lossy().eq_ignore_ascii_case(ext))
                {
                    let name = p.strip_prefix(root).unwrap_or(p).display().to_string();
                    files.push((p.to_path_buf(), name));
                }
            }
            Ok(_) => {}
            Err(e) => problems.push(match e.loop_ancestor() {
                Some(a) => format!(
                    "{}: a link back to {} (a loop), not followed",
                    e.path()
                        .map_or_else(String::new, |p| p.display().to_string()),
                    a.display()
                ),
                None => e.to_string(),
            }),
        }
    }
    files.sort();
    Ok(Walk {
        files,
        skipped: problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("memplan-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn message(f: Failure) -> String {
        match f {
            Failure::Input(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn directories_and_missing_files_are_errors() {
        let d = temp_dir("dirs");
        let m = message(read_input(&d).unwrap_err());
        assert!(m.contains("is a directory"), "{m}");
        let m = message(read_input(&d.join("nope")).unwrap_err());
        assert!(m.contains("cannot read"), "{m}");
        let m = message(write_output(&d, b"x").unwrap_err());
        assert!(m.contains("is a directory"), "{m}");
    }

    #[test]
    fn the_size_limit_is_enforced() {
        let d = temp_dir("limit");
        let f = d.join("f");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_input_limited(&f, 5).unwrap().1, b"12345");
        let m = message(read_input_limited(&f, 4).unwrap_err());
        assert!(m.contains("larger than 4 bytes"), "{m}");
    }

    #[test]
    fn two_outputs_on_stdout_are_refused() {
        let dash = Path::new("-");
        let file = Path::new("x.svg");
        assert!(!stdout_taken(&[("--out", Some(file)), ("--svg", None)]).unwrap());
        assert!(stdout_taken(&[("--out", Some(dash)), ("--svg", Some(file))]).unwrap());
        let m = message(stdout_taken(&[("--out", Some(dash)), ("--svg", Some(dash))]).unwrap_err());
        assert!(m.contains("--out, --svg"), "{m}");
    }

    #[test]
    fn walks_are_sorted_and_survive_link_loops() {
        let d = temp_dir("walk");
        std::fs::create_dir_all(d.join("b/c")).unwrap();
        for f in ["b/c/z.csv", "b/a.CSV", "a.csv", "x.txt"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(&d, d.join("b/c/loop")).unwrap();
        let Walk {
            files,
            skipped: problems,
        } = files_under(&d, "csv", true).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.1.as_str()).collect();
        assert_eq!(names, ["a.csv", "b/a.CSV", "b/c/z.csv"]);
        #[cfg(unix)]
        assert!(problems.iter().any(|p| p.contains("loop")), "{problems:?}");
        let files = files_under(&d, "csv", false).unwrap().files;
        assert_eq!(files.len(), 1);
        assert!(files_under(&d.join("none"), "csv", true).is_err());
    }
}
