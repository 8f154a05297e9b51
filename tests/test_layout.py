"""The package layout: sub-packages by concept, no import cycles, and model folders of earlier layouts still load."""

import ast
import json
import pkgutil
from pathlib import Path

import pytest

import hfmtl

REPO = Path(__file__).resolve().parent.parent
PACKAGE = Path(hfmtl.__file__).parent
OLD_MODEL = REPO / "tests" / "assets" / "tiny" / "model-0.1.0"


def _module_names() -> list[str]:
    return ["hfmtl"] + [info.name for info in pkgutil.walk_packages([str(PACKAGE)], prefix="hfmtl.")]


def _module_file(name: str) -> Path:
    path = PACKAGE.parent / name.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _top_level_imports(name: str) -> set[str]:
    """The hfmtl modules `name` imports when it is imported (lazy imports inside functions left out)."""
    tree = ast.parse(_module_file(name).read_text(encoding="utf-8"))
    package = name if _module_file(name).name == "__init__.py" else name.rpartition(".")[0]
    imported: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # `from .heads import ...`
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).rstrip(".")
            imported.add(base)
            imported |= {f"{base}.{alias.name}" for alias in node.names}  # `from hfmtl.train import precision`
    modules = set(_module_names())
    return {module for module in imported if module in modules and module != name}


def test_every_sub_package_says_what_it_is_for():
    for info in pkgutil.iter_modules([str(PACKAGE)]):
        if info.ispkg:
            docstring = ast.get_docstring(ast.parse((PACKAGE / info.name / "__init__.py").read_text()))
            assert docstring, f"hfmtl.{info.name} has no docstring"
    flat = sorted(info.name for info in pkgutil.iter_modules([str(PACKAGE)]) if not info.ispkg)
    assert flat == ["__main__", "atomic", "cli", "commands", "errors"]  # everything else lives in a sub-package


def test_no_import_cycles():
    graph = {name: _top_level_imports(name) for name in _module_names()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(name) :] + (name,)))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, path + (name,))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_the_cycle_check_sees_relative_and_package_imports():
    assert "hfmtl.model.heads" in _top_level_imports("hfmtl.model.modeling")  # `from .heads import ...`
    assert "hfmtl.config.run_config" in _top_level_imports(
        "hfmtl.config.help"
    )  # `from hfmtl.config import run_config`


def test_a_model_folder_written_before_the_layout_answers_as_it_did():
    from hfmtl.serve.pipeline import MultiTaskPipeline

    recorded = json.loads((OLD_MODEL.parent / "model-0.1.0-answers.json").read_text())
    texts = [tuple(text) if isinstance(text, list) else text for text in recorded["texts"]]
    answers = MultiTaskPipeline.from_pretrained(OLD_MODEL)(texts)
    assert _rounded(answers) == _rounded(recorded["answers"])


def _rounded(value):
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value
