"""The README's explicit training loop runs as written (at a small size)."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_loop():
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- readme-loop -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md lost its <!-- readme-loop --> code block"
    return m.group(1)


def test_readme_training_loop_runs(capsys):
    code = readme_loop()
    small = (code.replace("(45000, 1000, 5000)", "(400, 20, 20)")
             .replace("range(3)", "range(1)")
             .replace("hidden_dim=256", "hidden_dim=24"))
    assert small != code and "model.backward()" in small and "opt.step()" in small
    exec(compile(small, "README.md", "exec"), {})
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2  # one line per epoch, then the translated date
    assert len(out[0].split()) == 3  # epoch, loss, exact match


def test_readme_quickstart_is_two_commands_and_ci_runs_its_test_command():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart.*?```bash\n(.*?)```", text, re.S).group(1)
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    assert "minis2s train" in commands[0] and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1].replace("pip install", "python -m pip install") in ci
