"""The same DAG on a real SLURM cluster (snakemake-executor-plugin-slurm).

``tests/slurm/cluster.sh`` installs Debian's slurm-wlm and munge when missing, and starts a
single-node cluster (munged, slurmctld, slurmd; no slurmdbd) whose files live in a temporary
folder. The tiny config then runs through ``--profile workflow/profiles/slurm`` with only the
partition overridden; the scheduler's own records (``scontrol show job``, which keeps
finished jobs for MinJobAge = 1 h, and the job-completion log) must show one sbatch job per
rule instance, and table1.csv must equal that of a local run. Bad cluster input must fail
with the scheduler's message, and a job killed for memory must come back with twice the
memory. Every daemon the fixture started is stopped by PID, pass or fail.

Needs root (to install SLURM and run slurmd) and about 3 minutes on 2 cores.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
TEST_CONFIG = f"--configfile={ROOT / 'config' / 'test.yaml'}"
# the test cluster's one partition replaces the profile's site-specific ones
PARTITION = [
    "--default-resources",
    "slurm_partition=test",
    "--set-resources",
    "train:slurm_partition=test",
    "predict:slurm_partition=test",
    "dhde_feature_table:slurm_partition=test",
]
# no account on the test cluster; poll every few seconds instead of the plugin's 40 s
PLUGIN = [
    "--slurm-no-account",
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--latency-wait",
    "5",
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running single-node SLURM cluster: (its folder, environment for the clients)."""
    if os.geteuid() != 0:
        pytest.fail("the SLURM test needs root: it installs slurm-wlm and runs slurmd")
    state = tmp_path_factory.mktemp("slurm")
    r = subprocess.run(["bash", str(CLUSTER), "start", str(state)], capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["bash", str(CLUSTER), "stop", str(state)], check=False)
        pytest.fail(f"could not start a SLURM cluster:\n{r.stdout[-2000:]}{r.stderr[-3000:]}")
    env = dict(os.environ)
    env["SLURM_CONF"] = str(state / "slurm.conf")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the jobs' python
    try:
        yield state, env
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop", str(state)], check=False)
        for name in ("munged", "slurmctld", "slurmd"):
            assert not (state / f"{name}.pid").exists(), f"{name} was not stopped"


