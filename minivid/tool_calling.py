r"""Tool calling: a real LLM plans, our code acts, over OpenAI's chat-completions protocol.

Where it sits: under the video agent (minivid/agent.py), whose tools are Python functions with
a JSON schema for their arguments; `run_tool_loop` lets an LLM call them until it answers in
text. The endpoint is set as for the rewriter (minivid/llm_api.py): MINIVID_LLM_BASE_URL,
MINIVID_LLM_MODEL, MINIVID_LLM_API_KEY or OPENAI_API_KEY. Standard library only (urllib).

One turn, drawn out. We POST the WHOLE history every turn (the server keeps no state):

    {"model": "gpt-4o-mini", "temperature": 0, "seed": 0, "tool_choice": "auto",
     "tools": [{"type": "function", "function": {"name": "add", "description": "a + b",
                "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, ...},
                               "required": ["a", "b"]}}}],
     "messages": [{"role": "user", "content": "what is 2 + 3?"}]}

The reply's choices[0].message either asks for calls (arguments are a JSON *string*, written
by the model token by token, so it may be broken, and is checked before anything runs) ...

    {"role": "assistant", "content": "I will add them.",
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 3}"}}]}

... and we append that message, then one result per call, matched by id:

    {"role": "tool", "tool_call_id": "call_1", "content": "{\"sum\": 5}"}

... or it has no tool_calls: its content is the final answer and the loop ends (or we stop
after max_turns). An invalid call (unknown tool, broken JSON, arguments outside the schema)
is never run: its result is {"error": "..."} so the model can read what went wrong and retry.

    MINIVID_LLM_API_KEY=... python -m minivid.tool_calling "what is 2 + 3, plus 10?"
    OMP_NUM_THREADS=1 python -m pytest tests/test_08b_tool_calling.py -q
"""
import json
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable

from minivid.llm_api import DEFAULT_BASE_URL, DEFAULT_MODEL, ApiError, _scrub


@dataclass
class Tool:
    """A function the planner may call: fn(**args) -> a JSON-serialisable dict."""
    name: str
    description: str      # the model reads this to decide when to call the tool
    parameters: dict      # JSON schema of the arguments (an object); checked by `validate`
    fn: Callable[..., dict]


def tool_spec(tool: Tool) -> dict:
    """The entry of the request's `tools` list that announces one tool to the model."""
    return {"type": "function", "function": {"name": tool.name, "description": tool.description,
                                             "parameters": tool.parameters}}


# ---- a small JSON-schema validator: the subset tool schemas use ----------------------------

TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float),
         "boolean": bool}


def _is(value, kind: str) -> bool:
    if kind not in TYPES:
        raise ValueError(f"schema type {kind!r} is not supported; use one of {sorted(TYPES)}")
    # Python's bool is an int (True == 1); JSON's true is not a number. And 3.0 is not an
    # integer here: the tool would get a float where it counts frames or indexes a list.
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, TYPES[kind])


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validate(value, schema: dict, path: str = "") -> list[str]:
    """Every way `value` breaks `schema`, each naming where: "shots[1].length: expected
    integer, got 'ten'". Empty list = valid. A node of the wrong type is not checked further."""
    where = path or "arguments"
    kind = schema.get("type")
    if kind is not None and not _is(value, kind):
        return [f"{where}: expected {kind}, got {_show(value)}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: expected one of {schema['enum']}, got {_show(value)}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where}: {value} is below minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{where}: {value} is above maximum {schema['maximum']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{where}: length {len(value)} is below minLength {schema['minLength']}")
    if kind == "array":
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where}: {len(value)} items is below minItems {schema['minItems']}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: {len(value)} items is above maxItems {schema['maxItems']}")
        for i, item in enumerate(value):
            errors += validate(item, schema.get("items", {}), f"{where}[{i}]")
    if kind == "object":
        props, at = schema.get("properties", {}), (lambda key: f"{path}.{key}" if path else key)
        errors += [f"{at(key)}: missing (required)" for key in schema.get("required", [])
                   if key not in value]
        for key, item in value.items():
            if key in props:
                errors += validate(item, props[key], at(key))
            elif schema.get("additionalProperties") is False:
                errors.append(f"{at(key)}: unknown field (allowed: {', '.join(props)})")
    return errors


