//! The one kernel classifier, driven by `references/kernel-families.json`
//! (family → ordered patterns, first match wins), plus kernel-name canonicalization.

use crate::store::FxHashMap;
use anyhow::{Context, Result, bail};
use regex::Regex;
use serde::Deserialize;
use std::sync::{Mutex, OnceLock};

#[derive(Deserialize)]
struct FileFormat {
    families: Vec<FamilyDef>,
}

#[derive(Deserialize)]
struct FamilyDef {
    family: String,
    overlap_class: String,
    #[serde(default)]
    description: String,
    patterns: Vec<String>,
    /// Launch-context patterns: when present, the family applies only to a kernel whose
    /// name matches `patterns` and whose launch context (CPU ops and Python frames around
    /// its launch) matches one of these; name-only classification skips the family.
    #[serde(default)]
    context: Vec<String>,
}

/// Overlap class used by the sweep line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverlapClass {
    Compute,
    Communication,
    Memory,
    Elementwise,
    Other,
}

impl OverlapClass {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "compute" => Self::Compute,
            "communication" => Self::Communication,
            "memory" => Self::Memory,
            "elementwise" => Self::Elementwise,
            "other" => Self::Other,
            _ => bail!(
                "unknown overlap_class {s:?} (compute, communication, memory, elementwise, other)"
            ),
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compute => "compute",
            Self::Communication => "communication",
            Self::Memory => "memory",
            Self::Elementwise => "elementwise",
            Self::Other => "other",
        }
    }
}

#[derive(Debug)]
pub struct Family {
    pub name: String,
    pub overlap: OverlapClass,
    pub description: String,
    patterns: Vec<Regex>,
    /// Launch-context patterns (empty: decided by the name alone).
    context: Vec<Regex>,
}

impl Family {
    /// Whether the family is decided by launch context (see [`Classifier::context_candidates`]).
    pub fn needs_context(&self) -> bool {
        !self.context.is_empty()
    }
}

/// The classifier: families in evaluation order, then the implicit `other`.
#[derive(Debug)]
pub struct Classifier {
    pub families: Vec<Family>,
    pub other: Family,
    pub source: String,
    /// Family index of each name classified so far: the tables and the graph mapping
    /// classify the same few hundred kernel names, and a miss tries up to every pattern.
    memo: Mutex<FxHashMap<String, usize>>,
}

impl Classifier {
    /// Parse a families file (JSON text); `source` names it in errors.
    pub fn from_json(text: &str, source: &str) -> Result<Self> {
        let f: FileFormat = serde_json::from_str(text)
            .with_context(|| format!("{source}: not a kernel-families file"))?;
        let mut families = Vec::new();
        for d in f.families {
            let mut patterns = Vec::new();
            for p in &d.patterns {
                patterns.push(Regex::new(&format!("(?i){p}")).with_context(|| {
                    format!("{source}: family {:?}: bad pattern {p:?}", d.family)
                })?);
            }
            let mut context = Vec::new();
            for p in &d.context {
                context.push(Regex::new(&format!("(?i){p}")).with_context(|| {
                    format!("{source}: family {:?}: bad context pattern {p:?}", d.family)
                })?);
            }
            families.push(Family {
                context,
                name: d.family.clone(),
                overlap: OverlapClass::parse(&d.overlap_class)
                    .with_context(|| format!("{source}: family {:?}", d.family))?,
                description: d.description,
                patterns,
            });
        }
        Ok(Self {
            families,
            other: Family {
                name: "other".into(),
                overlap: OverlapClass::Other,
                description: "unclassified".into(),
                patterns: vec![],
                context: vec![],
            },
            source: source.to_string(),
            memo: Mutex::default(),
        })
    }

    /// `references/kernel-families.json` (embedded; `$VLLM_SOTA_REFERENCES` overrides).
    pub fn load() -> Result<Self> {
        let (text, source) = vllm_sota_core::refs::load(
            "kernel-families.json",
            Some(include_str!("../../../references/kernel-families.json")),
        )?;
        Self::from_json(&text, &source)
    }

