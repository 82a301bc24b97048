"""How configurations are chosen: sweep specs (``*.yaml`` here, expanded by ``spec``), launching their
runs (``launch``, through ``slurm.executors``), dev-only selection (``select``), reuse of dev
trainings by the final stage (``reuse``), collection into results/raw (``collect``), and a suite
end to end (``pipeline``)."""
