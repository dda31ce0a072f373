"""One module per `specdeck` sub-command.

Each module defines ``NAME`` (the sub-command), ``HELP`` (one line), ``DESCRIPTION`` (what it does, with an
example), ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code). ``console.cli`` lists them.
Heavy imports belong inside ``run`` so that ``specdeck --help`` stays fast.
"""
