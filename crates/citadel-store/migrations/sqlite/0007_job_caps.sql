-- Concurrency caps on queued work: a job may name a key (a script's id)
-- whose running jobs are capped across every node.
ALTER TABLE jobs ADD COLUMN script_key TEXT;
ALTER TABLE jobs ADD COLUMN script_cap INTEGER;
-- Counting running jobs per tenant and per key while claiming.
CREATE INDEX jobs_running_tenant ON jobs(tenant_id) WHERE state = 'running';
CREATE INDEX jobs_running_script ON jobs(script_key) WHERE state = 'running' AND script_key IS NOT NULL;
