"""A real editor: Neovim, headless, opens a workflow with its built-in LSP client
running `muxlang lsp`, and reads back the diagnostics it shows (Neovim turns the
server's UTF-16 columns into byte columns, so non-ASCII text checks both ends)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lsp_support import project

SCRIPT = """\
local file, root, out = os.getenv("MUX_FILE"), os.getenv("MUX_ROOT"), os.getenv("MUX_OUT")
vim.cmd("edit " .. vim.fn.fnameescape(file))
local config = {
  name = "muxlang",
  cmd = { os.getenv("MUX_PYTHON"), "-m", "muxlang", "lsp" },
  root_dir = root,
}
if vim.lsp.start then
  vim.lsp.start(config)
else  -- Neovim 0.7
  vim.lsp.buf_attach_client(0, vim.lsp.start_client(config))
end
local ok = vim.wait(60000, function() return #vim.diagnostic.get(0) >= 2 end, 50)
local found = {}
for _, d in ipairs(vim.diagnostic.get(0)) do
  local code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
  table.insert(found, {
    lnum = d.lnum, col = d.col, end_col = d.end_col, code = code,
    severity = d.severity, message = d.message, source = d.source,
  })
end
vim.fn.writefile({ vim.fn.json_encode({ ok = ok, diagnostics = found }) }, out)
vim.cmd("qa!")
"""

WORKFLOW = """\
name = "révision"

[[steps]]
name = "diff"
type = "shell"
run = "git diff"

[[steps]]
name = "ask"
type = "query"
backend = "claude"
prompt = "Résumé 😀 {{ steps.dif.output }}"
timeout = "soon"
"""


def test_neovim_shows_the_servers_diagnostics(tmp_path: Path) -> None:
    nvim = shutil.which("nvim")
    assert nvim is not None, "Neovim is required (Debian package `neovim`; .ci/run installs it)"
    root = project(tmp_path)
    path = root / ".muxlang" / "workflows" / "review.toml"
    path.write_text(WORKFLOW, encoding="utf-8")
    script, out = tmp_path / "attach.lua", tmp_path / "out.json"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {
        **os.environ,
        "HOME": str(root),
        "XDG_CONFIG_HOME": str(root / ".xdg"),
        "XDG_DATA_HOME": str(root / ".xdg-data"),
        "XDG_STATE_HOME": str(root / ".xdg-state"),
        "MUX_FILE": str(path),
        "MUX_ROOT": str(root),
        "MUX_OUT": str(out),
        "MUX_PYTHON": sys.executable,
    }
    env.pop("MUXLANG_CONFIG", None)
    done = subprocess.run(
        [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {script}"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.exists(), done.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["ok"], result
    found = sorted((d["code"], d["lnum"], d["col"], d["end_col"]) for d in result["diagnostics"])
    line = WORKFLOW.splitlines()[11]
    start = len(line[: line.index("dif.output")].encode("utf-8"))  # Neovim counts bytes
    timeout_line = WORKFLOW.splitlines()[12]
    assert found == [
        ("MUX003", 12, timeout_line.index('"soon"'), len(timeout_line)),
        ("MUX021", 11, start, start + 3),
    ]
    by_code = {d["code"]: d for d in result["diagnostics"]}
    assert by_code["MUX021"]["message"].startswith("unknown step `dif` in `prompt`")
    assert by_code["MUX021"]["severity"] == 1  # vim.diagnostic.severity.ERROR
