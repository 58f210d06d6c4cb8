"""The command-line layer: one module per command, each with ``add_arguments(parser)``
and ``run(args) -> int``.

A command parses and checks its arguments, resolves what they name once (config,
model bundle, target speaker, output paths), calls the library (``vawgan.*``, which
computes and returns results but never prints) and prints the outcome. User errors
are raised as :class:`vawgan.errors.VawganError` and shown by :mod:`vawgan.cli` as one
line with exit status 1. :mod:`vawgan.cli` imports only the module of the command
being run (``vawgan-convert`` never imports torch).

* ``vawgan extract``: :mod:`vawgan.commands.extract`
* ``vawgan stats``: :mod:`vawgan.commands.stats`
* ``vawgan f0-range``: :mod:`vawgan.commands.f0_range`
* ``vawgan analysis-synthesis``: :mod:`vawgan.commands.analysis_synthesis`
* ``vawgan train``: :mod:`vawgan.commands.train`
* ``vawgan convert``: :mod:`vawgan.commands.convert`
* ``vawgan evaluate``: :mod:`vawgan.commands.evaluate`
* ``vawgan report``: :mod:`vawgan.commands.report`
* ``vawgan-convert``: :mod:`vawgan.commands.convert_one`
"""
