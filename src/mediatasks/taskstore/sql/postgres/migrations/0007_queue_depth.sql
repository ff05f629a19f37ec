-- The metrics page counts unfinished tasks by type and phase every few seconds: an index of
-- those rows alone keeps that count cheap however many finished tasks the table holds.
CREATE INDEX tasks_unfinished ON tasks (phase, type) WHERE phase IN ('pending', 'waiting', 'running');
