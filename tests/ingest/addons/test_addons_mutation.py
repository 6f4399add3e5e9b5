"""Step 8 (app/ingest/steps/addons.py) called directly, with stand-in add-ons whose output is
known, so each rule of the module docstring is pinned: entries checked before any runs, list
order, a missing or null input skips, the refusal messages and where they point, outputs
never under ``keen``, ``remove_ip_property``, the parsed-request cache."""

from __future__ import annotations

from typing import Any

import pytest

from app.contract.errors import Rejection
from app.ingest.addons import Addon, AddonRegistry
from app.ingest.steps import addons as step
from app.ingest.steps.addons import delete_path, get_path, run_addons, set_path


class Registry:
    """What the step reads of an AddonRegistry: get, names, parsed_requests."""

    def __init__(self, *addons: Addon) -> None:
        self._by_name = {a.name: a for a in addons}
        self.parsed_requests: dict[bytes, Any] = {}
        self.calls: list[tuple[str, dict]] = []

    def get(self, name: str) -> Addon | None:
        return self._by_name.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)


def _echo(registry: Registry, name: str) -> Any:
    def run(values: dict) -> dict:
        registry.calls.append((name, dict(values)))
        return {"seen": dict(values)}

    return run


def make_registry() -> Registry:
    reg = Registry()
    reg._by_name = {
        "t:echo": Addon(
            "t:echo", frozenset({"x"}), frozenset({"y"}), frozenset(), _echo(reg, "echo")
        ),
        "t:geo": Addon(
            "t:geo",
            frozenset({"ip"}),
            frozenset(),
            frozenset({"remove_ip_property"}),
            _echo(reg, "geo"),
        ),
        "t:two": Addon("t:two", frozenset({"b", "a"}), frozenset(), frozenset(), _echo(reg, "two")),
        "t:boom": Addon("t:boom", frozenset({"x"}), frozenset(), frozenset(), lambda v: 1 / 0),
    }
    return reg


def entry(name: str, inputs: Any, output: Any = "out") -> dict:
    return {"name": name, "input": inputs, "output": output}


def run(event: dict, reg: Registry | None = None) -> tuple[Rejection | None, dict]:
    outcome = run_addons(event, reg or make_registry())  # type: ignore[arg-type]
    return outcome, event


def refusal(event: dict, reg: Registry | None = None) -> Rejection:
    outcome, _ = run(event, reg)
    assert isinstance(outcome, Rejection), outcome
    assert outcome.code == "addon_error"
    assert outcome.stage == "enrich"
    return outcome


def test_limits() -> None:
    assert step.MAX_ADDONS == 16
    assert step.PARSED_CACHE_SIZE == 4096
    assert step.MAX_PATH_SEGMENTS == 16


def test_no_addons() -> None:
    assert run({"keen": {}, "a": 1}) == (None, {"keen": {}, "a": 1})
    # A null keen.addons is absent; either way it is left out of the stored event.
    assert run({"keen": {"addons": None}}) == (None, {"keen": {}})
    assert run({"keen": {"addons": []}}) == (None, {"keen": {}})


@pytest.mark.parametrize("entries", ["t:echo", {"name": "t:echo"}, ("t:echo",), 5, True])
def test_addons_is_a_list(entries: object) -> None:
    rejection = refusal({"keen": {"addons": entries}})
    assert rejection.message == "keen.addons must be a list of add-on requests; send a list."
    assert rejection.detail == {"path": "keen.addons"}


def test_at_most_16_addons() -> None:
    one = entry("t:echo", {"x": "v"}, "o")
    outcome, event = run({"v": 1, "keen": {"addons": [one] * 16}})
    assert outcome is None and event["o"] == {"seen": {"x": 1}}
    rejection = refusal({"v": 1, "keen": {"addons": [one] * 17}})
    assert rejection.message == "keen.addons has 17 entries; request at most 16 add-ons."
    assert rejection.detail == {"path": "keen.addons"}


