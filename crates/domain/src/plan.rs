//! Plans and the limits that come with them (the spec's Rate Limiting table and usage quotas).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A user's subscription plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// Free tier.
    Free,
    /// Paid tier.
    Pro,
    /// Largest tier.
    Enterprise,
}

/// Every limit a plan implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    /// Platform API requests per minute.
    pub requests_per_minute: u64,
    /// Platform API requests per hour.
    pub requests_per_hour: u64,
    /// Workflows that may train at the same time.
    pub concurrent_workflows: u32,
    /// Compute hours per billing period.
    pub compute_hours: u32,
    /// Object storage in GB.
    pub storage_gb: u32,
    /// Segmentation credits granted with the plan.
    pub segmentation_credits: u32,
    /// Segmentation API uploads per minute.
    pub seg_upload_per_minute: u64,
    /// Segmentation API segment requests per minute.
    pub seg_segment_per_minute: u64,
    /// Segmentation API result queries per minute.
    pub seg_results_per_minute: u64,
}

impl Plan {
    /// All plans, cheapest first.
    pub const ALL: [Plan; 3] = [Plan::Free, Plan::Pro, Plan::Enterprise];

    /// The limits of this plan.
    pub const fn limits(self) -> PlanLimits {
        match self {
            Plan::Free => PlanLimits {
                requests_per_minute: 60,
                requests_per_hour: 1000,
                concurrent_workflows: 1,
                compute_hours: 10,
                storage_gb: 5,
                segmentation_credits: 100,
                seg_upload_per_minute: 10,
                seg_segment_per_minute: 5,
                seg_results_per_minute: 60,
            },
            Plan::Pro => PlanLimits {
                requests_per_minute: 300,
                requests_per_hour: 10_000,
                concurrent_workflows: 5,
                compute_hours: 100,
                storage_gb: 50,
                segmentation_credits: 2_000,
                seg_upload_per_minute: 30,
                seg_segment_per_minute: 20,
                seg_results_per_minute: 120,
            },
            Plan::Enterprise => PlanLimits {
                requests_per_minute: 1000,
                requests_per_hour: 50_000,
                concurrent_workflows: 20,
                compute_hours: 1_000,
                storage_gb: 500,
                segmentation_credits: 20_000,
                seg_upload_per_minute: 100,
                seg_segment_per_minute: 60,
                seg_results_per_minute: 300,
            },
        }
    }

    /// The lowercase name used in the API and configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan '{0}' (expected free, pro or enterprise)")]
pub struct UnknownPlan(pub String);

impl FromStr for Plan {
    type Err = UnknownPlan;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Plan::ALL
            .into_iter()
            .find(|plan| plan.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPlan(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_rate_limit_table() {
        let rows: Vec<_> = Plan::ALL
            .iter()
            .map(|p| {
                let l = p.limits();
                (
                    l.requests_per_minute,
                    l.requests_per_hour,
                    l.concurrent_workflows,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![(60, 1000, 1), (300, 10_000, 5), (1000, 50_000, 20)]
        );
    }

    #[test]
    fn parses_names() {
        assert_eq!("Pro".parse::<Plan>(), Ok(Plan::Pro));
        assert!("gold".parse::<Plan>().is_err());
    }
}
