"""Thread limits act on libraries that are already loaded (a Snakemake job imports numpy
before its script calls set_threads)."""

import json
import subprocess
import sys


def test_set_threads_resizes_pools_loaded_before_it():
    code = """
import json, numpy, scipy.linalg, torch
from threadpoolctl import threadpool_info
from defocus.logs import set_threads
numpy.dot(numpy.ones((64, 64)), numpy.ones((64, 64)))
set_threads(1)
print(json.dumps({"pools": [p["num_threads"] for p in threadpool_info()],
                  "torch": torch.get_num_threads()}))
"""
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["pools"] and all(n == 1 for n in got["pools"]), got
    assert got["torch"] == 1