def test_inputs_outputs_and_order() -> None:
    reg = make_registry()
    event = {
        "v": 1,
        "w": {"deep": "z"},
        "keen": {
            "timestamp": "T",
            "addons": [
                entry("t:echo", {"x": "v", "y": "w.deep"}, "first"),
                entry("t:echo", {"x": "first.seen.x"}, "second.nested"),  # reads the first
                entry("t:echo", {"x": "keen.timestamp"}, "third"),  # may read keen
            ],
        },
    }
    outcome, event = run(event, reg)
    assert outcome is None
    assert event == {
        "v": 1,
        "w": {"deep": "z"},
        "keen": {"timestamp": "T"},
        "first": {"seen": {"x": 1, "y": "z"}},
        "second": {"nested": {"seen": {"x": 1}}},
        "third": {"seen": {"x": "T"}},
    }
    assert [name for name, _ in reg.calls] == ["echo", "echo", "echo"]


def test_missing_or_null_inputs() -> None:
    reg = make_registry()
    event = {
        "none": None,
        "zero": 0,
        "no": False,
        "empty": "",
        "keen": {
            "addons": [
                entry("t:echo", {"x": "absent"}, "a"),  # required missing: skipped
                entry("t:echo", {"x": "none"}, "b"),  # required null: skipped
                entry("t:echo", {"y": "absent", "x": "zero"}, "c"),  # optional missing: run
                entry("t:echo", {"x": "no", "y": "none"}, "d"),  # optional null: run
                entry("t:echo", {"x": "empty", "y": "zero"}, "e"),
                entry("t:two", {"a": "zero", "b": "absent"}, "f"),  # one required missing
                entry("t:two", {"a": "absent", "b": "zero"}, "g"),
                entry("t:echo", {"x": "zero.below"}, "h"),  # through a non-object
            ]
        },
    }
    outcome, event = run(event, reg)
    assert outcome is None
    assert {k: v for k, v in event.items() if k in "abcdefgh"} == {
        "c": {"seen": {"x": 0}},
        "d": {"seen": {"x": False}},
        "e": {"seen": {"x": "", "y": 0}},
    }
    assert len(reg.calls) == 3


def test_a_failing_addon_refuses_the_event() -> None:
    event = {"v": 1, "keen": {"addons": [entry("t:echo", {"x": "v"}), entry("t:boom", {"x": "v"})]}}
    rejection = refusal(event)
    assert rejection.message == (
        "The add-on t:boom failed on this event's input (ZeroDivisionError); check the input "
        "value or remove the add-on."
    )
    assert rejection.detail == {"path": "keen.addons[1]"}


def test_an_output_through_a_non_object_refuses_the_event() -> None:
    event = {"v": 1, "s": "text", "keen": {"addons": [entry("t:echo", {"x": "v"}, "s.parsed")]}}
    rejection = refusal(event)
    assert rejection.message == (
        "The output path 's.parsed' of t:echo runs through a property that is not an object; "
        "choose another output path."
    )
    assert rejection.detail == {"path": "keen.addons[0]"}
    later = {
        "v": 1,
        "s": [1],
        "keen": {
            "addons": [entry("t:echo", {"x": "v"}, "ok"), entry("t:echo", {"x": "v"}, "s.p.q")]
        },
    }
    assert refusal(later).detail == {"path": "keen.addons[1]"}


def test_remove_ip_property() -> None:
    def geo(inputs: dict, event: dict) -> dict:
        outcome, out = run(
            {**event, "keen": {**event.get("keen", {}), "addons": [entry("t:geo", inputs, "g")]}}
        )
        assert outcome is None
        return out

    removed = geo({"ip": "u.ip", "remove_ip_property": True}, {"u": {"ip": "1.2.3.4", "n": 1}})
    assert removed == {"u": {"n": 1}, "keen": {}, "g": {"seen": {"ip": "1.2.3.4"}}}
    top = geo({"ip": "ip", "remove_ip_property": True}, {"ip": "1.2.3.4"})
    assert top == {"keen": {}, "g": {"seen": {"ip": "1.2.3.4"}}}
    kept = geo({"ip": "ip", "remove_ip_property": False}, {"ip": "1.2.3.4"})
    assert kept["ip"] == "1.2.3.4"
    default = geo({"ip": "ip"}, {"ip": "1.2.3.4"})
    assert default["ip"] == "1.2.3.4"
    # Never under keen.
    under_keen = geo({"ip": "keen.ip", "remove_ip_property": True}, {"keen": {"ip": "1.2.3.4"}})
    assert under_keen["keen"] == {"ip": "1.2.3.4"}
    # A skipped add-on removes nothing.
    skipped = geo({"ip": "u.ip", "remove_ip_property": True}, {"u": {"ip": None}})
    assert skipped == {"u": {"ip": None}, "keen": {}}


