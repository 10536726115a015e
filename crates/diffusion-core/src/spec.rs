//! `name:key=value,...` specifications, the textual form of every configurable component
//! (`--schedule vp-linear:beta_max=20`, `--solver ddim:eta=0.5`, `--grid karras:rho=7`).

use crate::error::{CoreError, Result};

/// A parsed specification: a name and numeric parameters, consumed with [`Spec::take`] and
/// closed with [`Spec::finish`], which rejects parameters nobody asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The component name.
    pub name: String,
    params: Vec<(String, f64)>,
    text: String,
}

impl Spec {
    /// Parses `name` or `name:key=value,key=value`.
    pub fn parse(text: &str) -> Result<Self> {
        let (name, rest) = match text.split_once(':') {
            Some((n, r)) => (n.trim(), r),
            None => (text.trim(), ""),
        };
        if name.is_empty() {
            return Err(CoreError::Parse {
                what: format!("spec `{text}`"),
                reason: "missing name".into(),
            });
        }
        let mut params = Vec::new();
        for kv in rest.split(',').filter(|s| !s.trim().is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| CoreError::Parse {
                what: format!("spec `{text}`"),
                reason: format!("expected key=value, got `{kv}`"),
            })?;
            let v: f64 = v.trim().parse().map_err(|_| CoreError::Parse {
                what: format!("spec `{text}`"),
                reason: format!("value of `{}` is not a number", k.trim()),
            })?;
            params.push((k.trim().to_string(), v));
        }
        Ok(Spec {
            name: name.to_string(),
            params,
            text: text.to_string(),
        })
    }

    /// Removes and returns parameter `key`, or `default` when it was not given.
    pub fn take(&mut self, key: &str, default: f64) -> f64 {
        match self.params.iter().position(|(k, _)| k == key) {
            Some(i) => self.params.remove(i).1,
            None => default,
        }
    }

    /// Errors if any parameter was not consumed (a typo must not be silently ignored).
    pub fn finish(self) -> Result<()> {
        match self.params.first() {
            None => Ok(()),
            Some((k, _)) => Err(CoreError::Parse {
                what: format!("spec `{}`", self.text),
                reason: format!("`{}` takes no parameter `{k}`", self.name),
            }),
        }
    }

    /// The error for an unknown name, listing the known ones.
    pub fn unknown(&self, kind: &str, known: &[&str]) -> CoreError {
        CoreError::Parse {
            what: format!("{kind} spec `{}`", self.text),
            reason: format!(
                "unknown {kind} `{}`; known: {}",
                self.name,
                known.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_take_and_reject_leftovers() {
        let mut s = Spec::parse("ddim:eta=0.5, x = 2").unwrap();
        assert_eq!(s.name, "ddim");
        assert_eq!(s.take("eta", 0.0), 0.5);
        assert_eq!(s.take("missing", 7.0), 7.0);
        let e = s.clone().finish().unwrap_err().to_string();
        assert!(e.contains("no parameter `x`"), "{e}");
        assert_eq!(s.take("x", 0.0), 2.0);
        s.finish().unwrap();
        assert!(Spec::parse("a:b").is_err());
        assert!(Spec::parse("a:b=c").is_err());
        assert!(Spec::parse(":b=1").is_err());
        assert_eq!(Spec::parse("heun").unwrap().name, "heun");
    }
}
