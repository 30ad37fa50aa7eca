-- Fleet operations (issue 4), SQLite flavour: the latest typed claims per host (derived from
-- its last accepted quote and event log), read by learning, rollout status, revocation impact
-- and triage.
CREATE TABLE host_claims (
    host_id    BLOB PRIMARY KEY NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    claims     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
