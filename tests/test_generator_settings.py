"""--set parsing, validation against config.toml, and in-place rewriting."""

from __future__ import annotations

import pytest
import tomllib

from appgen import settings
from appgen.errors import InvalidValueError, UnknownKeyError

CONFIG = '''\
# Top comment.
name = "demo"  # project name

[train]
# How long to train.
epochs = 10            # passes over the data
learning_rate = 0.001  # step size
mixed = true
note = "has # hash"    # a string with a hash
tags = [
  "a",  # first
  "b",
]  # labels
poem = """two
lines"""  # multi-line string
shape = {height = 28, width = 28}  # inline table

[runtime]
precision = "auto"  # decided at run time
'''


@pytest.mark.parametrize(("text", "expected"), [
    ("5", 5), ("0.1", 0.1), ("true", True), ('"x"', "x"), ("[1,2]", [1, 2]),
    ("data/train", "data/train"), ("hello world", "hello world"), ("", ""),
    ("'literal'", "literal"),
])
def test_parse_value_is_toml_or_a_bare_string(text: str, expected: object) -> None:
    assert settings.parse_value(text) == expected


def test_parse_override_needs_key_and_equals() -> None:
    assert settings.parse_override("train.epochs=5") == ("train.epochs", 5)
    assert settings.parse_override(" data.dir = my data ") == ("data.dir", "my data")
    for bad in ("train.epochs", "=5", "a..b=1"):
        with pytest.raises(InvalidValueError):
            settings.parse_override(bad)


def test_nul_bytes_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="NUL"):
        settings.parse_override('name="a\\u0000b"')


def test_unknown_key_names_it_and_suggests_close_matches() -> None:
    schema = tomllib.loads(CONFIG)
    with pytest.raises(UnknownKeyError) as info:
        settings.validate_overrides(schema, {"train.epoch": 3})
    assert "'train.epoch'" in str(info.value)
    assert "train.epochs" in str(info.value)
    with pytest.raises(UnknownKeyError, match="is a table"):
        settings.validate_overrides(schema, {"train": 3})


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("train.epochs", "ten", "an integer"),
    ("train.epochs", True, "an integer"),  # bool is not an int
    ("train.epochs", 1.5, "an integer"),
    ("train.mixed", 1, "true or false"),
    ("train.tags", "a", "a list"),
    ("name", 3, "a string"),
    ("train.learning_rate", float("inf"), "a number"),
])
def test_type_mismatch_names_key_type_and_value(key: str, value: object, expected: str) -> None:
    schema = tomllib.loads(CONFIG)
    with pytest.raises(InvalidValueError) as info:
        settings.validate_overrides(schema, {key: value})
    message = str(info.value)
    assert key in message and expected in message and "got" in message


def test_accepted_conversions() -> None:
    schema = tomllib.loads(CONFIG)
    checked = settings.validate_overrides(schema, {
        "train.learning_rate": 1,  # int where float is the default
        "runtime.precision": True,  # "auto" also takes a bool or a number
        "train.shape.height": 64,
    })
    assert checked == {"train.learning_rate": 1.0, "runtime.precision": True,
                       "train.shape.height": 64}
    assert isinstance(checked["train.learning_rate"], float)


def test_apply_overrides_round_trips_and_keeps_every_comment() -> None:
    overrides = {
        "name": 'quote " back \\ tab \t newline \n bell \x07',
        "train.epochs": 3,
        "train.learning_rate": 0.5,
        "train.note": "still # not a comment",
        "train.tags": ["x", "y z"],
        "train.poem": "one line",
        "train.shape.width": 32,
        "runtime.precision": "mixed_bfloat16",
    }
    out = settings.apply_overrides(CONFIG, overrides)

    expected = tomllib.loads(CONFIG)
    expected["name"] = overrides["name"]
    expected["train"].update(epochs=3, learning_rate=0.5, note="still # not a comment",
                             tags=["x", "y z"], poem="one line")
    expected["train"]["shape"]["width"] = 32
    expected["runtime"]["precision"] = "mixed_bfloat16"
    assert tomllib.loads(out) == expected

    for comment in ("# Top comment.", "# project name", "# How long to train.",
                    "# passes over the data", "# step size", "# a string with a hash",
                    "# labels", "# multi-line string", "# inline table",
                    "# decided at run time"):
        assert comment in out, comment
    assert "epochs = 3            # passes over the data" in out
    # Untouched lines are byte-identical.
    assert "mixed = true\n" in out and "[runtime]\n" in out


