-- Which of a channel's messages have been consumed, so that one the broker holds but never
-- delivered is noticed and fetched by its sequence (the ingestor's `gaps` sweeper).
--
-- Every write transaction of the ingestor records the sequence of each message it took, whatever
-- the message came to: a stored order, a duplicate, a conflict or a dead letter. Recording the
-- sequences rather than reading them back from those tables covers the duplicates, which leave no
-- row of their own. A channel's sequences are consumed nearly in order, so the record is kept
-- short: `consumed_through` holds, per channel, the sequence up to which every message is
-- consumed, and `consumed_messages` only those above it. The sweeper moves the mark up over the
-- run of consecutive sequences that follows it and deletes what it passed, so both tables stay
-- as small as the messages in flight, whatever the channel's history.

CREATE TABLE consumed_messages (
    channel  text   NOT NULL,
    sequence bigint NOT NULL,
    PRIMARY KEY (channel, sequence)
);

CREATE TABLE consumed_through (
    channel  text   PRIMARY KEY,
    sequence bigint NOT NULL CHECK (sequence >= 0)
);

COMMENT ON TABLE consumed_messages IS
    'Sequences consumed above the channel''s mark in consumed_through; deleted once the mark passes them.';
COMMENT ON COLUMN consumed_through.sequence IS
    'Every message of the channel up to this sequence is consumed (0: none yet).';

-- A database that stored messages before this table existed: what came before its highest
-- sequence is taken as consumed. Nothing tells which of those the broker may have failed to
-- deliver, and a channel a broker no longer holds would otherwise be looked for from sequence 1.
INSERT INTO consumed_through (channel, sequence)
SELECT channel, max(stan_sequence)
FROM (
    SELECT channel, stan_sequence FROM orders
    UNION ALL
    SELECT channel, stan_sequence FROM dead_letters
    UNION ALL
    SELECT channel, stan_sequence FROM order_conflicts
) AS taken
GROUP BY channel;
