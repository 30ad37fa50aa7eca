-- Issue 10 (verdicts that cannot be talked into "trusted"), SQLite flavour.
-- One TPM, one identity: the EK's TPM name is unique across hosts (NULLs are distinct, so rows
-- written before this migration are filled in by the verifier at start).
ALTER TABLE hosts ADD COLUMN ek_name BLOB;
CREATE UNIQUE INDEX hosts_ek_name ON hosts (ek_name);
-- A detected TPM state rollback (or another finding an operator must clear): sticky.
ALTER TABLE hosts ADD COLUMN hold_reason TEXT;
-- Labels asked for at a re-enrolment, waiting for an operator's approval.
ALTER TABLE hosts ADD COLUMN pending_labels TEXT;
-- A removed host (tombstone) an operator allowed to enrol again.
ALTER TABLE hosts ADD COLUMN readmitted_by TEXT;

-- EK overrides bind to one EK (its TPM name) and expire.
ALTER TABLE ek_overrides ADD COLUMN ek_name BLOB;
ALTER TABLE ek_overrides ADD COLUMN expires_at TEXT;

-- Pending enrolments remember who asked (capped per source address).
ALTER TABLE enrolments ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX enrolments_source ON enrolments (source);

-- Tokens with roles (admin, operator, reader) and an optional expiry.
ALTER TABLE admin_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'
    CHECK (role IN ('admin', 'operator', 'reader'));
ALTER TABLE admin_tokens ADD COLUMN expires_at TEXT;
CREATE UNIQUE INDEX admin_tokens_name ON admin_tokens (name);

-- Refused enrolments and rejected evidence, for operators (bounded by the verifier).
CREATE TABLE refusals (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    host_name TEXT NOT NULL,
    kind      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    peer      TEXT NOT NULL
);
CREATE INDEX refusals_host ON refusals (host_name, id);

-- Readiness: each replica proves the store takes writes.
CREATE TABLE replica_heartbeats (
    replica TEXT PRIMARY KEY NOT NULL,
    at      TEXT NOT NULL
);
