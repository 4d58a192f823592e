"""A real OpenAI-compatible chat-completions server for tests, backed by a tiny causal LM
(never a mock object): it speaks /v1/chat/completions over HTTP with n, temperature, top_p,
max_tokens, seed, input_audio parts, reasoning_content and audio output.

Knobs for failure tests: `fail_next` answers that many requests with HTTP 503 first;
`reasoning` returns the first half of each generation as reasoning_content; `suffix` is
appended to every reply."""

from __future__ import annotations

import base64
import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import soundfile
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


@dataclass
class ChatServer:
    checkpoint: Path
    reasoning: bool = False
    fail_next: int = 0
    speak: bool = False  # answer modalities=["text","audio"] with a wav
    suffix: str = ""  # appended to every reply (e.g. control characters)
    requests: list[dict] = field(default_factory=list)
    max_in_flight: int = 0  # most requests the server held at once

    def __post_init__(self):
        self.tokenizer = AutoTokenizer.from_pretrained(self.checkpoint)
        self.model = AutoModelForCausalLM.from_pretrained(self.checkpoint).eval()
        self.lock = threading.Lock()
        self.counter = threading.Lock()
        self.in_flight = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.counter:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    status, answer = server.answer(self.path, body)
                finally:
                    with server.counter:
                        server.in_flight -= 1
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, path: str, body: dict) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(body)
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503, {"error": {"message": "overloaded, try again", "type": "server_error"}}
        if path != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {path}"}}
        messages = []
        for m in body["messages"]:
            content = m["content"]
            if isinstance(content, list):  # input_audio parts are heard as a marker by this text model
                content = " ".join("[audio]" if p["type"] == "input_audio" else p["text"] for p in content)
            messages.append({"role": m["role"], "content": content})
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        n = body.get("n", 1)
        with self.lock, torch.inference_mode():
            torch.manual_seed(body.get("seed", 0))
            out = self.model.generate(
                **inputs, do_sample=True, temperature=body.get("temperature", 1.0), top_p=body.get("top_p", 1.0),
                top_k=0, max_new_tokens=body.get("max_tokens", 16), num_return_sequences=n,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        choices, total = [], 0
        for i, row in enumerate(out[:, inputs["input_ids"].shape[1]:].tolist()):
            eos = self.tokenizer.eos_token_id
            tokens = row[: row.index(eos)] if eos in row else row
            total += len(tokens)
            half = len(tokens) // 2 if self.reasoning else 0
            message = {"role": "assistant", "content": self.tokenizer.decode(tokens[half:], skip_special_tokens=True) + self.suffix}
            if self.reasoning:
                message["reasoning_content"] = self.tokenizer.decode(tokens[:half], skip_special_tokens=True)
            if self.speak and "audio" in body.get("modalities", []):
                message["audio"] = {"id": f"audio-{i}", "data": _tone_b64(len(tokens)), "expires_at": 0,
                                    "transcript": message["content"]}
            choices.append({"index": i, "message": message, "finish_reason": "stop" if len(tokens) < len(row) else "length"})
        return 200, {
            "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"], "choices": choices,
            "usage": {"prompt_tokens": inputs["input_ids"].shape[1], "completion_tokens": total,
                      "total_tokens": inputs["input_ids"].shape[1] + total},
        }


def _tone_b64(tokens: int) -> str:
    rate = 16000
    t = np.arange(int(rate * (0.3 + 0.05 * tokens))) / rate
    buf = io.BytesIO()
    soundfile.write(buf, (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode()
