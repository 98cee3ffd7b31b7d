"""The worker process: `python worker.py`. Without REDIS_URL, jobs run in the web process."""

from __future__ import annotations

import logging
import os
import sys

from engage import create_app

log = logging.getLogger("engage.worker")


def main() -> int:
    app = create_app(web=False)
    if not app.config["REDIS_URL"]:
        log.warning(
            "REDIS_URL is not set: jobs run in-process in web; this worker has nothing to do"
        )
        return 0
    from engage.jobs.worker import run_worker

    with app.app_context():
        return run_worker(burst=bool(os.environ.get("ENGAGE_WORKER_BURST")))


if __name__ == "__main__":
    sys.exit(main())
