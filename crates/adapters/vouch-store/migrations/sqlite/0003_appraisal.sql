-- Fleet appraisal (issue 4), SQLite flavour: policies and reference stores as versioned JSON
-- documents, and the latest engine verdict per host.
CREATE TABLE appraisal_documents (
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    INTEGER NOT NULL,
    json       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (kind, id, version)
);

CREATE TABLE host_verdicts (
    host_id    BLOB PRIMARY KEY NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    verdict    TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
