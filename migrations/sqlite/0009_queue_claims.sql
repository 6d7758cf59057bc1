-- Who holds the claim on a queued recipient: the delivery worker's token,
-- set with the lease (locked_until) when the worker claims the recipient,
-- checked when it renews the lease or records an outcome, so a worker whose
-- lease passed to another cannot overwrite the new holder's state.
ALTER TABLE queue_recipients ADD COLUMN claimed_by TEXT;
