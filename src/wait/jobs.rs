//! Job judgements (the one-shot Jobs of an add-on, e.g. ingress-nginx's admission certificates).

use k8s_openapi::api::batch::v1::Job;

use super::{Progress, name_of};

fn condition<'a>(job: &'a Job, type_: &str) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_ && c.status == "True"))
}

/// Has the Job finished successfully? `Complete=True` is the terminal success condition (since
/// 1.31 preceded by `SuccessCriteriaMet`, which alone is not yet terminal); `Failed=True` will
/// not change without someone recreating the Job (since 1.31 preceded by `FailureTarget`).
pub fn job_complete(job: &Job) -> Progress {
    let name = name_of(&job.metadata);
    if condition(job, "Complete").is_some() {
        return Progress::Done;
    }
    if let Some(c) = condition(job, "Failed") {
        return Progress::Failed(format!(
            "job {name} failed ({}: {})",
            c.reason.as_deref().unwrap_or("no reason"),
            c.message.as_deref().unwrap_or("no message")
        ));
    }
    let status = job.status.clone().unwrap_or_default();
    Progress::Waiting(format!(
        "job {name}: {} active, {} succeeded, {} failed",
        status.active.unwrap_or(0),
        status.succeeded.unwrap_or(0),
        status.failed.unwrap_or(0)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::load;

    #[test]
    fn complete_running_and_failed_jobs() {
        assert_eq!(job_complete(&load("docs-job-complete.json")), Progress::Done);
        assert_eq!(
            job_complete(&load("docs-job-running.json")),
            Progress::Waiting("job pi: 1 active, 0 succeeded, 0 failed".into())
        );
        assert_eq!(
            job_complete(&load("docs-job-backofflimit-failed.json")),
            Progress::Failed("job worker2 failed (BackoffLimitExceeded: Job has reached the specified backoff limit)".into())
        );
    }

    #[test]
    fn success_criteria_met_alone_is_not_complete() {
        // Derived: the moment (1.31+) between SuccessCriteriaMet and Complete, while lingering
        // Pods are terminated.
        let mut v = crate::samples::value("docs-job-complete.json");
        v["status"]["conditions"].as_array_mut().unwrap().retain(|c| c["type"] != "Complete");
        assert!(job_complete(&crate::samples::from_value(v)).is_waiting());
    }
}
