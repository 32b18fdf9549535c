"""08b Tool calling: a real LLM drives the agent by calling named tools, and our code checks
every call before it runs.

Concept: OpenAI's chat-completions protocol for tools. The request carries `tools` (each a
name, a description and a JSON schema for the arguments) and the whole conversation so far.
The reply's message either holds `tool_calls` (arguments as a JSON *string* the model wrote)
or is the final answer. We run each call, append the assistant message and one
{"role": "tool", "tool_call_id": ..., "content": <JSON>} per call, and ask again. The model
writes its arguments token by token, so they can be broken: an unknown tool, bad JSON or
arguments outside the schema are never run; the error goes back as the call's result, and
the model gets to fix it. A scripted local server (tests/fake_llm.py) plays the model, so
the walk needs no network, no key and no clock.

The walk: the schema validator accepts (1) and rejects, naming the path (2); the tool spec
(3); parsing one call (4); a three-turn conversation with two tools (5); invalid calls fed
back unrun, then the corrected call (6); a tool that raises (7); max_turns (8); a failing
server (9); the module's command line (10).

    OMP_NUM_THREADS=1 python -m pytest tests/test_08b_tool_calling.py -q
"""
import json
import subprocess
import sys

import pytest
from fake_llm import FakeLLM
from helpers import ENV, ROOT

from minivid.tool_calling import (ApiError, ChatClient, Tool, ToolCallError, parse_call,
                                  run_tool_loop, tool_spec, validate)

KEY = "sk-test-SECRET-19"
PLAN = {"type": "object", "additionalProperties": False, "required": ["prompt", "shots"],
        "properties": {
            "prompt": {"type": "string", "minLength": 1},
            "guidance": {"type": "number", "minimum": 0, "maximum": 20},
            "loop": {"type": "boolean"},
            "shots": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
                "type": "object", "required": ["length"], "additionalProperties": False,
                "properties": {"length": {"type": "integer", "minimum": 1, "maximum": 16},
                               "motion": {"type": "string", "enum": ["still", "left"]}}}}}}
