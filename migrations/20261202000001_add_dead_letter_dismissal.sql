-- A dead letter can also be dismissed: a person marks it resolved without storing anything, e.g.
-- because the corrected order came another way. A dismissal says why, in the person's words.
--
-- The words get a column of their own rather than a place in `resolution`: `resolution` stays a
-- short, closed vocabulary (`replayed: stored`, ..., `dismissed`) that can be matched on, and free
-- text from a person never has to be told apart from it.

ALTER TABLE dead_letters
    ADD COLUMN resolution_reason text,
    -- A dismissal always has its reason, and nothing else has one. `IS NOT DISTINCT FROM` makes an
    -- unresolved letter (NULL resolution) count as "not dismissed", so it cannot hold a reason either.
    ADD CONSTRAINT dead_letters_dismissal_has_reason
        CHECK ((resolution IS NOT DISTINCT FROM 'dismissed') = (resolution_reason IS NOT NULL)),
    -- A reason of blanks says nothing. The command refuses one before it gets here; this holds for
    -- every other writer too.
    ADD CONSTRAINT dead_letters_resolution_reason_not_blank
        CHECK (resolution_reason ~ '[^[:space:]]');

COMMENT ON COLUMN dead_letters.resolution IS
    'How it was dealt with: ''replayed: stored'', ''replayed: duplicate'', ''replayed: conflict'' or ''dismissed''.';
COMMENT ON COLUMN dead_letters.resolution_reason IS
    'Why it was dismissed, in the words of the person who did; NULL unless resolution is ''dismissed''.';
