"""A scripted stand-in for an OpenAI-compatible LLM: tests drive tool-calling loops with it.

Not a test file (pytest collects test_*.py only); tests import it as `from fake_llm import
FakeLLM`. It serves POST <base_url>/chat/completions on 127.0.0.1 from a SCRIPT, one reply
per request, in order. A reply is an assistant message dict ({"content": ..., "tool_calls":
[...]}), or a function of the request body that returns one, so a scripted planner can read
the tool results it was sent. Every request body is recorded, so a test can check what the
client sent: the whole history, the tools, the tool_call_ids. No clock anywhere: the server
answers at once, and a script that runs out answers HTTP 500 (a clear failure, not a hang).

    with FakeLLM([{"content": "hello"}]) as llm:
        client = ChatClient(llm.base_url, "fake", "sk-test")
        assert client.complete([{"role": "user", "content": "hi"}], [])["content"] == "hello"
        assert llm.requests[0]["messages"][0]["content"] == "hi"
"""
import http.server
import json
import threading


class FakeLLM:
    """Context manager: a local chat-completions server that plays `script`."""

    def __init__(self, script: list):
        self.script = list(script)
        self.requests = []         # every request body (parsed JSON), in arrival order
        self.authorization = []    # the Authorization header of each request (None if absent)
        self.paths = []            # the path of every POST, the refused ones (404) included
        self._lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.paths.append(self.path)
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": f"FakeLLM serves POST /v1/chat/"
                                                     f"completions, not {self.path}"})
                auth = self.headers.get("Authorization")
                with fake._lock:
                    fake.requests.append(body)
                    fake.authorization.append(auth)
                    n = len(fake.requests)
                if n > len(fake.script):
                    # Echo the key like real APIs that quote the key they refused: a client
                    # that forgets to scrub its errors then fails the test.
                    return self._send(500, {"error": f"FakeLLM: the script holds "
                                            f"{len(fake.script)} replies and this is request "
                                            f"{n} (Authorization: {auth})"})
                reply = fake.script[n - 1]
                try:
                    message = reply(body) if callable(reply) else reply
                except Exception as e:   # a failed assertion in a scripted reply: say so
                    return self._send(500, {"error": f"FakeLLM: scripted reply {n} raised "
                                                     f"{type(e).__name__}: {e}"})
                finish = "tool_calls" if message.get("tool_calls") else "stop"
                self._send(200, {"id": f"fake-{n}", "object": "chat.completion",
                                 "model": body.get("model"),
                                 "choices": [{"index": 0, "finish_reason": finish,
                                              "message": {"role": "assistant", **message}}]})

            def _send(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):   # keep pytest's output clean
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        # a short poll interval only makes shutdown prompt; nothing waits on it
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
