//! Reading a problem from CSV, with `FILE:LINE:` error messages.
//!
//! Format: a header naming at least the columns `id`, `lower`, `upper` and `size` (any order;
//! other columns such as `offset` are ignored), then one buffer per line. Ids are strings;
//! `lower`, `upper` and `size` are unsigned 64-bit integers, and the lifetime is half-open
//! `[lower, upper)`. Lines whose first character is `#` are comments and are skipped anywhere
//! in the file (so an id cannot start with `#`); blank lines are skipped too. Fields are
//! trimmed of surrounding whitespace. Line numbers in messages are 1-based physical lines of
//! the file, comments and blank lines included.
//!
//! A file with no buffers (empty, or a header alone) is an error: it is far more likely to be
//! the wrong file than a request to plan nothing.

use memplan_core::{Buffer, Error as CoreError, PlacedBuffer, Problem};

use super::InputError;

/// The four columns every problem file must have.
pub const REQUIRED: [&str; 4] = ["id", "lower", "upper", "size"];

/// Reads the problem in `data`, reporting errors against `file`. Every buffer gets
/// `alignment` (which must be a power of two; the caller checks it).
///
/// # Errors
/// The first thing wrong in the file, with its line.
pub fn parse(file: &str, data: &[u8], alignment: u64) -> Result<Problem, InputError> {
    Ok(parse_columns(file, data, alignment, false)?.0)
}

/// Reads a problem together with the plan in its `offset` column, if it has one (as
/// `memplan plan --out` writes, or IREE's dumps): the placements in file order, or `None`
/// without that column. Alignment 1.
///
/// # Errors
/// As [`parse`], and an `offset` that is not an unsigned 64-bit integer.
pub fn parse_plan(
    file: &str,
    data: &[u8],
) -> Result<(Problem, Option<Vec<PlacedBuffer>>), InputError> {
    let (problem, offsets) = parse_columns(file, data, 1, true)?;
    let placements = offsets.map(|offsets| {
        problem
            .buffers()
            .iter()
            .zip(offsets)
            .map(|(b, offset)| PlacedBuffer {
                id: b.id.clone(),
                lower: b.lower,
                upper: b.upper,
                size: b.size,
                offset,
            })
            .collect()
    });
    Ok((problem, placements))
}

