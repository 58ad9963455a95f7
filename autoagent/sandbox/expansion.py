"""Docker's variable expansion for Dockerfile words (ENV, ARG, WORKDIR, USER, COPY, FROM).

The `dockerfile` package (Docker's own parser) splits a Dockerfile into words and
leaves quotes and variables alone; this is the rest of what `docker build` does.

The rules of BuildKit's shell lexer: `$V`, `${V}`, `${V:-word}`, `${V-word}`,
`${V:+word}`, `${V+word}`, `${V:?message}`, `${V?message}`, `${V#glob}`,
`${V##glob}`, `${V%glob}`, `${V%%glob}`; single quotes keep everything literal,
double quotes still expand; a backslash escapes the next character (inside double
quotes only `"`, `$` and `\\`); the word inside `${...}` is expanded in turn; an
unset variable is empty. `RUN`, `CMD` and `ENTRYPOINT` are left to the shell.
"""

from __future__ import annotations

import fnmatch
import re

ESCAPE = "\\"
_NAME_CHARS = re.compile(r"[A-Za-z0-9_]")


class ExpansionError(ValueError):
    """A word Docker would refuse: `${V:?message}` on an unset V, or a bad `${...}`."""


def expand(word: str, variables: dict[str, str]) -> str:
    """One word with Docker's quote removal and variable expansion."""
    return _Lexer(word, variables).until(None)


class _Lexer:
    def __init__(self, text: str, variables: dict[str, str]) -> None:
        self.text, self.variables, self.index = text, variables, 0

    def peek(self) -> str:
        return self.text[self.index] if self.index < len(self.text) else ""

    def next(self) -> str:
        char = self.peek()
        self.index += 1
        return char

    def until(self, stop: str | None) -> str:
        """Process up to (and consume) `stop`, or to the end when `stop` is None."""
        out: list[str] = []
        while self.index < len(self.text):
            char = self.next()
            if char == stop:
                return "".join(out)
            if char == "'":
                out.append(self._single_quoted())
            elif char == '"':
                out.append(self._double_quoted())
            elif char == "$":
                out.append(self._dollar())
            elif char == ESCAPE:
                out.append(self.next())  # at the very end a lone backslash vanishes
            else:
                out.append(char)
        if stop is not None:
            raise ExpansionError(f"missing {stop!r} in {self.text!r}")
        return "".join(out)

    def _single_quoted(self) -> str:
        end = self.text.find("'", self.index)
        if end < 0:
            raise ExpansionError(f"unmatched ' in {self.text!r}")
        literal, self.index = self.text[self.index : end], end + 1
        return literal

    def _double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self.index >= len(self.text):
                raise ExpansionError(f'unmatched " in {self.text!r}')
            char = self.next()
            if char == '"':
                return "".join(out)
            if char == "$":
                out.append(self._dollar())
            elif char == ESCAPE and self.peek() in ('"', "$", ESCAPE):
                out.append(self.next())
            else:
                out.append(char)

    def _name(self) -> str:
        start = self.index
        while self.peek() and _NAME_CHARS.match(self.peek()):
            self.index += 1
        return self.text[start : self.index]

    def _dollar(self) -> str:
        if self.peek() != "{":
            name = self._name()
            return self.variables.get(name, "") if name else "$"
        self.index += 1
        name = self._name()
        if not name:
            raise ExpansionError(f"bad substitution in {self.text!r}")
        value = self.variables.get(name)
        operator = self.next()
        if operator == "}":
            return value or ""
        if operator == ":":
            operator += self.next()
        if operator in ("#", "%") and self.peek() == operator:
            operator += self.next()
        if operator not in (":-", "-", ":+", "+", ":?", "?", "#", "##", "%", "%%"):
            raise ExpansionError(f"unsupported modifier ${{{name}{operator}...}} in {self.text!r}")
        word = self.until("}")
        unset = value is None or (operator.startswith(":") and value == "")
        if operator in (":-", "-"):
            return word if unset else value
        if operator in (":+", "+"):
            return "" if unset else word
        if operator in (":?", "?"):
            if unset:
                raise ExpansionError(f"{name}: {word or 'is not set'}")
            return value
        return _trim(value or "", word, operator)


def _trim(value: str, pattern: str, operator: str) -> str:
    """`${V#p}` shortest prefix, `##` longest; `%` shortest suffix, `%%` longest."""
    cuts = range(len(value) + 1)
    if operator.startswith("#"):
        order = reversed(cuts) if operator == "##" else cuts
        for cut in order:
            if fnmatch.fnmatchcase(value[:cut], pattern):
                return value[cut:]
    else:
        order = cuts if operator == "%%" else reversed(cuts)
        for cut in order:
            if fnmatch.fnmatchcase(value[cut:], pattern):
                return value[:cut]
    return value
