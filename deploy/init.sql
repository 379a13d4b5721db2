-- The demo database for docker-compose.yml, run by the postgres image as its superuser in database app.
-- tenantproxy connects as its own role: not a superuser, not the tables' owner, with data privileges only.
CREATE ROLE tenantproxy LOGIN PASSWORD 'tenantproxy-demo-password';

CREATE TABLE projects (
	workspace_id text NOT NULL,
	id int NOT NULL,
	name text NOT NULL,
	PRIMARY KEY (workspace_id, id)
);
INSERT INTO projects VALUES
	('7f3c2a', 1, 'Acme website'), ('7f3c2a', 2, 'Acme rocket skates'),
	('9e81d4', 1, 'Globex world domination'), ('9e81d4', 2, 'Globex hammock district');

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO tenantproxy;