# ---- one call: parse and check before anything runs ----------------------------------------

class ToolCallError(Exception):
    """A call the model got wrong; its text goes back to the model as the call's result."""


def _no_constant(name):
    # json.loads accepts NaN and Infinity, which JSON itself does not: refuse them, so no
    # tool ever receives a NaN frame count or an infinite guidance scale.
    raise ValueError(f"{name} is not valid JSON")


def _function(call) -> dict:
    """The call's {"name", "arguments"} part; {} when the model sent no such thing."""
    fn = call.get("function") if isinstance(call, dict) else None
    return fn if isinstance(fn, dict) else {}


def parse_call(call: dict, tools_by_name: dict) -> tuple[str, dict]:
    """One entry of message.tool_calls -> (tool name, checked arguments), or ToolCallError."""
    fn = _function(call)
    if not fn:
        raise ToolCallError(f"a tool call needs a 'function' with 'name' and 'arguments', got "
                            f"{_show(call)}")
    name, raw = fn.get("name"), fn.get("arguments")
    if not isinstance(name, str) or name not in tools_by_name:
        raise ToolCallError(f"unknown tool {_show(name)}; the tools are: "
                            f"{', '.join(tools_by_name)}")
    if not isinstance(raw, str):
        raise ToolCallError(f"{name}: arguments must be a JSON string, got {_show(raw)}")
    try:
        args = json.loads(raw, parse_constant=_no_constant)
    except ValueError as e:
        raise ToolCallError(f"{name}: arguments are not valid JSON ({e}): {_show(raw)}") from None
    if not isinstance(args, dict):
        raise ToolCallError(f"{name}: arguments must be a JSON object, got {_show(args)}")
    errors = validate(args, tools_by_name[name].parameters)
    if errors:
        raise ToolCallError(f"{name}: " + "; ".join(errors))
    return name, args


# ---- the endpoint --------------------------------------------------------------------------

