"""Launchers only: where and how runs execute, never which runs to make (that is ``benchmarks.sweeps``).

* ``executors``: submitit executors (SLURM array jobs, local subprocesses, debug), requeue on
  preemption, job state;
* ``local_cluster.LocalSlurmCluster``: munged, slurmctld and slurmd on localhost in a temporary
  directory (root only; install the daemons with ``bash slurm/install.sh``), so that submitit
  array jobs run on real SLURM in the test suite (fixture ``slurm_cluster`` in
  ``tests/conftest.py``; ``REFT_REQUIRE_SLURM=1``, set by ``.ci/run``, makes a missing SLURM
  fail those tests instead of skipping them).
"""
