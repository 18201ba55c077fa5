"""The one way the CLI prints: text from inputs, settings and other systems is data, never markup.

Customer and column names, folder and file names, setting values and a receiver's error body reach the
terminal inside messages, tables and progress bars. Printed as rich markup, `[/x]` crashes the command,
`[black on black]` hides text and `[link=...]` emits a hyperlink; printed raw, an escape sequence (ESC [ …,
OSC 8) can recolour, move the cursor or link. So the consoles here never parse markup in a string (a
call site cannot opt back in), and every string is shown with its control characters made visible
(`\\x1b`); our own colours are `Text` spans built by `styled`, around data that stays data.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.progress import Task, TextColumn
from rich.text import Text

# C0 controls but tab and line feed, DEL and C1 controls (ESC, CSI, OSC, BEL, CR, backspace...), and the
# bidirectional embeddings, overrides and isolates that reorder what a terminal shows around them
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with every control character written as an escape (`\\x1b`, `\\u202e`), so a value can
    neither drive the terminal nor hide or reorder the text printed around it; tabs and line breaks
    stay (messages span lines)."""
    return CONTROL_CHARACTERS.sub(_escaped, text)


class DataConsole(Console):
    """A rich console for which every string is data: no markup, no emoji codes, no highlighting, and
    control characters made visible. This covers `print(str)`, table cells and titles given as `str`
    (rich renders them through `render_str`)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **options)

    def render_str(self, text: str, **options: Any) -> Text:
        """Always plain: a caller's `markup=True` is ignored, so no call site can turn data into markup."""
        options.update(markup=False, emoji=False)
        return super().render_str(visible(text), **options)


def styled(*parts: str | tuple[str, str]) -> Text:
    """One line of our own styling around data: `styled(("error:", "bold red"), " ", message)`.
    A `(text, style)` pair is styled, a bare string is plain; both are shown literally (made visible)."""
    return Text.assemble(*((visible(part[0]), part[1]) if isinstance(part, tuple) else visible(part)
                           for part in parts))


class DataColumn(TextColumn):
    """A progress-bar column whose text (a file label, a model name) is data: formatted, then shown
    literally. rich's own `TextColumn` parses the formatted text as markup, fields included."""

    def __init__(self, text_format: str, style: str = "", **options: Any) -> None:
        super().__init__(text_format, style=style, markup=False, **options)

    def render(self, task: Task) -> Text:
        return Text(visible(self.text_format.format(task=task)), style=self.style, justify=self.justify)
