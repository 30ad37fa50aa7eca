-- Issue 10 (verdicts that cannot be talked into "trusted"), PostgreSQL flavour: as migrations/sqlite.
ALTER TABLE hosts ADD COLUMN ek_name BYTEA;
CREATE UNIQUE INDEX hosts_ek_name ON hosts (ek_name);
ALTER TABLE hosts ADD COLUMN hold_reason TEXT;
ALTER TABLE hosts ADD COLUMN pending_labels JSONB;
ALTER TABLE hosts ADD COLUMN readmitted_by TEXT;

ALTER TABLE ek_overrides ADD COLUMN ek_name BYTEA;
ALTER TABLE ek_overrides ADD COLUMN expires_at TIMESTAMPTZ;

ALTER TABLE enrolments ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX enrolments_source ON enrolments (source);

ALTER TABLE admin_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'
    CHECK (role IN ('admin', 'operator', 'reader'));
ALTER TABLE admin_tokens ADD COLUMN expires_at TIMESTAMPTZ;
CREATE UNIQUE INDEX admin_tokens_name ON admin_tokens (name);

CREATE TABLE refusals (
    id        BIGSERIAL PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    host_name TEXT NOT NULL,
    kind      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    peer      TEXT NOT NULL
);
CREATE INDEX refusals_host ON refusals (host_name, id);

CREATE TABLE replica_heartbeats (
    replica TEXT PRIMARY KEY NOT NULL,
    at      TIMESTAMPTZ NOT NULL
);
