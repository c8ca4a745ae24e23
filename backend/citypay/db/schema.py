"""Every table of the backend in one metadata: the models of each domain are imported here, so
all of them are compared with the migrations (tests/test_migrations.py, as `alembic check` does)
and a foreign key to another domain's table always finds it."""

from __future__ import annotations

import citypay.auth.models
import citypay.cards.models
import citypay.cashback.models
import citypay.cashout.models
import citypay.chain.outbox
import citypay.charging.models
import citypay.db.lease
import citypay.fraud.alerts
import citypay.gifts.models
import citypay.listener.models
import citypay.office.models
import citypay.payments.models
import citypay.programs.models
import citypay.refund.models  # noqa: F401 - imported for their tables
from citypay.db.models import Base

metadata = Base.metadata
