"""The labeling screen of ``newsevents annotate``: draws a :class:`~newsevents.annotate.Session`
and maps single keys to it. Standard-library :mod:`curses` only, so it adds no dependency.

All state and every file write live in the session; this module only draws and reads keys.
"""

from __future__ import annotations

import contextlib
import curses
import locale
import signal
import textwrap
from collections.abc import Iterator
from types import FrameType

from newsevents.annotate import QueueItem, Session

# Label toggles: digits, then letters that no command uses (s, u and q are commands).
_TOGGLE_KEYS = "123456789abcdefghijklmnoprtvwxyz"
_ENTER = ("\n", "\r", curses.KEY_ENTER)
_CONTEXT_LINES = 2  # headline and neighbours are cut to this many lines, the sentence never is

Line = tuple[str, int]  # text and curses attributes


def toggle_keys(n_labels: int) -> list[str]:
    """The key that toggles each label, in schema order."""
    if n_labels > len(_TOGGLE_KEYS):
        raise ValueError(f"the screen has keys for {len(_TOGGLE_KEYS)} labels, not {n_labels}")
    return list(_TOGGLE_KEYS[:n_labels])


def help_line(n_labels: int) -> str:
    keys = toggle_keys(n_labels)
    span = keys[0] if n_labels == 1 else f"{keys[0]}-{keys[-1]}"
    return f" {span} toggle label · Enter accept · s skip · u undo · q quit "


def _wrap(text: str, width: int, indent: str = "", max_lines: int | None = None) -> list[str]:
    lines = textwrap.wrap(text, max(width - len(indent), 10)) or [""]
    if max_lines is not None and len(lines) > max_lines:
        lines = [*lines[:max_lines - 1], lines[max_lines - 1][:-1] + "…"]
    return [indent + line for line in lines]


class Screen:
    """One curses window showing the session's current sentence."""

    def __init__(self, stdscr: curses.window, session: Session):
        self.stdscr = stdscr
        self.session = session
        self.names = session.schema.names
        self.keys = dict(zip(toggle_keys(len(self.names)), self.names, strict=True))
        self.message = "Labels start at the model's suggestion (*); toggle, then Enter to save."

    def run(self) -> None:
        """Draw and handle keys until the user quits."""
        while True:
            self.draw()
            if not self.handle(self.stdscr.get_wch()):
                return

    def handle(self, key: str | int) -> bool:
        """Apply one key press; False means quit."""
        session = self.session
        if key in ("q", "Q"):
            return False
        if key == curses.KEY_RESIZE:
            return True
        if key == "u":
            decision = session.undo()
            self.message = ("nothing to undo" if decision is None else
                            "undone: back to the previous sentence" +
                            (" (its label was removed from the file)" if decision.labels is not None
                             else ""))
        elif session.current is None:
            self.message = "The queue is finished: u to undo, q to quit."
        elif key in _ENTER:
            labels = session.accept()
            self.message = f"saved: {', '.join(labels) or 'no label'}"
        elif key in ("s", "S"):
            session.skip()
            self.message = "skipped (not saved)"
        elif isinstance(key, str) and key.lower() in self.keys:
            session.toggle(self.keys[key.lower()])
            self.message = ""
        else:
            self.message = f"unknown key {key!r}: see the line at the bottom"
        return True

    # ------------------------------------------------------------------- drawing

    def draw(self) -> None:
        height, width = self.stdscr.getmaxyx()
        self.stdscr.erase()
        lines = list(self._lines(max(width - 1, 20)))
        for y, (text, attr) in enumerate(lines[:max(height - 1, 0)]):
            self._put(y, text, attr)
        # The help line is drawn last, on the bottom row, so it shows however small the window.
        self._put(height - 1, help_line(len(self.names)).ljust(width - 1), curses.A_REVERSE)
        self.stdscr.refresh()

    def _put(self, y: int, text: str, attr: int) -> None:
        width = self.stdscr.getmaxyx()[1]
        # A cell off-screen or a character the terminal cannot show: skip it, don't crash.
        with contextlib.suppress(curses.error, UnicodeEncodeError):
            self.stdscr.addnstr(y, 0, text, max(width - 1, 0), attr)

    def _lines(self, width: int) -> Iterator[Line]:
        session, item = self.session, self.session.current
        progress = (f"{session.position + 1} of {len(session.items)}" if item
                    else f"all {len(session.items)} done")
        yield (f"newsevents annotate · {progress} · {session.n_accepted} saved, "
               f"{session.n_skipped} skipped · {session.store.path}"), curses.A_BOLD
        if item is None:
            yield "", 0
            yield "The queue is finished: every decision is saved.", 0
            yield "Press u to undo the last decision, q to quit.", 0
        else:
            yield from self._sentence_lines(item, width)
            yield "", 0
            yield from self._label_lines(item)
        yield "", 0
        yield self.message, curses.A_BOLD

    def _sentence_lines(self, item: QueueItem, width: int) -> Iterator[Line]:
        sent = item.sentence
        yield (f"article {sent.article_id or '?'} · sentence {sent.index + 1} · "
               f"uncertainty {item.uncertainty:.2f}"), curses.A_DIM
        yield "", 0
        if item.headline:
            for text in _wrap(f"Headline: {item.headline}", width, "", _CONTEXT_LINES):
                yield text, curses.A_DIM
        else:
            yield "Headline: (this sentence is the headline)", curses.A_DIM
        if item.previous and item.previous != item.headline:
            for text in _wrap(item.previous, width, "    ", _CONTEXT_LINES):
                yield text, curses.A_DIM
        for i, text in enumerate(_wrap(sent.text, width, "  > ")):
            yield (text if i == 0 else "    " + text[4:]), curses.A_BOLD
        if item.next:
            for text in _wrap(item.next, width, "    ", _CONTEXT_LINES):
                yield text, curses.A_DIM

    def _label_lines(self, item: QueueItem) -> Iterator[Line]:
        yield "Labels (* = model suggestion, score):", 0
        pad = max(len(n) for n in self.names)
        definitions = {label.name: label.definition for label in self.session.schema.labels}
        for key, name in self.keys.items():
            on = name in self.session.chosen
            score = item.scores.get(name)
            shown = "  -  " if score is None else f"{score:5.2f}"
            mark = "*" if name in item.suggested else " "
            yield (f"  {key} [{'x' if on else ' '}] {name:<{pad}} {shown}{mark}  "
                   f"{definitions[name]}"), curses.A_BOLD if on else 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_screen(session: Session) -> bool:
    """Run the labeling screen until the user quits; True if it was interrupted.

    Ctrl-C, SIGTERM and SIGHUP (terminal closed) end it like a quit: every decision is already
    on disk, and curses restores the terminal on the way out.
    """
    handled = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {sig: signal.signal(sig, _interrupt) for sig in handled}
    locale.setlocale(locale.LC_ALL, "")  # so curses draws non-ASCII text as UTF-8
    try:
        curses.wrapper(_main, session)
    except KeyboardInterrupt:
        return True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return False


def _main(stdscr: curses.window, session: Session) -> None:
    with contextlib.suppress(curses.error):  # some terminals cannot hide the cursor
        curses.curs_set(0)
    Screen(stdscr, session).run()
