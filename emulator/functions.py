"""Functions as separate processes, each with its own environment, like Lambda's."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class FunctionError(RuntimeError):
    """The handler raised: Lambda reports this as a function error."""


class Function:
    """A pool of execution environments for one function; each runs one invocation at a time."""

    def __init__(
        self,
        name: str,
        handler_module: str,
        environment: dict[str, str],
        log_path: Path,
        concurrency: int = 1,
        timeout_ms: int = 60_000,
    ):
        self.name = name
        self.timeout_ms = timeout_ms
        env = {
            # Only what a Lambda environment would have, plus Python's own needs.
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "lambda"), str(ROOT)]),
            "AWS_LAMBDA_FUNCTION_NAME": name,
            **environment,
        }
        self._log = open(log_path, "a", buffering=1)  # noqa: SIM115 - closed in stop()
        self._idle: list[subprocess.Popen] = []
        self._all: list[subprocess.Popen] = []
        self._available = threading.Condition()
        self._ids = itertools.count(1)
        for _ in range(concurrency):
            process = subprocess.Popen(
                [sys.executable, "-m", "emulator.function_host", f"{handler_module}:{name}"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                text=True,
                bufsize=1,
            )
            self._idle.append(process)
            self._all.append(process)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Run one invocation; returns the handler's response or raises FunctionError."""
        with self._available:
            while not self._idle:
                self._available.wait()
            process = self._idle.pop()
        try:
            request = {
                "id": f"{self.name}-{next(self._ids)}",
                "event": event,
                "timeout_ms": self.timeout_ms,
            }
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            line = process.stdout.readline()
            if not line:
                raise FunctionError(f"{self.name}: execution environment exited")
            answer = json.loads(line)
        finally:
            with self._available:
                self._idle.append(process)
                self._available.notify()
        if "error" in answer:
            raise FunctionError(f"{answer['error']['type']}: {answer['error']['message']}")
        return answer.get("response")

    def stop(self) -> None:
        for process in self._all:
            if process.poll() is None:
                process.stdin.close()
        for process in self._all:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._log.close()
