-- Fleet appraisal (issue 4), PostgreSQL flavour: the same tables as migrations/sqlite.
CREATE TABLE appraisal_documents (
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    BIGINT NOT NULL,
    json       JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, id, version)
);

CREATE TABLE host_verdicts (
    host_id    UUID PRIMARY KEY NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    verdict    JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
