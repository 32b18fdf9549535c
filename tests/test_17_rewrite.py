"""17 Prompt rewriting: a language model turns what users type into the dense descriptions the
video model trained on.

Concept: the DiT learned from dense captions (every object's size, colour, shape, start,
motion, speed, and the background), so a sparse prompt ("a red circle") is out of its
distribution. The rewriter: a parser reads what the user STATED (any phrasing, synonyms,
typos; unknown words set aside), a tiny GPT samples a dense caption from the stated
attributes, and a guard parses the sample back and accepts it only if it keeps everything
the user stated and describes a scene the world could show; else the next sample, else a
template. A real LLM can take the GPT's place through an OpenAI-compatible endpoint; it
passes the same guard and falls back to the local model on any failure.

    OMP_NUM_THREADS=1 python -m pytest tests/test_17_rewrite.py -q
"""
import http.server
import json
import threading

import numpy as np
import pytest
import torch
from helpers import ROOT, make_dit_inputs, run

from minivid import captions, checker, rewrite, world
from minivid.checkpoint import load_checkpoint
from minivid.gpt import GPT, GPTConfig
from minivid.llm_api import ApiRewriter, chat, ApiError
from minivid.prompt_parse import parse

USER = [json.loads(line) for line in open(ROOT / "prompts" / "user_prompts.jsonl")]


# 1. What users type: on >= 40 hand-written prompts (new sentence structures, synonyms,
#    typos, partial descriptions, words the world never uses) the parser extracts exactly the
#    attributes a reader would (written down by hand in the file), and says what it could not
#    read.
def test_01_parser_reads_what_people_type():
    assert len(USER) >= 40
    for row in USER:
        assert parse(row["prompt"]).stated() == row["expect"], row["prompt"]
    p = parse("a yelow sqaure moving quickly to the rigth on a fluffy blak background")
    assert p.fixed == {"yelow": "yellow", "sqaure": "square", "rigth": "right", "blak": "black"}
    assert p.unknown == ["fluffy"]
    assert p.stated() == {"background": "black", "objects": [
        {"shape": "square", "colour": "yellow", "motion": "right", "speed": "fast"}]}
    # "spinning" is two errors from "sinking": an unknown word, not a motion
    assert parse("a yellow star spinning").stated()["objects"] == []


# 2. The parser IS captions.parse_caption: on the world's own captions it states exactly the
#    scene (dense) or a part of it (sparse), for images and clips.
def test_02_parser_agrees_with_world_captions():
    rng = np.random.default_rng(0)
    for i in range(400):
        scene = world.sample_scene(rng, "train", frames=(1, 16)[i % 2])
        assert captions.parse_caption(captions.dense_caption(scene, rng)) == \
            checker.stated(scene)
        sparse = parse(captions.sparse_caption(scene, rng)).stated()
        full = checker.stated(scene)["objects"]
        for o, f in zip(sparse["objects"], full):
            assert o.items() <= f.items()


# 3. Training pairs: the brief states a subset of the scene; the targets cover exactly the
#    caption and its end marker (the brief is context, not something to predict).
def test_03_brief_and_training_batch():
    stated = {"background": "black", "objects": [{"shape": "circle", "colour": "red",
                                                 "motion": "up-left", "speed": "fast"}]}
    assert rewrite.brief(stated) == "red circle moves up-left fast ; on black"
    rng = np.random.default_rng(0)
    specs = [world.sample_scene(rng).to_dict() for _ in range(8)]
    vocab = rewrite.build_vocabulary()
    index = {w: i for i, w in enumerate(vocab)}
    ids, target = rewrite.training_batch(specs, range(8), index, 96, rng)      # (B, L)
    assert ids.shape == target.shape and ids.shape[0] == 8
    for b in range(8):
        sep = ids[b].tolist().index(rewrite.SEP)
        assert (target[b, :sep] == -1).all()                   # nothing to learn in the brief
        n = int((ids[b] != rewrite.PAD).sum())
        assert torch.equal(target[b, sep:n - 1], ids[b, sep + 1:n])  # the next word, then EOS
        assert ids[b, n - 1] == rewrite.EOS


