"""Every ```python block of the README and of docs/*.md runs, and does what its text says.

The blocks of one page run in order in one fresh interpreter (later blocks use earlier
names), in a temporary folder. What a page leaves to the reader (``f``, ``x0``, an Optuna
objective) is defined in :data:`SETUP`; what would need a server or hours is replaced by
:data:`REPLACE` (each replacement must still apply, so a changed snippet fails here until
this file follows it); :data:`CHECKS` asserts what the surrounding text claims.
"""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

#: Names a page uses without defining them.
SETUP: dict[str, str] = {
    "docs/options.md": "import numpy as np\nf = lambda x: float(np.sum((x - 1) ** 2))\nx0 = np.zeros(5)\n",
    "docs/optuna.md": textwrap.dedent("""\
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        def objective(trial):
            return sum((trial.suggest_float(f"x{i}", -5, 5) - 1) ** 2 for i in range(3))
        url = "sqlite:///tune.db"
        """),
    "docs/zovh.md": "import numpy as np\nx0 = np.random.default_rng(0).standard_normal(20)\n",
    "docs/behaviour.md": "import numpy as np\nfrom scipy.optimize import minimize, rosen\nimport zo_scipy\n"
                         "f = rosen\nx0 = np.random.default_rng(0).standard_normal(10)\n",
}

#: (page, text in a block, replacement): servers become SQLite files, long runs shorter.
REPLACE: list[tuple[str, str, str]] = [
    ("docs/optuna.md", '"postgresql://user@host/db"', 'url'),
    ("docs/optuna.md", "n_trials=2000", "n_trials=30"),
    ("docs/zoar.md", "for t in range(2000):", "for t in range(200):"),
    ("docs/index.md", "options=dict(seed=0)", "options=dict(seed=0, maxfev=5000)"),
]

#: Assertions appended to a page's blocks: what the text around them claims.
CHECKS: dict[str, str] = {
    "README.md": "assert res.fun == rosen(res.x)\n",
    "docs/quickstart.md": "assert res.status == 99 and res.fun < 1000\n",
    "docs/scipy-methods.md": "assert res_zo.fun < 1e-2 and res_de.fun < 1e-2\n",
}


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _program(path: Path) -> str | None:
    page = _page_id(path)
    blocks = BLOCK.findall(path.read_text(encoding="utf-8"))
    if not blocks:
        return None
    code = "\n".join(blocks)
    for where, old, new in REPLACE:
        if where == page:
            assert old in code, f"{page}: the snippet changed; update REPLACE ({old!r} not found)"
            code = code.replace(old, new)
    return SETUP.get(page, "") + code + "\n" + CHECKS.get(page, "")


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in PAGES if BLOCK.search(p.read_text(encoding="utf-8"))],
                         ids=_page_id)
def test_every_snippet_of_the_page_runs(path: Path, tmp_path: Path) -> None:
    program = _program(path)
    assert program is not None
    proc = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={"PYTHONWARNINGS": "ignore", "PATH": "/usr/bin:/bin",
                                            "ZO_SCIPY_EXAMPLE_QUICK": "1", "HOME": str(tmp_path)})
    assert proc.returncode == 0, f"{_page_id(path)}:\n{proc.stderr[-3000:]}"
