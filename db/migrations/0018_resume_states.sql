CREATE TABLE `resume_states` (
	`run_id` integer NOT NULL,
	`epoch` integer NOT NULL,
	`state_sha256` text NOT NULL,
	PRIMARY KEY(`run_id`, `epoch`),
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action
);