# 4. The LM is a real language model: it overfits a handful of pairs and then writes each
#    caption back word for word from its brief alone (greedy sampling).
def test_04_lm_overfits_a_handful_of_pairs():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    scenes = [world.sample_scene(rng, n_objects=1) for _ in range(4)]
    specs = [s.to_dict() for s in scenes]
    vocab = rewrite.build_vocabulary()
    index = {w: i for i, w in enumerate(vocab)}
    pairs = [(rewrite.brief(rewrite.stated_of(s)), captions.dense_caption(sc, rng))
             for s, sc in zip(specs, scenes)]
    seqs = [rewrite.encode_pair(index, b, d, 96) for b, d in pairs]
    L = max(map(len, seqs))
    ids = torch.zeros(4, L, dtype=torch.long)
    target = torch.full((4, L), -1)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        k = s.index(rewrite.SEP)
        target[i, k:len(s) - 1] = torch.tensor(s[k + 1:])
    model = GPT(GPTConfig(vocab=vocab, max_len=96, dim=64, depth=2, heads=4))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = rewrite.lm_loss(model, ids, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    for (b, d), s in zip(pairs, seqs):
        out = rewrite.sample_ids(model.eval(), s[:s.index(rewrite.SEP) + 1], 1, 0.0, seed=0)[0]
        assert rewrite.detokenize([vocab[i] for i in out]).lower() == d.lower()


# 5. The guard keeps what the user said: a rewrite that changes a stated colour is refused; one
#    that only fills the gaps passes; incomplete rewrites, extra objects and scenes the world
#    never shows (two objects in one cell) are refused, each with its reason.
def test_05_guard():
    stated = parse("a red circle moving right").stated()
    ok = "A small red circle that starts on the left and moves to the right quickly. " \
         "The background is plain black."
    problems, scene = rewrite.check(ok, stated)
    assert problems == [] and scene.objects[0].colour == "red"
    problems, _ = rewrite.check(ok.replace("red", "blue"), stated)
    assert problems == ["colour blue, the prompt says red"]
    problems, _ = rewrite.check("A small red circle on the left. The background is plain black.",
                                stated)
    assert problems and "incomplete" in problems[0]
    two = ("A small red circle that starts on the left and moves to the right quickly; and a "
           "large blue square that starts on the left and stays still. The background is plain "
           "black.")
    problems, _ = rewrite.check(two, stated)
    assert "2 objects, the prompt names 1" in problems and "the two objects overlap" in problems


# 6. The template: every open attribute filled under the world's rules, every stated one kept,
#    the same for the same seed; a prompt whose own words break a rule keeps its words and
#    says so.
def test_06_template():
    stated = parse("a large white triangle on navy").stated()
    for seed in range(20):
        scene = rewrite.template_scene(stated, np.random.default_rng(seed))
        o = scene.objects[0]
        assert (o.size, o.colour, o.shape, scene.background) == ("large", "white", "triangle",
                                                                 "navy")
        assert rewrite.world_problems(scene) == []
    a, b = rewrite.by_template("a red circle", seed=3), rewrite.by_template("a red circle", seed=3)
    assert a.text == b.text and a.source == "template"
    hard = rewrite.by_template("a large red circle in the top left corner moving up-left fast",
                               seed=0)
    assert any("breaks the world's rules" in w for w in hard.warnings)
    assert hard.scene["objects"][0]["position"] == "top left"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny world (train / val / test clips) and a rewriter trained on it for a few steps."""
    d = tmp_path_factory.mktemp("rewrite")
    world.generate(d / "data", {(s, "clips"): 16 for s in ("train", "val", "test")}, seed=0,
                   workers=1)
    run("train_rewriter.py", "--data", d / "data", "--out", d / "rw", "--steps", 6,
        "--batch-size", 8, "--warmup", 2, "--save-every", 3, "--check-prompts", 4)
    return d


# 7. train_rewriter.py: a checkpoint in the one format (kind "rewriter") with its loss plot and
#    the guard's report; --resume continues to a longer schedule.
def test_07_train_rewriter_script(trained):
    d = trained
    ck = load_checkpoint(d / "rw" / "ckpt.pt", kind="rewriter")
    assert ck["step"] == 6 and (d / "rw" / "loss.png").exists()
    assert 0 <= ck["extra"]["report"]["guard_accepted"] <= 1
    assert ck["log"]["series"]["val_loss"]["step"] == [3, 6]
    run("train_rewriter.py", "--data", d / "data", "--out", d / "rw", "--steps", 8,
        "--batch-size", 8, "--warmup", 2, "--save-every", 3, "--check-prompts", 0, "--resume")
    assert load_checkpoint(d / "rw" / "ckpt.pt", kind="rewriter")["step"] == 8


# 8. A seed gives a reproducible rewrite; other seeds give other samples; whatever the LM
#    does, the result keeps what the user stated (here a barely trained LM: the guard and the
#    template carry it).
def test_08_seeded_and_always_valid(trained):
    rw = rewrite.Rewriter.load(trained / "rw" / "ckpt.pt")
    a, b = rw("a purple square moving up", seed=5), rw("a purple square moving up", seed=5)
    assert a.text == b.text and a.source == b.source
    stated = parse("a purple square moving up").stated()
    assert rw.samples(stated, 2, seed=0) != rw.samples(stated, 2, seed=1)
    o = a.scene["objects"][0]
    assert (o["colour"], o["shape"], o["motion"]) == ("purple", "square", "up")
    assert rewrite.check(a.text, stated)[0] == [] or a.source == "template"
    with pytest.raises(ValueError, match="'rewriter' checkpoint is needed"):
        make = trained / "not_rewriter.pt"
        from minivid.checkpoint import save_checkpoint
        save_checkpoint(make, {"kind": "dit", "config": {}, "model": {}})
        rewrite.Rewriter.load(make)


class _Endpoint(http.server.BaseHTTPRequestHandler):
    """A chat-completions endpoint whose behaviour the test picks: ok, refused (a reply the
    guard rejects), error (HTTP 500 that echoes the auth header), malformed, slow (holds its
    reply until the test sets `release`: a client that waited for it would get a good reply)."""
    mode, seen, release = "ok", [], threading.Event()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Endpoint.seen.append((self.path, self.headers.get("Authorization"), body))
        reply = ("A small red circle that starts on the left and moves to the right quickly. "
                 "The background is plain black.")
        if self.mode == "refused":
            reply = reply.replace("red", "green")
        if self.mode == "slow":
            _Endpoint.release.wait(60)
        if self.mode == "error":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(f"upstream failed for {self.headers['Authorization']}".encode())
            return
        data = b"{not json" if self.mode == "malformed" else json.dumps(
            {"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


# 9. The adapter speaks OpenAI's chat-completions protocol to a small local server: a good
#    reply passes the guard; an error status, malformed JSON, a reply the guard refuses and a
#    server that answers only after the timeout each fall back to the local rewriter with a
#    warning, and the API key appears in no warning.
def test_09_adapter_with_a_local_server(trained):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    server.handle_error = lambda *args: None   # the slow mode's client hung up: expected
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    key = "sk-test-SECRET-123"
    local = rewrite.Rewriter.load(trained / "rw" / "ckpt.pt")
    api = ApiRewriter(url, "tiny-llm", key, timeout=0.5, retries=1, fallback=local)
    try:
        _Endpoint.mode = "ok"
        r = api("a red circle moving right", seed=0)
        assert r.source == "openai" and r.tries == 1 and r.warnings == []
        path, auth, body = _Endpoint.seen[-1]
        assert path == "/v1/chat/completions" and auth == f"Bearer {key}"
        assert body["model"] == "tiny-llm" and [m["role"] for m in body["messages"]] == \
            ["system", "user"] and body["messages"][1]["content"] == "a red circle moving right"
        assert "Examples:" in body["messages"][0]["content"]
        for mode in ("error", "malformed", "refused", "slow"):
            _Endpoint.mode = mode
            sent = len(_Endpoint.seen)
            with pytest.warns(UserWarning, match="falling back"):
                r = api("a red circle moving right", seed=0)
            # No clock: the slow server holds its (good) reply until `release`, so a client
            # that ignored its timeout would come back (after 60 s) with source "openai".
            assert r.source in ("local", "template"), mode
            if mode != "slow":   # answered: exactly (retries + 1) requests, then the fallback
                assert len(_Endpoint.seen) - sent == 2, mode
            assert len([w for w in r.warnings if w.startswith("try ")]) == 2
            assert not any(key in w for w in r.warnings), mode
            assert r.scene["objects"][0]["colour"] == "red"
        with pytest.raises(ApiError) as e:
            chat("x", url.replace(str(server.server_address[1]), "1"), "m", key, timeout=0.5)
        assert key not in str(e.value)
    finally:
        _Endpoint.release.set()   # let the held slow replies go
        server.shutdown()


# 10. Bad input: an empty or blank prompt is a clear error; a very long one is cut with a
#     warning; any script or emoji is read without a crash, unknown words reported.
def test_10_bad_input(trained):
    rw = rewrite.Rewriter.load(trained / "rw" / "ckpt.pt")
    for bad in ("", "   \n\t"):
        with pytest.raises(ValueError, match="empty prompt"):
            rw(bad)
    with pytest.raises(TypeError):
        rw(None)
    with pytest.warns(UserWarning, match="cut to"):
        r = rw("a red circle moving left " + "and then some more words " * 40)
    assert len(r.prompt) <= rewrite.MAX_PROMPT_CHARS and r.stated["objects"][0]["colour"] == "red"
    r = rw("un cercle rouge très rapide 🎈 日本")
    assert "rouge" in r.unknown and r.scene["objects"]
    r = rw("a dragon over mountains")
    assert r.stated["objects"] == [] and any("no object" in w for w in r.warnings)


# 11. The evaluation runs end to end and its JSON has every figure the README quotes.
@pytest.mark.slow
def test_11_evaluate_rewrite(trained, tmp_path):
    flags = make_dit_inputs(tmp_path)
    run("train_dit.py", "--stage", "video", "--out", tmp_path / "dit", "--steps", 2,
        "--batch-size", 4, "--warmup", 1, "--save-every", 2, "--sample-every", 0, *flags)
    r = run("minivid/evaluate.py", "rewrite", "--ckpt", tmp_path / "dit" / "ckpt.pt",
            "--better", tmp_path / "dit" / "ckpt.pt", "--rewriter", trained / "rw" / "ckpt.pt",
            "--data", trained / "data", "--n", 4, "--steps", 1, "--seeds", 2,
            "--plot", tmp_path / "rw.png", "--gif", tmp_path / "rw.gif")
    fig = json.loads(r.stdout.strip().splitlines()[-1])
    assert fig["eval"] == "rewrite" and fig["rewrites_scored"] == 2 * (4 + 4 + len(USER))
    for key in ("val_raw_fvd", "val_rewritten_fvd", "val_better_raw_fvd", "test_rewriting_fvd_gain",
                "val_larger_fvd_gain", "user_rewritten_adherence", "dense_raw_adherence",
                "guard_accepted", "distinct_scenes_per_prompt", "rewrite_ms_median"):
        assert key in fig, key
    assert (tmp_path / "rw.png").exists() and (tmp_path / "rw.gif").exists()
    r = run("minivid/evaluate.py", "rewrite", "--ckpt", tmp_path / "dit" / "ckpt.pt",
            "--rewriter", tmp_path / "none.pt", check=False)
    assert r.returncode != 0 and "train_rewriter.py" in r.stderr
    r = run("sample.py", "--ckpt", tmp_path / "dit" / "ckpt.pt", "--rewrite", "local",
            "--rewriter", trained / "rw" / "ckpt.pt", "--steps", 1, "--out", tmp_path / "s",
            "--prompt", "a red circle")
    assert "rewritten (" in r.stdout and (tmp_path / "s" / "grid.gif").exists()
