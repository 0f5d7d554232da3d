"""BUILD must name every Python file: Bazel cannot fetch its rules offline, so this keeps it true.

BUILD is Starlark, a subset of Python, so it is evaluated here with recording stand-ins for the
rules: every module must sit in a py_library, every tool in a py_binary, every test in a py_test,
and every dependency must name a declared target.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _targets():
    targets = {}

    def rule(kind):
        def record(name, srcs=(), deps=(), **_):
            assert name not in targets, f"target {name} declared twice"
            targets[name] = (kind, list(srcs), list(deps))

        return record

    namespace = {kind: rule(kind) for kind in ("py_library", "py_binary", "py_test")}
    namespace["load"] = lambda *args: None
    namespace["package"] = lambda **kwargs: None
    exec((ROOT / "BUILD").read_text(), namespace)
    return targets


def _python_files(folder):
    return {str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*.py")}


def test_every_python_file_is_in_exactly_one_target_of_the_right_kind():
    targets = _targets()
    owner = {}
    for name, (_, srcs, _) in targets.items():
        for src in srcs:
            assert src not in owner, f"{src} is in both {owner[src]} and {name}"
            owner[src] = name
            assert (ROOT / src).is_file(), f"BUILD target {name} names missing file {src}"
    expected_kind = {"tf_advreg": "py_library", "tools": "py_binary", "tests": "py_test"}
    for folder, kind in expected_kind.items():
        for path in sorted(_python_files(folder)):
            assert path in owner, f"{path} is not named in BUILD"
            name = Path(path).name
            is_entry_point = (
                name.startswith("test_") if folder == "tests" else name != "__init__.py"
            )
            if is_entry_point:
                actual = targets[owner[path]][0]
                assert actual == kind, f"{path} belongs in a {kind}, found {actual}"


def test_dependencies_name_declared_targets():
    targets = _targets()
    for name, (_, _, deps) in targets.items():
        for dep in deps:
            assert dep.lstrip(":") in targets, f"{name} depends on undeclared {dep}"
