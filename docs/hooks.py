"""MkDocs hook: pages generated from the code at build time, so they cannot drift.

* ``<!-- gen:cli -->`` in a page becomes the reference of every ``vawgan`` command and
  of ``vawgan-convert``, built from the very argparse parsers the commands use
  (``vawgan.cli.COMMANDS`` and each module's ``add_arguments``).
* ``<!-- gen:config -->`` becomes the table of every configuration key with its type,
  default and ``#:`` comment, from the dataclasses of :mod:`vawgan.config`.
* ``<!-- gen:readme-two-commands -->`` becomes the section "The two commands" of the
  README, verbatim; ``<!-- gen:pretrained-readme -->`` becomes
  ``vawgan/pretrained/README.md`` (without its title).

Registered in ``mkdocs.yml`` (``hooks: [docs/hooks.py]``). Also a script:
``python docs/hooks.py cli|config|readme|pretrained`` prints that page part as Markdown.
"""

from __future__ import annotations

import argparse
import html
import importlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 88  # usage lines are wrapped at this width, whatever the terminal


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, width=WIDTH, max_help_position=32)


def _cell(text: str) -> str:
    """Text for a Markdown table cell: HTML-escaped, pipes and newlines made safe."""
    return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")


def _rst(text: str) -> str:
    """RST inline markup of the docstrings (``code``, :func:`x`) as Markdown."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _option_row(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(f"`{s}`" for s in action.option_strings)
        if action.nargs != 0:
            metavar = action.metavar or (
                "{" + ",".join(map(str, action.choices)) + "}" if action.choices
                else action.dest.upper())
            if isinstance(metavar, tuple):
                metavar = " ".join(metavar)
            elif action.nargs == "+":
                metavar = f"{metavar} [{metavar} ...]"
            elif action.nargs == "*":
                metavar = f"[{metavar} ...]"
            elif action.nargs == "?":
                metavar = f"[{metavar}]"
            elif isinstance(action.nargs, int) and action.nargs > 1:
                metavar = " ".join([metavar] * action.nargs)
            names = ", ".join(f"`{s} {metavar}`" for s in action.option_strings)
    else:
        names = f"`{action.metavar or action.dest}`"
    if not action.option_strings or action.required:
        default = "required"
    elif action.nargs == 0:  # a flag
        default = ""
    elif action.default is None or action.default is argparse.SUPPRESS:
        default = ""
    else:
        default = f"`{action.default}`"
    choices = ""
    if action.choices and action.nargs != 0:
        choices = " (one of " + ", ".join(f"`{c}`" for c in action.choices) + ")"
    help_text = "" if action.help is argparse.SUPPRESS else _cell(action.help or "")
    return f"| {names} | {default} | {help_text}{choices} |"


def parser_markdown(parser: argparse.ArgumentParser, heading: str, anchor: str,
                    api_module: str) -> str:
    """One command: its usage block and a table of its arguments."""
    lines = [f"## {heading} {{#{anchor}}}", ""]
    if parser.description:
        lines += [parser.description[0].upper() + parser.description[1:] + ".", ""]
    usage = parser.format_usage().strip()
    lines += ["```text", usage, "```", ""]
    lines += ["| argument | default | meaning |", "| --- | --- | --- |"]
    for action in parser._actions:  # argparse keeps the arguments in definition order
        if isinstance(action, argparse._HelpAction):
            continue
        lines.append(_option_row(action))
    lines += ["", f"Implemented in [`{api_module}`][{api_module}].", ""]
    return "\n".join(lines)


def cli_markdown() -> str:
    """The reference of ``vawgan <command>`` (every command) and ``vawgan-convert``."""
    from vawgan import cli
    from vawgan.commands import convert_one

    out = []
    names = ", ".join(f"`{n}`" for n in cli.COMMANDS)
    out += ["`vawgan <command> [options]` runs one of the commands " + names + ";",
            "`vawgan --help` lists them, `vawgan --version` prints the version, and",
            "`vawgan <command> --help` shows the options below. Each command imports only its",
            "own module (`vawgan extract` never imports torch). Errors are one line,",
            "`vawgan <command>: error: ...`, with exit status 1 (2 for a usage error).", ""]
    out += ["| command | what |", "| --- | --- |"]
    out.append("| [`vawgan-convert`](#vawgan-convert) | " + _cell(convert_one.DESCRIPTION) + " |")
    for name, (_, hlp) in cli.COMMANDS.items():
        out.append(f"| [`vawgan {name}`](#cmd-{name}) | {_cell(hlp)} |")
    out.append("")
    parser = argparse.ArgumentParser(prog="vawgan-convert",
                                     description=convert_one.DESCRIPTION,
                                     formatter_class=_formatter)
    convert_one.add_arguments(parser)
    out.append(parser_markdown(parser, "vawgan-convert", "vawgan-convert",
                               "vawgan.commands.convert_one"))
    for name, (module_name, hlp) in cli.COMMANDS.items():
        module = importlib.import_module(module_name)
        parser = argparse.ArgumentParser(prog=f"vawgan {name}", description=hlp,
                                         formatter_class=_formatter)
        module.add_arguments(parser)
        out.append(parser_markdown(parser, f"vawgan {name}", f"cmd-{name}", module_name))
    return "\n".join(out)


def _field_comments(cls) -> dict:
    """``#:`` comments of a dataclass's fields (trailing, or on the lines just above)."""
    import inspect

    out, pending = {}, []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        m = re.match(r"\s+(\w+)\s*:[^=]+(?:=.*?)?(?:#:\s*(.*))?$", line)
        if m and not stripped.startswith(("def ", "return", "raise", "if ", "for ")):
            comment = m.group(2) or " ".join(pending)
            if comment:
                out[m.group(1)] = comment
        pending = []
    return out


