//! Slurm batch scripts for a planned sweep: a job array over the shards and a merge job that
//! depends on it. Scheduling is Slurm's own: `--array=0-(N-1)%K` throttles to K shards at a
//! time, `--requeue` lets Slurm requeue a shard whose node failed, and the merge waits with
//! `--dependency=afterany:<array>` (it runs however the shards ended, and lists what is missing
//! or failed). A resubmitted shard skips the runs that completed before.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Resources and throttling of a submission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmitSettings {
    /// Number of array tasks (shards), at least 1 (default: 1).
    pub shards: usize,
    /// Partition (default: none, the cluster's default partition).
    pub partition: Option<String>,
    /// Time limit per shard, as Slurm reads it, e.g. `HH:MM:SS` (default: none).
    pub time: Option<String>,
    /// Memory per shard, as Slurm reads it, e.g. `4G` (default: none).
    pub mem: Option<String>,
    /// At most this many shards at once, Slurm's `%K` (default: none, no throttle).
    pub max_parallel: Option<usize>,
    /// CPUs per shard; a shard runs that many threads (default: 1).
    pub cpus_per_task: usize,
}

impl Default for SubmitSettings {
    fn default() -> Self {
        SubmitSettings { shards: 1, partition: None, time: None, mem: None, max_parallel: None, cpus_per_task: 1 }
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn common(out: &mut String, s: &SubmitSettings) {
    if let Some(p) = &s.partition {
        out.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &s.time {
        out.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(m) = &s.mem {
        out.push_str(&format!("#SBATCH --mem={m}\n"));
    }
}

/// The job-array script: task `$SLURM_ARRAY_TASK_ID` runs shard `ID/shards` of the plan in
/// `dir` (absolute) with the binary `exe` (absolute).
pub fn array_script(exe: &Path, dir: &Path, s: &SubmitSettings) -> String {
    let mut out = String::from("#!/bin/bash\n");
    out.push_str("#SBATCH --job-name=marginflow-sweep\n");
    let throttle = s.max_parallel.map(|k| format!("%{k}")).unwrap_or_default();
    out.push_str(&format!("#SBATCH --array=0-{}{throttle}\n", s.shards.saturating_sub(1)));
    out.push_str("#SBATCH --requeue\n");
    out.push_str(&format!("#SBATCH --cpus-per-task={}\n", s.cpus_per_task));
    out.push_str(&format!("#SBATCH --output={}\n", dir.join("slurm").join("shard-%a.out").display()));
    common(&mut out, s);
    out.push_str(&format!(
        "exec {} sweep run {} --task-id \"$SLURM_ARRAY_TASK_ID\" --tasks {} --threads {}\n",
        quote(&exe.display().to_string()),
        quote(&dir.display().to_string()),
        s.shards,
        s.cpus_per_task
    ));
    out
}

/// The merge script (submitted with `--dependency=afterany:<array job>`).
pub fn merge_script(exe: &Path, dir: &Path, s: &SubmitSettings) -> String {
    let mut out = String::from("#!/bin/bash\n");
    out.push_str("#SBATCH --job-name=marginflow-merge\n");
    out.push_str("#SBATCH --cpus-per-task=1\n");
    out.push_str(&format!("#SBATCH --output={}\n", dir.join("slurm").join("merge.out").display()));
    common(&mut out, s);
    out.push_str(&format!(
        "exec {} sweep merge {}\n",
        quote(&exe.display().to_string()),
        quote(&dir.display().to_string())
    ));
    out
}

/// The job id in `sbatch --parsable` output (`ID` or `ID;CLUSTER`).
pub fn parse_job_id(stdout: &str) -> Option<u64> {
    stdout.trim().split(';').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_script_has_the_throttle_requeue_and_the_shard_command() {
        let s =
            SubmitSettings { shards: 4, max_parallel: Some(2), partition: Some("debug".into()), ..Default::default() };
        let text = array_script(Path::new("/opt/mf"), Path::new("/d/sw eep"), &s);
        assert!(text.contains("#SBATCH --array=0-3%2\n"), "{text}");
        assert!(text.contains("#SBATCH --requeue\n"));
        assert!(text.contains("#SBATCH --partition=debug\n"));
        assert!(text.contains("exec '/opt/mf' sweep run '/d/sw eep' --task-id \"$SLURM_ARRAY_TASK_ID\" --tasks 4"));
        assert_eq!(parse_job_id("1234;cluster\n"), Some(1234));
        assert_eq!(parse_job_id("77\n"), Some(77));
        assert_eq!(parse_job_id("Submitted batch job 5"), None);
    }
}
