"""Whether an insertion lands in code a shell or an interpreter runs (MUX040).

Quoting keeps a value one argument; some arguments are themselves programs:
the script of ``sh -c``, whatever ``eval`` gets, ``python -c``'s code,
``awk``'s program, ``ssh``'s remote command, or the command name itself.
:func:`code_word` looks at the words of the simple command an insertion is in
(read by :class:`~muxlang.template.shell_lexer.ShellLexer` from the literal
text) and names what would run it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["code_word"]

#: commands that run their operands as another command; options they take a value for
_WRAPPERS: Final[Mapping[str, frozenset[str]]] = {
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}),
    "env": frozenset({"-u", "-C", "-S"}),
    "nohup": frozenset(),
    "nice": frozenset({"-n"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "command": frozenset(),
    "exec": frozenset({"-a"}),
    "time": frozenset(),
    "xargs": frozenset({"-I", "-n", "-P", "-d", "-L", "-s", "-E", "-a"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
}
_SHELLS: Final = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "busybox"})
#: interpreters and the options whose value is a program
_INTERPRETERS: Final[Mapping[str, frozenset[str]]] = {
    "python": frozenset({"-c"}),
    "python3": frozenset({"-c"}),
    "python2": frozenset({"-c"}),
    "pypy": frozenset({"-c"}),
    "pypy3": frozenset({"-c"}),
    "node": frozenset({"-e", "--eval", "-p", "--print"}),
    "nodejs": frozenset({"-e", "--eval", "-p", "--print"}),
    "deno": frozenset({"eval"}),
    "perl": frozenset({"-e", "-E"}),
    "ruby": frozenset({"-e"}),
    "php": frozenset({"-r"}),
    "lua": frozenset({"-e"}),
    "Rscript": frozenset({"-e"}),
    "osascript": frozenset({"-e"}),
    "pwsh": frozenset({"-c", "-Command", "-command"}),
}
#: programs whose first operand is a program they run
_PROGRAM_FIRST: Final = frozenset({"eval", "awk", "gawk", "mawk", "nawk", "sed", "trap"})


#: `NAME=` in front of a command: an assignment, not the command
_ASSIGNMENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
#: words after which the next word is a command again
_KEYWORDS: Final = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{"})


def code_word(words: list[str]) -> str | None:
    """Whether the last word of a simple command (the one being inserted into) is code."""
    i = 0
    # assignments, keywords and wrappers in front of the command
    while i < len(words) - 1:
        word = words[i]
        if _ASSIGNMENT.match(word) or word in _KEYWORDS:
            i += 1
            continue
        name = word.rsplit("/", 1)[-1]
        if name in _WRAPPERS:
            takes = _WRAPPERS[name]
            i += 1
            while i < len(words) - 1 and (words[i].startswith("-") or "=" in words[i]):
                i += 2 if words[i] in takes else 1
            if name == "timeout" and i < len(words) - 1:
                i += 1  # the duration
            continue
        break
    if i == len(words) - 1:
        return None if _ASSIGNMENT.match(words[i]) else "the command to run"
    command = words[i].rsplit("/", 1)[-1].replace("\0", "")
    rest = words[i + 1 :]
    target = len(rest) - 1
    if command in _SHELLS:
        seen_c = False
        for j, word in enumerate(rest[:target]):
            if word.startswith("-") and not word.startswith("--") and "c" in word:
                seen_c = True
            elif not word.startswith("-"):
                if seen_c:
                    return None  # past the script: $0, $1…
                if j == 0 or rest[j - 1].startswith("-") is False:
                    return None  # a script file's operands
        return f"`{command} -c`" if seen_c else None
    if command in _INTERPRETERS:
        options = _INTERPRETERS[command]
        if target >= 1 and rest[target - 1] in options:
            return f"`{command} {rest[target - 1]}`"
        return None
    if command in _PROGRAM_FIRST:
        if command in ("eval", "trap"):
            return f"`{command}`"
        if target >= 1 and rest[target - 1] in ("-e", "--expression"):
            return f"`{command} {rest[target - 1]}`"
        operands = [w for w in rest[:target] if not w.startswith("-")]
        if not operands and not any(w in ("-e", "-f", "--expression", "--file") for w in rest):
            return f"the program of `{command}`"
        return None
    if command == "ssh":
        operands = [w for w in rest[:target] if not w.startswith("-")]
        if operands:
            return "the remote command of `ssh`"
    return None
