"""One error base (console/errors.py), caught once in `cli.main`; a reader that leaves the pipe is no bug."""

from __future__ import annotations

import ast
import builtins
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from console import cli
from console.errors import SpecdeckError

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "experiments" / "demo.toml"


def test_a_reader_that_leaves_the_pipe_ends_the_command_quietly_with_sigpipes_code() -> None:
    """`specdeck validate … | head -1` printed "INVALID: … BrokenPipeError … a bug in specdeck" and exited 1.
    Many copies of the file make the output larger than a pipe's buffer, so the write after we close is certain."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "console.cli", "validate", *[str(DEMO)] * 120],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert b"valid" in first
    assert code == cli.SIGPIPE_EXIT == 141, err
    assert "bug" not in err and "Traceback" not in err and "Exception ignored" not in err, err


@pytest.mark.parametrize(("argv", "says", "code"), [
    (["approve", "{tmp}/no-such-run", "some.cell", "--yes"], "no run ", 2),
    (["status", "{tmp}/no-such-run"], "no run ", 2),
    (["serve", str(DEMO), "--cell", "tiny.bf16.draft-k9.short.c1"], "no cell ", 2),
    (["tui", "{tmp}/bad.toml"], "{tmp}/bad.toml:2: experiment.name: ", 1),
    (["preflight", str(DEMO), "--bandwidth", "H100"], "--bandwidth expects DEVICE=TB/s", 2),
    (["import", "vllm-bench", "{tmp}/none.json", "--out", "{tmp}/m.csv", "--set", "x"], "--set expects", 2),
])
def test_main_prints_message_and_fix_once_and_exits_with_the_errors_code(argv, says, code, capsys, tmp_path) -> None:
    (tmp_path / "bad.toml").write_text("[experiment]\nname = 3\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert cli.main(argv) == code
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"specdeck {argv[0]}: {says.replace('{tmp}', str(tmp_path))}"), lines
    assert [x for x in lines if x.startswith("fix: ")] == [lines[-1]] and len(lines[-1]) > len("fix: "), lines


class _Custom(SpecdeckError):
    """A subclass with its own signature, like StoreError(path, message, fix)."""

    exit_code = 3

    def __init__(self, path: str, message: str, fix: str) -> None:
        super().__init__(f"{path}: {message}", fix)
        self.path = path


def test_the_base_formats_pickles_and_keeps_subclass_fields() -> None:
    exc = _Custom("runs/x/state.sqlite", "is damaged", "copy it again")
    assert str(exc) == "runs/x/state.sqlite: is damaged — fix: copy it again"
    assert exc.report("specdeck status") == "specdeck status: runs/x/state.sqlite: is damaged\nfix: copy it again"
    back = pickle.loads(pickle.dumps(exc))  # a Ray worker or a subprocess ships it
    assert (type(back), back.path, back.message, back.fix, back.exit_code, str(back)) == (
        _Custom, exc.path, exc.message, exc.fix, 3, str(exc))
    assert SpecdeckError("no fix known").report() == "specdeck: no fix known"
    assert SpecdeckError("m", "f", exit_code=5).exit_code == 5


def test_library_errors_on_a_bad_input_become_the_commands_typed_error(capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path) -> None:
    """`specdeck report` on a CSV pandas cannot read: a plain error inside the command becomes its InputError
    (message and fix), a typed one passes untouched, a closed pipe stays cli.main's."""
    from console.commands.report import InputError
    from console.errors import plain_errors_as

    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    assert cli.main(["report", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("specdeck report: ") and "\nfix: check the input named above" in err, err
    with pytest.raises(InputError, match="boom — fix: f") as info, plain_errors_as(InputError, "f"):
        raise ValueError("boom")
    assert isinstance(info.value.__cause__, ValueError)
    for passing in (SpecdeckError("typed", "its own fix"), BrokenPipeError()):
        with pytest.raises(type(passing)) as seen, plain_errors_as(InputError, "f"):
            raise passing
        assert seen.value is passing


def test_a_server_that_did_not_start_reports_reason_fix_and_the_log_line() -> None:
    from console.serve.server import ServerStartError

    exc = ServerStartError("kv_cache_too_small", "no room for the KV cache", "lower max_model_len",
                           "ValueError: ... KV cache ...\n", Path("runs/x/server.log"))
    assert exc.exit_code == 1 and exc.report("specdeck serve").splitlines() == [
        "specdeck serve: vLLM did not start (kv_cache_too_small): no room for the KV cache",
        "fix: lower max_model_len", "log line: ValueError: ... KV cache ...", "full log: runs/x/server.log"]


# --- every error a user can hit derives from the base, and every raise of one names a fix --------------------
CONSOLE = ROOT / "console"
INTERNAL = {
    "IllegalTransition": "a state change the machine forbids: a bug in specdeck, never the user's input",
    "ReadOnlyStore": "a write through a reader's store: a bug in specdeck",
    "DecisionConflict": "always answered by its caller (a repeat exits 0, a contradiction becomes DecisionRefused)",
    "TransientWorkerError": "Ray's signal to retry a worker on another node; it never reaches a user",
    "CellError": "collected into SpecError's located problems, never raised to a user",
}
"""Exception classes in console/ that are not user-facing, and why."""


def _classes() -> dict[str, tuple[list[str], ast.ClassDef, Path]]:
    out: dict[str, tuple[list[str], ast.ClassDef, Path]] = {}
    for path in sorted(CONSOLE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = [b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else ""
                         for b in node.bases]
                out[node.name] = (bases, node, path)
    return out


def _ancestors(name: str, classes: dict) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        for base in classes.get(todo.pop(), ([], None, None))[0]:
            if base not in seen:
                seen.add(base)
                todo.append(base)
    return seen


def _is_exception(name: str, classes: dict) -> bool:
    builtin = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
    return bool(_ancestors(name, classes) & builtin)


def test_every_user_facing_error_in_console_derives_from_the_one_base() -> None:
    classes = _classes()
    errors = sorted(n for n in classes if n != "SpecdeckError" and _is_exception(n, classes))
    assert len(errors) >= 25, errors  # the scan found the errors (it cannot pass on an empty tree)
    outside = [n for n in errors if "SpecdeckError" not in _ancestors(n, classes) and n not in INTERNAL]
    assert not outside, f"derive these from console.errors.SpecdeckError (or list them in INTERNAL): {outside}"
    stale = sorted(set(INTERNAL) - set(errors))
    assert not stale, stale
    assert not [n for n in INTERNAL if "SpecdeckError" in _ancestors(n, classes)]


def _class_fix(name: str, classes: dict) -> bool:
    """The class or one of its ancestors below the base names a fix (`fix = "…"` in the class body)."""
    for cls in [name, *_ancestors(name, classes)]:
        node = classes.get(cls, (None, None, None))[1]
        if node is not None and cls != "SpecdeckError" and any(
                isinstance(s, ast.Assign | ast.AnnAssign) and "fix" in ast.unparse(s).split("=")[0].split()
                for s in node.body):
            return True
    return False


def _own_init(name: str, classes: dict) -> bool:
    """A constructor of its own (StoreError(path, message, fix)): its signature asks for what it needs."""
    for cls in [name, *_ancestors(name, classes)]:
        node = classes.get(cls, (None, None, None))[1]
        if cls == "SpecdeckError" or node is None:
            return False
        if any(isinstance(s, ast.FunctionDef) and s.name == "__init__" for s in node.body):
            return True
    return False


def test_every_raise_of_a_user_facing_error_names_its_fix() -> None:
    """`raise X("message")` with no fix anywhere would print no `fix:` line: a raise passes one, or the class
    names the fix that holds wherever it is raised."""
    classes = _classes()
    ours = {n for n in classes if "SpecdeckError" in _ancestors(n, classes)} | {"SpecdeckError"}
    checked, missing = 0, []
    for path in sorted(CONSOLE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name not in ours:
                continue
            checked += 1
            if _class_fix(name, classes) or _own_init(name, classes):
                continue
            if len(node.exc.args) < 2 and not any(k.arg == "fix" for k in node.exc.keywords):
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert checked >= 30, checked
    assert not missing, f"give these a fix (second argument) or the class a `fix`: {missing}"
