"""Graph pictures: DOT text without Graphviz, real SVG with it, a helpful error without it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chainrule import Value, draw_dot, to_dot
from chainrule.draw import GraphvizNotFoundError


def neuron() -> Value:
    x = Value(2.0, label="x")
    w = Value(-3.0, label="w")
    b = Value(6.8813735870195432, label="b")
    xw = x * w
    xw.label = "x*w"
    n = xw + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    return o


def test_dot_text_has_a_record_per_value_and_a_node_per_op() -> None:
    text = to_dot(neuron())
    for label in ("x", "w", "b", "x*w", "n", "o"):
        assert f"{{ {label} | data" in text
    assert "grad -1.5000" in text  # do/dx = w * (1 - o^2) = -3 * 0.5
    assert text.count("shape=record") == 6
    assert 'label="*"' in text and 'label="+"' in text and "label=tanh" in text
    assert "rankdir=LR" in text


def test_shared_operand_draws_one_edge_per_use() -> None:
    a = Value(1.0, label="a")
    text = to_dot(a + a)
    assert text.count(f"{id(a)} -> ") == 2


def test_record_special_characters_in_labels_are_escaped() -> None:
    v = Value(1.0, label="{a|b}<c>")
    assert r"\{a\|b\}\<c\>" in to_dot(v * 2)


def test_rankdir_is_checked() -> None:
    with pytest.raises(ValueError, match="rankdir"):
        draw_dot(Value(1.0), rankdir="sideways")


def test_render_svg_contains_every_label(tmp_path: Path) -> None:
    # Real rendering: `make test` installs Graphviz (scripts/ensure-graphviz) beforehand.
    assert shutil.which("dot"), "Graphviz's dot is missing: run scripts/ensure-graphviz"
    path = draw_dot(neuron()).render(tmp_path / "neuron", format="svg")
    svg = Path(path).read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for label in ("x", "w", "b", "x*w", "n", "o", "tanh"):
        assert f">{label}<" in svg or f"> {label} <" in svg or f">{label} <" in svg


def test_rendering_without_graphviz_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no 'dot' anywhere on PATH
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        draw_dot(neuron()).render(tmp_path / "g", format="png")
    with pytest.raises(GraphvizNotFoundError, match="brew install graphviz"):
        draw_dot(neuron()).pipe(format="svg")
    assert not list(tmp_path.glob("g.png"))
