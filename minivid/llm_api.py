"""Rewriting with a real LLM: any OpenAI-compatible chat-completions endpoint.

Where it sits: beside the local rewriter (minivid/rewrite.py); `sample.py --rewrite openai`
and `python -m minivid.evaluate rewrite --backend openai` use it. This is how production
stacks do it (CogVideoX's convert_demo.py: an OpenAI-style API, few-shot examples, low
temperature, retries, the original prompt as the fallback), with the tiny world's twist:
the reply goes through the guard's world rules (a real LLM writes no reading to hold it to), and every failure falls
back to the local rewriter (or, without one, to the keyword rule), with a warning, never a crash.

Standard library only (urllib): one POST to <base>/chat/completions with
    {"model": ..., "messages": [system, user], "temperature": ..., "seed": ...}
and the reply's choices[0].message.content is the rewrite. Configure with flags or the
environment: MINIVID_LLM_BASE_URL (default https://api.openai.com/v1), MINIVID_LLM_MODEL
(default gpt-4o-mini), MINIVID_LLM_API_KEY or OPENAI_API_KEY. The key is sent in the
Authorization header only; it is scrubbed from every warning and error message.
Each try waits at most `timeout` seconds; a prompt costs at most (retries + 1) * timeout.

    MINIVID_LLM_API_KEY=... python sample.py --ckpt runs/dit_video/ckpt.pt --rewrite openai \\
        --prompt "a red circle"
    python -m minivid.llm_api "a red circle"       # prints the system prompt and the rewrite
"""
import json
import os
import socket
import urllib.error
import urllib.request
import warnings

import numpy as np

from minivid import rewrite, user_language
from minivid.captions import dense_caption
from minivid.scene import sample_scene

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


class ApiError(Exception):
    """The endpoint could not give a usable reply (unreachable, slow, error status, bad JSON)."""


def system_prompt(n_examples: int = 4, seed: int = 0) -> str:
    """Instructions + the world's vocabulary + worked examples drawn from the tiny world (the
    world's own sparse and dense captions of n random clips, the same every time)."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n_examples):
        prompt, _, scene = user_language.user_prompt(sample_scene(rng, "train"), rng,
                                                     p_typo=0, p_special=0)
        lines.append(f"User: {prompt}\nYou: {dense_caption(scene, rng)}")
    return (
        "You rewrite short prompts for a video model that only knows one tiny world: one or "
        "two flat shapes on a plain background, 16 frames. Reply with ONE dense description "
        "and nothing else. Keep everything the user states; fill in everything else.\n"
        "Every object needs: a size (small, large), a colour (red, orange, yellow, green, "
        "cyan, blue, purple, white), a shape (circle, square, triangle), a start position "
        "(top left, top, top right, left, centre, right, bottom left, bottom, bottom right), "
        "a motion (stays still, moves left/right/up/down or diagonally, bounces, grows, "
        "shrinks) and, for moving or bouncing objects, a speed (slowly, quickly). The "
        "background is plain black, grey, navy or brown. Two objects never share a colour or "
        "a start position.\n\nExamples:\n" + "\n\n".join(lines))


def _scrub(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text


def chat(prompt: str, base_url: str, model: str, api_key: str | None, timeout: float,
         temperature: float = 0.2, seed: int = 0, system: str | None = None) -> str:
    """One chat-completions request -> the reply text; ApiError (key-free) on any failure."""
    url = base_url.rstrip("/") + "/chat/completions"
    body = json.dumps({"model": model, "temperature": temperature, "seed": seed,
                       "messages": [{"role": "system", "content": system or system_prompt()},
                                    {"role": "user", "content": prompt}]}).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as e:
        detail = e.read()[:200].decode("utf-8", "replace")
        raise ApiError(_scrub(f"{url} answered HTTP {e.code}: {detail}", api_key)) from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise ApiError(_scrub(f"{url} unreachable or too slow ({timeout:g} s): {reason}",
                              api_key)) from None
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
        if not isinstance(content, str) or not content.strip():
            raise TypeError("empty content")
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ApiError(_scrub(f"{url} sent a reply that is not a chat completion ({e}): "
                              f"{raw[:120]!r}", api_key)) from None
    return content.strip()


class ApiRewriter:
    """rewrite.Rewriter's interface over an endpoint: r = ApiRewriter(...)(prompt, seed)."""

    def __init__(self, base_url=None, model=None, api_key=None, timeout: float = 20.0,
                 retries: int = 2, fallback=None, temperature: float = 0.2):
        env = os.environ.get
        self.base_url = base_url or env("MINIVID_LLM_BASE_URL") or DEFAULT_BASE_URL
        self.model = model or env("MINIVID_LLM_MODEL") or DEFAULT_MODEL
        self.api_key = api_key or env("MINIVID_LLM_API_KEY") or env("OPENAI_API_KEY")
        if timeout <= 0 or retries < 0:
            raise ValueError(f"timeout {timeout} must be > 0 and retries {retries} >= 0")
        self.timeout, self.retries, self.temperature = timeout, retries, temperature
        self.fallback = fallback   # a rewrite.Rewriter, or None for the keyword rule
        self.system = system_prompt()

    def __call__(self, prompt: str, seed: int = 0) -> rewrite.Rewrite:
        text, notes = rewrite.read_prompt(prompt)
        rejected = []
        nothing = {"background": None, "objects": [], "notes": [], "bad": []}
        for k in range(1, self.retries + 2):
            try:
                reply = chat(text, self.base_url, self.model, self.api_key, self.timeout,
                             self.temperature, seed + k - 1, self.system)
            except ApiError as e:
                notes.append(f"try {k}: {e}")
                continue
            problems, scene = rewrite.check(reply, None)   # the world's rules on the reply
            if not problems:
                return rewrite.finish(text, reply, "openai", k, "", nothing, scene, rejected,
                                      notes)
            rejected.append((reply, problems))
            notes.append(f"try {k}: the guard refused the reply ({'; '.join(problems)})")
        where = "the local rewriter" if self.fallback else "the keyword rule"
        notes.append(f"the endpoint gave no usable rewrite in {self.retries + 1} tries; "
                     f"falling back to {where}")
        warnings.warn(" | ".join(notes))
        if self.fallback is not None:
            r = self.fallback(text, seed)
        else:
            r = rewrite.keyword_rewrite(text, seed)
        r.warnings[:0] = notes
        r.rejected[:0] = rejected
        return r


if __name__ == "__main__":
    import sys

    print(system_prompt(), "\n")
    for p in sys.argv[1:]:
        r = ApiRewriter(retries=0)(p)
        print(json.dumps({"prompt": p, "rewrite": r.text, "source": r.source}))
