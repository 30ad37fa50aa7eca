-- Vouch store, SQLite flavour. Times are RFC 3339 UTC text (sqlx's chrono encoding), which
-- sorts and compares correctly as text; uuids are 16-byte blobs; JSON is text.
CREATE TABLE hosts (
    id                 BLOB PRIMARY KEY NOT NULL,
    name               TEXT NOT NULL UNIQUE,
    status             TEXT NOT NULL CHECK (status IN ('enrolling', 'awaiting_approval', 'trusted', 'untrusted', 'unreachable', 'removed')),
    reasons            TEXT NOT NULL,
    labels             TEXT NOT NULL,
    ek_public          BLOB NOT NULL,
    ek_cert            BLOB,
    ek_override_by     TEXT,
    ak_public          BLOB NOT NULL,
    ak_name            BLOB NOT NULL,
    tpm_manufacturer   TEXT,
    tpm_model          TEXT,
    client_cert_sha256 BLOB,
    approved_at        TEXT,
    approved_by        TEXT,
    baseline           TEXT,
    baseline_event_log BLOB,
    last_pcrs          TEXT,
    last_machine_state TEXT,
    reset_count        INTEGER,
    restart_count      INTEGER,
    clock              INTEGER,
    event_log          BLOB,
    event_log_sha256   BLOB,
    needs_event_log    BOOLEAN NOT NULL,
    interval_secs      INTEGER NOT NULL,
    next_due           TEXT NOT NULL,
    stale_after        TEXT,
    last_seen          TEXT,
    last_good          TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    version            INTEGER NOT NULL
);
CREATE INDEX hosts_next_due ON hosts (next_due);
CREATE INDEX hosts_status_stale ON hosts (status, stale_after);

CREATE TABLE enrolments (
    id               BLOB PRIMARY KEY NOT NULL,
    host_name        TEXT NOT NULL,
    secret_sha256    BLOB NOT NULL,
    expires_at       TEXT NOT NULL,
    ek_public        BLOB NOT NULL,
    ek_cert          BLOB,
    ek_chain_ok      BOOLEAN NOT NULL,
    ek_override_by   TEXT,
    ak_public        BLOB NOT NULL,
    ak_name          BLOB NOT NULL,
    tpm_manufacturer TEXT,
    tpm_model        TEXT,
    labels           TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX enrolments_expires ON enrolments (expires_at);

CREATE TABLE ek_overrides (
    host_name  TEXT PRIMARY KEY NOT NULL,
    actor      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE nonces (
    nonce      BLOB PRIMARY KEY NOT NULL,
    host_id    BLOB NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    want_event_log BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX nonces_expires ON nonces (expires_at);

CREATE TABLE attestations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id       BLOB NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    at            TEXT NOT NULL,
    status        TEXT NOT NULL,
    reasons       TEXT NOT NULL,
    reset_count   INTEGER,
    restart_count INTEGER,
    clock         INTEGER,
    pcrs          TEXT
);
CREATE INDEX attestations_host ON attestations (host_id, id);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);

CREATE TABLE admin_tokens (
    id           BLOB PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    token_sha256 BLOB NOT NULL UNIQUE,
    created_at   TEXT NOT NULL
);
