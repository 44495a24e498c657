# A job that needs ~250 MB more than its first attempt is given (tests/test_slurm.py).
# SLURM kills it for memory (JobAcctGatherParams=OverMemoryKill); the profile's `retries: 1`
# resubmits it with attempt=2 and twice the memory, as the workflow's rules do
# (mem_mb=lambda wc, attempt: base * attempt).


rule all:
    input:
        "grown.txt",


rule grow:
    output:
        "grown.txt",
    resources:
        mem_mb=lambda wc, attempt: 400 * attempt,
        runtime=5,
        cpus_per_task=1,
    shell:
        "python -c 'import time; b = bytearray(500 * 2**20); b[::4096] = bytes(len(b[::4096]));"
        " time.sleep(4)' && echo ok > {output}"