/// [`parse`], also reading the `offset` column when `with_offsets` and the header has one.
fn parse_columns(
    file: &str,
    data: &[u8],
    alignment: u64,
    with_offsets: bool,
) -> Result<(Problem, Option<Vec<u64>>), InputError> {
    let err = |line: Option<u64>, message: String| InputError {
        file: file.to_owned(),
        line,
        message,
        not_a_problem: false,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(data);
    let mut records = reader.records();
    // A record's position is where the previous record ended, before any comment and blank
    // lines, and the reader's line count omits comments; so the line is found from the byte
    // offset, skipping the lines the reader skips.
    let newlines: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect();
    let line_at = |pos: &csv::Position| {
        let mut start = usize::try_from(pos.byte()).unwrap_or(usize::MAX);
        let mut line = newlines.partition_point(|&n| n < start);
        while start < data.len() && line < newlines.len() {
            let text = &data[start..newlines[line]];
            if !(text.is_empty() || text == b"\r" || text[0] == b'#') {
                break;
            }
            start = newlines[line] + 1;
            line += 1;
        }
        line as u64 + 1
    };
    let line_of = |record: &csv::StringRecord| record.position().map_or(0, line_at);
    let csv_error = |e: csv::Error| csv_error(file, &e, &line_at);

    // The header.
    let header = match records.next() {
        None => {
            return Err(err(
                None,
                "empty file: expected a header with columns id,lower,upper,size".into(),
            ));
        }
        Some(r) => r.map_err(csv_error)?,
    };
    let header_line = line_of(&header);
    let mut columns = [usize::MAX; 4];
    for (i, name) in header.iter().enumerate() {
        if let Some(k) = REQUIRED.iter().position(|r| *r == name) {
            if columns[k] != usize::MAX {
                return Err(err(
                    Some(header_line),
                    format!("column `{name}` appears twice in the header"),
                ));
            }
            columns[k] = i;
        }
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .zip(columns)
        .filter(|(_, c)| *c == usize::MAX)
        .map(|(r, _)| *r)
        .collect();
    if !missing.is_empty() {
        let mut e = err(
            Some(header_line),
            format!(
                "header is missing column{} {}: expected a header naming id,lower,upper,size \
                 (any order), found {:?}",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                header.iter().collect::<Vec<_>>().join(",")
            ),
        );
        e.not_a_problem = true;
        return Err(e);
    }
    let [c_id, c_lower, c_upper, c_size] = columns;
    let c_offset = with_offsets
        .then(|| header.iter().position(|name| name == "offset"))
        .flatten();
    let mut offsets = c_offset.map(|_| Vec::new());

    // The buffers.
    let mut problem = Problem::new();
    // `lines[i]` is the line of `problem.buffers()[i]`, to say where a duplicate id first was.
    let mut lines = Vec::new();
    for record in records {
        let record = record.map_err(csv_error)?;
        let line = line_of(&record);
        if record.len() != header.len() {
            return Err(err(
                Some(line),
                format!(
                    "expected {} fields (as in the header), found {}",
                    header.len(),
                    record.len()
                ),
            ));
        }
        let id = &record[c_id];
        if id.is_empty() {
            return Err(err(Some(line), "empty id".into()));
        }
        let lower = number(&record[c_lower], "lower").map_err(|m| err(Some(line), m))?;
        let upper = number(&record[c_upper], "upper").map_err(|m| err(Some(line), m))?;
        let size = number(&record[c_size], "size").map_err(|m| err(Some(line), m))?;
        if let (Some(c), Some(offsets)) = (c_offset, offsets.as_mut()) {
            offsets.push(number(&record[c], "offset").map_err(|m| err(Some(line), m))?);
        }
        let buffer = Buffer::new(id, lower, upper, size).with_alignment(alignment);
        if let Err(e) = problem.push(buffer) {
            let message = match e {
                CoreError::ZeroSize { .. } => "size must be positive, got 0".to_owned(),
                CoreError::EmptyLifetime { lower, upper, .. } => format!(
                    "empty lifetime: upper ({upper}) must be greater than lower ({lower}); \
                     lifetimes are half-open [lower, upper)"
                ),
                CoreError::DuplicateId { id } => {
                    let first = problem.index_of(&id).map(|i| lines[i]);
                    match first {
                        Some(first) => format!("duplicate id {id:?} (first on line {first})"),
                        None => format!("duplicate id {id:?}"),
                    }
                }
                CoreError::Overflow { id } => format!(
                    "buffer {id:?}: the total size of all buffers so far (with alignment \
                     padding) does not fit in an unsigned 64-bit integer"
                ),
                CoreError::BadAlignment { alignment, .. } => {
                    format!("alignment {alignment} is not a power of two")
                }
                other => other.to_string(),
            };
            return Err(err(Some(line), message));
        }
        lines.push(line);
    }
    if problem.is_empty() {
        return Err(err(
            Some(header_line),
            "no buffers: the file has a header but no data lines".into(),
        ));
    }
    Ok((problem, offsets))
}

/// Parses one unsigned integer field named `what`, with a message fit for a user.
fn number(field: &str, what: &str) -> Result<u64, String> {
    use std::num::IntErrorKind;
    match field.parse::<u64>() {
        Ok(v) => Ok(v),
        Err(e) => Err(match e.kind() {
            IntErrorKind::Empty => format!("missing value for `{what}`"),
            IntErrorKind::PosOverflow => format!(
                "`{what}` value {field} does not fit in an unsigned 64-bit integer (max {})",
                u64::MAX
            ),
            _ if field.starts_with('-')
                && field.len() > 1
                && field[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                format!("`{what}` must not be negative, got {field}")
            }
            _ => format!("`{what}` is not a non-negative integer: {field:?}"),
        }),
    }
}

/// A message for an error from the CSV reader itself (bad UTF-8, I/O).
fn csv_error(file: &str, e: &csv::Error, line_at: &dyn Fn(&csv::Position) -> u64) -> InputError {
    let (line, message) = match e.kind() {
        csv::ErrorKind::Utf8 { pos, err } => (
            pos.as_ref().map(line_at),
            format!("invalid UTF-8 in field {}", err.field() + 1),
        ),
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => (
            pos.as_ref().map(line_at),
            format!("expected {expected_len} fields, found {len}"),
        ),
        csv::ErrorKind::Io(io) => (None, format!("cannot read: {io}")),
        _ => (e.position().map(line_at), e.to_string()),
    };
    InputError {
        file: file.to_owned(),
        line,
        message,
        not_a_problem: false,
    }
}

/// Capacity named by a MiniMalloc "challenging" benchmark file: `.../minimalloc/challenging/
/// NAME.CAPACITY.csv` gives `Some(CAPACITY)`.
pub fn challenging_capacity(path: &std::path::Path) -> Option<u64> {
    let parent = path.parent()?;
    if parent.file_name()? != "challenging" || parent.parent()?.file_name()? != "minimalloc" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    let (_, capacity) = stem.rsplit_once('.')?;
    capacity.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(data: &str) -> String {
        parse("f.csv", data.as_bytes(), 1).unwrap_err().to_string()
    }

    #[test]
    fn comments_count_as_lines() {
        let e = msg("# c\nid,lower,upper,size\n# c\na,0,1,x\n");
        assert!(e.starts_with("f.csv:4: "), "{e}");
        let ok = parse(
            "f.csv",
            b"# c\nsize,upper,id,lower\n4,2,a,0\n# c\n4,3,b,1\n",
            1,
        )
        .unwrap();
        assert_eq!(ok.buffers()[1].lower, 1);
        let e = msg("# c\nid,lower,upper,size\na,0,1,4\n# c\n\na,0,1,4\n");
        assert!(
            e.starts_with("f.csv:6: duplicate id \"a\" (first on line 3)"),
            "{e}"
        );
    }

    #[test]
    fn messages() {
        assert!(msg("id,lower,upper,size\na,0,1,-3\n").contains("negative"));
        assert!(msg("id,lower,upper,size\na,0,1,18446744073709551616\n").contains("does not fit"));
        assert!(msg("id,lower,upper,size\na,0,1,4\na,1,2,4\n").contains("first on line 2"));
        assert!(msg("id,lower,size\n").contains("missing column upper"));
        assert!(msg("").contains("empty file"));
        assert!(msg("id,lower,upper,size\n").starts_with("f.csv:1: no buffers"));
    }

    #[test]
    fn capacity_from_name() {
        let p = std::path::Path::new("x/minimalloc/challenging/A.1048576.csv");
        assert_eq!(challenging_capacity(p), Some(1048576));
        let p = std::path::Path::new("x/minimalloc/examples/input.12.csv");
        assert_eq!(challenging_capacity(p), None);
    }

    #[test]
    fn plan_with_and_without_offsets() {
        let (p, placed) = parse_plan(
            "p.csv",
            b"id,lower,upper,size,offset\na,0,2,4,8\nb,1,3,2,0\n",
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        let placed = placed.expect("an offset column");
        assert_eq!(
            placed
                .iter()
                .map(|b| (b.id.as_str(), b.offset))
                .collect::<Vec<_>>(),
            [("a", 8), ("b", 0)]
        );
        let (_, placed) = parse_plan("p.csv", b"id,lower,upper,size\na,0,2,4\n").unwrap();
        assert!(placed.is_none());
        let e = parse_plan("p.csv", b"id,lower,upper,size,offset\na,0,2,4,x\n").unwrap_err();
        assert!(e.to_string().starts_with("p.csv:2: `offset` is not"), "{e}");
        // `parse` ignores the column, even a malformed one.
        assert!(parse("p.csv", b"id,lower,upper,size,offset\na,0,2,4,x\n", 1).is_ok());
    }
}
