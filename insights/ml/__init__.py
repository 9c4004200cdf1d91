"""Models of the insights service: rent (`rent`), occupancy, their features, intervals and registry.

Importing this package sets `OMP_WAIT_POLICY=passive` unless the environment already says otherwise:
LightGBM's OpenMP threads otherwise spin while they wait for each other, which on a machine whose
cores are shared with web workers or other jobs made training 3-5x slower (measured on 2 cores).
It only takes effect if no OpenMP runtime was loaded before, hence here, before LightGBM is imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
