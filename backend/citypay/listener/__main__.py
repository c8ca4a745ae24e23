"""The listener as its own process: python -m citypay.listener (set LISTENER_IN_API=false for
the API processes then, so that one listener writes the index)."""

from __future__ import annotations

import logging

from citypay.chain.deployment import open_deployment
from citypay.core.config import get_settings
from citypay.db.migrate import upgrade
from citypay.db.session import Database
from citypay.listener.indexer import listener_for


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    deployment = open_deployment(settings)
    db = Database(settings.DATABASE_URL)
    upgrade(db.engine)
    listener_for(settings, db, deployment).run_forever()


if __name__ == "__main__":
    main()
