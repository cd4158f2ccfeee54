//! Server-side ground truth of each request, recorded as the simulator answers.

use serde::{Deserialize, Serialize};

/// Server-side truth about one request: times in µs since the server started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroundTruth {
    /// The response `id` (`cmpl-N` / `chatcmpl-N`); N is the 1-based arrival number.
    pub id: String,
    pub endpoint: String,
    pub status: u16,
    /// When the request (headers) arrived.
    pub arrival_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token_us: Option<u64>,
    /// Emission time of every output token (handed to the connection).
    #[serde(default)]
    pub token_us: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_us: Option<u64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

impl GroundTruth {
    pub fn ttft_ms(&self) -> Option<f64> {
        Some((self.first_token_us? as f64 - self.arrival_us as f64) / 1e3)
    }
    pub fn e2e_ms(&self) -> Option<f64> {
        Some((*self.token_us.last()? as f64 - self.arrival_us as f64) / 1e3)
    }
    pub fn itl_ms(&self) -> Vec<f64> {
        self.token_us
            .windows(2)
            .map(|w| (w[1] as f64 - w[0] as f64) / 1e3)
            .collect()
    }
}

impl GroundTruth {
    /// A request that arrived and has produced nothing yet.
    pub(super) fn arrived(id: &str, endpoint: &str, arrival_us: u64) -> GroundTruth {
        GroundTruth {
            id: id.to_string(),
            endpoint: endpoint.to_string(),
            status: 200,
            arrival_us,
            scheduled_us: None,
            first_token_us: None,
            token_us: Vec::new(),
            finished_us: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            fault: None,
        }
    }
}
