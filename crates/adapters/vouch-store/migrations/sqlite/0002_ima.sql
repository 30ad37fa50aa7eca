-- IMA runtime integrity (issue 5), SQLite flavour: shared runtime policies (stored once by
-- content), a host's policy, and the verifier's running PCR 10 state per host.
CREATE TABLE ima_policies (
    id         BLOB PRIMARY KEY NOT NULL,
    sha256     BLOB NOT NULL UNIQUE,
    policy     TEXT NOT NULL,
    paths      INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

ALTER TABLE hosts ADD COLUMN ima_policy_id BLOB REFERENCES ima_policies (id);

CREATE TABLE ima_state (
    host_id           BLOB PRIMARY KEY NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    reset_count       INTEGER NOT NULL,
    entry_count       INTEGER NOT NULL,
    template_hash_alg TEXT NOT NULL,
    convention        TEXT NOT NULL,
    pcr10             TEXT NOT NULL,
    boot_aggregate_ok BOOLEAN NOT NULL,
    policy_sha256     BLOB,
    failure           TEXT,
    updated_at        TEXT NOT NULL
);
