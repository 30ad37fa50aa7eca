-- Vouch store, PostgreSQL flavour: the same tables and columns as migrations/sqlite.
CREATE TABLE hosts (
    id                 UUID PRIMARY KEY NOT NULL,
    name               TEXT NOT NULL UNIQUE,
    status             TEXT NOT NULL CHECK (status IN ('enrolling', 'awaiting_approval', 'trusted', 'untrusted', 'unreachable', 'removed')),
    reasons            JSONB NOT NULL,
    labels             JSONB NOT NULL,
    ek_public          BYTEA NOT NULL,
    ek_cert            BYTEA,
    ek_override_by     TEXT,
    ak_public          BYTEA NOT NULL,
    ak_name            BYTEA NOT NULL,
    tpm_manufacturer   TEXT,
    tpm_model          TEXT,
    client_cert_sha256 BYTEA,
    approved_at        TIMESTAMPTZ,
    approved_by        TEXT,
    baseline           JSONB,
    baseline_event_log BYTEA,
    last_pcrs          JSONB,
    last_machine_state JSONB,
    reset_count        BIGINT,
    restart_count      BIGINT,
    clock              BIGINT,
    event_log          BYTEA,
    event_log_sha256   BYTEA,
    needs_event_log    BOOLEAN NOT NULL,
    interval_secs      BIGINT NOT NULL,
    next_due           TIMESTAMPTZ NOT NULL,
    stale_after        TIMESTAMPTZ,
    last_seen          TIMESTAMPTZ,
    last_good          TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    version            BIGINT NOT NULL
);
CREATE INDEX hosts_next_due ON hosts (next_due);
CREATE INDEX hosts_status_stale ON hosts (status, stale_after);

CREATE TABLE enrolments (
    id               UUID PRIMARY KEY NOT NULL,
    host_name        TEXT NOT NULL,
    secret_sha256    BYTEA NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    ek_public        BYTEA NOT NULL,
    ek_cert          BYTEA,
    ek_chain_ok      BOOLEAN NOT NULL,
    ek_override_by   TEXT,
    ak_public        BYTEA NOT NULL,
    ak_name          BYTEA NOT NULL,
    tpm_manufacturer TEXT,
    tpm_model        TEXT,
    labels           JSONB NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX enrolments_expires ON enrolments (expires_at);

CREATE TABLE ek_overrides (
    host_name  TEXT PRIMARY KEY NOT NULL,
    actor      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE nonces (
    nonce      BYTEA PRIMARY KEY NOT NULL,
    host_id    UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    want_event_log BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX nonces_expires ON nonces (expires_at);

CREATE TABLE attestations (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host_id       UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    at            TIMESTAMPTZ NOT NULL,
    status        TEXT NOT NULL,
    reasons       JSONB NOT NULL,
    reset_count   BIGINT,
    restart_count BIGINT,
    clock         BIGINT,
    pcrs          JSONB
);
CREATE INDEX attestations_host ON attestations (host_id, id);

CREATE TABLE audit_log (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     TIMESTAMPTZ NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail JSONB NOT NULL
);

CREATE TABLE admin_tokens (
    id           UUID PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    token_sha256 BYTEA NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL
);
