"""The backend's settings, from the environment (or a .env file named by CITYPAY_ENV_FILE)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from limits import RateLimitItem, parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from citypay.core.logs import LogSettings

# The embedded chain's id (scripts/chain.py): development keys are accepted there only.
EMBEDDED_CHAIN_ID = 58210
PLACEHOLDER = "changethis"


def parse_limits(setting: str, name: str) -> list[RateLimitItem]:
    """A RATE_LIMIT_* setting's limits; ValueError naming the setting when it cannot be read."""
    if not setting.strip():
        return []
    try:
        return parse_many(setting)
    except ValueError:
        raise ValueError(
            f"{name}={setting!r}: expected limits such as '50/second' or '20/second;600/minute'"
        ) from None


class Settings(LogSettings):
    """ENVIRONMENT, LOG_FORMAT and LOG_LEVEL, and where the settings are read from, come from
    LogSettings: the listener and the sandbox bank log by them too."""

    # SQLite by default (nothing to install); postgresql+psycopg://... when replicas share one.
    DATABASE_URL: str = "sqlite:///data/backend/citypay.sqlite3"
    RPC_URL: str = "http://127.0.0.1:8546"
    CHAIN_ID: int = EMBEDDED_CHAIN_ID
    MANIFEST_PATH: Path = Path("data/deployments/58210.json")
    # A status the chain gives (a payment included, a deposit issued, a cash-out settled) is final
    # once its block is at or below the head less this many blocks (0 on an instant-finality chain
    # such as QBFT). Whatever the setting, a transaction whose block the node loses is sent again.
    CHAIN_CONFIRMATIONS: int = Field(default=0, ge=0)

    # The cities this backend serves, comma-separated city codes (gimpo,gongju); every city of
    # the manifest when empty.
    CITIES: Annotated[tuple[str, ...], NoDecode] = ()

    # The keys of the backend's duties, per city: each city's issuer (its bank, the manifest's
    # roles.issuers[0]), settler (relays cash-outs, records bank payouts), registrar (registers
    # residents, merchants and card holders), compliance (freezes, recoveries, confiscations) and
    # relayer (sends payment batches), at the addresses the manifest names. They come from the
    # keystore folder the deploy uses (geth's encrypted files; scripts/deployment/keys.py makes
    # them), each password from the environment's CITY_KEYSTORE_PASSWORD_<ACCOUNT NAME> or
    # CITY_KEYSTORE_PASSWORD, else asked at the terminal. Left unset on the embedded chain,
    # anvil's development keys sign; on any other chain it is required, and anvil's public
    # development addresses are refused in any role.
    KEYSTORE_DIR: Path | None = None

    # Relay batching: the submitter sends what is queued every RELAY_INTERVAL seconds, at most
    # RELAY_BATCH_SIZE authorizations a transaction. (Refunds and gifts go out as soon as they
    # are accepted, and idle senders look once a second: chain/relayed.py.)
    RELAY_INTERVAL: float = 0.25
    RELAY_BATCH_SIZE: int = 200
    # An authorization whose validBefore is closer than this is refused: it could expire queued.
    RELAY_MIN_VALIDITY: int = 30
    # ... and one valid for longer than this from now (payments, refunds, cash-outs): a signed
    # authorization is a bearer instrument that anyone holding it may settle until it expires,
    # so the backend relays only short-lived ones; this also keeps every time it stores within
    # the database's 64-bit integers (a wallet may sign any uint256, e.g. 2**64).
    RELAY_MAX_VALIDITY: int = Field(default=86_400, ge=60)

    # Replicas (api/replica.py): the one holding the database's lease runs the relayer, the
    # workers and the listener, renewing it every LEASE_RENEW seconds for LEASE_TTL seconds; the
    # others try to take it every LEASE_RENEW seconds. A holder killed on another host is
    # replaced within LEASE_TTL + LEASE_RENEW seconds, one killed on the same host at once.
    LEASE_TTL: float = Field(default=4.0, gt=0, le=3600, allow_inf_nan=False)
    LEASE_RENEW: float = Field(default=1.0, gt=0, le=3600, allow_inf_nan=False)

    # The chain event listener (citypay.listener): run inside the API process, or not when it runs
    # as its own (python -m citypay.listener). It reads up to the head less LISTENER_CONFIRMATIONS
    # blocks (0 on an instant-finality chain such as QBFT), rescans LISTENER_RESCAN_MARGIN blocks
    # after a restart, and asks eth_getLogs for at most LISTENER_MAX_SPAN blocks at a time.
    LISTENER_IN_API: bool = True
    LISTENER_CONFIRMATIONS: int = Field(default=0, ge=0)
    LISTENER_RESCAN_MARGIN: int = Field(default=12, ge=1)
    LISTENER_POLL_INTERVAL: float = Field(default=0.25, gt=0)
    LISTENER_MAX_SPAN: int = Field(default=10_000, ge=1)
    # The fraud rules' thresholds (citypay.fraud.config): they run wherever the listener runs.
    FRAUD_CONFIG_PATH: Path = Path("config/fraud.yaml")
    # The listener as its own process serves its Prometheus metrics on this port (none if unset);
    # in the API process they are part of GET /metrics.
    LISTENER_METRICS_PORT: int | None = Field(default=None, ge=1, le=65535)

    # GET /metrics is meant for a Prometheus on the operator's own network and shows counts,
    # amounts in aggregate and lags, nothing about a person; so it is open unless this is set,
    # and then asks for `Authorization: Bearer <METRICS_TOKEN>` (Prometheus' `authorization`
    # scrape setting). Set it wherever the API's port is reachable from outside.
    METRICS_TOKEN: SecretStr | None = None

    BANK_WEBHOOK_SECRET: SecretStr = SecretStr(PLACEHOLDER)
    # A deposit notification signed longer ago than this (seconds, either way) is refused as stale.
    DEPOSIT_TIMESTAMP_TOLERANCE: int = 300
    # How often the charging worker retries deposits recorded but not yet issued (seconds).
    CHARGING_RETRY_INTERVAL: float = 5.0
    # Seals the wallet keys the backend keeps for cards (AES-GCM): 32 bytes, hex or base64.
    CARD_KEY_ENCRYPTION_KEY: SecretStr = SecretStr(PLACEHOLDER)
    # Consecutive wrong PINs that lock a card until an operator unlocks it.
    CARD_PIN_ATTEMPTS: int = 5

    # Cash-out payouts: the bank's transfer API (the sandbox bank: python -m citypay.bank.sandbox),
    # how long to wait for its answer, and how often unfinished cash-outs are retried (seconds).
    BANK_URL: str = "http://127.0.0.1:8548"
    BANK_TIMEOUT: float = 10.0
    CASHOUT_RETRY_INTERVAL: float = 5.0
    # Proof of reserve: how often each city's bank statement of its custody account is recorded
    # on chain (seconds; the first an interval after start; 0: only when an operator asks).
    RESERVE_ATTEST_INTERVAL: float = Field(default=3600.0, ge=0)
    # Money classes: how often the active replica sends every account's expired money back to the
    # city (seconds; the first an interval after start; 0: never, payments still sweep their
    # payers).
    EXPIRY_SWEEP_INTERVAL: float = Field(default=3600.0, ge=0, allow_inf_nan=False)
    # Cashback on payments: how often the active replica settles, in each city with a cashback
    # contract, the payments and refunds of the blocks the listener indexed since its last round
    # (seconds; a round at start-up, so a restart catches up at once; 0: never, for a backend
    # whose cities another one settles). A resident's cashback comes within about this long of
    # its payment's block being final and indexed.
    CASHBACK_SETTLE_INTERVAL: float = Field(default=2.0, ge=0, allow_inf_nan=False)

    # Sign-In with Ethereum: the domain the EIP-4361 message must name (the host wallets see) and
    # how long a session lasts, in seconds.
    SIWE_DOMAIN: str = "localhost"
    SESSION_LIFETIME: int = 8 * 3600

    # The largest request body accepted (bytes): every body is a small JSON object; a larger one
    # is refused with 413 before it is read.
    MAX_REQUEST_BODY_BYTES: int = Field(default=64 * 1024, ge=1024)

    # Surge control (api/surge.py), in the `limits` notation ("20/second;600/minute"; empty: no
    # limit). Over one, a request is refused alone with 429 and Retry-After. Per API key or
    # wallet session: a till or an office; per paying wallet, for payments: a person pays a few
    # times a minute; per client address, off by default: behind a load balancer every client is
    # its address unless uvicorn runs with --proxy-headers and --forwarded-allow-ips, and a cap
    # on it would cap the whole city. The counters live in this process (memory://) or in Redis
    # (redis://host:6379), which every replica then shares.
    RATE_LIMIT_PER_KEY: str = "100/second;3000/minute"
    RATE_LIMIT_PER_ADDRESS: str = ""
    RATE_LIMIT_PER_WALLET: str = "10/second;120/minute"
    RATE_LIMIT_STORAGE: str = "memory://"
    # Payments waiting for the relayer (accepted, not yet sent) past which a new one is refused
    # with 429 and Retry-After until it catches up; 0: no bound.
    PAYMENT_INTAKE_LIMIT: int = Field(default=20_000, ge=0)

    @field_validator("RATE_LIMIT_PER_KEY", "RATE_LIMIT_PER_ADDRESS", "RATE_LIMIT_PER_WALLET")
    @classmethod
    def _limits(cls, value: str, info) -> str:
        parse_limits(value, info.field_name)
        return value

    @field_validator("CITIES", mode="before")
    @classmethod
    def _city_codes(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(code.strip() for code in value.split(",") if code.strip())
        return value

    @model_validator(mode="after")
    def _lease_renewed_before_it_expires(self) -> Settings:
        if self.LEASE_RENEW >= self.LEASE_TTL:
            raise ValueError(
                f"LEASE_RENEW ({self.LEASE_RENEW} s) must be below LEASE_TTL "
                f"({self.LEASE_TTL} s): a lease renewed after it expired is lost"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> Settings:
        if self.ENVIRONMENT != "development":
            for name in ("BANK_WEBHOOK_SECRET", "CARD_KEY_ENCRYPTION_KEY"):
                if getattr(self, name).get_secret_value() == PLACEHOLDER:
                    raise ValueError(
                        f"{name} is still '{PLACEHOLDER}': set a secret for production"
                    )
            if self.CHAIN_ID == EMBEDDED_CHAIN_ID:
                raise ValueError(
                    f"CHAIN_ID {self.CHAIN_ID} is the embedded development chain: "
                    "production runs on a permissioned network's chain id"
                )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
