"""Command-line entry points: ``vawgan <command>`` and ``vawgan-convert``.

Each command lives in its own module of :mod:`vawgan.commands`, which provides
``add_arguments(parser)`` and ``run(args) -> int``. Only the module of the command
being run is imported, so ``vawgan extract`` never pays for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import List, Optional

from . import __version__
from .errors import VawganError

#: command name -> (module, one-line help)
COMMANDS = {
    "extract": ("vawgan.commands.extract", "extract WORLD features of a corpus into a dump"),
    "stats": ("vawgan.commands.stats",
              "per-speaker statistics (mcep, log-f0, GV, MS) of a dump"),
    "f0-range": ("vawgan.commands.f0_range",
                 "propose a speaker's f0 range from its f0 histogram"),
    "analysis-synthesis": ("vawgan.commands.analysis_synthesis",
                           "resynthesize through the features (vocoder floor)"),
    "train": ("vawgan.commands.train", "train the VAE and the VAW-GAN"),
    "enroll": ("vawgan.commands.enroll",
               "add a target speaker to a model from a few of their recordings"),
    "convert": ("vawgan.commands.convert", "convert many files with a model bundle"),
    "evaluate": ("vawgan.commands.evaluate", "objective evaluation of converted speech"),
    "report": ("vawgan.commands.report",
               "over-smoothing report: GV, MS, scatter plots, metric table"),
}


def _format_warning(message, category, filename, lineno, line=None):  # one-line warnings
    return f"warning: {message}\n"


def _setup_warnings() -> None:
    # file names that are not valid UTF-8 print as escapes instead of crashing a print
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    warnings.formatwarning = _format_warning
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _run(prog: str, module_name: str, argv: List[str], description: str) -> int:
    """Build ``prog``'s parser from ``module.add_arguments``, call ``module.run(args)``.

    User errors (:class:`VawganError`) and failures of the system (an OSError: a file
    that cannot be read or written, no space left) become one line on stderr and exit
    code 1.
    """
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=prog, description=description)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(module.run(args) or 0)
    except VawganError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"{prog}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def main(argv: Optional[List[str]] = None) -> int:
    """``vawgan <command> [options]``."""
    _setup_warnings()
    argv = list(sys.argv[1:] if argv is None else argv)
    width = max(len(c) for c in COMMANDS)
    listing = "\n".join(f"  {name:<{width}}  {hlp}" for name, (_, hlp) in COMMANDS.items())
    usage = (f"usage: vawgan <command> [options]\n\ncommands:\n{listing}\n\n"
             "Run 'vawgan <command> --help' for a command's options.")
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"vawgan {__version__}")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"vawgan: error: unknown command {name!r}\n\n{usage}", file=sys.stderr)
        return 2
    module_name, hlp = COMMANDS[name]
    return _run(f"vawgan {name}", module_name, argv[1:], hlp)


def convert_main(argv: Optional[List[str]] = None) -> int:
    """``vawgan-convert in.wav out.wav [options]``."""
    _setup_warnings()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        print(f"vawgan-convert {__version__}")
        return 0
    from .commands.convert_one import DESCRIPTION

    return _run("vawgan-convert", "vawgan.commands.convert_one", argv, DESCRIPTION)


def convert_script() -> None:  # pragma: no cover - the console-script entry point
    """``vawgan-convert`` as installed: :func:`convert_main`, then exit without teardown.

    With torch loaded, the interpreter's normal shutdown costs about 0.5 s, as much as
    a third of a whole conversion (benchmarks/bench_convert.py). The output is already
    written (atomically) when convert_main returns, so the process flushes its streams
    and leaves with ``os._exit``.
    """
    import os

    rc = convert_main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
