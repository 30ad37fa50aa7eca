-- Fleet operations (issue 4), PostgreSQL flavour: the same table as migrations/sqlite.
CREATE TABLE host_claims (
    host_id    UUID PRIMARY KEY NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    claims     JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
