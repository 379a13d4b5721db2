-- The schema golden cases run against (tenant column workspace_id). Workspace acme's id is 7f3c2a.
CREATE TABLE projects (
	workspace_id text NOT NULL,
	id int NOT NULL,
	name text NOT NULL,
	budget numeric,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, id)
);
CREATE TABLE tasks (
	workspace_id text NOT NULL,
	id bigint NOT NULL,
	project_id int NOT NULL,
	title varchar(200) NOT NULL,
	done boolean NOT NULL DEFAULT false,
	tags jsonb,
	PRIMARY KEY (workspace_id, id)
);
CREATE TABLE users (
	workspace_id text NOT NULL,
	id int NOT NULL,
	email text NOT NULL,
	PRIMARY KEY (workspace_id, id),
	UNIQUE (workspace_id, email)
);
CREATE TABLE accounts (
	id int PRIMARY KEY,
	workspace_id text NOT NULL,
	balance int NOT NULL,
	email text UNIQUE
);
CREATE TABLE events (
	workspace_id text NOT NULL,
	at timestamptz NOT NULL,
	kind text
) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL, price numeric);
CREATE DOMAIN short_label AS text CHECK (length(VALUE) < 5);
CREATE TABLE countries (code text PRIMARY KEY, name text);
CREATE TABLE audit_log (id bigserial PRIMARY KEY, message text);
CREATE SEQUENCE invoice_numbers;
CREATE VIEW open_tasks AS SELECT workspace_id, id, title FROM tasks WHERE NOT done;
CREATE VIEW task_counts AS SELECT project_id, count(*) AS n FROM tasks GROUP BY project_id;
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (workspace_id text NOT NULL, id int NOT NULL, total numeric, PRIMARY KEY (workspace_id, id));
CREATE TABLE "CamelDocs" (workspace_id text NOT NULL, "docId" int NOT NULL, "Title" text);
CREATE FUNCTION app_score(int) RETURNS int LANGUAGE sql AS 'SELECT $1';
CREATE FUNCTION secret_dump() RETURNS SETOF text LANGUAGE sql AS 'SELECT 1';
-- A superuser's function in pg_catalog is not PostgreSQL's, whatever its schema.
CREATE FUNCTION pg_catalog.tp_backdoor() RETURNS text LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION is_valid_label(text) RETURNS bool LANGUAGE sql AS 'SELECT true';
CREATE DOMAIN checked_label AS text CHECK (is_valid_label(VALUE));
