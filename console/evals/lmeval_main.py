"""``python -m console.evals.lmeval_main run …``: lm-eval's own command line (``python -m lm_eval run …``, same
arguments, same files), except that lm-eval indexes only the ``--include_path`` folder, not its 800-odd built-in
task folders. specdeck runs it this way for its own tasks (the toy sets, any ``.jsonl``), whose one YAML sits in
the run's ``tasks/`` folder and needs nothing built in.

Why: lm-eval 0.4.13's command line always builds ``TaskManager(include_path=…)``
(``lm_eval/config/evaluate_config.py`` ``process_tasks``), and ``TaskManager.__init__``
(``lm_eval/tasks/manager.py``) indexes ``lm_eval/tasks/`` first unless ``include_defaults=False``, which the
command line cannot say. That index is 14 s of a 24 s five-item smoke on a quiet 2-core box (its log lines
"Using default fewshot_as_multiturn" and "Including path" are 14 s apart), paid again by every smoke and full
run of every serving config.

The command line looks ``TaskManager`` up in ``lm_eval.tasks`` when it runs, so a subclass put there with the
other default is what it builds. If an lm-eval without ``include_defaults`` is installed, nothing is changed and
the run is as slow as plain ``lm_eval``.
"""

from __future__ import annotations

import inspect


def index_only_include_path() -> bool:
    """Make lm-eval's TaskManager default to ``include_defaults=False``; False when this lm-eval cannot."""
    import lm_eval.tasks as tasks

    base = tasks.TaskManager
    if "include_defaults" not in inspect.signature(base.__init__).parameters:
        return False

    class IncludePathOnly(base):  # type: ignore[misc, valid-type]
        """lm-eval's TaskManager indexing only the include_path folder unless told otherwise."""

        def __init__(self, *args: object, include_defaults: bool = False, **kwargs: object) -> None:
            super().__init__(*args, include_defaults=include_defaults, **kwargs)  # type: ignore[arg-type]

    tasks.TaskManager = IncludePathOnly  # type: ignore[misc]
    return True


def main() -> None:
    index_only_include_path()
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
