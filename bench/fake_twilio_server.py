"""The tests' fake Twilio (tests/fake_twilio.py) as a process that keeps a record for benchmarks.

Same server, same handler, same TCP_NODELAY as `python tests/fake_twilio.py`; on SIGTERM (or after
--max-seconds) it writes every create it answered, with its arrival time, to --record as JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_twilio import FakeTwilio  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    args = parser.parse_args()

    fake = FakeTwilio(port=args.port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"fake twilio on {fake.base_url}", flush=True)
    stop.wait(args.max_seconds)
    fake.stop()
    creates = []
    for request in fake.requests:
        callback = request.get("StatusCallback") or ""
        message_id = parse_qs(urlsplit(callback).query).get("m", [None])[0]
        creates.append(
            {
                "time": request.time,
                "status": request.status,
                "to": request.get("To"),
                "message_id": int(message_id) if message_id else None,
                "connection": request.connection,
            }
        )
    record = {
        "creates": creates,
        "messages": len(fake.messages),
        "connections": fake.connections,
        "violations": fake.violations[:20],
        "violation_count": len(fake.violations),
        "schema_checked": fake.schema_loaded,
    }
    args.record.write_text(json.dumps(record))
    print(f"fake twilio: {len(creates)} creates recorded", flush=True)


if __name__ == "__main__":
    main()
