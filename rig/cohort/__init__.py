"""A cohort of animals and days (``rig cohort``): what every session and animal still needs,
run as tasks on dask.distributed, then the cohort's tables, group statistics and figures.

One module per idea: :mod:`~rig.cohort.sessions` (the sessions by animal and day),
:mod:`~rig.cohort.graph` (the tasks and their keys: a hash of inputs and settings),
:mod:`~rig.cohort.cache` (finished tasks under their keys), :mod:`~rig.cohort.steps` (what a
task does on a worker), :mod:`~rig.cohort.execute` (dask.distributed, and the events of a run
that ``rig.cli.cohort_progress`` shows as progress bars), :mod:`~rig.cohort.tables`,
:mod:`~rig.cohort.stats` (mixed-effects models), :mod:`~rig.cohort.plots`,
:mod:`~rig.cohort.pipeline` (the orchestration) and :mod:`~rig.cohort.report` (what the
command prints). ``docs/cohort.md`` describes the command and the plan for a full cohort.
"""