def test_apply_overrides_refuses_keys_without_an_assignment() -> None:
    with pytest.raises(UnknownKeyError):
        settings.apply_overrides(CONFIG, {"train.missing": 1})


@pytest.mark.parametrize("value", [
    "", "plain", 'a"b', "a\\b", "tab\there", "line\nbreak", "\x01\x1f\x7f", "ünïcødé ✓",
    "'single'", '"""', "#",
])
def test_format_string_round_trips(value: str) -> None:
    assert tomllib.loads(f"v = {settings.format_string(value)}")["v"] == value


def test_format_value_round_trips_scalars_and_lists() -> None:
    for value in (0, -7, 1.0, 1e-8, 3.25, True, False, [1, [2, "x"]], {"a b": 1, "c": [True]}):
        assert tomllib.loads(f"v = {settings.format_value(value)}")["v"] == value


def test_describe_keys_reports_comments_for_info() -> None:
    described = {a.key: a.comment for a in settings.describe_keys(CONFIG)}
    assert described["train.epochs"] == "passes over the data"
    assert described["train.mixed"] == ""
    assert described["runtime.precision"] == "decided at run time"


NESTED = '''\
[a]
x = 1
d.e = 2  # a dotted key
[b]
y = [
  1,  # one
  2,
]  # the list
[a.c]  # a table reopened after [b]
z = "zz"
[[runs]]
seed = 1
'''


def test_apply_overrides_reaches_dotted_keys_and_reopened_tables() -> None:
    out = settings.apply_overrides(NESTED, {"a.d.e": 5, "a.c.z": "new", "b.y": [3]})
    assert tomllib.loads(out) == {"a": {"x": 1, "d": {"e": 5}, "c": {"z": "new"}},
                                  "b": {"y": [3]}, "runs": [{"seed": 1}]}
    assert "d.e = 5  # a dotted key\n" in out and "y = [3]  # the list\n" in out
    assert "[a.c]  # a table reopened after [b]\n" in out


def test_apply_overrides_writes_a_mapping_as_an_inline_table_in_place() -> None:
    out = settings.apply_overrides(CONFIG, {"train.shape": {"height": 7, "width": 9}})
    assert "shape = {height = 7, width = 9}  # inline table\n" in out
    assert tomllib.loads(out)["train"]["shape"] == {"height": 7, "width": 9}


@pytest.mark.parametrize("key", ["runs.seed", "a", "a.d", "b.y.z", "missing.x"])
def test_apply_overrides_refuses_tables_and_keys_in_arrays_of_tables(key: str) -> None:
    with pytest.raises(UnknownKeyError, match="not assigned"):
        settings.apply_overrides(NESTED, {key: 1})


def test_invalid_toml_is_a_one_line_typed_error() -> None:
    for call in (lambda: settings.apply_overrides("a = [1,\nb = 2\n", {"b": 3}),
                 lambda: settings.describe_keys("[a\nx = 1\n")):
        with pytest.raises(InvalidValueError, match="not valid TOML"):
            call()


def test_describe_keys_gives_each_value_as_written_in_file_order() -> None:
    described = settings.describe_keys(NESTED)
    assert [(a.key, a.comment) for a in described] == [
        ("a.x", ""), ("a.d.e", "a dotted key"), ("b.y", "the list"), ("a.c.z", "")]
    assert " ".join(described[2].value.split()) == "[ 1, # one 2, ]"


def test_listing_templates_does_not_import_tomlkit() -> None:
    import subprocess
    import sys

    code = ("import sys; from appgen import cli; "
            "cli.main(['list'], standalone_mode=False); "
            "assert 'tomlkit' not in sys.modules, 'tomlkit imported by appgen list'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
