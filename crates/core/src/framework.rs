//! The serving frameworks a campaign compares, named once. JSON and the command line use
//! the snake_case id (`vllm`, `sglang`, `tensorrt_llm`, `tokenspeed`); reports use the
//! display name.

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Framework {
    Vllm,
    Sglang,
    TensorrtLlm,
    Tokenspeed,
}

impl Framework {
    /// Every framework, in the order reports list them.
    pub const ALL: [Framework; 4] = [
        Framework::Vllm,
        Framework::Sglang,
        Framework::TensorrtLlm,
        Framework::Tokenspeed,
    ];

    /// The id used in JSON, on the command line and in file names.
    pub const fn id(self) -> &'static str {
        match self {
            Framework::Vllm => "vllm",
            Framework::Sglang => "sglang",
            Framework::TensorrtLlm => "tensorrt_llm",
            Framework::Tokenspeed => "tokenspeed",
        }
    }

    /// The project's own spelling, for prose and tables.
    pub const fn display_name(self) -> &'static str {
        match self {
            Framework::Vllm => "vLLM",
            Framework::Sglang => "SGLang",
            Framework::TensorrtLlm => "TensorRT-LLM",
            Framework::Tokenspeed => "TokenSpeed",
        }
    }

    /// The ids of [`Framework::ALL`], comma-separated (for error messages).
    pub(crate) fn known_list() -> String {
        Framework::ALL.map(Framework::id).join(", ")
    }
}

impl std::fmt::Display for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for Framework {
    type Err = anyhow::Error;

    /// The exact id; an unknown name is an error that lists the known ones.
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Framework::ALL
            .into_iter()
            .find(|f| f.id() == s)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown framework {s:?} (known: {})",
                    Framework::known_list()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_serde_and_from_str() {
        for f in Framework::ALL {
            let j = serde_json::to_string(&f).unwrap();
            assert_eq!(j, format!("\"{}\"", f.id()));
            assert_eq!(serde_json::from_str::<Framework>(&j).unwrap(), f);
            assert_eq!(f.id().parse::<Framework>().unwrap(), f);
        }
        let e = "trtllm".parse::<Framework>().unwrap_err().to_string();
        assert!(
            e.contains("trtllm") && e.contains("tensorrt_llm, tokenspeed"),
            "{e}"
        );
        assert_eq!(Framework::TensorrtLlm.display_name(), "TensorRT-LLM");
    }
}
