"""The layout of ARCHITECTURE.md holds: imports only go down the layers, and the method stands alone."""

import ast
import re
from pathlib import Path

import i2b_minimal

PACKAGE = Path(i2b_minimal.__file__).parent
# ARCHITECTURE.md, "The layers": a module may import its own room and the rooms of lower layers only.
LAYERS = {"runtime": 0, "method": 0, "datasets": 1, "world": 2, "training": 3, "evaluation": 3, "app": 4,
          "teaching": 5}


def room(module: str) -> str:
    """``i2b_minimal.datasets.loaders`` -> ``datasets``; ``i2b_minimal.runtime`` -> ``runtime``."""
    return module.split(".")[1]


def package_imports(path: Path) -> set[str]:
    """Every ``i2b_minimal...`` module that ``path`` imports, relative imports resolved."""
    parts = ("i2b_minimal",) + path.relative_to(PACKAGE).with_suffix("").parts
    here = parts[:-1]  # the package a relative import starts from (also for __init__.py)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("i2b_minimal.")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - node.level + 1]
                base = ".".join(anchor + ((base,) if base else ()))
            if base == "i2b_minimal":  # from i2b_minimal import runtime / method
                found |= {f"i2b_minimal.{alias.name}" for alias in node.names}
            elif base.startswith("i2b_minimal."):
                found.add(base)
    return found


def modules():
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p.relative_to(PACKAGE).parts[0] in LAYERS or
            p.name == "runtime.py"]


def test_every_module_lives_in_a_room_of_the_architecture():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in {"__init__.py", "__main__.py", "runtime.py"}]
    assert loose == [], f"modules outside the rooms of ARCHITECTURE.md: {loose}"
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(LAYERS) - {"runtime"}


def test_imports_only_go_down_the_layers():
    upward = []
    for path in modules():
        mine = room("i2b_minimal." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        for target in package_imports(path):
            theirs = room(target)
            if theirs != mine and LAYERS[theirs] >= LAYERS[mine]:
                upward.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert upward == []


def test_the_method_imports_nothing_from_the_rest_of_the_package():
    outside = [f"{p.name}: {t}" for p in (PACKAGE / "method").glob("*.py") for t in package_imports(p)
               if room(t) != "method"]
    assert outside == []


def test_short_names_are_the_modules_in_their_rooms():
    import importlib

    for short, real in i2b_minimal.MODULES.items():
        assert importlib.import_module(f"i2b_minimal.{short}") is importlib.import_module(f"i2b_minimal.{real}")
    from i2b_minimal import data, diffusion

    assert data.load_things_eeg2.__module__ == "i2b_minimal.datasets.loaders"
    assert diffusion.NoiseSchedule.__module__ == "i2b_minimal.method.diffusion"


def test_every_module_has_its_line_in_where_each_idea_lives():
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text()
    section = text.split("## Where each idea lives", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", section, flags=re.M))
    modules = {re.sub(r"exercises/nb\d\d\.py$", "exercises/nbNN.py", p.relative_to(PACKAGE).as_posix())
               for p in PACKAGE.rglob("*.py") if p.name not in {"__init__.py", "__main__.py"}}
    assert sorted(modules - listed) == [], "modules without a line in ARCHITECTURE.md"
    assert sorted(listed - modules) == [], "lines in ARCHITECTURE.md for modules that do not exist"