# -- malformed entries ---------------------------------------------------------------------


def test_every_entry_is_checked_before_any_runs() -> None:
    reg = make_registry()
    event = {"v": 1, "keen": {"addons": [entry("t:echo", {"x": "v"}, "ok"), "bad"]}}
    rejection = refusal(event, reg)
    assert rejection.message == "Each keen.addons entry must be an object with name, input, output."
    assert rejection.detail == {"path": "keen.addons[1]"}
    assert reg.calls == [] and "ok" not in event


@pytest.mark.parametrize("bad", ["t:echo", ["name"], None, 5])
def test_an_entry_is_an_object(bad: object) -> None:
    rejection = refusal({"keen": {"addons": [bad]}})
    assert rejection.message == "Each keen.addons entry must be an object with name, input, output."
    assert rejection.detail == {"path": "keen.addons[0]"}


def test_unexpected_fields() -> None:
    long = "z" * 100
    rejection = refusal({"keen": {"addons": [{**entry("t:echo", {"x": "v"}), long: 1, "b": 2}]}})
    assert rejection.message == (
        f"Unexpected field {'z' * 64!r} in a keen.addons entry; send only name, input and output."
    )
    assert rejection.detail == {"path": "keen.addons[0]"}
    # name, input and output alone are fine; a missing output is its own error.
    no_output = refusal({"keen": {"addons": [{"name": "t:echo", "input": {"x": "v"}}]}})
    assert no_output.message.startswith("t:echo: 'output' must be a dotted property path")


def test_unknown_addons() -> None:
    names = "t:boom, t:echo, t:geo, t:two"
    unknown = [
        ("t:nope", "t:nope"),
        (5, "5"),
        (None, "None"),
        ("n" * 70, "n" * 64),
        (["x"], "['x']"),
    ]
    for name, shown in unknown:
        rejection = refusal({"keen": {"addons": [entry("t:echo", {"x": "v"}), entry(name, {})]}})
        assert rejection.message == f"Unknown add-on {shown!r}; use one of {names}.", name
        assert rejection.detail == {"path": "keen.addons[1]"}


@pytest.mark.parametrize("given", ["x", ["x"], None, 5])
def test_input_is_an_object(given: object) -> None:
    rejection = refusal({"keen": {"addons": [entry("t:echo", given)]}})
    assert rejection.message == "t:echo: 'input' must be an object of parameter paths."
    assert rejection.detail == {"path": "keen.addons[0]"}


@pytest.mark.parametrize("flag", ["yes", 1, None, 0])
def test_flags_are_booleans(flag: object) -> None:
    rejection = refusal(
        {"keen": {"addons": [entry("t:geo", {"ip": "ip", "remove_ip_property": flag})]}}
    )
    assert rejection.message == "t:geo: input 'remove_ip_property' must be true or false."
    assert rejection.detail == {"path": "keen.addons[0]"}


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a.", 5, None, ["a"], ".".join(["p"] * 17)])
def test_input_paths(path: object) -> None:
    for param in ("x", "y"):  # required and optional alike
        inputs = {"x": "v", param: path}
        rejection = refusal({"keen": {"addons": [entry("t:echo", inputs)]}})
        assert rejection.message == (
            f"t:echo: input {param!r} must be a dotted property path such as 'user.ip'."
        )
        assert rejection.detail == {"path": "keen.addons[0]"}


def test_16_path_segments_are_fine() -> None:
    path = ".".join(["p"] * 16)
    outcome, event = run({"keen": {"addons": [entry("t:echo", {"x": path}, path)]}})
    assert outcome is None  # input missing: skipped, but the request was well formed
    value: dict = {"keen": {"addons": [entry("t:echo", {"x": "v"}, path)]}, "v": 1}
    outcome, event = run(value)
    assert outcome is None
    assert get_path(event, tuple(["p"] * 16)) == {"seen": {"x": 1}}


