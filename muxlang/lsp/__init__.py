"""``muxlang lsp``: a language server for workflow and config files (SPEC 14).

Everything it shows comes from the sources ``muxlang validate`` uses: the rule
table, the pydantic models of the files and the filters' docstrings. pygls and
lsprotocol are imported only here, and this package only by ``muxlang lsp``.
"""
