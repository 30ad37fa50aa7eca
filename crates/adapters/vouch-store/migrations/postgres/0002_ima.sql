-- IMA runtime integrity (issue 5), PostgreSQL flavour: the same tables as migrations/sqlite.
CREATE TABLE ima_policies (
    id         UUID PRIMARY KEY NOT NULL,
    sha256     BYTEA NOT NULL UNIQUE,
    policy     JSONB NOT NULL,
    paths      BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

ALTER TABLE hosts ADD COLUMN ima_policy_id UUID REFERENCES ima_policies (id);

CREATE TABLE ima_state (
    host_id           UUID PRIMARY KEY NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    reset_count       BIGINT NOT NULL,
    entry_count       BIGINT NOT NULL,
    template_hash_alg TEXT NOT NULL,
    convention        TEXT NOT NULL,
    pcr10             JSONB NOT NULL,
    boot_aggregate_ok BOOLEAN NOT NULL,
    policy_sha256     BYTEA,
    failure           TEXT,
    updated_at        TIMESTAMPTZ NOT NULL
);