def _snakemake(args, cwd, env, snakefile=ROOT / "Snakefile"):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def _planned_rules(args, cwd, env) -> set[str]:
    """Rules of the jobs a dry run plans (Snakemake's own job table), local rule `all` aside."""
    r = _snakemake(["-n", "--quiet", "rules", *args], cwd, env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    table = (r.stdout + r.stderr).split("Job stats:")[1].split("total")[0]
    rows = re.findall(r"^(\w+)\s+\d+$", table, re.M)
    return set(rows) - {"all"}


def _jobs(env):
    """Every job slurmctld remembers: {job id: {field: value}} (`scontrol show job -o`)."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o"], env=env, capture_output=True, text=True, check=True
    ).stdout
    jobs = {}
    for line in out.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" in fields:
            jobs[int(fields["JobId"])] = fields
    return jobs


def _new_jobs(env, before):
    return {k: v for k, v in _jobs(env).items() if k not in before}


def test_tiny_config_on_slurm_equals_local(cluster, tmp_path):
    state, env = cluster
    before = _jobs(env)
    targets = ["all", "results/data/demo_sharp/manifest.csv"]
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    slurm_dir.mkdir()
    local_dir.mkdir()
    r = _snakemake(
        [TEST_CONFIG, "--profile", str(PROFILE), *PARTITION, *PLUGIN, "--jobs", "4", *targets],
        slurm_dir,
        env,
    )
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:] + (state / "log" / "slurmctld.log").read_text()[-2000:]
    # Snakemake submitted every job with sbatch (the plugin's own line) ...
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert len(submitted) >= 10, log[-3000:]
    # ... and the scheduler ran them: its records, not Snakemake's word
    jobs = _new_jobs(env, before)
    assert sorted(jobs) == sorted(map(int, submitted))
    assert all(j["JobState"] == "COMPLETED" for j in jobs.values()), jobs
    assert all(j["Partition"] == "test" for j in jobs.values())
    rules = {j["Comment"].removeprefix("rule_").split("_wildcards_")[0] for j in jobs.values()}
    plan_dir = tmp_path / "plan"
    plan_dir.mkdir()
    expected = _planned_rules([TEST_CONFIG, *targets], plan_dir, env)
    assert {"train", "predict", "evaluate", "tables"} <= expected
    assert rules == expected
    train = next(j for j in jobs.values() if j["Comment"].startswith("rule_train"))
    assert "mem=32000M" in train["TRES"] or "mem=31.25G" in train["TRES"], train["TRES"]
    completed = (state / "jobcomp.log").read_text()
    for job_id in jobs:
        assert re.search(rf"^JobId={job_id} .*JobState=COMPLETED", completed, re.M)
    # the same products as a local run
    r = _snakemake([TEST_CONFIG, "--cores", "2", *targets], local_dir, env)
    assert r.returncode == 0, r.stderr[-3000:]
    a = pd.read_csv(slurm_dir / "results" / "tables" / "table1.csv")
    b = pd.read_csv(local_dir / "results" / "tables" / "table1.csv")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-9)
    assert (slurm_dir / "results" / "models" / "zeng" / "model.pt").exists()
    assert (slurm_dir / "logs" / "train" / "zeng.log").stat().st_size > 0


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        # the profile's partition is wrong: sbatch's own words come back
        (["--default-resources", "slurm_partition=nosuch"], "invalid partition"),
        # no partition at all and the cluster has no default one
        (["--default-resources", "mem_mb=1000"], "No partition specified"),
        # a GPU job on a cluster without GPUs (no GresTypes=gpu, no GPU partition)
        (
            ["--default-resources", "slurm_partition=test", "--set-resources", "demo_sharp:gpu=1"],
            "Invalid generic resource",
        ),
    ],
    ids=["unknown-partition", "no-partition", "gpu-without-gpus"],
)
def test_bad_cluster_input_is_reported(cluster, tmp_path, resources, message):
    _, env = cluster
    r = _snakemake(
        [TEST_CONFIG, "--profile", str(PROFILE), *resources, *PLUGIN, "--retries", "0"]
        + ["results/data/demo_sharp/manifest.csv"],
        tmp_path,
        env,
    )
    assert r.returncode != 0
    assert message.lower() in (r.stdout + r.stderr).lower(), (r.stdout + r.stderr)[-3000:]


def test_job_killed_for_memory_is_retried_with_more(cluster, tmp_path):
    """SLURM kills the first attempt (400 MB for ~550 MB); attempt 2 gets 800 MB and passes."""
    state, env = cluster
    before = _jobs(env)
    r = _snakemake(
        ["--profile", str(PROFILE), "--default-resources", "slurm_partition=test", *PLUGIN],
        tmp_path,
        env,
        snakefile=ROOT / "tests" / "slurm" / "oom.smk",
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert (tmp_path / "grown.txt").read_text().strip() == "ok"
    jobs = sorted(_new_jobs(env, before).items())
    assert [j["JobState"] for _, j in jobs] == ["FAILED", "COMPLETED"]
    assert [re.search(r"mem=(\d+)M", j["TRES"]).group(1) for _, j in jobs] == ["400", "800"]
    first = tmp_path / ".snakemake" / "slurm_logs" / "rule_grow" / f"{jobs[0][0]}.log"
    assert "exceeded memory limit" in first.read_text()


def test_no_daemon_left_behind_when_install_is_impossible(tmp_path):
    """Without apt-get or root, `start` fails with a message and starts nothing (an empty
    PATH hides an installed SLURM and apt-get alike)."""
    env = {**os.environ, "PATH": "/nonexistent"}
    r = subprocess.run(
        ["/bin/bash", str(CLUSTER), "start", str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert r.returncode != 0 and "SLURM is not installed" in r.stderr
    assert not list(tmp_path.glob("*.pid"))