INTS = {"type": "object", "required": ["a", "b"], "additionalProperties": False,
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
ECHO = {"type": "object", "required": ["text"],
        "properties": {"text": {"type": "string", "minLength": 1}}}


def call(id_, name, args):
    """One tool_calls entry as a model writes it: arguments as a JSON string (or raw text)."""
    return {"id": id_, "type": "function",
            "function": {"name": name, "arguments": args if isinstance(args, str)
                         else json.dumps(args)}}


def tools(counts=None):
    """add and echo; `counts` (a dict) records how often each actually ran."""
    counts = {} if counts is None else counts

    def add(a, b):
        counts["add"] = counts.get("add", 0) + 1
        return {"sum": a + b}

    def echo(text):
        counts["echo"] = counts.get("echo", 0) + 1
        return {"text": text}
    return [Tool("add", "Add two integers.", INTS, add), Tool("echo", "Repeat a text.", ECHO, echo)]


def tool_results(request):
    """{tool_call_id: parsed content} of the tool messages in a recorded request."""
    return {m["tool_call_id"]: json.loads(m["content"]) for m in request["messages"]
            if m["role"] == "tool"}


# 1. Good arguments pass: ints are numbers too; optional fields may be left out.
def test_01_validator_accepts():
    assert validate({"prompt": "a red circle", "shots": [{"length": 16, "motion": "left"}],
                     "guidance": 5, "loop": False}, PLAN) == []
    assert validate({"prompt": "x", "shots": [{"length": 1}], "guidance": 4.5}, PLAN) == []


# 2. Bad arguments are refused with every problem named by its path, so the model can see
#    which field to fix. JSON's true is not an integer (Python's True is), and 3.0 is not one.
def test_02_validator_rejects_naming_the_path():
    bad = {"prompt": "", "shots": [{"length": 4}, {"length": "ten"}, {"length": True},
                                   {"length": 3.0}], "guidance": -1, "loop": "yes", "fps": 8}
    assert validate(bad, PLAN) == [
        "prompt: length 0 is below minLength 1",
        "shots: 4 items is above maxItems 3",
        "shots[1].length: expected integer, got 'ten'",
        "shots[2].length: expected integer, got True",
        "shots[3].length: expected integer, got 3.0",
        "guidance: -1 is below minimum 0",
        "loop: expected boolean, got 'yes'",
        "fps: unknown field (allowed: prompt, guidance, loop, shots)"]
    assert validate({"shots": []}, PLAN) == ["prompt: missing (required)",
                                             "shots: 0 items is below minItems 1"]
    assert validate({"prompt": "x", "shots": [{"motion": "up"}, {"length": 17}]}, PLAN) == [
        "shots[0].length: missing (required)",
        "shots[0].motion: expected one of ['still', 'left'], got 'up'",
        "shots[1].length: 17 is above maximum 16"]
    assert validate([1], PLAN) == ["arguments: expected object, got [1]"]
    with pytest.raises(ValueError, match="not supported"):
        validate(1, {"type": "int"})


# 3. What the model is told about a tool: OpenAI's `tools` entry, the schema untouched.
def test_03_tool_spec_shape():
    add = tools()[0]
    assert tool_spec(add) == {"type": "function", "function": {
        "name": "add", "description": "Add two integers.", "parameters": INTS}}


# 4. Parsing one call: the arguments arrive as a JSON string; each way it can be wrong is a
#    ToolCallError whose text tells the model what to fix.
def test_04_parse_call():
    by_name = {t.name: t for t in tools()}
    assert parse_call(call("c", "add", {"a": 1, "b": 2}), by_name) == ("add", {"a": 1, "b": 2})
    wrong = {"unknown tool 'mul'; the tools are: add, echo": call("c", "mul", {}),
             "add: arguments must be a JSON string, got {'a': 1}":
                 {"id": "c", "function": {"name": "add", "arguments": {"a": 1}}},
             "add: arguments are not valid JSON": call("c", "add", '{"a": 1, "b": '),
             "add: arguments are not valid JSON (NaN": call("c", "add", '{"a": NaN, "b": 1}'),
             "add: arguments must be a JSON object, got [1, 2]": call("c", "add", "[1, 2]"),
             "add: b: expected integer, got '2'": call("c", "add", {"a": 1, "b": "2"}),
             "a tool call needs a 'function'": {"id": "c"}}
    for message, bad in wrong.items():
        with pytest.raises(ToolCallError) as e:
            parse_call(bad, by_name)
        assert str(e.value).startswith(message), (message, str(e.value))


# 5. A whole conversation: turn 1 calls two tools at once, turn 2 uses a result it was sent
#    (2 + 3 = 5, then 5 + 10), turn 3 answers. Each result goes back as a tool message with
#    the call's id, and every request re-sends the whole history, tools included.
def test_05_three_turn_conversation():
    script = [
        {"content": "First 2 + 3, and greet.",
         "tool_calls": [call("c1", "add", {"a": 2, "b": 3}), call("c2", "echo", {"text": "hi"})]},
        lambda req: {"content": None, "tool_calls": [
            call("c3", "add", {"a": tool_results(req)["c1"]["sum"], "b": 10})]},
        lambda req: {"content": f"The answer is {tool_results(req)['c3']['sum']}."}]
    question = [{"role": "user", "content": "What is 2 + 3, plus 10?"}]
    events = []
    with FakeLLM(script) as llm:
        out = run_tool_loop(ChatClient(llm.base_url, "fake-model", KEY, timeout=20), question,
                            tools(), max_turns=5, on_event=lambda *e: events.append(e))
    assert out["final"] == "The answer is 15." and (out["turns"], out["calls"],
                                                    out["rejected"]) == (3, 3, 0)
    r1, r2, r3 = llm.requests
    assert all(r["tools"] == [tool_spec(t) for t in tools()] and r["tool_choice"] == "auto"
               and r["model"] == "fake-model" for r in llm.requests)
    assert llm.authorization == [f"Bearer {KEY}"] * 3
    assert r1["messages"] == question and len(question) == 1   # the caller's list untouched
    assistant1 = {"role": "assistant", "content": "First 2 + 3, and greet.",
                  "tool_calls": script[0]["tool_calls"]}
    assert r2["messages"] == question + [
        assistant1, {"role": "tool", "tool_call_id": "c1", "content": '{"sum": 5}'},
        {"role": "tool", "tool_call_id": "c2", "content": '{"text": "hi"}'}]
    assert r3["messages"][:4] == r2["messages"] and tool_results(r3)["c3"] == {"sum": 15}
    assert [m["role"] for m in r3["messages"][4:]] == ["assistant", "tool"]
    assert out["messages"] == r3["messages"] + [
        {"role": "assistant", "content": "The answer is 15."}]
    assert [kind for kind, _ in events] == ["call", "call", "call", "final"]
    first = events[0][1]
    assert (first["name"], first["args"], first["result"], first["id"], first["turn"],
            first["reason"]) == ("add", {"a": 2, "b": 3}, {"sum": 5}, "c1", 1,
                                 "First 2 + 3, and greet.")
    assert first["seconds"] >= 0 and events[-1][1] == {"turn": 3, "content": out["final"]}


# 6. Invalid calls are never run: broken JSON, an unknown tool, arguments outside the schema
#    and arguments sent as an object each come back as {"error": ...} under their own id;
#    the planner reads the errors and its corrected call is the only one that runs.
def test_06_invalid_calls_fed_back_never_run():
    def corrected(req):
        errors = tool_results(req)
        assert list(errors) == ["b1", "b2", "b3", "b4"]
        assert all(set(e) == {"error"} for e in errors.values())
        assert "not valid JSON" in errors["b1"]["error"]
        assert errors["b2"]["error"].startswith("unknown tool 'multiply'")
        assert errors["b3"]["error"] == "add: b: expected integer, got 'three'"
        assert "must be a JSON string" in errors["b4"]["error"]
        return {"content": "Fixing b.", "tool_calls": [call("ok", "add", {"a": 2, "b": 3})]}
    script = [{"content": "Trying.", "tool_calls": [
                  call("b1", "add", '{"a": 2, "b": '), call("b2", "multiply", {"a": 2}),
                  call("b3", "add", {"a": 2, "b": "three"}),
                  {"id": "b4", "type": "function",
                   "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]},
              corrected, {"content": "5"}]
    counts, events = {}, []
    with FakeLLM(script) as llm:
        out = run_tool_loop(ChatClient(llm.base_url, "m", KEY, timeout=20),
                            [{"role": "user", "content": "2 + 3?"}], tools(counts),
                            on_event=lambda *e: events.append(e))
    assert counts == {"add": 1} and out["final"] == "5"
    assert (out["calls"], out["rejected"], out["turns"]) == (1, 4, 3)
    assert [kind for kind, _ in events] == ["rejected"] * 4 + ["call", "final"]
    rejected = events[2][1]
    assert (rejected["id"], rejected["name"], rejected["arguments"], rejected["reason"]) == (
        "b3", "add", '{"a": 2, "b": "three"}', "Trying.")
    assert rejected["error"] == "add: b: expected integer, got 'three'"
    assert tool_results(llm.requests[2])["ok"] == {"sum": 5}


# 7. A tool that raises, or returns what JSON cannot hold, is news for the planner, not a
#    crash: its result is {"error": "<Type>: <message>"}.
def test_07_tool_error_becomes_a_result():
    ab = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}
    broken = [Tool("divide", "a / b", ab, lambda a, b: {"q": a / b}),
              Tool("shapes", "the shapes", {"type": "object"}, lambda: {"s": {"circle"}})]
    script = [{"content": None, "tool_calls": [call("d", "divide", {"a": 1, "b": 0}),
                                               call("s", "shapes", {})]},
              {"content": "Cannot divide by zero."}]
    events = []
    with FakeLLM(script) as llm:
        out = run_tool_loop(ChatClient(llm.base_url, "m", KEY, timeout=20),
                            [{"role": "user", "content": "1 / 0?"}], broken,
                            on_event=lambda *e: events.append(e))
    assert out["final"] == "Cannot divide by zero." and out["calls"] == 2
    results = tool_results(llm.requests[1])
    assert results["d"] == {"error": "ZeroDivisionError: division by zero"}
    assert results["s"]["error"].startswith("TypeError: Object of type set")
    assert events[0][1]["result"] == results["d"]


# 8. A planner that never stops answering with calls is cut off after max_turns replies:
#    final is None, and exactly max_turns requests were made.
def test_08_max_turns_stops_the_loop():
    again = {"content": "Once more.", "tool_calls": [call("e", "echo", {"text": "again"})]}
    with FakeLLM([again] * 10) as llm:
        out = run_tool_loop(ChatClient(llm.base_url, "m", KEY, timeout=20),
                            [{"role": "user", "content": "loop"}], tools(), max_turns=3)
    assert out["final"] is None and (out["turns"], out["calls"]) == (3, 3)
    assert len(llm.requests) == 3 and out["messages"][-1]["role"] == "tool"


# 9. A failing server: a 5xx is retried (retries + 1 requests), then ApiError; a 4xx (here
#    a wrong path: 404) is our request's fault and is not retried. The key, which the fake
#    server echoes back in its error body, never appears in the message.
def test_09_server_errors_are_api_errors_without_the_key():
    with FakeLLM([]) as llm:
        with pytest.raises(ApiError) as e:
            run_tool_loop(ChatClient(llm.base_url, "m", KEY, timeout=20, retries=1),
                          [{"role": "user", "content": "hi"}], tools())
        assert len(llm.requests) == 2 and "HTTP 500" in str(e.value)
        assert "the script holds 0 replies" in str(e.value) and KEY not in str(e.value)
        with pytest.raises(ApiError, match="HTTP 404"):
            ChatClient(llm.base_url[:-3], "m", KEY, timeout=20, retries=3).complete([], [])
        assert llm.paths == ["/v1/chat/completions"] * 2 + ["/chat/completions"]   # once


# 10. The command in the module's docstring: the environment names the endpoint, the model
#     adds 2 + 3 with the demo tool, and the last line is the loop's summary.
def test_10_command_line():
    script = [{"content": None, "tool_calls": [call("c", "add", {"a": 2, "b": 3})]},
              lambda req: {"content": f"It is {tool_results(req)['c']['sum']}."}]
    with FakeLLM(script) as llm:
        env = {**ENV, "MINIVID_LLM_BASE_URL": llm.base_url, "MINIVID_LLM_API_KEY": KEY}
        out = subprocess.run([sys.executable, "-m", "minivid.tool_calling", "2 + 3?"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == {"final": "It is 5.", "turns": 2,
                                                       "calls": 1, "rejected": 0}
    assert llm.requests[0]["messages"] == [{"role": "user", "content": "2 + 3?"}]
