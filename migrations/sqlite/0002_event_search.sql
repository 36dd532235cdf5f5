-- The text the Changes page's search looks in (docs/history.md): an event's serial,
-- sub-merchant id and name, old and new value, lower-cased by the dashboard with Unicode's rules
-- (the same as the searched text; SQLite's LOWER folds only ASCII) and joined by U+0001, so a
-- match never spans two of them. Filled when an event is written; rows from before are filled
-- once at start.
ALTER TABLE events ADD COLUMN search TEXT;
