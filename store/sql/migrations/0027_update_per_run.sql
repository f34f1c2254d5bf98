-- 0027: an update id is deduplicated within its run, as in Temporal. After
-- continue-as-new (or a reset) the workflow id's new run takes an update
-- whose id an earlier run already completed, instead of answering with the
-- earlier run's outcome.
ALTER TABLE workflow_updates DROP CONSTRAINT workflow_updates_pkey;
ALTER TABLE workflow_updates ADD PRIMARY KEY (namespace, workflow_id, run_id, update_id);