class ChatClient:
    """client.complete(messages, tools) -> the reply's assistant message (a dict).

    Retries network errors and 5xx (the server's trouble, often passing); a 4xx is our
    request's fault (key, model name, body), so it fails at once. Errors never show the key."""

    def __init__(self, base_url=None, model=None, api_key=None, timeout: float = 60.0,
                 retries: int = 2, temperature: float = 0.0, seed: int = 0):
        env = os.environ.get
        self.base_url = base_url or env("MINIVID_LLM_BASE_URL") or DEFAULT_BASE_URL
        self.model = model or env("MINIVID_LLM_MODEL") or DEFAULT_MODEL
        self.api_key = api_key or env("MINIVID_LLM_API_KEY") or env("OPENAI_API_KEY")
        if timeout <= 0 or retries < 0:
            raise ValueError(f"timeout {timeout} must be > 0 and retries {retries} >= 0")
        self.timeout, self.retries = timeout, retries
        self.temperature, self.seed = temperature, seed   # 0 + a seed: as repeatable as it gets

    def complete(self, messages: list, tools: list) -> dict:
        url = self.base_url.rstrip("/") + "/chat/completions"
        body = json.dumps({"model": self.model, "messages": messages, "tools": tools,
                           "tool_choice": "auto", "temperature": self.temperature,
                           "seed": self.seed}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        raw = self._post(url, body, headers)
        try:
            message = json.loads(raw)["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError(f"message is {type(message).__name__}")
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise ApiError(_scrub(f"{url} sent a reply that is not a chat completion ({e}): "
                                  f"{raw[:120]!r}", self.api_key)) from None
        return message

    def _post(self, url: str, body: bytes, headers: dict) -> bytes:
        for tries in range(1, self.retries + 2):
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return resp.read()
            except urllib.error.HTTPError as e:   # before URLError: it is one
                last = f"HTTP {e.code}: {e.read()[:200].decode('utf-8', 'replace')}"
                if e.code < 500:
                    break
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as e:
                last = f"unreachable or too slow ({self.timeout:g} s): {getattr(e, 'reason', e)}"
        raise ApiError(_scrub(f"{url} failed after {tries} tries: {last}", self.api_key))


# ---- the loop ------------------------------------------------------------------------------

def run_tool_loop(client, messages: list, tools: list[Tool], max_turns: int = 8,
                  on_event=None) -> dict:
    """Let the model call `tools` until it answers in text, or for at most `max_turns` replies.

    client: anything with complete(messages, tool_specs) -> assistant message (ChatClient).
    on_event(kind, payload), if given, is told of each step, for the caller's trace:
      "call"     {turn, id, name, args, result, seconds, reason}   a call that ran
      "rejected" {turn, id, name, arguments, error, reason}        a call refused unrun
      "final"    {turn, content}                                   the answer
    `reason` is the model's own text beside its calls (often its plan; may be None).
    Returns {final: str | None (None: ran out of turns), messages: the whole history,
    turns: replies read, calls: calls run, rejected: calls refused}."""
    if max_turns < 1:
        raise ValueError(f"max_turns {max_turns} must be >= 1")
    by_name = {t.name: t for t in tools}
    specs = [tool_spec(t) for t in tools]
    history = list(messages)   # the caller's list stays as it was
    emit = on_event or (lambda kind, payload: None)
    final, calls, rejected = None, 0, 0
    for turn in range(1, max_turns + 1):
        reply = client.complete(history, specs)
        content, tool_calls = reply.get("content"), reply.get("tool_calls") or []
        # Keep only what the protocol defines: some servers add fields they refuse to be sent.
        assistant = {"role": "assistant", "content": content}
        if tool_calls:
            assistant["tool_calls"] = tool_calls
        history.append(assistant)
        if not tool_calls:   # the answer ("" if the model sent no text: None means no answer)
            final = content or ""
            emit("final", {"turn": turn, "content": final})
            break
        for call in tool_calls:
            call_id = call.get("id") if isinstance(call, dict) else None
            try:
                name, args = parse_call(call, by_name)
            except ToolCallError as e:
                rejected += 1
                result = {"error": str(e)}
                raw = _function(call)
                emit("rejected", {"turn": turn, "id": call_id, "name": raw.get("name"),
                                  "arguments": raw.get("arguments"), "error": str(e),
                                  "reason": content})
            else:
                calls += 1
                start = time.perf_counter()
                try:
                    result = by_name[name].fn(**args)
                    json.dumps(result)   # a result the model cannot be sent fails like a raise
                except Exception as e:   # a failing tool is news for the model, not a crash
                    result = {"error": f"{type(e).__name__}: {e}"}
                seconds = time.perf_counter() - start
                emit("call", {"turn": turn, "id": call_id, "name": name, "args": args,
                              "result": result, "seconds": seconds, "reason": content})
            history.append({"role": "tool", "tool_call_id": call_id,
                            "content": json.dumps(result)})
    return {"final": final, "messages": history, "turns": turn, "calls": calls,
            "rejected": rejected}


if __name__ == "__main__":
    import sys

    ints = {"type": "object", "required": ["a", "b"], "additionalProperties": False,
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    add = Tool("add", "Add two integers; returns {'sum': a + b}.", ints, lambda a, b: {"sum": a+b})
    question = " ".join(sys.argv[1:]) or "What is 2 + 3, plus 10? Use the add tool."
    out = run_tool_loop(ChatClient(), [{"role": "user", "content": question}], [add],
                        on_event=lambda kind, p: print(kind, json.dumps(p, default=str)))
    print(json.dumps({k: v for k, v in out.items() if k != "messages"}))
