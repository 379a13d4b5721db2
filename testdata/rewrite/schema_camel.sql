-- The schema of golden cases with "-- schema: camel": the tenant column is "workspaceId" (uuid).
-- Workspace acme's id is 6f1c5a0e-3b7d-4e8a-9c2f-1a2b3c4d5e6f.
CREATE TABLE "Documents" ("workspaceId" uuid NOT NULL, id int NOT NULL, title text, PRIMARY KEY ("workspaceId", id));
CREATE TABLE comments ("workspaceId" uuid NOT NULL, id int NOT NULL, "documentId" int, body text);
CREATE TABLE plans (id int PRIMARY KEY, name text);
