"""timing: regions measure wall time; synchronize is safe off CUDA."""

import time

from fer import timing


def test_region_measures_wall_time():
    with timing.Region("cpu") as r:
        time.sleep(0.05)
    assert 0.04 < r.seconds < 1.0


def test_synchronize_is_a_no_op_on_cpu():
    timing.synchronize("cpu")
    timing.synchronize(None)
    assert timing.now() <= timing.now()
