-- Orders, normalised into the four parts of the order model, plus the document the api serves.

CREATE TABLE orders (
    order_uid          text PRIMARY KEY,
    -- The api's watermark. Writers take the advisory lock `orders::db::WRITE_LOCK` before they
    -- insert, and hold it until they commit, so rows become visible in `seq` order and a reader that
    -- has seen `seq = n` will never later find a row below n.
    seq                bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    track_number       text        NOT NULL,
    entry              text        NOT NULL,
    locale             text        NOT NULL,
    internal_signature text        NOT NULL,
    customer_id        text        NOT NULL,
    delivery_service   text        NOT NULL,
    shardkey           text        NOT NULL,
    sm_id              bigint      NOT NULL,
    date_created       timestamptz NOT NULL,
    oof_shard          text        NOT NULL,
    -- The canonical JSON of the order, byte for byte what the api serves. `json` (not `jsonb`) keeps
    -- the text as written, so warming the cache is a copy, not a re-serialisation.
    document           json        NOT NULL,
    -- Where the order came from: the broker's channel, sequence and publish time.
    channel            text        NOT NULL,
    stan_sequence      bigint      NOT NULL,
    published_at       timestamptz NOT NULL,
    stored_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    order_uid text PRIMARY KEY REFERENCES orders ON DELETE CASCADE,
    name      text NOT NULL,
    phone     text NOT NULL,
    zip       text NOT NULL,
    city      text NOT NULL,
    address   text NOT NULL,
    region    text NOT NULL,
    email     text NOT NULL
);

CREATE TABLE payments (
    order_uid     text PRIMARY KEY REFERENCES orders ON DELETE CASCADE,
    transaction   text        NOT NULL,
    request_id    text        NOT NULL,
    currency      char(3)     NOT NULL,
    provider      text        NOT NULL,
    amount        bigint      NOT NULL CHECK (amount >= 0),
    payment_dt    timestamptz NOT NULL,
    bank          text        NOT NULL,
    delivery_cost bigint      NOT NULL CHECK (delivery_cost >= 0),
    goods_total   bigint      NOT NULL CHECK (goods_total >= 0),
    custom_fee    bigint      NOT NULL CHECK (custom_fee >= 0)
);

CREATE TABLE items (
    order_uid    text     NOT NULL REFERENCES orders ON DELETE CASCADE,
    -- The item's place in the order's list, so the order reads back as it was sent.
    position     integer  NOT NULL,
    chrt_id      bigint   NOT NULL,
    track_number text     NOT NULL,
    price        bigint   NOT NULL CHECK (price >= 0),
    rid          text     NOT NULL,
    name         text     NOT NULL,
    sale         smallint NOT NULL CHECK (sale BETWEEN 0 AND 100),
    size         text     NOT NULL,
    total_price  bigint   NOT NULL CHECK (total_price >= 0),
    nm_id        bigint   NOT NULL,
    brand        text     NOT NULL,
    status       bigint   NOT NULL,
    PRIMARY KEY (order_uid, position)
);

-- Messages that are not valid orders, kept whole so that nothing is ever lost.
CREATE TABLE dead_letters (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel       text        NOT NULL,
    stan_sequence bigint      NOT NULL,
    published_at  timestamptz NOT NULL,
    payload       bytea       NOT NULL,
    -- A stable code (`amount_mismatch`, `malformed_json`, ...) and a sentence for a person.
    rule          text        NOT NULL,
    reason        text        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    -- A redelivered message is recorded once. The publish time is part of the key because a broker
    -- that lost its store starts counting sequences from 1 again.
    UNIQUE (channel, stan_sequence, published_at)
);

-- A second version of an order that is already stored with different content. The first version
-- stays; this one is kept for a person to look at.
CREATE TABLE order_conflicts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_uid     text        NOT NULL,
    channel       text        NOT NULL,
    stan_sequence bigint      NOT NULL,
    published_at  timestamptz NOT NULL,
    document      json        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel, stan_sequence, published_at)
);
CREATE INDEX order_conflicts_order_uid ON order_conflicts (order_uid);
