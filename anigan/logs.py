"""Logging set-up for the CLI layer; library code only calls logging.getLogger(__name__)."""

import logging


def setup_logging(verbosity: int) -> None:
    """Log warnings by default, info with -v, debug with -vv."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    # Scrapy, PIL and friends are chatty at INFO; keep them one level quieter than ours.
    for noisy in ("scrapy", "PIL", "urllib3", "asyncio", "filelock", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO) if verbosity >= 2 else logging.WARNING)
