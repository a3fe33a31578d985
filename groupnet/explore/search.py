"""Search instead of a grid: Optuna proposes points from the spec's space, as many at a
time as there are workers, and learns from each result as it arrives.

Two objectives on one board (``search.board``, default the spec's first): test accuracy
(maximized) and estimated LUT (minimized), with Optuna's NSGA-II sampler, so the search
aims at the same front the grid would map out. Each trial's choices are the space entry
(when there are several) and one value per axis of that entry. The study lives in
``OUT/optuna.journal`` (Optuna's file journal: no database): a stopped search continues
where it was, counting the trials done; a point proposed again is answered from
``results.jsonl`` without running it. Every other board of the spec is built for each
proposed point as well, and every result goes through the same store as a grid's.
"""

from __future__ import annotations

from .engine import drain
from .spec import entry_axes, make_point


def _suggest(trial, spec):
    """The point a trial proposes."""
    space = spec.space
    i = trial.suggest_categorical("entry", list(range(len(space)))) if len(space) > 1 else 0
    variants, axes = entry_axes(spec, i, space[i])
    values = {}
    variant = (trial.suggest_categorical(f"e{i}.variant", variants) if len(variants) > 1
               else variants[0])
    for name, choices in axes.items():
        values[name] = (trial.suggest_categorical(f"e{i}.{name}", choices) if len(choices) > 1
                        else choices[0])
    return make_point(spec, variant, values, f"space[{i}]")


def run_search(sweep) -> None:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    spec = sweep.spec
    board = spec.search.get("board") or spec.boards[0]
    for i, entry in enumerate(spec.space):
        if isinstance(entry, dict) and "checkpoint" in entry:
            from .spec import SpecError
            raise SpecError(f"{spec.path}: space[{i}]: a search proposes points to train; "
                            "checkpoint entries belong in a grid sweep")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(sweep.out / "optuna.journal")))
    study = optuna.create_study(
        study_name=spec.name, storage=storage, load_if_exists=True,
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.NSGAIISampler(seed=spec.search["seed"]))
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)      # left by a stopped search
    finished = len(study.get_trials(deepcopy=False,
                                    states=(TrialState.COMPLETE, TrialState.FAIL)))
    budget = spec.search["trials"] - finished
    in_flight: dict[str, list[int]] = {}                 # point key -> trial numbers

    def answer(key: str, numbers: list[int]) -> None:
        rec = sweep.store.get("eval", key)
        for n in numbers:
            if rec and rec["status"] == "ok" and rec.get("quality") is not None:
                study.tell(n, [rec["quality"], rec["lut"]])
            else:
                study.tell(n, state=TrialState.FAIL)

    def refill() -> None:
        nonlocal budget
        while budget > 0 and len(in_flight) < sweep.executor.workers:
            trial = study.ask()
            budget -= 1
            point = _suggest(trial, spec)
            trial.set_user_attr("point", point.key)
            trial.set_user_attr("label", point.label)
            if point.key in in_flight:
                in_flight[point.key].append(trial.number)
            elif sweep.submit(point):
                in_flight[point.key] = [trial.number]
            else:                                        # evaluated before
                answer(spec.evaluation_key(point, board), [trial.number])

    def done(task, result) -> None:
        sweep.record(task, result)
        point = task.args[1]
        answer(spec.evaluation_key(point, board), in_flight.pop(point.key, []))

    refill()
    drain(sweep.executor, done, sweep.status, refill)
    sweep.log(f"search: {len(study.trials)} trials in {sweep.out / 'optuna.journal'}; "
              f"{len(study.best_trials)} on the {board} front")
