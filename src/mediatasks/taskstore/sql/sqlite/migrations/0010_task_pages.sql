-- A page of a project's tasks is ordered newest first (``created_at DESC, id DESC``, the API's
-- default and its stable keyset order): with this index a page reads its rows in order and stops
-- after them, where it used to read and sort every task of the project.
CREATE INDEX tasks_project_created ON tasks (project_id, created_at DESC, id DESC);
