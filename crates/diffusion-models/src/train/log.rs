//! The metrics log: one line per logged step, as CSV or JSON lines.
//!
//! Columns: `step` (updates done), `loss` (the step's batch loss), `lr`, `grad_norm` (before
//! clipping) and `elapsed_s` (wall time of the run so far). On resume the log is cut back to the
//! checkpoint's step, so it reads as one uninterrupted run.

use super::trainer::StepStats;
use crate::error::{ModelError, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// The file format of a [`MetricsLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl LogFormat {
    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            LogFormat::Csv => "csv",
            LogFormat::Jsonl => "jsonl",
        }
    }
}

const HEADER: &str = "step,loss,lr,grad_norm,elapsed_s";

/// An append-only metrics file.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    format: LogFormat,
    file: File,
}

/// The step of one log line, if it has one.
fn line_step(line: &str, format: LogFormat) -> Option<u64> {
    match format {
        LogFormat::Csv => line.split(',').next()?.trim().parse().ok(),
        LogFormat::Jsonl => {
            let rest = line.split("\"step\":").nth(1)?;
            rest.split([',', '}']).next()?.trim().parse().ok()
        }
    }
}

impl MetricsLog {
    /// Creates (or truncates) the log at `path`. With `resume_from = Some(step)` an existing log
    /// is kept up to and including `step` and appended to.
    pub fn open(path: &Path, format: LogFormat, resume_from: Option<u64>) -> Result<Self> {
        let io = |e: std::io::Error| {
            ModelError::Io(std::io::Error::new(
                e.kind(),
                format!("metrics log {}: {e}", path.display()),
            ))
        };
        let mut kept: Vec<String> = Vec::new();
        if let (Some(step), true) = (resume_from, path.exists()) {
            let f = File::open(path).map_err(io)?;
            for line in BufReader::new(f).lines() {
                let line = line.map_err(io)?;
                match line_step(&line, format) {
                    Some(s) if s <= step => kept.push(line),
                    Some(_) => {}
                    None if line == HEADER => {}
                    None => {}
                }
            }
        }
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(io)?;
        if format == LogFormat::Csv {
            writeln!(file, "{HEADER}").map_err(io)?;
        }
        for line in kept {
            writeln!(file, "{line}").map_err(io)?;
        }
        file.flush().map_err(io)?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            format,
            file,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line.
    pub fn write(&mut self, s: &StepStats, elapsed_s: f64) -> Result<()> {
        let line = match self.format {
            LogFormat::Csv => format!(
                "{},{:e},{:e},{:e},{:.3}",
                s.step, s.loss, s.lr, s.grad_norm, elapsed_s
            ),
            LogFormat::Jsonl => format!(
                "{{\"step\":{},\"loss\":{},\"lr\":{},\"grad_norm\":{},\"elapsed_s\":{:.3}}}",
                s.step,
                json_num(s.loss),
                json_num(s.lr),
                json_num(s.grad_norm),
                elapsed_s
            ),
        };
        writeln!(self.file, "{line}")?;
        self.file.flush()?;
        Ok(())
    }
}

/// A JSON number (`null` for NaN and infinities, which JSON cannot hold).
fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:e}")
    } else {
        "null".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(step: u64) -> StepStats {
        StepStats {
            step,
            loss: 0.5 / step as f64,
            lr: 1e-3,
            grad_norm: 2.0,
        }
    }

    #[test]
    fn csv_and_jsonl_lines_and_resume_truncation() {
        let dir = tempfile::tempdir().unwrap();
        for format in [LogFormat::Csv, LogFormat::Jsonl] {
            let p = dir.path().join(format!("m.{}", format.extension()));
            let mut log = MetricsLog::open(&p, format, None).unwrap();
            for s in 1..=4 {
                log.write(&stats(s), 0.1 * s as f64).unwrap();
            }
            drop(log);
            let mut log = MetricsLog::open(&p, format, Some(2)).unwrap();
            log.write(&stats(3), 0.0).unwrap();
            drop(log);
            let text = std::fs::read_to_string(&p).unwrap();
            let steps: Vec<u64> = text.lines().filter_map(|l| line_step(l, format)).collect();
            assert_eq!(steps, [1, 2, 3], "{text}");
            if format == LogFormat::Csv {
                assert_eq!(text.lines().next(), Some(HEADER));
            } else {
                assert!(text
                    .lines()
                    .next()
                    .unwrap()
                    .starts_with("{\"step\":1,\"loss\":5e-1"));
            }
        }
    }
}