def config_markdown() -> str:
    """Every configuration key: section, name, type, default, meaning."""
    import dataclasses
    import typing

    from vawgan.config import Config

    hints = typing.get_type_hints(Config)
    out = []
    for top in dataclasses.fields(Config):
        cls = hints[top.name]
        out += [f"## `{top.name}` {{#{top.name}}}", ""]
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        out += [_rst(" ".join(doc.split())), ""]
        out += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        comments = _field_comments(cls)
        types = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            default = (f.default if f.default is not dataclasses.MISSING
                       else f.default_factory() if f.default_factory is not dataclasses.MISSING
                       else None)
            tp = str(types[f.name]).replace("typing.", "")
            tp = re.sub(r"<class '(\w+)'>", r"\1", tp)
            out.append(f"| `{top.name}.{f.name}` | `{tp}` | `{default!r}` | "
                       f"{_cell(comments.get(f.name, ''))} |")
        out.append("")
    return "\n".join(out)


def readme_two_commands() -> str:
    """The README's section "The two commands" (without its heading), verbatim."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## The two commands\n(.*?)(?=^## )", text, flags=re.S | re.M)
    if not m:
        raise RuntimeError("README.md has no section '## The two commands'")
    return m.group(1).strip() + "\n"


def pretrained_readme() -> str:
    """``vawgan/pretrained/README.md``, verbatim but for its title (the page has one)."""
    text = (ROOT / "vawgan" / "pretrained" / "README.md").read_text(encoding="utf-8")
    return re.sub(r"\A# [^\n]*\n", "", text).strip() + "\n"


_MARKERS = {
    "<!-- gen:cli -->": cli_markdown,
    "<!-- gen:readme-two-commands -->": readme_two_commands,
    "<!-- gen:config -->": config_markdown,
    "<!-- gen:pretrained-readme -->": pretrained_readme,
}


def on_page_markdown(markdown: str, **kwargs) -> str:  # mkdocs hook
    for marker, make in _MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "cli"
    print({"cli": cli_markdown, "config": config_markdown, "readme": readme_two_commands,
           "pretrained": pretrained_readme}[what]())