    /// A process-wide copy of the embedded classifier (panics only if the embedded file is broken,
    /// which a unit test guards).
    pub fn shared() -> &'static Classifier {
        static C: OnceLock<Classifier> = OnceLock::new();
        C.get_or_init(|| Classifier::load().expect("references/kernel-families.json is valid"))
    }

    pub fn classify(&self, name: &str) -> &Family {
        self.family_by_index(self.family_index(name))
    }

    /// Index of the first family with a matching pattern (`families.len()`: `other`).
    pub fn family_index(&self, name: &str) -> usize {
        if let Some(&i) = self.memo().get(name) {
            return i;
        }
        // Matched without holding the lock, so threads classifying other names do not wait.
        let i = self.match_family(name);
        self.memo().insert(name.to_string(), i);
        i
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, FxHashMap<String, usize>> {
        // A poisoned lock still holds only complete entries.
        self.memo.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Context-decided families whose name patterns match `name`, in file order: the
    /// kernel belongs to the first whose context matches its launch context
    /// ([`Classifier::context_matches`]), else to its name family.
    pub fn context_candidates(&self, name: &str) -> Vec<usize> {
        (0..self.families.len())
            .filter(|&i| {
                let f = &self.families[i];
                f.needs_context() && f.patterns.iter().any(|p| p.is_match(name))
            })
            .collect()
    }

    /// Whether one launch-context text (a CPU op name or a Python frame) matches family `i`'s context.
    pub fn context_matches(&self, i: usize, text: &str) -> bool {
        self.family_by_index(i)
            .context
            .iter()
            .any(|r| r.is_match(text))
    }

    fn match_family(&self, name: &str) -> usize {
        for (i, f) in self.families.iter().enumerate() {
            if !f.needs_context() && f.patterns.iter().any(|p| p.is_match(name)) {
                return i;
            }
        }
        self.families.len()
    }

    pub fn family_by_index(&self, i: usize) -> &Family {
        self.families.get(i).unwrap_or(&self.other)
    }
}

/// Canonical kernel identity: whitespace collapsed, `0x…` addresses masked, and for
/// `void f<...>(params)` the trailing parameter list stripped (the template args stay).
pub fn canonical_name(raw: &str) -> String {
    let mut s = String::with_capacity(raw.len());
    let mut last_space = false;
    for c in raw.trim().chars() {
        if c.is_whitespace() {
            if !last_space {
                s.push(' ');
            }
            last_space = true;
        } else {
            s.push(c);
            last_space = false;
        }
    }
    if s.contains("0x") {
        static HEX: OnceLock<Regex> = OnceLock::new();
        let re = HEX.get_or_init(|| Regex::new("0x[0-9a-fA-F]+").unwrap());
        s = re.replace_all(&s, "0xADDR").into_owned();
    }
    if s.starts_with("void ")
        && s.ends_with(')')
        && let Some(open) = matching_open_paren(&s)
    {
        s.truncate(open);
    }
    s
}

fn matching_open_paren(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0i32;
    for i in (0..b.len()).rev() {
        match b[i] {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The one kernel-name shortener ([`vllm_sota_core::kname`]), shared with every tool.
pub(crate) use vllm_sota_core::kname::short as short_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_loads() {
        let c = Classifier::load().unwrap();
        assert!(c.families.len() >= 15);
    }

    #[test]
    fn canonical_strips_params_of_void_kernels() {
        assert_eq!(
            canonical_name("void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16>(int*, long)"),
            "void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16>"
        );
        assert_eq!(
            canonical_name("nvjet_sm90_tst_64x8_64x16_4x1_v_bz_TNT"),
            "nvjet_sm90_tst_64x8_64x16_4x1_v_bz_TNT"
        );
        assert_eq!(
            canonical_name("ncclKernel(x 0x7f12)"),
            "ncclKernel(x 0xADDR)"
        );
    }
}
