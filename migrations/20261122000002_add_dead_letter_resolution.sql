-- A dead letter stays in the table for good; once a person has dealt with it, it is marked resolved
-- instead of deleted, so that what happened to every message can still be read.

ALTER TABLE dead_letters
    ADD COLUMN resolved_at timestamptz,
    ADD COLUMN resolution  text,
    -- Both or neither: a resolution always says when and how.
    ADD CONSTRAINT dead_letters_resolution_complete
        CHECK ((resolved_at IS NULL) = (resolution IS NULL));

COMMENT ON COLUMN dead_letters.resolved_at IS
    'When a person dealt with the message; NULL while it waits for one.';
COMMENT ON COLUMN dead_letters.resolution IS
    'How it was dealt with, e.g. ''replayed: stored'', ''replayed: duplicate'', ''replayed: conflict''.';

-- The operator's listing: unresolved letters, newest first, optionally of one rule, a page at a
-- time below the last id seen. Pages are keyed by `id`, not `received_at`: it grows with every
-- insert and has no ties, while every letter of one batch shares its `received_at`. The indexes hold
-- only the unresolved letters, which the listing shows by default and which stay few while resolved
-- ones pile up; listing everything walks the primary key.
CREATE INDEX dead_letters_unresolved ON dead_letters (id) WHERE resolved_at IS NULL;
CREATE INDEX dead_letters_unresolved_by_rule ON dead_letters (rule, id) WHERE resolved_at IS NULL;