def test_unknown_inputs() -> None:
    rejection = refusal({"keen": {"addons": [entry("t:geo", {"ip": "ip", "q" * 70: "v"})]}})
    assert rejection.message == (
        f"t:geo: unknown input {'q' * 64!r}; its inputs are ip, remove_ip_property."
    )
    rejection = refusal({"keen": {"addons": [entry("t:echo", {"x": "v", "zz": "v"})]}})
    assert rejection.message == "t:echo: unknown input 'zz'; its inputs are x, y."
    assert rejection.detail == {"path": "keen.addons[0]"}


def test_required_inputs() -> None:
    rejection = refusal({"keen": {"addons": [entry("t:two", {})]}})
    assert rejection.message == "t:two: input 'a' is required; map it to a property."
    rejection = refusal({"keen": {"addons": [entry("t:two", {"a": "v"})]}})
    assert rejection.message == "t:two: input 'b' is required; map it to a property."
    rejection = refusal({"keen": {"addons": [entry("t:echo", {"y": "v"})]}})
    assert rejection.message == "t:echo: input 'x' is required; map it to a property."
    assert rejection.detail == {"path": "keen.addons[0]"}
    rejection = refusal({"keen": {"addons": [entry("t:geo", {"remove_ip_property": True})]}})
    assert rejection.message == "t:geo: input 'ip' is required; map it to a property."


OUTPUT_MESSAGE = (
    "t:echo: 'output' must be a dotted property path whose names follow the property rules "
    "(no '$' prefix, at most 256 characters); fix the output path."
)


@pytest.mark.parametrize(
    "output",
    ["", None, 5, "a..b", "a.$b", "$a", "n" * 257, "a." + "n" * 257, ".".join(["p"] * 17), "a\x00"],
)
def test_output_paths(output: object) -> None:
    rejection = refusal({"keen": {"addons": [entry("t:echo", {"x": "v"}, output)]}})
    assert rejection.message == OUTPUT_MESSAGE
    assert rejection.detail == {"path": "keen.addons[0]"}


@pytest.mark.parametrize("output", ["keen", "keen.x", "keen.addons"])
def test_no_output_under_keen(output: str) -> None:
    rejection = refusal({"keen": {"addons": [entry("t:echo", {"x": "v"}, output)]}})
    assert (
        rejection.message
        == "t:echo: the output may not be written under 'keen'; choose another path."
    )
    assert rejection.detail == {"path": "keen.addons[0]"}


def test_outputs_near_keen_are_fine() -> None:
    for output in ("keenly", "x.keen", "n" * 256, "a$"):
        outcome, event = run({"v": 1, "keen": {"addons": [entry("t:echo", {"x": "v"}, output)]}})
        assert outcome is None, output
        assert get_path(event, tuple(output.split("."))) == {"seen": {"x": 1}}


# -- the parsed-request cache --------------------------------------------------------------


def test_parsed_requests_are_cached_by_their_json() -> None:
    reg = make_registry()
    entries = [entry("t:echo", {"x": "v"}, "o")]
    outcome, _ = run({"v": 1, "keen": {"addons": entries}}, reg)
    assert outcome is None
    assert list(reg.parsed_requests) == [b'[{"name":"t:echo","input":{"x":"v"},"output":"o"}]']
    (cached,) = reg.parsed_requests.values()
    assert isinstance(cached, list) and cached[0].output == ("o",)
    assert cached[0].inputs == {"x": ("v",)} and cached[0].flags == {}
    # The cached parse answers the next event with the same list.
    outcome, event = run({"v": 2, "keen": {"addons": [entry("t:echo", {"x": "v"}, "o")]}}, reg)
    assert outcome is None and event["o"] == {"seen": {"x": 2}}
    assert len(reg.parsed_requests) == 1
    # A refusal is cached too, and answered the same.
    bad = [entry("t:nope", {})]
    first = refusal({"keen": {"addons": bad}}, reg)
    assert len(reg.parsed_requests) == 2
    assert refusal({"keen": {"addons": [entry("t:nope", {})]}}, reg) == first


