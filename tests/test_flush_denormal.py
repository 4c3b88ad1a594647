"""`import lvmcls` flushes subnormal floats to zero on the CPU, on every intra-op thread (bench/denormal.py: they
slow a step several-fold late in training)."""

import subprocess
import sys

CHECK = r"""
import lvmcls, torch
torch.set_num_threads(2)
x = torch.full((4096,), 1e-39)  # subnormal in float32: read as 0 when flushing
print(float(x.sum()), float((x * 2).max()))
"""


def test_import_lvmcls_flushes_subnormals_to_zero():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True).stdout.split()
    assert [float(v) for v in out] == [0.0, 0.0], out  # without the flush: 4.1e-36 and 2e-39
