CREATE TABLE `sweep_trials` (
	`sweep_id` integer NOT NULL,
	`trial_index` integer NOT NULL,
	`run_id` integer NOT NULL,
	`params_json` text NOT NULL,
	`stopped_at_rung` integer,
	PRIMARY KEY(`sweep_id`, `trial_index`),
	FOREIGN KEY (`sweep_id`) REFERENCES `sweeps`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `sweep_trials_run` ON `sweep_trials` (`run_id`);--> statement-breakpoint
CREATE TABLE `sweeps` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`experiment_id` integer NOT NULL,
	`name` text NOT NULL,
	`spec_json` text NOT NULL,
	`spec_sha256` text NOT NULL,
	`method` text NOT NULL,
	`max_trials` integer NOT NULL,
	`status` text NOT NULL,
	`created_by` integer NOT NULL,
	`created_at` text NOT NULL,
	`winner_run_id` integer,
	`winner_chosen_by` integer,
	`winner_rationale` text,
	`winner_chosen_at` text,
	FOREIGN KEY (`experiment_id`) REFERENCES `experiments`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`created_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`winner_run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`winner_chosen_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `sweeps_experiment` ON `sweeps` (`experiment_id`);