def test_a_cache_that_is_full_is_emptied() -> None:
    reg = make_registry()
    reg.parsed_requests.update({str(i).encode(): [] for i in range(4095)})
    run({"v": 1, "keen": {"addons": [entry("t:echo", {"x": "v"}, "a")]}}, reg)
    assert len(reg.parsed_requests) == 4096
    run({"v": 1, "keen": {"addons": [entry("t:echo", {"x": "v"}, "b")]}}, reg)
    assert list(reg.parsed_requests) == [b'[{"name":"t:echo","input":{"x":"v"},"output":"b"}]']


def test_a_poisoned_cache_entry_is_what_answers() -> None:
    # Proves the cache is read: a stored parse is used instead of parsing again.
    reg = make_registry()
    entries = [entry("t:echo", {"x": "v"}, "o")]
    key = b'[{"name":"t:echo","input":{"x":"v"},"output":"o"}]'
    reg.parsed_requests[key] = Rejection("addon_error", "enrich", "cached", {"path": "x"})
    assert refusal({"keen": {"addons": entries}}, reg).message == "cached"


def test_entries_orjson_cannot_encode_are_parsed_uncached() -> None:
    reg = make_registry()
    entries = [{"name": "t:echo", "input": {"x": "v"}, "output": "o", "big": 2**70}]
    rejection = refusal({"keen": {"addons": entries}}, reg)
    assert rejection.message.startswith("Unexpected field 'big'")
    assert reg.parsed_requests == {}
    fine = [entry("t:echo", {"x": "v"}, "o")]
    assert step._parse_cached(fine, reg) == step._parse_all(fine, reg)  # type: ignore[arg-type]
    odd = [{"name": "t:echo", "input": {"x": "v"}, "output": "o"}, {2**70}]
    assert step._parse_cached(odd, reg).detail == {"path": "keen.addons[1]"}  # type: ignore[arg-type, union-attr]
    assert len(reg.parsed_requests) == 1


def test_the_real_registry_is_what_the_step_reads() -> None:
    real = AddonRegistry(None)
    event = {
        "u": "https://a.example/p?q=1",
        "keen": {"addons": [entry("keen:url_parser", {"url": "u"}, "p")]},
    }
    assert run_addons(event, real) is None
    assert event["p"]["domain"] == "a.example"
    assert len(real.parsed_requests) == 1


# -- paths ---------------------------------------------------------------------------------


def test_get_path() -> None:
    event = {"a": {"b": {"c": 1}, "l": [1]}, "n": None, "z": 0}
    assert get_path(event, ("a", "b", "c")) == 1
    assert get_path(event, ("a", "b")) == {"c": 1}
    assert get_path(event, ()) is event
    assert get_path(event, ("a", "x")) is None
    assert get_path(event, ("a", "x", "y")) is None
    assert get_path(event, ("a", "l", "0")) is None
    assert get_path(event, ("n", "x")) is None
    assert get_path(event, ("z",)) == 0
    assert get_path(event, ("z", "x")) is None


def test_set_path() -> None:
    event: dict = {"a": {"keep": 1}, "n": None, "s": "x", "l": []}
    assert set_path(event, ("a", "b", "c"), 1) is True
    assert set_path(event, ("n", "m"), 2) is True
    assert set_path(event, ("top",), 3) is True
    assert set_path(event, ("a", "keep"), 4) is True
    assert event == {"a": {"keep": 4, "b": {"c": 1}}, "n": {"m": 2}, "s": "x", "l": [], "top": 3}
    assert set_path(event, ("s", "x"), 5) is False
    assert set_path(event, ("l", "x"), 5) is False
    assert set_path(event, ("a", "keep", "x"), 5) is False
    assert event["s"] == "x" and event["l"] == [] and event["a"]["keep"] == 4


def test_delete_path() -> None:
    event: dict = {"a": {"b": 1, "c": 2}, "d": 3, "s": "x", "l": [1]}
    delete_path(event, ("a", "b"))
    delete_path(event, ("d",))
    delete_path(event, ("missing",))
    delete_path(event, ("a", "missing"))
    delete_path(event, ("nowhere", "x"))
    delete_path(event, ("s", "x"))
    delete_path(event, ("l", "0"))
    assert event == {"a": {"c": 2}, "s": "x", "l": [1]}
    deep: dict = {"a": {"b": {"c": 1, "k": 0}}}
    delete_path(deep, ("a", "b", "c"))
    assert deep == {"a": {"b": {"k": 0}}}
