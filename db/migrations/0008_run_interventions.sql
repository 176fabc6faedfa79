CREATE TABLE `run_interventions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` integer NOT NULL,
	`kind` text NOT NULL,
	`changes_json` text NOT NULL,
	`from_checkpoint_id` integer,
	`rationale` text NOT NULL,
	`requested_by` integer NOT NULL,
	`requested_at` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`applied_at_epoch` integer,
	`applied_at_step` integer,
	`applied_at` text,
	`metrics_snapshot_json` text,
	`checkpoint_id` integer,
	`decision_id` integer,
	`closed_by` integer,
	`closed_at` text,
	`close_reason` text,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`from_checkpoint_id`) REFERENCES `checkpoints`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`requested_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`checkpoint_id`) REFERENCES `checkpoints`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`decision_id`) REFERENCES `decisions`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`closed_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `run_interventions_run` ON `run_interventions` (`run_id`,`status`);--> statement-breakpoint
-- Interventions are records: never deleted; the only edit is the one transition out of "pending", which leaves the request as it was.
CREATE TRIGGER run_interventions_no_delete BEFORE DELETE ON run_interventions
BEGIN SELECT RAISE(ABORT, 'run interventions are records: DELETE rejected'); END;
--> statement-breakpoint
CREATE TRIGGER run_interventions_one_transition BEFORE UPDATE ON run_interventions
WHEN OLD.status <> 'pending' OR NEW.status = 'pending'
  OR NEW.id IS NOT OLD.id OR NEW.run_id IS NOT OLD.run_id OR NEW.kind IS NOT OLD.kind
  OR NEW.changes_json IS NOT OLD.changes_json OR NEW.from_checkpoint_id IS NOT OLD.from_checkpoint_id
  OR NEW.rationale IS NOT OLD.rationale OR NEW.requested_by IS NOT OLD.requested_by OR NEW.requested_at IS NOT OLD.requested_at
BEGIN SELECT RAISE(ABORT, 'run interventions change only once, from pending to applied, cancelled or rejected: UPDATE rejected'); END;
