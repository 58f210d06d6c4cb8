"""Griffe extension for the API pages: the RST markup of vawgan's docstrings as Markdown.

The docstrings follow the numpy style (sections are parsed by griffe) but use a few
reStructuredText constructs that Markdown does not know. Before mkdocstrings renders
a docstring, this extension rewrites

* ``.. math::`` blocks into ``$$ ... $$`` (rendered by pymdownx.arithmatex + MathJax);
* ``:math:`x``` into ``$x$``;
* ``:func:`x```, ``:class:`~x```, ``:mod:``, ``:meth:``, ``:attr:`` ... into ```x```;
* a paragraph ending in ``::`` (an RST literal block follows) into one ending in ``:``.

Registered in ``mkdocs.yml`` (mkdocstrings python handler, ``extensions``). Only the
rendered site changes; the docstrings in the code stay as they are.
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc|const):`~?([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_MATH_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")


def rst_to_markdown(text: str) -> str:
    """Rewrite the RST constructs listed in the module docstring."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = _MATH_DIRECTIVE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = len(m.group(1))
        body = [m.group(2).strip()] if m.group(2).strip() else []
        i += 1
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) > indent):
            if lines[i].strip():
                body.append(lines[i].strip())
            i += 1
        pad = " " * indent
        out += ["", pad + "$$"] + [pad + b for b in body] + [pad + "$$", ""]
    text = "\n".join(out)
    text = _MATH_ROLE.sub(lambda mm: f"${mm.group(1)}$", text)
    text = _ROLE.sub(lambda mm: f"`{mm.group(1)}`", text)
    return re.sub(r"(\S)::$", r"\1:", text, flags=re.M)


class RstToMarkdown(griffe.Extension):
    """Apply :func:`rst_to_markdown` to every docstring griffe loads."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
