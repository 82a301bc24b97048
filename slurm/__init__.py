"""Sweeps on SLURM (or locally) through submitit, and a throwaway single-node SLURM cluster for tests.

* ``sweep``, ``launch``, ``select``, ``collect``, ``pipeline``: sweep specs, launching runs
  (SLURM array jobs), dev-set selection, collecting results (see each module's docstring).
* ``local_cluster.LocalSlurmCluster``: munged, slurmctld and slurmd on localhost in a temporary
  directory (root only; install the daemons with ``bash slurm/install.sh``), so that submitit
  array jobs run on real SLURM in the test suite (fixture ``slurm_cluster`` in
  ``tests/conftest.py``; ``REFT_REQUIRE_SLURM=1``, set by ``.ci/run``, makes a missing SLURM
  fail those tests instead of skipping them).
"""
