//! The run job: one per night (or per manual trigger); it records the run and adds a job per region.

use chrono::NaiveDate;
use prematch_queue::{JobError, JobOptions, NewJob};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::event::{RunRequest, Trigger};
use super::region::RegionJob;

/// The payload of a `run` job (DESIGN §3.3: `{run_id, trigger, regions?}`, plus the run date).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunJob {
    /// `run-2026-12-03` or `manual-…`.
    pub run_id: String,
    /// What started it.
    pub trigger: Trigger,
    /// The date matched for.
    pub run_date: NaiveDate,
    /// Only these regions, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
}

impl From<RunRequest> for RunJob {
    fn from(r: RunRequest) -> RunJob {
        RunJob {
            run_id: r.run_id,
            trigger: r.trigger,
            run_date: r.run_date,
            regions: r.regions,
        }
    }
}

impl RunJob {
    /// Reads the payload; a malformed one is a permanent failure.
    pub fn from_data(data: &serde_json::Value) -> Result<RunJob, JobError> {
        serde_json::from_value(data.clone())
            .map_err(|e| JobError::permanent(format!("malformed run job data: {e}")))
    }

    /// The queue job that starts this run; its id is the run id, so adding it twice adds it once.
    pub fn to_job(&self, opts: &JobOptions) -> NewJob {
        let data = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        NewJob::new("run", data).with_opts(JobOptions {
            job_id: Some(self.run_id.clone()),
            ..opts.clone()
        })
    }

    /// One `region` job per region, with deterministic ids.
    pub fn region_jobs(&self, regions: &[String], opts: &JobOptions) -> Vec<NewJob> {
        regions
            .iter()
            .map(|region| {
                let data =
                    json!({ "run_id": self.run_id, "region": region, "run_date": self.run_date });
                NewJob::new("region", data).with_opts(JobOptions {
                    job_id: Some(RegionJob::job_id(&self.run_id, region)),
                    ..opts.clone()
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_jobs_carry_the_run_and_deterministic_ids() {
        let run = RunJob {
            run_id: "run-2026-12-03".into(),
            trigger: Trigger::Schedule,
            run_date: "2026-12-03".parse().unwrap(),
            regions: None,
        };
        let jobs = run.region_jobs(
            &["eu-west".into(), "us-east".into()],
            &JobOptions::default(),
        );
        assert_eq!(jobs.len(), 2);
        assert_eq!(
            jobs[0].opts.job_id.as_deref(),
            Some("region-2026-12-03-eu-west")
        );
        assert_eq!(jobs[1].data["region"], "us-east");
        assert_eq!(jobs[1].data["run_date"], "2026-12-03");
        let back = RegionJob::from_data(&jobs[0].data).unwrap();
        assert_eq!(back.run_id, "run-2026-12-03");
    }

    #[test]
    fn the_run_job_id_is_the_run_id() {
        let run = RunJob {
            run_id: "run-2026-12-03".into(),
            trigger: Trigger::Schedule,
            run_date: "2026-12-03".parse().unwrap(),
            regions: Some(vec!["eu-west".into()]),
        };
        let job = run.to_job(&JobOptions {
            attempts: Some(3),
            ..JobOptions::default()
        });
        assert_eq!(job.name, "run");
        assert_eq!(job.opts.job_id.as_deref(), Some("run-2026-12-03"));
        assert_eq!(job.opts.attempts, Some(3));
        assert_eq!(RunJob::from_data(&job.data).unwrap(), run);
    }
}
