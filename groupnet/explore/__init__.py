"""Design-space exploration: which Group-Net for which board.

``groupnet explore SPEC.yaml`` trains (or reuses) every point of a design space, builds
it for each board, records FINN's estimates, simulates the Pareto front in Verilator, and
writes the accuracy x LUT x FPS front per board. Points run on Dask (one worker per core
by default; an existing scheduler or Slurm through dask-jobqueue for more machines) or
serially; an interrupted sweep resumes where it stopped.

- :mod:`.spec`    the YAML spec -> design points, each keyed by a hash of its settings
- :mod:`.point`   one point: train / reuse, export, build per board; simulate
- :mod:`.store`   results.jsonl, appended as results arrive
- :mod:`.engine`  serial and Dask executors, the submit / record loop
- :mod:`.search`  Optuna instead of the grid, when the space is too large
- :mod:`.pareto`  the front per board: table and picture
- :mod:`.sweep`   ``run_sweep``: all of the above for one output folder
"""

from .spec import Point, Spec, SpecError, load_spec, select_points
from .sweep import run_sweep

__all__ = ["Point", "Spec", "SpecError", "load_spec", "run_sweep", "select_points"]
