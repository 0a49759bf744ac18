-- The database workloads' tables (WORKLOADS.md, "Database workloads"). Safe to load twice:
-- tables are created if missing and filled only where rows are missing.
CREATE TABLE IF NOT EXISTS world (
    id integer PRIMARY KEY,
    randomnumber integer NOT NULL
);

CREATE TABLE IF NOT EXISTS fortune (
    id integer PRIMARY KEY,
    message text NOT NULL
);

INSERT INTO world (id, randomnumber)
SELECT i, 1 + floor(random() * 10000)::integer
FROM generate_series(1, 10000) AS i
ON CONFLICT (id) DO NOTHING;

INSERT INTO fortune (id, message) VALUES
    (1, 'Measure twice, optimize once.'),
    (2, 'A benchmark that checks no answers measures nothing.'),
    (3, '<script>alert("x")</script>'),
    (4, 'Tom & Jerry''s "quoted" fortune: 2 < 3 > 1'),
    (5, '速さは正しさの後に来る。'),
    (6, 'Ένα αίτημα τη φορά, και όλα θα απαντηθούν.'),
    (7, 'The fastest request is the one you never send.'),
    (8, 'Every 500 is a bug report nobody asked for.'),
    (9, 'Latency hides in the tail, not in the mean.'),
    (10, 'Zero copies, until someone copies.'),
    (11, 'Backpressure is a feature, not a failure.'),
    (12, 'A pool per worker, a loop per thread.')
ON CONFLICT (id) DO NOTHING;

ANALYZE world;
ANALYZE fortune;
