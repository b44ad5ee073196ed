"""Report the package's module sizes and its longest functions.

A function's size is counted two ways: all its lines, and its code lines (without
the docstring). The project's rule is at most 80 code lines per function unless the
docstring explains why (issue 13).

Usage: ``python tools/function_sizes.py [--limit 80] [package_dir]``
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def function_sizes(path: Path) -> list[tuple[str, int, int]]:
    """``(qualified name, all lines, code lines)`` of every function in ``path``."""
    tree = ast.parse(path.read_text())
    out = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                total = child.end_lineno - child.lineno + 1
                doc = 0
                first = child.body[0] if child.body else None
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                    doc = first.end_lineno - first.lineno + 1
                out.append((f"{prefix}{child.name}", total, total - doc))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default=str(Path(__file__).resolve().parents[1] / "autoencoders"))
    parser.add_argument("--limit", type=int, default=80)
    args = parser.parse_args(argv)
    over = 0
    for path in sorted(Path(args.package).glob("*.py")):
        sizes = function_sizes(path)
        longest = max(sizes, key=lambda s: s[2], default=("-", 0, 0))
        lines = len(path.read_text().splitlines())
        print(f"{path.name:24s} {lines:5d} lines; longest function {longest[0]} ({longest[2]} code lines)")
        for name, total, code in sizes:
            if code > args.limit:
                over += 1
                print(f"    over {args.limit}: {name}: {code} code lines ({total} with docstring)")
    print(f"{over} function(s) over {args.limit} code lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
