"""One Lambda execution environment: a process running one function's real handler.

Started by emulator.functions with the function's environment (region, settings,
credentials, endpoints), it reads invocations as JSON lines on stdin and answers each
on the original stdout. Whatever the handler prints (logs, EMF metrics) goes to stderr,
so it can't corrupt the protocol.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class Context:
    """The parts of Lambda's context object the handlers and Powertools read."""

    def __init__(self, function_name: str, region: str, request_id: str, deadline_ms: float):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = (
            f"arn:emulated:lambda:{region}:000000000000:function:{function_name}"
        )
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "emulated"
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def main() -> int:
    module_name, _, function_name = sys.argv[1].partition(":")
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the handler's prints go to stderr
    sys.stdout = sys.stderr
    handler = importlib.import_module(module_name).lambda_handler
    region = os.environ["AWS_REGION"]
    for line in sys.stdin:
        request = json.loads(line)
        started = time.time()
        context = Context(
            function_name or module_name,
            region,
            request["id"],
            started * 1000 + request.get("timeout_ms", 60_000),
        )
        answer: dict[str, Any] = {"id": request["id"]}
        try:
            answer["response"] = handler(request["event"], context)
        except Exception as exc:  # a function error, as Lambda reports it
            answer["error"] = {"type": type(exc).__name__, "message": str(exc)}
            traceback.print_exc()
        answer["duration_ms"] = round((time.time() - started) * 1000, 1)
        protocol.write(json.dumps(answer, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
